"""The shared machinery, through one simulator (Hudu: the simplest credentials)."""

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from tests.simulators import HuduSim, RateLimit
from tests.simulators.limits import max_in_window, retry_after_seconds

from .conftest import FakeClock, Serve

KEY = {"x-api-key": "k"}
COMPANIES = "/api/v1/companies"
PASSWORDS = "/api/v1/asset_passwords"


def hudu(**options: object) -> HuduSim:
    sim = HuduSim(api_key="k", **options)
    sim.add_company(1, "Contoso")
    return sim


async def test_requests_are_recorded_relative_to_the_mount_prefix(serve: Serve) -> None:
    sim = hudu()
    root = web.Application()
    root.add_subapp("/hudu", sim.app)
    client = await serve(root)
    before = time.monotonic()
    resp = await client.post(
        "/hudu" + PASSWORDS + "?x=1",
        json={"asset_password": {"company_id": 1, "name": "n", "password": "p"}},
        headers={**KEY, "X-Trace": "abc"},
    )
    assert resp.status == 201
    assert (await client.get("/hudu/_sim/state")).status == 200
    [record] = sim.requests
    assert (record.method, record.path, record.query) == ("POST", PASSWORDS, {"x": "1"})
    assert record.headers["x-trace"] == "abc"  # case-insensitive
    assert record.body == {"asset_password": {"company_id": 1, "name": "n", "password": "p"}}
    assert record.monotonic >= before
    assert abs(record.wall - time.time()) < 5
    assert (record.status, record.outcome) == (201, "ok")
    assert sim.prefix == "/hudu"


async def test_the_rolling_window_refuses_with_retry_after_until_there_is_room(
    serve: Serve, clock: FakeClock
) -> None:
    sim = hudu(rate_limit=RateLimit(3, 10.0), clock=clock)
    client = await serve(sim)
    for _ in range(3):
        assert (await client.get(COMPANIES, headers=KEY)).status == 200
    refused = await client.get(COMPANIES, headers=KEY)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "10"
    assert await refused.text() == "Retry later\n"
    clock.advance(4)
    refused = await client.get(COMPANIES, headers=KEY)
    assert (refused.status, refused.headers["Retry-After"]) == (429, "6")
    clock.advance(6)
    assert (await client.get(COMPANIES, headers=KEY)).status == 200
    assert sim.rejected_429 == 2
    assert sim.max_in_any_window() == 5  # 3 accepted + 2 refused in [0, 10)
    assert sim.max_in_any_window(3.0) == 4
    assert [r.outcome for r in sim.requests].count("rate_limited") == 2


async def test_the_window_counts_bad_credentials_too(serve: Serve, clock: FakeClock) -> None:
    sim = hudu(rate_limit=RateLimit(1, 10.0), clock=clock)
    client = await serve(sim)
    assert (await client.get(COMPANIES)).status == 401
    assert (await client.get(COMPANIES, headers=KEY)).status == 429


async def test_retry_after_can_be_left_out(serve: Serve, clock: FakeClock) -> None:
    sim = hudu(rate_limit=RateLimit(1, 10.0), clock=clock, retry_after_header=False)
    client = await serve(sim)
    await client.get(COMPANIES, headers=KEY)
    refused = await client.get(COMPANIES, headers=KEY)
    assert refused.status == 429
    assert "Retry-After" not in refused.headers


async def test_a_scaled_down_window_recovers_in_real_time(serve: Serve) -> None:
    sim = hudu(rate_limit=RateLimit(5, 0.3))
    client = await serve(sim)
    statuses = [(await client.get(COMPANIES, headers=KEY)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    await asyncio.sleep(0.31)
    assert (await client.get(COMPANIES, headers=KEY)).status == 200


async def test_admin_routes_are_neither_limited_nor_recorded(
    serve: Serve, clock: FakeClock
) -> None:
    sim = hudu(rate_limit=RateLimit(1, 10.0), clock=clock)
    client = await serve(sim)
    for _ in range(5):
        assert (await client.get("/_sim/metrics")).status == 200
    assert len(sim.requests) == 0
    assert (await client.get(COMPANIES, headers=KEY)).status == 200


async def test_fail_next_answers_matching_requests_before_auth(serve: Serve) -> None:
    sim = hudu()
    client = await serve(sim)
    sim.fail_next(2, 503, path_prefix=PASSWORDS, method="GET")
    assert (await client.get(COMPANIES, headers=KEY)).status == 200
    first = await client.get(PASSWORDS)  # no key: the fault still comes first
    assert first.status == 503
    assert await first.json() == {"error": "injected fault"}
    assert (await client.get(PASSWORDS, headers=KEY)).status == 503
    assert (await client.get(PASSWORDS, headers=KEY)).status == 200
    sim.fail_next(1, 429, body={"custom": True}, retry_after=7)
    throttled = await client.get(COMPANIES, headers=KEY)
    assert (throttled.status, throttled.headers["Retry-After"]) == (429, "7")
    assert await throttled.json() == {"custom": True}
    assert sim.faults.served == 3
    assert sim.rejected_429 == 0  # injected, not the limiter's


async def test_hang_next_outlasts_the_client_timeout(serve: Serve) -> None:
    sim = hudu()
    client = await serve(sim)
    sim.hang_next(1, path_prefix=COMPANIES)
    with pytest.raises(asyncio.TimeoutError):
        await client.get(COMPANIES, headers=KEY, timeout=aiohttp.ClientTimeout(total=0.2))
    assert (await client.get(COMPANIES, headers=KEY)).status == 200


async def test_latency_and_concurrency_are_measured(serve: Serve) -> None:
    sim = hudu(latency=0.1)
    client = await serve(sim)
    started = time.monotonic()
    responses = await asyncio.gather(*(client.get(COMPANIES, headers=KEY) for _ in range(4)))
    assert all(r.status == 200 for r in responses)
    assert time.monotonic() - started >= 0.1
    assert sim.max_concurrency == 4
    assert sim.in_flight == 0


async def test_unknown_paths_get_the_vendor_404_and_are_recorded(serve: Serve) -> None:
    sim = hudu()
    client = await serve(sim)
    resp = await client.get("/api/v1/nope", headers=KEY)
    assert resp.status == 404
    assert "error" in await resp.json()
    assert sim.requests[-1].path == "/api/v1/nope"


async def test_admin_api_seeds_inspects_injects_and_resets(serve: Serve) -> None:
    sim = hudu()
    client = await serve(sim)
    seeded = await client.post("/_sim/seed", json={"companies": [{"id": 5, "name": "Fabrikam"}]})
    assert seeded.status == 201
    assert (await seeded.json())["companies"][0]["id"] == 5
    state = await (await client.get("/_sim/state")).json()
    assert {c["id"] for c in state["companies"]} == {1, 5}
    bad = await client.post("/_sim/seed", json={"asset_passwords": [{"name": "x"}]})
    assert bad.status == 400

    added = await client.post(
        "/_sim/faults", json=[{"n": 1, "status": 502, "method": "GET"}, {"n": 2, "status": 500}]
    )
    assert added.status == 201
    assert len(await (await client.get("/_sim/faults")).json()) == 2
    assert (await client.get(COMPANIES, headers=KEY)).status == 502
    assert (await client.delete("/_sim/faults")).status == 200
    assert (await client.get(COMPANIES, headers=KEY)).status == 200

    config = await client.post(
        "/_sim/config", json={"rate_limit": {"limit": 1, "window": 30}, "latency": 0}
    )
    assert (await config.json())["rate_limit"] == {"limit": 1, "window": 30}
    await client.get(COMPANIES, headers=KEY)
    assert (await client.get(COMPANIES, headers=KEY)).status == 429
    metrics = await (await client.get("/_sim/metrics")).json()
    assert metrics["rejected_429"] == 1
    assert metrics["max_in_any_window"] >= 2

    recorded = await (await client.get("/_sim/requests")).json()
    assert [r["status"] for r in recorded][-2:] == [200, 429]
    since = recorded[-2]["seq"]
    assert len(await (await client.get(f"/_sim/requests?since={since}")).json()) == 1

    assert (await client.post("/_sim/reset", json={"state": False})).status == 200
    assert sim.requests == type(sim.requests)()
    assert sim.companies  # kept
    assert (await client.post("/_sim/reset")).status == 200
    assert (await (await client.get("/_sim/state")).json())["companies"] == []
    assert (await client.post("/_sim/config", json={"bogus": 1})).status == 400


def test_max_in_window_counts_half_open_windows() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 1.0, 1.2], 1.0) == 3
    assert max_in_window([3.0, 0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_window([0.0] * 4, 0.1) == 4


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_seconds(0.0) == 1
    assert retry_after_seconds(1.01) == 2
    assert retry_after_seconds(300.0) == 300
