"""Browser tests of the admin UI: Playwright driving Debian's Chromium.

One policy service (dev mode, so ``/dev/sign-in`` exists) runs for the
session on the session's PostgreSQL and broker; each test works in a partner
of its own and a fresh browser context (1280x800). Chromium is the system
package (``scripts/install-browser.sh``): browser downloads by test tools do
not work on these machines. ``make test`` installs it; without it the tests
fail (never skip) with that advice.
"""

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from services.infra.devstack.procs import run_coroutine_sync
from services.infra.migrations import migrate
from services.policy_service.settings import PolicyServiceSettings
from tests.integration.policy_service.support import SECRETS_KEY
from tests.served_app import served_policy_service

from .support import CHROMIUM, CHROMIUM_ARGS, SECRET, VIEWPORT, Bus, Partner

SCHEMA = "policy_service"
expect.set_options(timeout=10_000)  # a busy CI machine renders slower than a laptop
MIGRATIONS = "services.policy_service.adapters.migrations"


def ui_settings(database_url: str, bootstrap: str, dev_mode: bool) -> PolicyServiceSettings:
    return PolicyServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        auth_jwt_secret=SECRET,
        secrets_key=SECRETS_KEY,
        integrations_allow_private=True,
        dev_mode=dev_mode,
        relay_poll_interval_seconds=0.1,
        db_pool_min_size=1,
        db_pool_max_size=8,
        # A group of its own: never sharing (and splitting) partitions with another
        # test's service that consumes import.decisions and command.results.
        results_group_id=f"ui-tests-{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture(scope="session")
def ui_database(database_url: str) -> str:
    run_coroutine_sync(lambda: migrate(database_url, SCHEMA, MIGRATIONS))
    return database_url


@pytest.fixture(scope="session")
def ui_base_url(ui_database: str, kafka_bootstrap: str) -> Iterator[str]:
    """The policy service in dev mode, API and UI on one origin."""
    with served_policy_service(ui_settings(ui_database, kafka_bootstrap, dev_mode=True)) as url:
        yield url


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's sync driver, for this package's tests only.

    While it runs, the main thread counts as inside an event loop, so the
    async tests of other packages (pytest-asyncio's session loop) must not run
    before it is closed: hence package scope, not session.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (make test does)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    chromium = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def context(browser: Browser, ui_base_url: str) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=VIEWPORT, base_url=ui_base_url, locale="en-GB")
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab; any uncaught script error fails the test."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    assert not errors, errors


@pytest.fixture
def partner(ui_base_url: str) -> Partner:
    """A partner of this test only."""
    return Partner(ui_base_url)


@pytest.fixture
def bus(kafka_bootstrap: str, ui_base_url: str) -> Bus:
    """Publishes decisions and results to the broker the served service follows."""
    return Bus(kafka_bootstrap)
