"""No duplicate vendor record after a crash (docs/contract.md §7): the handlers are
SIGKILLed after the vendor's create and before the inbox row turns ``done``; started again,
they find their own record by its mark and report ``created`` once more, same result id.

The window is held open for real: the test locks the command's inbox row (written,
``started``, before the vendor is called), so the handlers' final UPDATE waits on it
after the create and after the result was sent; then the process is killed."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
import asyncpg
import pytest

from schemas.ids import command_id

from .conftest import CREDENTIALS, Rig
from .harness import doc_link, psa_link
from .test_handlers import CW_COMPANY, ITG_ORG


@pytest.fixture(scope="module")
async def crash_rig(start_rig: Callable[..., Awaitable[Rig]]) -> Rig:
    return await start_rig()


@pytest.mark.parametrize("provider", ["connectwise", "autotask", "halo"])
async def test_a_kill_between_create_and_commit_makes_no_second_record(
    crash_rig: Rig, handlers_database: str, http: aiohttp.ClientSession, provider: str
) -> None:
    rig = crash_rig
    partner = f"crash-{uuid.uuid4().hex[:10]}"
    sim = rig.served.sims[provider]
    company = {"connectwise": CW_COMPANY, "autotask": 20417, "halo": 88}[provider]
    if provider == "connectwise" and company not in sim.companies:  # type: ignore[attr-defined]
        sim.add_company(company, "Contoso Ltd")  # type: ignore[attr-defined]
    if provider == "autotask" and company not in sim.companies:  # type: ignore[attr-defined]
        sim.add_company(company, "Fabrikam Inc")  # type: ignore[attr-defined]
    if provider == "halo" and company not in sim.clients:  # type: ignore[attr-defined]
        sim.add_client(company, "Tailspin Toys")  # type: ignore[attr-defined]
    settings = {"marker_custom_field_id": 7} if provider == "connectwise" else {}
    await rig.bus.integration(
        partner, provider, rig.served.url(provider), CREDENTIALS[provider], settings
    )
    email = f"crash-{uuid.uuid4().hex[:6]}@contoso.example"
    command = psa_link(partner, provider, str(company), email=email, display_name="Cara Crash")
    cid = command_id(command.account.key, command.TYPE)

    lock = await asyncpg.connect(handlers_database)
    sim.latency = 0.3  # type: ignore[attr-defined]  # the lock below is taken before the end
    try:
        await _projected(lock, partner, provider)
        await rig.bus.command(partner, command)

        async def started() -> bool:
            return bool(
                await lock.fetchval("SELECT 1 FROM handlers.inbox WHERE command_id = $1", cid)
            )

        await _until(started, "the intent in the inbox")
        tx = lock.transaction()
        await tx.start()
        await lock.execute("SELECT 1 FROM handlers.inbox WHERE command_id = $1 FOR UPDATE", cid)
        first = await rig.bus.result(str(cid))  # sent before the commit, which now waits
        assert first[0].envelope["data"].get("outcome") == "created", first[0].envelope["data"]
        rig.handlers.kill()
        await tx.rollback()
    finally:
        sim.latency = 0.0  # type: ignore[attr-defined]
        await lock.close()

    def records() -> int:
        return sum(email in str(c) for c in _contacts(sim))

    assert records() == 1
    rig.handlers.start()
    await rig.handlers.ready(http)
    again = await rig.bus.result(str(cid), lambda found: len(found) >= 2, timeout=60)
    assert again[1].envelope["data"]["outcome"] == "created"
    assert again[1].envelope["id"] == first[0].envelope["id"]  # same result, same id
    assert again[1].envelope["data"]["attempts"] == 2
    assert records() == 1  # found by its mark, not created twice


def _contacts(sim: object) -> list[object]:
    for name in ("contacts", "users"):
        found = getattr(sim, name, None)
        if isinstance(found, dict):
            return list(found.values())
    raise AssertionError("the simulator keeps no contacts")


async def _projected(db: asyncpg.Connection, partner: str, provider: str) -> None:
    """Until the handlers have projected the partner's integration: a process started
    again after a kill takes over the integrations' partitions only once the killed
    member's session has timed out, so no fixed pause is long enough."""

    async def there() -> bool:
        return bool(
            await db.fetchval(
                "SELECT 1 FROM handlers.integrations WHERE partner_id = $1 AND provider = $2",
                partner,
                provider,
            )
        )

    await _until(there, f"the {provider} integration projected", timeout=60)


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_a_redo_of_a_deferred_link_leaves_the_create_to_the_password_change(
    crash_rig: Rig, handlers_database: str, http: aiohttp.ClientSession
) -> None:
    """The first attempt deferred the entry (no password yet) and died before its inbox
    row turned ``done``; the account's first password then arrives while the command is
    redone. The change found the deferred link, so it makes the entry: the redo, which
    now sees a known password, must not make a second one beside it.

    Both are held to overlap for real: the redo is held at its inbox row (locked) until
    the change has taken the password, and every vendor request takes a while, so the
    change's create has not landed when the redo lists the organisation's entries."""
    rig = crash_rig
    partner = f"crash-{uuid.uuid4().hex[:10]}"
    sim = rig.served.sims["itglue"]
    if ITG_ORG not in sim.organizations:  # type: ignore[attr-defined]
        sim.add_organization(ITG_ORG, "Contoso Ltd")  # type: ignore[attr-defined]
    await rig.bus.integration(partner, "itglue", rig.served.url("itglue"), CREDENTIALS["itglue"])
    command = doc_link(partner, "itglue", str(ITG_ORG), username=f"d{uuid.uuid4().hex[:8]}")
    key, customer = command.account.key, command.account.customer_id
    cid = command_id(key, command.TYPE)

    lock = await asyncpg.connect(handlers_database)
    tx = lock.transaction()
    try:
        await _projected(lock, partner, "itglue")
        await rig.bus.command(partner, command)

        async def started() -> bool:
            return bool(
                await lock.fetchval("SELECT 1 FROM handlers.inbox WHERE command_id = $1", cid)
            )

        await _until(started, "the intent in the inbox")
        await tx.start()
        await lock.execute("SELECT 1 FROM handlers.inbox WHERE command_id = $1 FOR UPDATE", cid)
        [first] = await rig.bus.result(str(cid))  # sent; the inbox commit now waits
        assert first.envelope["data"].get("outcome") == "deferred", first.envelope["data"]
        rig.handlers.kill()

        sim.latency = 1.5  # type: ignore[attr-defined]
        rig.handlers.start()  # the redo waits at the inbox row
        await rig.handlers.ready(http)
        await rig.bus.password(partner, key, customer, "first-Secret-9")

        async def remembered() -> bool:
            return bool(
                await lock.fetchval(
                    "SELECT 1 FROM handlers.latest_passwords WHERE account_key = $1", key
                )
            )

        await _until(remembered, "the change taken")  # and its listing under way
        await tx.rollback()  # the redo goes on
        results = await rig.bus.result(
            str(cid),
            lambda found: any(r.envelope["data"]["outcome"] == "created" for r in found),
            timeout=60,
        )
        await asyncio.sleep(4)  # a second create, if the redo made one, has landed
    finally:
        sim.latency = 0.0  # type: ignore[attr-defined]
        await lock.close()  # rolls back a transaction still open

    entries = [p for p in sim.passwords.values() if p.get("username") == command.account.username]  # type: ignore[attr-defined]
    assert len(entries) == 1, entries
    assert entries[0]["password"] == "first-Secret-9"
    # the latest result says created, here and in the inbox (what a redelivery re-sends)
    final = max(rig.bus.results(str(cid)), key=lambda r: r.envelope["data"]["finished_at"])
    assert final.envelope["data"]["outcome"] == "created", [
        r.envelope["data"]["outcome"] for r in results
    ]
    db = await asyncpg.connect(handlers_database)
    try:
        inbox = await db.fetchrow(
            "SELECT state, result->>'outcome' AS outcome FROM handlers.inbox WHERE command_id = $1",
            cid,
        )
        entry_id = await db.fetchval(
            "SELECT entry_id FROM handlers.doc_links WHERE account_key = $1", key
        )
    finally:
        await db.close()
    assert (inbox["state"], inbox["outcome"]) == ("done", "created")
    assert entry_id == str(entries[0]["id"])  # the link the next change updates
    await rig.bus.password(partner, key, customer, "second-Secret-9")
    await rig.bus.result(
        str(cid),
        lambda found: any(r.envelope["data"]["outcome"] == "updated" for r in found),
    )
    assert entries[0]["password"] == "second-Secret-9"
    assert "DeadlockDetected" not in rig.handlers.log_text()  # the two writers' order
