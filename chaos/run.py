"""``python -m chaos.run [--size full|ci] [--scenario N ...]``: run the fault and abuse
scenarios and print a table of their figures; exit 1 if any scenario failed.

``make chaos`` runs every scenario at full size, ``make chaos-ci`` at the reduced CI
size. Each run starts its own broker (Tansu) and PostgreSQL; logs of every process
go to a work directory printed at the start (kept when something fails).
"""

import argparse
import asyncio
import importlib
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

from chaos.lab import Lab
from chaos.report import Result, failures, markdown_table, text_table

SCENARIOS = {
    "1": "chaos.s1_worker_kill",
    "2": "chaos.s2_rebalance",
    "3": "chaos.s3_postgres_restart",
    "4": "chaos.s4_broker_outage",
    "5": "chaos.s5_late_commit",
    "6": "chaos.s6_slow_batch",
    "7": "chaos.s7_poison",
    "8": "chaos.s8_api_abuse",
    "9": "chaos.s9_read_only_database",
    "10": "chaos.s10_startup_gate",
    "11": "chaos.s11_relay_failover",
    "12": "chaos.s12_handlers_kill",
}


def scenario(key: str) -> ModuleType:
    return importlib.import_module(SCENARIOS[key])


async def run_one(lab: Lab, key: str, size: str) -> Result:
    """One scenario; an exception becomes a FAIL with the error (traceback in the log)."""
    module = scenario(key)
    started = time.monotonic()
    try:
        result: Result = await module.run(lab, size)
    except Exception as exc:
        logging.getLogger("chaos").error("scenario %s failed", key, exc_info=True)
        result = Result(module.TITLE, size, error=f"{type(exc).__name__}: {exc}")
        result.error = (result.error or "")[:2000]
        (lab.workdir / f"scenario-{key}-error.txt").write_text(traceback.format_exc())
    result.seconds = time.monotonic() - started
    return result


def run_one_sync(lab: Lab, key: str, size: str) -> Result:
    return asyncio.run(run_one(lab, key, size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=__doc__)
    parser.add_argument("--size", choices=("full", "ci"), default="full")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="Run only this scenario (repeat for several); default: all.",
    )
    parser.add_argument("--markdown", type=Path, help="Also write the table as Markdown here.")
    parser.add_argument("--workdir", type=Path, help="Where logs go (default: a new temp dir).")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=workdir / "chaos.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    keys = args.scenario or list(SCENARIOS)
    print(f"chaos: size {args.size}, scenarios {', '.join(keys)}; logs in {workdir}", flush=True)
    results: list[Result] = []
    with Lab(workdir) as lab:
        for key in keys:
            print(f"chaos: scenario {key} ({scenario(key).TITLE}) ...", flush=True)
            result = run_one_sync(lab, key, args.size)
            results.append(result)
            print(f"chaos: scenario {key}: {result.verdict} in {result.seconds:.0f}s", flush=True)
    print(text_table(results))
    if args.markdown:
        args.markdown.write_text(markdown_table(results) + "\n")
    bad = failures(results)
    if bad:
        print(bad)
    ok = all(r.passed or r.known_broker_issue for r in results)
    if ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not ok:
        print(f"chaos: logs kept in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
