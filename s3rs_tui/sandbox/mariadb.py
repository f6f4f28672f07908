"""A throwaway MariaDB server in a folder of ours, for the demo, the benchmark and the tests.

It runs with `--no-defaults` (so /etc/mysql never leaks in), listens on 127.0.0.1 only, and is
stopped by the pid it wrote. `mariadb-server` is installed with apt-get when missing and allowed.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "s3rs", "s3rs"
_BINARIES = ("mariadbd", "mariadb-install-db", "mariadb")
_SBIN_PATHS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class SandboxError(RuntimeError):
    """The throwaway server could not be installed or started."""


@dataclass
class MariaDBServer:
    base_dir: Path
    port: int
    pid: int

    @property
    def socket(self) -> str:
        return str(self.base_dir / "run" / "mysqld.sock")

    def connect_args(self, database: str | None = None) -> dict:
        """Keyword arguments for pymysql.connect (and our [mysql] settings)."""
        return {"host": "127.0.0.1", "port": self.port, "user": USER, "password": PASSWORD,
                **({"database": database} if database else {})}

    def client(self, sql: str, database: str = "") -> str:
        """Run SQL with the command-line client as root (setup work the tool itself never does)."""
        command = [_binary("mariadb"), "--no-defaults", "-uroot", f"--socket={self.socket}",
                   "--batch", "--skip-column-names", "-e", sql] + ([database] if database else [])
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise SandboxError(f"mariadb client failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown of the server we started (and only that one)."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.1)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _binary(name: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_PATHS])
    found = shutil.which(name, path=search)
    if not found:
        raise SandboxError(f"{name} not found: install mariadb-server (apt-get install mariadb-server)")
    return found


def ensure_installed(allow_install: bool = True) -> None:
    """Install Debian's mariadb-server when its binaries are missing (needs root and apt-get)."""
    try:
        for name in _BINARIES:
            _binary(name)
        return
    except SandboxError:
        if not allow_install or not shutil.which("apt-get") or os.geteuid() != 0:
            raise
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "mariadb-server", "mariadb-client"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode:
            raise SandboxError(f"{' '.join(command)} failed: install mariadb-server by hand")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mariadb(base_dir: Path, port: int = 0, buffer_pool_mb: int = 256,
                  databases: tuple[str, ...] = (), options: tuple[str, ...] = ()) -> MariaDBServer:
    """Initialise (first time) and start a server in `base_dir`; returns once it accepts SQL.
    `options`: more server flags (the TLS tests pass --ssl-ca/--ssl-cert/--ssl-key)."""
    ensure_installed()
    base_dir = Path(base_dir).resolve()
    data, run, tmp = base_dir / "data", base_dir / "run", base_dir / "tmp"
    for folder in (run, tmp):  # its own tmpdir: servers set up side by side share no scratch files
        folder.mkdir(parents=True, exist_ok=True)
    if not (data / "mysql").exists():
        data.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([_binary("mariadb-install-db"), "--no-defaults", "--user=root",
                                 f"--datadir={data}", f"--tmpdir={tmp}",
                                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                                capture_output=True, text=True)
        if result.returncode:
            output = result.stderr or result.stdout
            raise SandboxError(f"mariadb-install-db failed in {data}: {output[-800:]}")
    port = port or free_port()
    with open(base_dir / "server.log", "ab") as log:  # the server keeps its own copy of the descriptor
        process = subprocess.Popen(
            [_binary("mariadbd"), "--no-defaults", "--user=root", f"--datadir={data}", f"--tmpdir={tmp}",
             f"--port={port}", "--bind-address=127.0.0.1", f"--socket={run / 'mysqld.sock'}",
             f"--pid-file={run / 'mysqld.pid'}", f"--log-error={base_dir / 'error.log'}",
             "--skip-name-resolve",
             f"--innodb-buffer-pool-size={buffer_pool_mb}M", "--innodb-flush-log-at-trx-commit=2",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
             "--max-connections=500", *options],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    server = MariaDBServer(base_dir, port, process.pid)
    _wait_ready(server, process)
    creates = "".join(f"CREATE DATABASE IF NOT EXISTS `{name}`;" for name in databases)
    server.client(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
                  f"GRANT ALL ON *.* TO '{USER}'@'%' WITH GRANT OPTION;{creates}")
    return server


def _wait_ready(server: MariaDBServer, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error_log = server.base_dir / "error.log"
            tail = error_log.read_text(errors="replace")[-800:] if error_log.exists() else ""
            raise SandboxError(f"mariadbd exited with code {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                if os.path.exists(server.socket):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SandboxError(f"mariadbd did not start within {timeout:.0f}s (see {server.base_dir}/error.log)")
