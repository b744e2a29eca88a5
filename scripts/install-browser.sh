#!/usr/bin/env bash
# Debian's Chromium for the admin UI's browser tests (tests/e2e/ui).
# Playwright's own browser download does not work on these machines, so the
# tests drive /usr/bin/chromium. Idempotent: does nothing when it is there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install Chromium so that /usr/bin/chromium exists" >&2
    exit 1
fi

echo "installing chromium (apt-get) for the browser tests ..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
