"""``make bench-accounts``: ``GET /v1/accounts`` with 1,000,000 accounts of one partner.

Starts PostgreSQL (embedded), a broker and ``policy-service``; fills the read
model's tables in SQL (BENCH_ACCOUNTS accounts, default 1,000,000, of one
partner over 200 customers, statuses mixed as a real partner's would be: most
done, some pending, a few needing attention, some without a policy; plus
another partner's 200,000 so that the partner filter matters), runs ANALYZE,
then times pages over HTTP one request at a time (the page's latency, not
the service's throughput), for every filter the UI uses, the last page of
a deep cursor walk, and the per-status counts.

The last line is ``PAGES p99_ms_max=<x> over <n> queries`` (target: < 50 ms).
"""

import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg

from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.migrations import migrate
from services.policy_service.api.auth import issue_token

sys.path.insert(0, str(Path(__file__).resolve().parent))
from served_policy import policy_service, wait_ready  # a sibling script

SECRET = "accounts-bench-" + "0123456789abcdef" * 3
SECRETS_KEY = base64.b64encode(b"accounts-bench-secrets-key-32byt").decode()
PARTNER, OTHER = "bench-partner", "bench-other"
CUSTOMERS = 200

FILL = """
INSERT INTO policy_service.accounts
  (key, partner_id, customer_id, account_type, directory, username, display_name, email,
   search, decision_id, outcome, policy_id, policy_version, notes, command_ids, decided_at,
   status)
SELECT $1 || ':' || c::text || ':active_directory:' || i,
       $1, c, CASE WHEN i % 10 = 0 THEN 'administrator' ELSE 'end_user' END,
       'active_directory', 'user' || i, 'Person ' || i, 'user' || i || '@example.com',
       lower('user' || i || ' person ' || i || ' user' || i || '@example.com'),
       md5($1 || i)::uuid, CASE WHEN i % 50 = 7 THEN 'no_policy' ELSE 'imported' END,
       CASE WHEN i % 50 = 7 THEN NULL ELSE md5('policy')::uuid END,
       CASE WHEN i % 50 = 7 THEN NULL ELSE 1 END, '[]'::jsonb, '[]'::jsonb,
       timestamptz '2026-01-01' + i * interval '1 second',
       CASE WHEN i % 50 = 7 THEN 'no_policy' WHEN i % 1000 = 3 THEN 'attention'
            WHEN i % 20 = 1 THEN 'pending' ELSE 'done' END
FROM generate_series(1, $2) AS i,
     LATERAL (SELECT md5($1 || 'customer' || (i % $3))::uuid AS c) AS customer
"""
COUNT = """
INSERT INTO policy_service.account_counts
SELECT partner_id, customer_id, account_type, status, count(*)
FROM policy_service.accounts GROUP BY 1, 2, 3, 4
"""


def quantiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


async def fill(dsn: str, accounts: int) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(FILL, PARTNER, accounts, CUSTOMERS)
        await conn.execute(FILL, OTHER, accounts // 5, CUSTOMERS)
        await conn.execute(COUNT)
        await conn.execute("ANALYZE policy_service.accounts")
        print(
            f"filled {accounts + accounts // 5} accounts in {time.perf_counter() - started:.0f} s"
        )
        customer: uuid.UUID = await conn.fetchval(
            "SELECT customer_id FROM policy_service.accounts WHERE partner_id = $1 LIMIT 1",
            PARTNER,
        )
        return customer
    finally:
        await conn.close()


async def timed(session: aiohttp.ClientSession, url: str, auth: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url, headers={"Authorization": auth}) as resp:
            body = await resp.read()
            assert resp.status == 200, (resp.status, body[:300])
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main() -> None:
    accounts = int(os.environ.get("BENCH_ACCOUNTS", 1_000_000))
    repeats = int(os.environ.get("BENCH_PAGE_REPEATS", 40))
    tmp = Path(tempfile.mkdtemp(prefix="accounts-bench-"))
    with (
        LocalBroker(log_path=tmp / "tansu.log") as broker,
        LocalPostgres(tmp / "pg", throwaway=True) as pg,
    ):
        dsn = pg.dsn()
        await migrate(dsn, "policy_service", "services.policy_service.adapters.migrations")
        customer = await fill(dsn, accounts)
        with policy_service(dsn, broker.bootstrap, tmp, SECRET, SECRETS_KEY) as served:
            base = f"{served.base_url}/v1/accounts"
            auth = "Bearer " + issue_token(
                SECRET, sub="bench", partner_id=PARTNER, role="read_only", ttl_seconds=3600
            )
            async with aiohttp.ClientSession() as session:
                await wait_ready(session, f"{served.base_url}/readyz")
                deep = await _deep_cursor(session, base, auth)
                queries = {
                    "newest 50": "",
                    "customer": f"customer_id={customer}",
                    "administrators": "account_type=administrator",
                    "status attention (0.1 %)": "status=attention",
                    "status pending": "status=pending",
                    "customer + attention": f"customer_id={customer}&status=attention",
                    "q one user (user4242)": "q=user424242",
                    "q common (person)": "q=person",
                    "q none (zzz)": "q=zzzz",
                    "page 21 of a cursor walk": f"cursor={quote(deep)}",
                }
                worst = 0.0
                for name, query in queries.items():
                    url = f"{base}?limit=50&{query}"
                    await timed(session, url, auth, 3)  # warm
                    p50, p99 = quantiles(await timed(session, url, auth, repeats))
                    worst = max(worst, p99)
                    print(f"GET /v1/accounts {name:28s} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
                print(
                    f"PAGES p99_ms_max={worst:.1f} over {len(queries)} queries"
                    f" ({accounts} accounts)"
                )


async def _deep_cursor(session: aiohttp.ClientSession, base: str, auth: str) -> str:
    cursor = ""
    for _ in range(20):
        url = f"{base}?limit=50" + (f"&cursor={quote(cursor)}" if cursor else "")
        async with session.get(url, headers={"Authorization": auth}) as resp:
            cursor = (await resp.json())["next_cursor"]
    return cursor


if __name__ == "__main__":
    asyncio.run(main())
