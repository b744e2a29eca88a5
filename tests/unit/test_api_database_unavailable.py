"""While PostgreSQL is away the API says so: 503, ``Retry-After``, problem JSON.

Found by ``make chaos`` (scenario 3): every write during a PostgreSQL restart
was answered 500, which reads as a bug in the service and tells clients
nothing about when to come back. A real bug stays a 500.
"""

from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.policy_service.api.middleware import RETRY_AFTER_SECONDS, problems
from services.policy_service.api.openapi import build_openapi

pytestmark = pytest.mark.unit

OUTAGES: dict[str, Callable[[], BaseException]] = {
    "refused": lambda: ConnectionRefusedError(111, "Connect call failed"),
    "connection lost": lambda: asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
    "shutting down": lambda: asyncpg.exceptions.AdminShutdownError("terminating"),
    "starting up": lambda: asyncpg.exceptions.CannotConnectNowError("starting up"),
    "pool timeout": lambda: TimeoutError(),
    "closed under us": lambda: asyncpg.InterfaceError("connection is closed"),
}


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def fail(request: web.Request) -> web.Response:
        case = request.match_info["case"]
        raise OUTAGES[case]() if case in OUTAGES else ValueError("a bug")

    app = web.Application(middlewares=[problems])
    app.router.add_get("/v1/fail/{case}", fail)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize("case", sorted(OUTAGES))
async def test_an_unreachable_database_is_a_503_with_retry_after(
    client: TestClient[web.Request, web.Application], case: str
) -> None:
    reply = await client.get(f"/v1/fail/{case}")
    assert reply.status == 503
    assert reply.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert reply.content_type == "application/problem+json"
    body = await reply.json()
    assert body["status"] == 503
    assert body["type"].endswith("database-unavailable")
    assert body["instance"] == f"/v1/fail/{case}"


async def test_a_bug_is_still_a_500(client: TestClient[web.Request, web.Application]) -> None:
    reply = await client.get("/v1/fail/bug")
    assert reply.status == 500
    assert "Retry-After" not in reply.headers
    assert (await reply.json())["status"] == 500


def test_the_openapi_document_declares_the_503_of_every_authenticated_route() -> None:
    paths = build_openapi("test")["paths"]
    authenticated = [
        (path, method, op)
        for path, ops in paths.items()
        for method, op in ops.items()
        if op.get("security")
    ]
    assert authenticated
    for path, method, op in authenticated:
        declared = op["responses"].get("503")
        assert declared is not None, (method, path)
        assert "Retry-After" in declared["headers"], (method, path)
        assert "application/problem+json" in declared["content"], (method, path)
