"""``python -m tests.simulators``: every vendor simulator on one port, with the demo data,
and an SMTP sink (:mod:`.smtp`) that keeps the mail it is sent.

Prints one JSON line (``{"ready": true, "port": ..., "base_urls": {...}, "admin": {...},
"smtp": <port>}``) on stdout once it accepts connections, then serves until SIGTERM or
SIGINT; after it, one line per mail the sink receives.
Run it from the repository root (``tests`` and ``services`` are imported from there).
"""

import argparse
import asyncio
import json
import signal
import sys

from .demo import build_demo_sims, seed_demo
from .serve import serve_all


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.simulators", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument(
        "--smtp-port", type=int, default=0, help="port of the SMTP sink (0: any free port)"
    )
    parser.add_argument("--no-seed", action="store_true", help="start without the demo data")
    parser.add_argument(
        "--max-recorded",
        type=int,
        default=100_000,
        help="requests each simulator remembers (the oldest are dropped beyond it)",
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    sims = build_demo_sims(max_recorded=args.max_recorded)
    if not args.no_seed:
        seed_demo(sims)
    served = await serve_all(sims, args.host, args.port, smtp_port=args.smtp_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        sys.stdout.write(json.dumps(served.ready_line()) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await served.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
