#!/usr/bin/env bash
# Set-up on a fresh Debian machine, safe to rerun: MariaDB (for the demo and the tests),
# PostgreSQL (the tests' warehouse), tmux and screen (the dashboard's terminal tests), OpenSSH's
# server (the tunnel tests' bastion), systemd's tools (the deploy/ units' check), a virtual
# environment in .venv, and the project with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if [ ! -x /usr/sbin/mariadbd ] && ! command -v mariadbd >/dev/null 2>&1; then
    missing+=(mariadb-server mariadb-client)
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if ! command -v tmux >/dev/null 2>&1; then
    missing+=(tmux)  # the dashboard's terminal tests run it in a real, headless terminal
fi
if ! command -v screen >/dev/null 2>&1; then
    missing+=(screen)  # and in GNU screen, the other multiplexer operators use over SSH
fi
if [ ! -x /usr/sbin/sshd ]; then
    missing+=(openssh-server)  # the tunnel tests' bastion (they start their own sshd on 127.0.0.1)
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    missing+=(systemd)  # `systemd-analyze verify` checks the units in deploy/ (nothing is started)
fi
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing ${missing[*]} (Debian packages)..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev,fast]'
