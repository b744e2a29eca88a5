"""Versions never go back (docs/contract.md §4), through the API, the outbox relay and the
worker's projection: a customer removed and added again with the same id continues its
version sequence, so the worker's tombstone accepts it and its discoveries are decided.

Before the fix the re-added customer restarted at version 1, below the worker's
tombstone (version 2): the worker ignored it for good and dead-lettered every one of
its discoveries as ``unknown_customer``.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
import pytest

from services.infra.migrations import migrate
from tests.integration.policy_service.support import MIGRATIONS, SCHEMA, Api, Tenant, settings_for
from tests.served_app import ServedApp

from .events import account, discovered
from .support import Harness
from .worker import wait_until


@pytest.fixture(scope="module")
async def policy_schema(worker_database: str) -> str:
    await migrate(worker_database, SCHEMA, MIGRATIONS)
    return worker_database


@pytest.fixture(scope="module")
async def linked(
    start_worker: Callable[..., Awaitable[Harness]], policy_schema: str, kafka_bootstrap: str
) -> Harness:
    return await start_worker()


@pytest.fixture(scope="module")
def policy_url(linked: Harness, policy_schema: str, kafka_bootstrap: str) -> Iterator[str]:
    """A policy service (with its relay) publishing on the worker's own topics."""
    from services.policy_service.bootstrap import build_app

    settings = settings_for(policy_schema, kafka_bootstrap)
    served = ServedApp(lambda: build_app(settings, linked.topics)).start()
    try:
        yield served.base_url
    finally:
        served.stop()


async def _projected_version(db: asyncpg.Pool, customer_id: str) -> tuple[int, bool] | None:
    row = await db.fetchrow(
        "SELECT version, removed FROM import_worker.customers WHERE id = $1",
        uuid.UUID(customer_id),
    )
    return (row["version"], row["removed"]) if row else None


async def test_a_customer_added_again_with_its_old_id_is_decided_again(
    linked: Harness, policy_url: str, worker_db: asyncpg.Pool
) -> None:
    tenant = Tenant(Api(linked.http, policy_url))
    await tenant.create_policy(is_default=True, options={"send_welcome_email": True})
    customer_id = str(uuid.uuid4())
    first = await tenant.add_customer("Contoso", id=customer_id)
    assert first["version"] == 1

    await wait_until(
        lambda: _projected_version(worker_db, customer_id), "the customer in the projection"
    )
    decision, _ = await linked.decide(
        discovered(tenant.partner_id, account(uuid.UUID(customer_id)))
    )
    assert decision.envelope["data"]["outcome"] == "imported"

    await tenant.ok("DELETE", f"/v1/customers/{customer_id}", 204)

    async def removed() -> bool:
        return await _projected_version(worker_db, customer_id) == (2, True)

    await wait_until(removed, "the worker's tombstone at version 2")

    again = await tenant.add_customer("Contoso again", id=customer_id)
    assert again["version"] == 3, "the sequence goes on from the removal's version"
    assert again["policy_ids"]["end_user"] is not None  # the default policy, as for any new one

    async def back() -> bool:
        return await _projected_version(worker_db, customer_id) == (3, False)

    await wait_until(back, "the re-added customer in the projection")
    decision, commands = await linked.decide(
        discovered(tenant.partner_id, account(uuid.UUID(customer_id)))
    )
    assert decision.envelope["data"]["outcome"] == "imported"
    assert [c.envelope["type"] for c in commands] == ["notification.welcome_email.send"]

    await tenant.ok("DELETE", f"/v1/customers/{customer_id}", 204)
    third = await tenant.add_customer("Contoso, third time", id=customer_id)
    assert third["version"] == 5
