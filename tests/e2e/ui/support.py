"""Helpers of the browser tests: the served app, a partner of one test, screenshots,
the accessibility check (axe-core), and events published to the session's broker."""

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from playwright.sync_api import Page, Route, ViewportSize

from schemas.topics import TopicNames
from services.infra.devstack.procs import run_coroutine_sync
from services.policy_service.api.auth import issue_token

SECRET = "admin-ui-browser-tests-" + "0123456789abcdef" * 3
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
"""axe-core (npm ``axe-core``, MPL-2.0: vendor/LICENSE), vendored: tests fetch nothing."""
AXE_URL = "/ui/__axe-core.js"
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
REPO = Path(__file__).resolve().parents[3]
README_SCREENSHOTS = REPO / "docs" / "screenshots"
"""The committed screenshots of the README: written only when asked (``make screenshots``)."""
TEST_SCREENSHOTS = REPO / "artifacts" / "screenshots"
"""Where every other run puts them (git-ignored): ``make test`` changes no tracked file."""


def token(partner_id: str, role: str = "manager", ttl: int = 900) -> str:
    return issue_token(
        SECRET, sub=f"{role}@{partner_id}", partner_id=partner_id, role=role, ttl_seconds=ttl
    )


@dataclass
class Partner:
    """A partner of one test, set up through the public API."""

    base_url: str
    id: str = field(default_factory=lambda: f"ui-{uuid.uuid4().hex[:12]}")

    def call(self, method: str, path: str, body: Any = None, role: str = "manager") -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {token(self.id, role)}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from exc
        return json.loads(raw) if raw else None

    def add_customer(
        self, name: str, psa: tuple[str, str] | None = None, docs: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if psa:
            body["psa"] = {"provider": psa[0], "company_id": psa[1]}
        if docs:
            body["documentation"] = {"provider": docs[0], "organization_id": docs[1]}
        result: dict[str, Any] = self.call("POST", "/v1/customers", body)
        return result

    def create_policy(self, name: str, account_type: str = "end_user", **fields: Any) -> Any:
        body = {"account_type": account_type, "name": name, "options": {}, **fields}
        return self.call("POST", "/v1/import-policies", body)

    def policy(self, policy_id: str) -> Any:
        return self.call("GET", f"/v1/import-policies/{policy_id}")

    def policies(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call("GET", "/v1/import-policies?limit=500")["items"]
        return items

    def customer(self, customer_id: str) -> Any:
        return self.call("GET", f"/v1/customers/{customer_id}")

    def accounts(self, query: str = "") -> Any:
        return self.call("GET", f"/v1/accounts{query}")

    def wait_for_accounts(self, total: int, query: str = "?limit=1", timeout: float = 30) -> Any:
        """The accounts page of ``query`` once its counts add up to ``total`` (the read
        model follows the broker, a moment behind)."""
        return wait_until(
            lambda: self.accounts(query),
            lambda page: sum(page["counts"].values()) == total,
            timeout,
            f"{total} accounts",
        )

    def sign_in(self, page: Page, role: str = "manager", route: str = "#/policies") -> None:
        """Open the UI signed in as ``role``, the way the dev sign-in link does (``#token=``)."""
        page.goto(f"{self.base_url}/ui/#token={token(self.id, role)}")
        page.locator("h1").first.wait_for()
        if route != "#/policies":
            page.goto(f"{self.base_url}/ui/{route}")
        page.locator("main h1").wait_for()


def screenshot_dir() -> Path:
    """docs/screenshots with ``UPDATE_SCREENSHOTS=1`` (``make screenshots``), else
    artifacts/screenshots."""
    update = os.environ.get("UPDATE_SCREENSHOTS", "").strip().lower() in {"1", "true", "yes"}
    return README_SCREENSHOTS if update else TEST_SCREENSHOTS


def screenshot(page: Page, name: str) -> Path:
    """Save the viewport (1280x800) as <name>.png in :func:`screenshot_dir`; its path."""
    folder = screenshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def wait_until(
    read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str
) -> Any:
    """``read()`` again every 0.2 s until ``done`` says yes; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s: {value!r}")
        time.sleep(0.2)


# -- accessibility --------------------------------------------------------------------


def _serve_axe(route: Route) -> None:
    route.fulfill(path=str(AXE), content_type="text/javascript")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A/AA and best practices).

    axe is served at a path of the app's own origin (intercepted, never on the server),
    so the page's Content-Security-Policy (``script-src 'self'``) stays enforced.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.route(f"**{AXE_URL}", _serve_axe)
        page.add_script_tag(url=AXE_URL)
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations.map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary),
          }));
        }"""
    )
    return found


def assert_accessible(page: Page, where: str = "") -> None:
    """No axe violation of impact serious or critical."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"accessibility violations{f' ({where})' if where else ''}: " + (
        json.dumps(blocking, indent=1)
    )


def check_layouts(page: Page, name: str, *, screenshots: bool = True) -> None:
    """At 1280 px and at a phone's 390x844: a screenshot (``<name>``, ``<name>-phone``)
    and the accessibility check; the page is back at 1280 px after."""
    try:
        for suffix, size in (("", VIEWPORT), ("-phone", PHONE)):
            page.set_viewport_size(size)
            page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done(null)))")
            if screenshots:
                screenshot(page, name + suffix)
            assert_accessible(page, f"{name}{suffix}")
    finally:
        page.set_viewport_size(VIEWPORT)


# -- the broker -------------------------------------------------------------------------


@dataclass
class Bus:
    """Publishes to the session's broker, which the served policy service follows."""

    bootstrap: str
    topics: TopicNames = field(default_factory=TopicNames)

    def decisions(self, *values: bytes) -> None:
        self.publish(self.topics.import_decisions, values)

    def results(self, *values: bytes) -> None:
        self.publish(self.topics.command_results, values)

    def publish(self, topic: str, values: tuple[bytes, ...]) -> None:
        """Each value keyed by its envelope's subject (the account key), as the services do."""

        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False)
            await producer.start()
            try:
                for value in values:
                    key = json.loads(value)["subject"].encode()
                    await producer.send(topic, value, key=key)
                await producer.flush()
            finally:
                await producer.stop()

        run_coroutine_sync(send)
