"""SSH tunnels through a bastion (sshtunnel on paramiko) that come back when they drop.

sshtunnel opens a tunnel once, and its listening port stays open after the SSH session under it
died (sshtunnel#261, #289). A Tunnel here therefore:

- checks the bastion's host key against `[ssh] known_hosts`: an unknown or changed key is refused;
- sends keepalives, and every `keepalive_seconds` asks the bastion for an answer (OpenSSH's
  ServerAliveInterval / ServerAliveCountMax): a session silent for 3 rounds is closed, which ends
  every connection through it at once (they fail and are retried) instead of leaving them hanging;
- is rebuilt on demand on the same local port, so a connection string made once (connectorx's)
  stays valid, and says how long it was down.

Each tunnel runs in a child process (`python -m s3rs_tui.runtime.tunnel`), driven over its stdin and
stdout: forwarding is Python threads, and in our process they would wait for the GIL behind Arrow
work, or forever behind connectorx's streaming reader, which holds the GIL while it connects. The
child exits when its stdin closes, so a run killed with -9 leaves no tunnel behind. One tunnel per
(bastion, destination) in a process, shared by every connection to that destination.
"""

import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import paramiko
import sshtunnel

from s3rs_tui.runtime.config import SSHSettings
from s3rs_tui.runtime.errors import ConfigError, S3rsError, TransientError

MISSED_PROBES = 3  # unanswered probes in a row after which the session counts as dropped
_PREFERRED_KEYS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "ssh-rsa")
Notify = Callable[[str], None]


def _quiet(message: str) -> None:
    """For callers with nobody to tell."""


class _LastError(logging.Handler):
    """sshtunnel logs why a connection failed and raises a generic error: keep the reason."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


class _TimedSocket(socket.socket):
    """sshtunnel connects a socket it is given with a 0.1 s timeout, and paramiko connects its own
    with none: this one connects within the configured time."""

    connect_timeout = 10.0

    def connect(self, address) -> None:
        self.settimeout(self.connect_timeout)
        super().connect(address)


def _host_key_name(ssh: SSHSettings) -> str:
    return ssh.host if ssh.port == 22 else f"[{ssh.host}]:{ssh.port}"


def known_host_key(ssh: SSHSettings) -> paramiko.PKey | None:
    """The bastion's key as known_hosts lists it; ConfigError when it is not there."""
    if not ssh.check_host_key:
        return None
    path = os.path.expanduser(ssh.known_hosts)
    try:
        keys = paramiko.HostKeys(path).lookup(_host_key_name(ssh))
    except OSError as exc:
        raise ConfigError(f"[ssh] known_hosts {path}: cannot read it ({exc.strerror or exc})") from None
    except paramiko.hostkeys.InvalidHostKey as exc:
        raise ConfigError(f"[ssh] known_hosts {path} has a line that is not a host key: {exc.line}") from None
    if not keys:
        raise ConfigError(
            f"REFUSED: the host key of the bastion {_host_key_name(ssh)} is not in {path}; check its "
            f"fingerprint with the bastion's owner, then add it "
            f"(ssh-keyscan -p {ssh.port} {ssh.host} >> {path})")
    kind = next((k for k in _PREFERRED_KEYS if k in keys), next(iter(keys)))
    return keys[kind]


def private_key(ssh: SSHSettings) -> paramiko.PKey:
    path = os.path.expanduser(ssh.key_file)
    try:
        return paramiko.PKey.from_path(path, password=ssh.key_passphrase.encode() or None)
    except OSError as exc:
        raise ConfigError(f"[ssh] key_file {path}: cannot read it ({exc.strerror or exc})") from None
    except (paramiko.PasswordRequiredException, TypeError):  # cryptography: "Password was not given"
        raise ConfigError(f"[ssh] key_file {path} is encrypted: set S3RS_SSH_KEY_PASSPHRASE") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"[ssh] key_file {path}: cannot load it (wrong passphrase?): {exc}") from None


def check_settings(ssh: SSHSettings) -> None:
    missing = [name for name in ("host", "user", "key_file") if not getattr(ssh, name)]
    if missing:
        raise ConfigError(f"[ssh] enabled = true needs {', '.join(missing)}")


def _label(ssh: SSHSettings, host: str, port: int) -> str:
    return f"SSH tunnel {ssh.user}@{ssh.host}:{ssh.port} -> {host}:{port}"


class Tunnel:
    """`address()` is the local end of a live tunnel to `remote`, rebuilt first if it dropped."""

    def __init__(self, ssh: SSHSettings, remote_host: str, remote_port: int):
        self.ssh, self.remote = ssh, (remote_host, remote_port)
        self.label = _label(ssh, remote_host, remote_port)
        self.port = 0             # the local port, kept across rebuilds
        self.rebuilds = 0
        self.host_key = ""        # "ssh-ed25519 SHA256:..." once connected
        self._forwarder: sshtunnel.SSHTunnelForwarder | None = None
        self._lock = threading.Lock()
        self._dropped_at: float | None = None
        self._why = ""
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None

    def address(self, notify: Notify = _quiet) -> tuple[str, int]:
        with self._lock:
            if not self._alive():
                self._build(notify)
            return "127.0.0.1", self.port

    def _alive(self) -> bool:
        return self._forwarder is not None and self._forwarder.is_active and self._forwarder.is_alive

    def _build(self, notify: Notify) -> None:
        if self._forwarder is not None:
            self._noticed_drop("the SSH session ended")
            self._forwarder.stop(force=True)
            self._forwarder = None
        ssh = self.ssh
        host_key, key = known_host_key(ssh), private_key(ssh)
        errors = _LastError()
        logger = logging.getLogger(f"s3rs.tunnel.{id(self)}")
        logger.propagate, logger.handlers = False, [errors]
        sock = _TimedSocket(socket.getaddrinfo(ssh.host, ssh.port, type=socket.SOCK_STREAM)[0][0])
        sock.connect_timeout = ssh.connect_timeout
        forwarder = sshtunnel.SSHTunnelForwarder(
            (ssh.host, ssh.port), ssh_username=ssh.user, ssh_pkey=key, ssh_host_key=host_key,
            ssh_proxy=sock, ssh_config_file=None, allow_agent=False, host_pkey_directories=[],
            remote_bind_address=self.remote, local_bind_address=("127.0.0.1", self.port),
            set_keepalive=float(ssh.keepalive_seconds), logger=logger)
        try:
            forwarder.start()
        except (sshtunnel.BaseSSHTunnelForwarderError, OSError, paramiko.SSHException) as exc:
            forwarder.stop(force=True)
            sock.close()
            raise self._refused(errors.message or str(exc)) from None
        self._forwarder, self.port = forwarder, forwarder.local_bind_port
        remote_key = forwarder._transport.get_remote_server_key()
        self.host_key = f"{remote_key.get_name()} {remote_key.fingerprint}"
        if self._dropped_at is not None:
            self.rebuilds += 1
            notify(f"{self.label}: {self._why}; rebuilt on 127.0.0.1:{self.port} after "
                   f"{time.monotonic() - self._dropped_at:.1f}s down")
        self._dropped_at, self._why = None, ""
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="s3rs-ssh-watchdog", daemon=True)
            self._watchdog.start()

    def _refused(self, reason: str) -> S3rsError:
        if "bad host key" in reason.lower():
            return ConfigError(f"REFUSED: the bastion {_host_key_name(self.ssh)} presented a host key that "
                               f"differs from {self.ssh.known_hosts} (a man in the middle, or a reinstalled "
                               "bastion): check it with the bastion's owner before changing known_hosts")
        if "authentication" in reason.lower():
            return ConfigError(f"{self.label}: the bastion refused user {self.ssh.user} with key "
                               f"{self.ssh.key_file}: {reason}")
        errno = re.search(r": (\d+)$", reason)  # sshtunnel says "Could not connect to gateway h:p : 111"
        if errno:
            reason = f"{reason[:errno.start()]}: {os.strerror(int(errno.group(1)))}"
        return TransientError(f"cannot open the {self.label}: {reason}")

    def _noticed_drop(self, why: str) -> None:
        if self._dropped_at is None:
            self._dropped_at, self._why = time.monotonic(), why

    def _watch(self) -> None:
        """Ask the bastion for an answer every keepalive; close a session that stays silent."""
        interval = self.ssh.keepalive_seconds
        while not self._closed.wait(interval):
            forwarder = self._forwarder
            if forwarder is None or not forwarder.is_active:
                continue
            transport = forwarder._transport
            probe = threading.Thread(target=_probe, args=(transport,), daemon=True)
            probe.start()
            probe.join(interval * MISSED_PROBES)
            if probe.is_alive() and transport.is_active():
                with self._lock:
                    self._noticed_drop(f"the bastion stopped answering for {interval * MISSED_PROBES}s")
                transport.close()  # every connection through it fails now, and is retried

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._forwarder is not None:
                self._forwarder.stop(force=True)
                self._forwarder = None


def _probe(transport: paramiko.Transport) -> None:
    """A request that wants a reply: OpenSSH answers it (with a refusal), a dead session never does."""
    with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
        transport.global_request("keepalive@openssh.com", wait=True)


class TunnelProcess:
    """A Tunnel in a child process, with the same `address()`; errors come back as ours."""

    def __init__(self, ssh: SSHSettings, remote_host: str, remote_port: int):
        check_settings(ssh)
        self.ssh, self.remote = ssh, (remote_host, remote_port)
        self.label = _label(ssh, remote_host, remote_port)
        self.port, self.host_key = 0, ""
        self._child: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def address(self, notify: Notify = _quiet) -> tuple[str, int]:
        with self._lock:
            reply = self._ask({"port": self.port})
        for message in reply.get("notices", []):
            notify(message)
        if "error" in reply:
            kind = ConfigError if reply["exit_code"] == ConfigError.exit_code else TransientError
            raise kind(reply["error"])
        self.port, self.host_key = reply["port"], reply["host_key"]
        return "127.0.0.1", self.port

    def _ask(self, request: dict) -> dict:
        if self._child is None or self._child.poll() is not None:
            # The settings travel on the pipe, never on the command line (ps shows that to everyone).
            self._child = subprocess.Popen([sys.executable, "-m", "s3rs_tui.runtime.tunnel"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True)
            self._send({"ssh": dataclasses.asdict(self.ssh), "remote": list(self.remote)})
        assert self._child.stdout is not None  # started with pipes
        try:
            self._send(request)
            line = self._child.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self._child.kill()
            return {"error": f"the {self.label} process ended", "exit_code": TransientError.exit_code}
        return json.loads(line)

    def _send(self, document: dict) -> None:
        assert self._child is not None and self._child.stdin is not None  # started with pipes in _ask
        self._child.stdin.write(json.dumps(document) + "\n")
        self._child.stdin.flush()

    def close(self) -> None:
        with self._lock:
            if self._child is not None and self._child.stdin is not None:
                self._child.stdin.close()
                try:
                    self._child.wait(10)
                except subprocess.TimeoutExpired:
                    self._child.kill()
                self._child = None


def _serve() -> None:
    """The child: one Tunnel, an answer per request line, until stdin closes."""
    setup = json.loads(sys.stdin.readline())
    tunnel = Tunnel(SSHSettings(**setup["ssh"]), *setup["remote"])
    for line in sys.stdin:
        tunnel.port = tunnel.port or json.loads(line)["port"]  # a restarted child keeps the port
        notices: list[str] = []
        try:
            port = tunnel.address(notices.append)[1]
            reply = {"port": port, "host_key": tunnel.host_key, "notices": notices}
        except S3rsError as exc:
            reply = {"error": str(exc), "exit_code": exc.exit_code, "notices": notices}
        except Exception as exc:  # noqa: BLE001 - the parent hears of it and retries; the child goes on
            reply = {"error": f"{tunnel.label}: {type(exc).__name__}: {exc}", "exit_code": 1,
                     "notices": notices}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    tunnel.close()


_tunnels: dict[tuple, TunnelProcess] = {}
_registry_lock = threading.Lock()


def tunnel_to(ssh: SSHSettings, host: str, port: int) -> TunnelProcess:
    """The process's tunnel to (host, port) through the bastion (made on first use)."""
    key = (dataclasses.astuple(ssh), host, port)
    with _registry_lock:
        if key not in _tunnels:
            _tunnels[key] = TunnelProcess(ssh, host, port)
        return _tunnels[key]


def close_tunnels() -> None:
    with _registry_lock:
        for tunnel in _tunnels.values():
            tunnel.close()
        _tunnels.clear()


if __name__ == "__main__":
    _serve()
