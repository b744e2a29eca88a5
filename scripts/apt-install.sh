#!/usr/bin/env bash
# apt-get install the Debian packages named after the first argument (what they are
# for, for the messages), as root or through sudo. Used by install-browser.sh and
# install-wrk.sh, which first check whether the tool is already there.
set -euo pipefail

purpose="$1"
shift
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install $* yourself ($purpose)" >&2
    exit 1
fi
echo "installing $* (apt-get) for $purpose ..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
