#!/usr/bin/env bash
# Set-up on a fresh Debian machine, safe to rerun: MariaDB (for the demo and the tests),
# a virtual environment in .venv, and the project with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/sbin/mariadbd ] && ! command -v mariadbd >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing mariadb-server (Debian package)..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev]'
