"""The UI's routes over plain HTTP: files, headers, redirects, and no dev sign-in
unless DEV_MODE is on."""

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

import pytest

from services.policy_service.ui import STATIC_DIR
from tests.served_app import served_policy_service

from .conftest import ui_settings


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes


def get(url: str) -> Reply:
    """GET without following redirects; the connection is closed before returning."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read())


@pytest.fixture(scope="module")
def production_url(ui_database: str, kafka_bootstrap: str) -> Iterator[str]:
    """The service with DEV_MODE off."""
    with served_policy_service(ui_settings(ui_database, kafka_bootstrap, dev_mode=False)) as url:
        yield url


def test_dev_sign_in_does_not_exist_without_dev_mode(production_url: str) -> None:
    reply = get(production_url + "/dev/sign-in")
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert "Location" not in reply.headers


def test_dev_sign_in_redirects_with_a_manager_token_in_dev_mode(ui_base_url: str) -> None:
    reply = get(ui_base_url + "/dev/sign-in")
    assert reply.status == 303
    assert reply.headers["Location"].startswith("/ui/#token=ey")
    assert reply.headers["Cache-Control"] == "no-store"
    assert get(ui_base_url + "/dev/sign-in?role=technician").status == 303
    assert get(ui_base_url + "/dev/sign-in?role=root").status == 400


def test_the_ui_is_served_from_the_package_with_a_strict_policy(production_url: str) -> None:
    assert get(production_url + "/").headers["Location"] == "/ui/"
    assert get(production_url + "/ui").headers["Location"] == "/ui/"
    index = get(production_url + "/ui/")
    assert index.status == 200
    assert index.headers["Content-Type"].startswith("text/html")
    csp = index.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    body = index.body.decode()
    assert '<script type="module" src="app.js">' in body
    assert "http://" not in body
    assert "https://" not in body
    for name in sorted(p.name for p in STATIC_DIR.iterdir()):
        reply = get(f"{production_url}/ui/{name}")
        assert reply.status == 200, name
        text = reply.body
        if name.endswith((".js", ".css")):
            assert b"https://" not in text, f"{name} loads something from elsewhere"
    js = get(production_url + "/ui/app.js")
    assert js.headers["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize(
    "path",
    ["/ui/../bootstrap.py", "/ui/%2e%2e/routes.py", "/ui/nope.js", "/ui/.hidden.js", "/ui/x.py"],
)
def test_nothing_else_is_served_under_ui(production_url: str, path: str) -> None:
    assert get(production_url + path).status == 404
