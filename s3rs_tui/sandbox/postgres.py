"""A throwaway PostgreSQL server in a folder of ours: the tests' warehouse (and Redshift stand-in).

initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user (runuser) in
a folder made theirs. It listens on 127.0.0.1 only, on a free port, with its socket in that
folder, and is stopped with pg_ctl on the same folder: only the server we started.
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from s3rs_tui.sandbox.mariadb import SandboxError, free_port

USER, PASSWORD = "s3rs", "s3rs"
_SERVER_USER = "postgres"


def _bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise SandboxError("PostgreSQL is not installed: apt-get install postgresql "
                           "(bash scripts/bootstrap.sh does)")
    return found[-1].parent


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", _SERVER_USER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    base_dir: Path
    port: int
    bin_dir: Path

    def connect_args(self, database: str = "postgres") -> dict:
        """Keyword arguments for psycopg2.connect (and our [warehouse] settings)."""
        return {"host": "127.0.0.1", "port": self.port, "user": USER, "password": PASSWORD,
                "dbname": database}

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.base_dir / "data"), *args]
        return subprocess.run(_as_server_user(command), cwd="/", capture_output=True, text=True)

    def stop(self) -> None:
        """Fast shutdown of our server, then its folder goes."""
        self._pg_ctl("-m", "fast", "-w", "stop")
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _enable_tls(base_dir: Path, certificate: Path, key: Path) -> str:
    """Server files PostgreSQL accepts (its own, key 0600) and a pg_hba.conf that wants TLS."""
    for source, name in ((certificate, "server.crt"), (key, "server.key")):
        shutil.copy(source, base_dir / name)
        (base_dir / name).chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(base_dir / name, _SERVER_USER, _SERVER_USER)
    hba = base_dir / "data" / "pg_hba.conf"
    hba.write_text("hostnossl all all all reject\n" + hba.read_text())
    return f" -c ssl=on -c ssl_cert_file={base_dir}/server.crt -c ssl_key_file={base_dir}/server.key"


def start_postgres(tls: tuple[Path, Path] | None = None) -> PostgresServer:
    """initdb a fresh cluster in a new temporary folder and start it; returns once it accepts SQL.
    `tls` (certificate, key): TLS on, and TCP connections without it refused."""
    bin_dir = _bin_dir()
    # A folder the server user can reach (pytest's own temporary folders are private to root).
    base_dir = Path(tempfile.mkdtemp(prefix="s3rs-pg-"))
    base_dir.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(base_dir, _SERVER_USER, _SERVER_USER)
    server = PostgresServer(base_dir, free_port(), bin_dir)
    initdb = subprocess.run(_as_server_user([
        str(bin_dir / "initdb"), "-D", str(base_dir / "data"), "-U", "postgres", "--encoding=UTF8",
        "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256"]),
        cwd="/", capture_output=True, text=True)
    if initdb.returncode:
        raise SandboxError(f"initdb failed: {initdb.stderr.strip()[-500:]}")
    options = (f"-p {server.port} -k {base_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    if tls:
        options += _enable_tls(base_dir, *tls)
    started = server._pg_ctl("-l", str(base_dir / "server.log"), "-w", "-t", "60", "-o", options, "start")
    if started.returncode:
        log = base_dir / "server.log"
        tail = log.read_text()[-500:] if log.exists() else started.stderr
        raise SandboxError(f"postgres did not start: {tail}")
    conn = psycopg2.connect(host=str(base_dir), port=server.port, user="postgres", dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {USER} LOGIN SUPERUSER PASSWORD %s", (PASSWORD,))
    finally:
        conn.close()
    return server
