"""Fixtures of the connector tests: real HTTP on loopback against the simulators.

Each test serves its own simulator (``web.AppRunner`` on 127.0.0.1, port 0),
mounted under the path of the vendor's base URL, and talks to it through a
connector built by the module's ``connect`` with an unpaced context and a short
retry policy. The test reads and changes the simulator through its Python API
(seed, state, recorded requests, injected faults). Everything is closed at the
end of the test (``filterwarnings = error`` would catch a leak).
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from schemas.commands import CommandAccount, PsaContactLink
from schemas.enums import AccountType, Directory, PsaProvider
from services.handlers.adapters.connectors.base import ConnectContext
from services.handlers.adapters.http import RetryPolicy, Unpaced
from tests.simulators.base import VendorSim

POLICY = RetryPolicy(give_up_after=5, initial=0.01, maximum=0.05, request_timeout=2)
PARTNER = "partner-1"
CUSTOMER = uuid.UUID("5b0c7d3e-1f2a-4b6c-8d9e-0a1b2c3d4e5f")
POLICY_ID = uuid.UUID("9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a")

Serve = Callable[[VendorSim, str], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(sim, prefix)``: the simulator served under ``prefix``; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(sim: VendorSim, prefix: str) -> str:
        root = web.Application()
        root.add_subapp(prefix, sim.app)
        runner = web.AppRunner(root, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}{prefix}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def context(session: aiohttp.ClientSession) -> ConnectContext:
    return ConnectContext(session=session, pacer=Unpaced(), policy=POLICY)


def account_key(external_id: str) -> str:
    return f"{PARTNER}:{CUSTOMER}:{Directory.ACTIVE_DIRECTORY.value}:{external_id}"


def link_command(
    provider: PsaProvider,
    company_id: str,
    *,
    create_if_missing: bool = True,
    email: str | None = None,
    display_name: str | None = None,
    username: str = "jdoe",
    phone: str | None = None,
    external_id: str = "8f14e45f-ceea-467f-a3b0-6c1f5b2e9d01",
) -> PsaContactLink:
    """A ``psa.contact.link`` command for one Active Directory end user."""
    account = CommandAccount(
        customer_id=CUSTOMER,
        account_type=AccountType.END_USER,
        directory=Directory.ACTIVE_DIRECTORY,
        external_id=external_id,
        username=username,
        display_name=display_name,
        email=email,
        phone=phone,
        key=account_key(external_id),
    )
    return PsaContactLink(
        account=account,
        policy_id=POLICY_ID,
        policy_version=1,
        provider=provider,
        company_id=company_id,
        create_if_missing=create_if_missing,
    )
