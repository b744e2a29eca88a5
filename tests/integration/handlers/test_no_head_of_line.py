"""One partner's throttled integration never delays another partner's commands
(docs/contract.md §7): partner A's ConnectWise is paced to 6 requests a minute and gets
ten commands first; partner B's ten Halo commands, sent after them on the same topic,
all finish while A's are still waiting for their turn."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from .conftest import CREDENTIALS, Rig
from .harness import psa_link
from .test_handlers import CW_COMPANY


@pytest.fixture(scope="module")
async def hol_rig(start_rig: Callable[..., Awaitable[Rig]]) -> Rig:
    return await start_rig()


async def test_a_throttled_partner_does_not_hold_back_another(hol_rig: Rig) -> None:
    rig = hol_rig
    slow, fast = f"slow-{uuid.uuid4().hex[:8]}", f"fast-{uuid.uuid4().hex[:8]}"
    cw, halo = rig.served.sims["connectwise"], rig.served.sims["halo"]
    cw.add_company(CW_COMPANY, "Contoso Ltd")  # type: ignore[attr-defined]
    halo.add_client(88, "Tailspin Toys")  # type: ignore[attr-defined]
    await rig.bus.integration(
        slow,
        "connectwise",
        rig.served.url("connectwise"),
        CREDENTIALS["connectwise"],
        {"requests_per_minute": 6},
    )
    await rig.bus.integration(fast, "halo", rig.served.url("halo"), CREDENTIALS["halo"])
    await asyncio.sleep(0.5)
    slow_ids = [
        await rig.bus.command(
            slow, psa_link(slow, "connectwise", str(CW_COMPANY), email=f"s{i}@contoso.example")
        )
        for i in range(10)
    ]
    sent = time.monotonic()
    fast_ids = [
        await rig.bus.command(fast, psa_link(fast, "halo", "88", email=f"f{i}@tailspin.example"))
        for i in range(10)
    ]
    for cid in fast_ids:
        [r] = await rig.bus.result(cid, timeout=30)
        assert r.envelope["data"]["outcome"] == "created"
    took = time.monotonic() - sent
    slow_done = sum(bool(rig.bus.results(cid)) for cid in slow_ids)
    assert slow_done <= 4, slow_done  # 6 a minute: a search and a create each
    assert took < 15, took
    assert rig.served.sims["connectwise"].max_in_any_window(60.0) <= 6  # type: ignore[attr-defined]
