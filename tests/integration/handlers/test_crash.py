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
from .harness import psa_link
from .test_handlers import CW_COMPANY


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
        await asyncio.sleep(0.5)
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
        assert first[0].envelope["data"]["outcome"] == "created"
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


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
