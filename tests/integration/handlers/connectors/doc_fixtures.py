"""Shared pieces of the documentation connector tests (IT Glue, Hudu).

Each test serves its vendor's simulator on a real loopback port, mounted
where ``serve_all`` mounts it (the vendor's base URL path), and talks to it
over a real ``aiohttp`` session through the connector's ``connect``: no pacer
(``Unpaced``) and a short retry policy, so a retry storm takes milliseconds.
Not a conftest: the PSA connector tests own that one; the test modules wrap
these helpers in fixtures of their own.
"""

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from schemas.commands import CommandAccount, DocumentationPasswordLink
from schemas.enums import AccountType, Directory, DocumentationProvider
from services.handlers.adapters.connectors.base import ConnectContext, IntegrationConfig
from services.handlers.adapters.http import RetryPolicy, Unpaced, VendorMetrics
from services.handlers.domain.markers import note
from tests.simulators import RecordedRequest, VendorSim, serve_all

RETRY = RetryPolicy(give_up_after=5, initial=0.01, maximum=0.05, request_timeout=2)
PARTNER = "partner-7"
CUSTOMER = uuid.UUID("0b6f3c0e-5d1a-4c1e-9f7b-2a4d6c8e0f12")
POLICY = uuid.UUID("7c2e9a41-0d3b-4f5e-8a6c-1b3d5f7a9c0e")
PASSWORD = "Fresh-Passw0rd!42"  # what no message, log line or repr may show
OLD_PASSWORD = "Old-Passw0rd!17"


@contextlib.asynccontextmanager
async def serving(name: str, sim: VendorSim) -> AsyncIterator[str]:
    """``sim`` served on 127.0.0.1 (any free port); yields its vendor base URL."""
    served = await serve_all({name: sim})
    try:
        yield served.urls[name]
    finally:
        await served.close()


@contextlib.asynccontextmanager
async def client_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def connect_context(session: aiohttp.ClientSession) -> ConnectContext:
    metrics = VendorMetrics(CollectorRegistry())
    return ConnectContext(session=session, pacer=Unpaced(), policy=RETRY, metrics=metrics)


def integration(
    provider: str, base_url: str, api_key: str, settings: Mapping[str, Any] | None = None
) -> IntegrationConfig:
    return IntegrationConfig(
        partner_id=PARTNER,
        provider=provider,
        base_url=base_url,
        settings=dict(settings or {}),
        credentials={"api_key": api_key},
    )


def account(
    username: str = "jane.doe",
    *,
    external_id: str = "objectguid-1",
    upn: str | None = None,
    display_name: str | None = "Jane Doe",
) -> CommandAccount:
    return CommandAccount(
        key=f"{PARTNER}:{CUSTOMER}:{Directory.ACTIVE_DIRECTORY.value}:{external_id}",
        customer_id=CUSTOMER,
        account_type=AccountType.END_USER,
        directory=Directory.ACTIVE_DIRECTORY,
        external_id=external_id,
        username=username,
        display_name=display_name,
        user_principal_name=upn,
    )


def link_command(
    provider: DocumentationProvider,
    organization_id: str,
    *,
    create_if_missing: bool = True,
    who: CommandAccount | None = None,
) -> DocumentationPasswordLink:
    return DocumentationPasswordLink(
        account=who or account(),
        policy_id=POLICY,
        policy_version=1,
        provider=provider,
        organization_id=organization_id,
        create_if_missing=create_if_missing,
    )


def our_note(command: DocumentationPasswordLink) -> str:
    return note(command.account.key)


def sent(sim: VendorSim, method: str) -> list[RecordedRequest]:
    """The requests of ``method`` the simulator received (faults and retries included)."""
    return sim.find_requests(method=method)


def assert_no_secret(texts: Iterable[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {text!r}"


def assert_clean_logs(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    """No captured log record (message or arguments) shows any of ``secrets``."""
    assert_no_secret((r.getMessage() for r in caplog.records), *secrets)
    assert_no_secret((caplog.text,), *secrets)


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
