"""Helpers of the browser tests: the served app, a partner of one test, screenshots."""

import json
import os
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize

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
