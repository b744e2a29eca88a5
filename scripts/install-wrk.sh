#!/usr/bin/env bash
# wrk (Debian package) for the API benchmark (bench/api_bench.py): a load generator
# in a process of its own. Idempotent: does nothing when wrk is on the PATH.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" "the API benchmark (https://github.com/wg/wrk)" wrk
