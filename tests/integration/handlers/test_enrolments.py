"""Vault, rotation and identity commands, and what a password change does to each
(docs/contract.md §7): ``handlers run`` as a real process, real PostgreSQL, the Graph
simulator on loopback, the bus for commands, changes, results and agent requests."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from schemas.commands import (
    M365PasswordSyncEnable,
    RotationEnroll,
    SelfServiceResetEnable,
    VaultPasswordStore,
)
from schemas.envelope import utc_now
from services.handlers.domain.execution import result_id
from services.handlers.domain.rotation import rotation_request_id
from services.handlers.service_layer.enrolment import Sealed, open_secret
from tests.integration.import_worker.support import Out

from .conftest import CREDENTIALS, Rig
from .harness import BOX, Handlers, command

FAST = {
    "ROTATION_CHECK_SECONDS": "0.3",
    "WELCOME_CHECK_SECONDS": "0.3",
}


@pytest.fixture(scope="module")
async def rig(start_rig: Callable[..., Awaitable[Rig]]) -> Rig:
    return await start_rig(**FAST)


def _partner() -> str:
    return f"e-{uuid.uuid4().hex[:12]}"


async def _m365(rig: Rig, partner: str) -> None:
    graph = rig.served.url("graph")
    tenant = CREDENTIALS["m365"]["tenant_id"]
    await rig.bus.integration(
        partner,
        "m365",
        graph + "/v1.0",
        CREDENTIALS["m365"],
        {"token_url": f"{graph}/login/{tenant}/oauth2/v2.0/token"},
    )
    await asyncio.sleep(0.5)  # let the projection take it


def _outcomes(results: list[Out]) -> list[str]:
    return [r.envelope["data"].get("outcome") or r.envelope["data"]["reason"] for r in results]


async def _vault_row(db: asyncpg.Pool, key: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM handlers.vault_entries WHERE account_key = $1", key)
    assert row is not None
    return row


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


# -- the vault -----------------------------------------------------------------------------


async def test_the_vault_keeps_each_password_sealed_and_only_metadata_of_the_old(
    rig: Rig, handlers_db: asyncpg.Pool
) -> None:
    partner = _partner()
    cmd = command(VaultPasswordStore, partner)
    key, customer = cmd.account.key, cmd.account.customer_id
    cid = await rig.bus.command(partner, cmd)
    [stored] = await rig.bus.result(cid)
    assert stored.envelope["data"]["outcome"] == "stored"
    assert stored.envelope["data"]["provider"] is None
    row = await _vault_row(handlers_db, key)
    assert row["secret_ciphertext"] is None
    assert row["version"] == 0

    first, second = "Winter-2026!first", "Spring-2027!second"
    await rig.bus.password(partner, key, customer, first)
    await rig.bus.result(cid, lambda rs: len(rs) == 2)
    row1 = await _vault_row(handlers_db, key)
    assert row1["version"] == 1
    assert open_secret(BOX, key, Sealed(row1["wrapped_key"], row1["secret_ciphertext"])) == first
    change = await rig.bus.password(partner, key, customer, second)
    results = await rig.bus.result(cid, lambda rs: len(rs) == 3)
    assert _outcomes(results) == ["stored", "updated", "updated"]
    row2 = await _vault_row(handlers_db, key)
    assert row2["version"] == 2
    assert open_secret(BOX, key, Sealed(row2["wrapped_key"], row2["secret_ciphertext"])) == second
    assert row2["wrapped_key"] != row1["wrapped_key"], "every secret has a data key of its own"

    history = await handlers_db.fetch(
        "SELECT * FROM handlers.vault_history WHERE account_key = $1 ORDER BY version", key
    )
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["replaced_at"] is not None
    assert history[1]["replaced_at"] is None
    assert history[1]["change_id"] == change
    assert history[1]["changed_by"] == "technician"
    for h in history:
        assert first not in str(dict(h))
        assert second not in str(dict(h))

    # the same change again (a redelivery): applied once
    await rig.bus.password(partner, key, customer, second, change=change)
    await asyncio.sleep(1.5)
    assert (await _vault_row(handlers_db, key))["version"] == 2
    assert len(rig.bus.results(cid)) == 3


async def test_a_password_known_before_the_vault_command_is_stored_at_once(
    rig: Rig, handlers_db: asyncpg.Pool
) -> None:
    partner = _partner()
    cmd = command(VaultPasswordStore, partner)
    key = cmd.account.key
    change = await rig.bus.password(partner, key, cmd.account.customer_id, "Autumn-2026!early")
    await _until(
        lambda: _seen_change(handlers_db, key, change), "the change is remembered (sealed)"
    )
    cid = await rig.bus.command(partner, cmd)
    [stored] = await rig.bus.result(cid)
    assert stored.envelope["data"]["outcome"] == "stored"
    assert "last known password" in stored.envelope["data"]["detail"]
    row = await _vault_row(handlers_db, key)
    assert row["version"] == 1
    assert row["change_id"] == change
    sealed = Sealed(row["wrapped_key"], row["secret_ciphertext"])
    assert open_secret(BOX, key, sealed) == "Autumn-2026!early"


async def _seen_change(db: asyncpg.Pool, key: str, change: str) -> bool:
    found = await db.fetchval(
        "SELECT change_id FROM handlers.latest_passwords WHERE account_key = $1", key
    )
    return bool(found == change)


async def test_an_older_change_arriving_late_does_not_put_an_old_password_back(
    rig: Rig, handlers_db: asyncpg.Pool
) -> None:
    partner = _partner()
    cmd = command(VaultPasswordStore, partner)
    key, customer = cmd.account.key, cmd.account.customer_id
    cid = await rig.bus.command(partner, cmd)
    await rig.bus.result(cid)
    now = utc_now()
    await rig.bus.password(partner, key, customer, "Newest-2026!pass", changed_at=now)
    await rig.bus.result(cid, lambda rs: len(rs) == 2)
    await rig.bus.password(
        partner, key, customer, "Oldest-2025!pass", changed_at=now - timedelta(hours=1)
    )
    await asyncio.sleep(1.5)
    row = await _vault_row(handlers_db, key)
    assert open_secret(BOX, key, Sealed(row["wrapped_key"], row["secret_ciphertext"])) == (
        "Newest-2026!pass"
    )
    assert len(rig.bus.results(cid)) == 2


# -- identity ------------------------------------------------------------------------------


async def test_self_service_reset_is_recorded(rig: Rig, handlers_db: asyncpg.Pool) -> None:
    partner = _partner()
    cmd = command(SelfServiceResetEnable, partner, user_principal_name="kim@contoso.example")
    cid = await rig.bus.command(partner, cmd)
    [done] = await rig.bus.result(cid)
    assert done.envelope["data"]["outcome"] == "enrolled"
    kind = await handlers_db.fetchval(
        "SELECT kind FROM handlers.enrolments WHERE account_key = $1", cmd.account.key
    )
    assert kind == "self_service_reset"


async def test_m365_sync_sets_the_password_skips_synced_users_and_reports_unknown_ones(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    partner = _partner()
    await _m365(rig, partner)
    graph = rig.served.sims["graph"]
    cloud = graph.add_user(f"cloud-{uuid.uuid4().hex[:6]}@contoso.example")  # type: ignore[attr-defined]
    synced = graph.add_user(  # type: ignore[attr-defined]
        f"synced-{uuid.uuid4().hex[:6]}@contoso.example", on_premises_sync_enabled=True
    )
    cases = {
        "cloud": command(
            M365PasswordSyncEnable, partner, user_principal_name=cloud["userPrincipalName"]
        ),
        "synced": command(
            M365PasswordSyncEnable, partner, user_principal_name=synced["userPrincipalName"]
        ),
        "unknown": command(
            M365PasswordSyncEnable, partner, user_principal_name="nobody@contoso.example"
        ),
    }
    cids = {name: await rig.bus.command(partner, cmd) for name, cmd in cases.items()}
    for name, cid in cids.items():
        [enrolled] = await rig.bus.result(cid)
        assert enrolled.envelope["data"]["outcome"] == "enrolled", name
        assert enrolled.envelope["data"]["provider"] == "m365"

    graph.fail_next(1, 429, retry_after=1, method="PATCH")  # type: ignore[attr-defined]
    passwords = {name: f"Summer-2026!{name}" for name in cases}
    for name, cmd in cases.items():
        await rig.bus.password(partner, cmd.account.key, cmd.account.customer_id, passwords[name])
    results = {n: (await rig.bus.result(c, lambda rs: len(rs) == 2))[1] for n, c in cids.items()}

    cloud_result = results["cloud"].envelope["data"]
    assert cloud_result["outcome"] == "updated"
    assert cloud_result["refs"] == [
        {"system": "m365", "kind": "user", "id": cloud["id"], "url": None}
    ]
    assert graph.last_password(cloud["id"]) == passwords["cloud"]  # type: ignore[attr-defined]
    assert results["cloud"].envelope["id"] == str(result_id(uuid.UUID(cids["cloud"]), "updated"))

    synced_result = results["synced"].envelope["data"]
    assert synced_result["outcome"] == "skipped"
    assert "onPremisesSyncEnabled" in synced_result["detail"]
    assert graph.last_password(synced["id"]) is None  # type: ignore[attr-defined]

    unknown = results["unknown"].envelope
    assert unknown["type"] == "command.failed"
    assert unknown["data"]["reason"] == "vendor_rejected"
    for r in results.values():
        assert all(p not in r.value.decode() for p in passwords.values())


async def test_m365_sync_without_an_m365_integration_fails_each_change_integration_missing(
    rig: Rig,
) -> None:
    partner = _partner()
    cmd = command(M365PasswordSyncEnable, partner, user_principal_name="x@contoso.example")
    cid = await rig.bus.command(partner, cmd)
    [enrolled] = await rig.bus.result(cid)
    assert enrolled.envelope["data"]["outcome"] == "enrolled"
    assert "no usable m365 integration" in enrolled.envelope["data"]["detail"]
    await rig.bus.password(partner, cmd.account.key, cmd.account.customer_id, "Aa-1aaaaaaa")
    results = await rig.bus.result(cid, lambda rs: len(rs) == 2)
    assert results[1].envelope["data"]["reason"] == "integration_missing"


# -- rotation ------------------------------------------------------------------------------


def _requests(rig: Rig, key: str) -> list[Out]:
    topic = rig.handlers.topics.agent_requests
    return [r for r in rig.reader.records if r.topic == topic and r.envelope["subject"] == key]


async def test_rotation_is_requested_when_due_resent_when_unanswered_and_moved_by_a_change(
    rig: Rig, handlers_db: asyncpg.Pool, http: aiohttp.ClientSession
) -> None:
    partner = _partner()
    cmd = command(RotationEnroll, partner)
    key = cmd.account.key
    cid = await rig.bus.command(partner, cmd)
    [enrolled] = await rig.bus.result(cid)
    assert enrolled.envelope["data"]["outcome"] == "enrolled"
    due = await handlers_db.fetchval(
        "SELECT next_due FROM handlers.rotations WHERE account_key = $1", key
    )
    assert timedelta(days=89, hours=23) < due - utc_now() <= timedelta(days=90)

    past = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    await handlers_db.execute(
        "UPDATE handlers.rotations SET next_due = $2 WHERE account_key = $1", key, past
    )
    [request] = await rig.reader.wait_for(lambda _: _requests(rig, key), "the rotation request", 20)
    assert request.envelope["type"] == "rotation.requested"
    assert request.envelope["id"] == str(rotation_request_id(key, past))
    assert request.key == key.encode()
    assert request.envelope["data"] == {
        "account_key": key,
        "customer_id": str(cmd.account.customer_id),
        "due_at": "2026-11-30T08:00:00Z",
        "interval_days": 90,
    }
    await asyncio.sleep(1.5)  # several rounds of the scheduler: no second request
    assert len(_requests(rig, key)) == 1

    resent_before = await rig.handlers.metric(
        http, 'handlers_rotation_requests_total{kind="resent"}'
    )
    await handlers_db.execute(
        "UPDATE handlers.rotations SET requested_at = now() - interval '25 hours'"
        " WHERE account_key = $1",
        key,
    )
    await rig.reader.wait_for(lambda _: len(_requests(rig, key)) == 2, "the re-sent request", 20)
    again = _requests(rig, key)[1]
    assert again.envelope["id"] == request.envelope["id"]
    resent = await rig.handlers.metric_reaches(
        http, 'handlers_rotation_requests_total{kind="resent"}', resent_before + 1
    )
    assert resent >= resent_before + 1

    changed_at = utc_now()
    await rig.bus.password(
        partner,
        key,
        cmd.account.customer_id,
        "Rotated-2026!x",
        changed_at=changed_at,
        changed_by="rotation",
    )
    results = await rig.bus.result(cid, lambda rs: len(rs) == 2)
    assert results[1].envelope["data"]["outcome"] == "updated"
    row = await handlers_db.fetchrow("SELECT * FROM handlers.rotations WHERE account_key = $1", key)
    assert row["requested_at"] is None
    assert abs(row["next_due"] - (changed_at + timedelta(days=90))) < timedelta(seconds=1)


async def test_two_replicas_request_each_due_rotation_once(
    rig: Rig,
    handlers_db: asyncpg.Pool,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    partner = _partner()
    commands = [command(RotationEnroll, partner) for _ in range(40)]
    cids = [await rig.bus.command(partner, c) for c in commands]
    for cid in cids:
        await rig.bus.result(cid)
    keys = [c.account.key for c in commands]
    second = Handlers(
        rig.handlers.bootstrap,
        rig.handlers.database_url,
        tmp_path,
        extra_env=dict(FAST),
        suffix=rig.handlers.suffix,
    )
    second.start()
    try:
        await second.ready(http)
        await handlers_db.execute(
            "UPDATE handlers.rotations SET next_due = now() - interval '1 minute'"
            " WHERE account_key = ANY($1::text[])",
            keys,
        )
        await rig.reader.wait_for(
            lambda _: all(_requests(rig, k) for k in keys), "a request per account", 30
        )
        await asyncio.sleep(1.5)
        assert [len(_requests(rig, k)) for k in keys] == [1] * len(keys)
    finally:
        second.stop()
