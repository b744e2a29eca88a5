#!/usr/bin/env bash
# wrk (Debian package) for the API benchmark (bench/api_bench.py): a load generator
# in a process of its own. Idempotent: does nothing when wrk is on the PATH.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install wrk (https://github.com/wg/wrk) so that it is on the PATH" >&2
    exit 1
fi
echo "installing wrk (apt-get) for the API benchmark ..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
