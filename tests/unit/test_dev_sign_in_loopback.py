"""Dev mode stays on this machine: the services bind loopback by default, ``make run``
binds them there whatever the shell says, and ``/dev/sign-in`` (a manager token
for whoever asks) answers only clients whose TCP peer is a loopback address."""

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from services.import_worker.settings import WorkerSettings
from services.infra.devstack.stack import StackConfig, service_environment
from services.policy_service.api.problems import PROBLEM_JSON
from services.policy_service.settings import PolicyServiceSettings
from services.policy_service.ui.devsignin import DEV_SIGN_IN_PATH, dev_sign_in, is_loopback_peer

pytestmark = pytest.mark.unit

SECRET = "dev-sign-in-unit-tests-" + "0123456789abcdef" * 3

LOOPBACK_PEERS = [
    ("127.0.0.1", 50000),
    ("127.45.6.7", 50000),  # all of 127.0.0.0/8
    ("::1", 50000, 0, 0),
    ("::ffff:127.0.0.1", 50000, 0, 0),  # IPv4 client on a dual-stack socket
]
OTHER_PEERS: list[Any] = [
    ("192.0.2.2", 50000),
    ("10.1.2.3", 50000),
    ("0.0.0.0", 50000),
    ("::ffff:192.0.2.2", 50000, 0, 0),
    ("2001:db8::1", 50000, 0, 0),
    ("fe80::1%eth0", 50000, 0, 2),
    ("localhost", 50000),  # not an address: never resolved
    "",  # a Unix socket's peer
    None,  # the connection is gone
]


class FakeTransport:
    """Just enough of an asyncio transport: its ``peername``."""

    def __init__(self, peername: Any) -> None:
        self._peername = peername

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._peername if name == "peername" else default


def sign_in_request(peername: Any, query: str = "", **headers: str) -> web.Request:
    return make_mocked_request(
        "GET", DEV_SIGN_IN_PATH + query, headers=headers, transport=FakeTransport(peername)
    )


async def answer(request: web.Request) -> web.Response:
    return await dev_sign_in(SECRET)(request)


def assert_refused(reply: web.Response) -> None:
    assert reply.status == 403
    assert reply.content_type == PROBLEM_JSON
    assert "Location" not in reply.headers
    assert isinstance(reply.body, bytes)
    problem = json.loads(reply.body)
    assert problem["status"] == 403
    assert "loopback" in problem["detail"]
    assert "eyJ" not in reply.body.decode()  # no JWT (their header starts so)


@pytest.mark.parametrize("peer", LOOPBACK_PEERS, ids=lambda p: p[0])
async def test_loopback_clients_are_signed_in(peer: tuple[Any, ...]) -> None:
    reply = await answer(sign_in_request(peer))
    assert reply.status == 303
    assert reply.headers["Location"].startswith("/ui/#token=")


@pytest.mark.parametrize("peer", OTHER_PEERS, ids=repr)
async def test_other_clients_get_403_problem_json(peer: Any) -> None:
    assert_refused(await answer(sign_in_request(peer)))
    assert_refused(await answer(sign_in_request(peer, "?role=technician")))


async def test_forwarded_headers_do_not_make_a_client_local() -> None:
    request = sign_in_request(
        ("192.0.2.2", 50000),
        **{"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1", "X-Real-IP": "::1"},
    )
    assert_refused(await answer(request))


async def test_a_rewritten_request_remote_does_not_make_a_client_local() -> None:
    # What a forwarded-headers middleware does: request.remote says loopback, the socket not.
    request = sign_in_request(("192.0.2.2", 50000)).clone(remote="127.0.0.1")
    assert request.remote == "127.0.0.1"
    assert_refused(await answer(request))


async def test_a_request_whose_connection_is_gone_is_refused() -> None:
    request = sign_in_request(("127.0.0.1", 50000))
    assert request.protocol is not None
    request.protocol.transport = None  # what aiohttp's protocol does once the peer hung up
    assert request.transport is None
    assert_refused(await answer(request))


@pytest.mark.parametrize(
    ("peer", "local"),
    [*((p, True) for p in LOOPBACK_PEERS), *((p, False) for p in OTHER_PEERS)],
    ids=repr,
)
def test_is_loopback_peer(peer: Any, local: bool) -> None:
    assert is_loopback_peer(peer) is local


def test_services_listen_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTP_HOST", raising=False)
    monkeypatch.delenv("WORKER_HTTP_HOST", raising=False)
    settings = PolicyServiceSettings(auth_jwt_secret=SECRET, secrets_key="A" * 43 + "=")
    assert settings.http_host == "127.0.0.1"
    assert WorkerSettings().worker_http_host == "127.0.0.1"


def test_the_dev_stack_binds_its_services_to_loopback_whatever_the_shell_says() -> None:
    shell = {"HTTP_HOST": "0.0.0.0", "WORKER_HTTP_HOST": "::", "PATH": "/usr/bin"}
    env = service_environment(
        shell,
        StackConfig(data_dir=Path(".data"), http_port=8123, worker_http_port=6123),
        database_url="postgresql://postgres@127.0.0.1:5432/postgres",
        bootstrap="127.0.0.1:9092",
        secret=SECRET,
    )
    assert env["HTTP_HOST"] == env["WORKER_HTTP_HOST"] == "127.0.0.1"
    assert (env["HTTP_PORT"], env["WORKER_HTTP_PORT"]) == ("8123", "6123")
    assert env["DEV_MODE"] == "1"
    assert env["PATH"] == "/usr/bin"
    assert shell["HTTP_HOST"] == "0.0.0.0"  # the caller's mapping is left alone
