#!/usr/bin/env python3
"""Container health check for the services of the image (Dockerfile HEALTHCHECK).

Exits 0 when ``/healthz`` (or the path given as the first argument, e.g.
``/readyz``) answers 200 on the port of the service running in this container:
``HTTP_PORT`` (policy service, default 8080), ``WORKER_HTTP_PORT`` (import
worker, default 6066) or ``HANDLERS_HTTP_PORT`` (handlers, default 6067). The
standard library only: the image has no curl.
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    ports = [
        os.environ.get("HTTP_PORT", "8080"),
        os.environ.get("WORKER_HTTP_PORT", "6066"),
        os.environ.get("HANDLERS_HTTP_PORT", "6067"),
    ]
    for port in dict.fromkeys(ports):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
                if response.status == 200:
                    return 0
        except (urllib.error.URLError, OSError):
            continue
    return 1


if __name__ == "__main__":
    sys.exit(main())
