"""``make bench-api``: the policy service against a bare aiohttp + asyncpg ceiling, by wrk.

Starts its own PostgreSQL and broker, ``policy-service run`` and
``bench/bare_server.py`` on the same PostgreSQL, seeds BENCH_PARTNERS partners
(default 16) with 20 customers and a default policy each, and loads both with
wrk (BENCH_CONNECTIONS connections, default 32, for BENCH_SECONDS, default 10):

  read:  ``GET /v1/customers/{id}/effective-policies`` (cycling over customers)
         vs the bare server's primary-key read;
  write: ``PATCH /v1/import-policies/{id}`` from every partner at once (their
         tokens and policies in turn) vs the bare one-row UPDATE + outbox INSERT.

wrk runs in a process of its own (Debian package ``wrk``: ``scripts/install-wrk.sh``,
which ``make bench-api`` runs first), so the load generator does not share the
server's interpreter. The last line is ``RATIOS api_read/bare=<x> api_write/bare=<y>``.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import aiohttp

from services.infra.devstack import LocalBroker, LocalPostgres
from services.infra.devstack.net import free_port
from services.infra.migrations import migrate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bare_server  # sibling scripts
from served_policy import ServedPolicy, policy_service, seed, wait_ready

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
SECRET = "api-bench-secret-" + "y" * 32
SECRETS_KEY = "YmVuY2gtc2VjcmV0cy1rZXktMDEyMzQ1Njc4OWFiY2Q="  # base64 of 32 bytes

LUA = """
local requests = {%s}
local i = 0
request = function()
  i = i + 1
  local r = requests[(i %% #requests) + 1]
  return wrk.format(r[1], r[2], {["Authorization"] = r[3],
                                 ["Content-Type"] = "application/json"}, r[4])
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string for these characters


def wrk(
    base: str,
    requests: list[tuple[str, str, str, str | None]],
    log: Path,
    profile_pid: int | None = None,
) -> float:
    """Requests/s wrk reaches; every answer must be a 2xx. With BENCH_PROFILE set and
    ``profile_pid``, py-spy records that process meanwhile (collapsed stacks in the logs)."""
    entries = ",".join(
        "{" + ",".join((lua_string(m), lua_string(p), lua_string(a),
                        lua_string(b) if b is not None else "nil")) + "}"
        for m, p, a, b in requests
    )  # fmt: skip
    script = log.with_suffix(".lua")
    script.write_text(LUA % entries)
    connections = os.environ.get("BENCH_CONNECTIONS", "32")
    seconds = os.environ.get("BENCH_SECONDS", "10")
    spy = None
    if profile_pid is not None and os.environ.get("BENCH_PROFILE"):
        spy = subprocess.Popen(
            [str(BIN / "py-spy"), "record", "-p", str(profile_pid), "-d", seconds, "-r", "200",
             "-f", "raw", "-o", str(log.with_suffix(".stacks")), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), base],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if spy is not None:
        spy.wait(30)
    log.write_text(done.stdout + done.stderr)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if bad:
        raise SystemExit(f"{bad.group(1)} failed requests under load; see {log}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    assert found, done.stdout
    latency = re.search(r"Latency\s+(\S+)", done.stdout)
    print(f"    {log.stem:12s} {float(found.group(1)):8.0f} req/s (mean latency "
          f"{latency.group(1) if latency else '?'})")  # fmt: skip
    return float(found.group(1))


async def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run scripts/install-wrk.sh (make bench-api does)")
    partners = int(os.environ.get("BENCH_PARTNERS", 16))
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    print(f"api bench: logs in {tmp}")
    with (
        LocalBroker(log_path=tmp / "tansu.log") as broker,
        LocalPostgres(tmp / "pg", throwaway=True) as pg,
    ):
        dsn = pg.dsn()
        await migrate(dsn, "policy_service", "services.policy_service.adapters.migrations")
        bare_port = free_port()
        bare_ids = [uuid.uuid4() for _ in range(20 * partners)]
        await bare_server.setup(dsn, bare_ids)
        bare = subprocess.Popen(
            [sys.executable, str(HERE / "bare_server.py"), str(bare_port), dsn],
            stdout=(tmp / "bare.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        bare_base = f"http://127.0.0.1:{bare_port}"
        try:
            with policy_service(dsn, broker.bootstrap, tmp, SECRET, SECRETS_KEY) as served:
                await _compare(served, bare_base, bare_ids, partners, tmp)
        finally:
            bare.terminate()
            bare.wait(20)


async def _compare(
    served: ServedPolicy, bare_base: str, bare_ids: list[uuid.UUID], partners: int, tmp: Path
) -> None:
    base = served.base_url
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, f"{base}/readyz")
        await wait_ready(session, f"{bare_base}/read/{uuid.uuid4()}")
        seeded = [
            await seed(session, base, f"bench-{uuid.uuid4().hex[:8]}", SECRET)
            for _ in range(partners)
        ]
    await asyncio.sleep(1)  # let the relay publish the seed
    reads = [("GET", f"/v1/customers/{c}/effective-policies", a, None)
             for a, cs, _ in seeded for c in cs]  # fmt: skip
    bare_reads = [("GET", f"/read/{i}", "", None) for i in bare_ids]
    writes = [("PATCH", f"/v1/import-policies/{p}", a, json.dumps({"description": f"r{n}"}))
              for n in range(4) for a, _, p in seeded]  # fmt: skip
    bare_writes = [("PATCH", f"/write/{i}", "", json.dumps({"description": f"r{n}"}))
                   for n in range(4) for i in bare_ids[:partners]]  # fmt: skip
    print(f"wrk -c{os.environ.get('BENCH_CONNECTIONS', '32')}, {partners} partners:")
    bare_read = wrk(bare_base, bare_reads, tmp / "bare-read")
    api_read = wrk(base, reads, tmp / "api-read", served.pid)
    bare_write = wrk(bare_base, bare_writes, tmp / "bare-write")
    api_write = wrk(base, writes, tmp / "api-write", served.pid)
    print(
        f"RATIOS api_read/bare={api_read / bare_read:.2f}"
        f" api_write/bare={api_write / bare_write:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
