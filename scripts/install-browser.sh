#!/usr/bin/env bash
# Debian's Chromium for the admin UI's browser tests (tests/e2e/ui).
# Playwright's own browser download does not work on these machines, so the
# tests drive /usr/bin/chromium. Idempotent: does nothing when it is there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" "the browser tests (/usr/bin/chromium)" \
    chromium fonts-liberation fonts-dejavu-core
/usr/bin/chromium --version
