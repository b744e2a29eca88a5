"""One policy service per session, on the session's PostgreSQL and broker.

The app is served on a real socket by a thread of its own (see ``ServedApp``),
so the async tests, their aiokafka readers and schemathesis' sync client all
talk to the same instance. Every test works in partners of its own (uuid
based), so tests never see each other's data.
"""

from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest

from services.infra.migrations import migrate
from services.policy_service.settings import PolicyServiceSettings
from tests.served_app import served_policy_service

from .support import MIGRATIONS, SCHEMA, Api, Tenant, settings_for


@pytest.fixture(scope="session")
async def policy_database(database_url: str) -> str:
    """The session database with the policy service's schema migrated."""
    await migrate(database_url, SCHEMA, MIGRATIONS)
    return database_url


@pytest.fixture(scope="session")
def policy_settings(policy_database: str, kafka_bootstrap: str) -> PolicyServiceSettings:
    return settings_for(policy_database, kafka_bootstrap)


@pytest.fixture(scope="session")
def base_url(policy_settings: PolicyServiceSettings) -> Iterator[str]:
    """The session's policy service (with its outbox relay), served on 127.0.0.1."""
    with served_policy_service(policy_settings) as url:
        yield url


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture(scope="session")
def api(http: aiohttp.ClientSession, base_url: str) -> Api:
    return Api(http, base_url)


@pytest.fixture
def tenant(api: Api) -> Tenant:
    """A partner of this test only."""
    return Tenant(api)


@pytest.fixture
def other_tenant(api: Api) -> Tenant:
    """Another partner of this test only."""
    return Tenant(api)


@pytest.fixture(scope="session")
async def db(policy_database: str) -> AsyncIterator[asyncpg.Pool]:
    """Direct access to the service's tables, to check what the API cannot show."""
    pool = await asyncpg.create_pool(policy_database, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()
