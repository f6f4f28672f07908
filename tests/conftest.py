"""Real servers for the tests: a throwaway MariaDB, a moto S3 server and a PostgreSQL warehouse,
all on 127.0.0.1.

Both start once per test session on free ports, in a temporary folder, and are stopped at the end.
Each test gets its own database, bucket and warehouse database, so tests never see each other's data.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

import boto3
import psycopg2
import pymysql
import pytest
from tmux_helpers import Tmux

from s3rs_tui.runtime.config import load_settings
from s3rs_tui.sandbox.mariadb import free_port, start_mariadb
from s3rs_tui.sandbox.postgres import start_postgres

# Never let boto3 or pyarrow probe the EC2 metadata service (non-loopback traffic).
TEST_ENV = {"AWS_ACCESS_KEY_ID": "s3rstest", "AWS_SECRET_ACCESS_KEY": "s3rstestsecret",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
os.environ.update(TEST_ENV)
for _name in [n for n in os.environ if n.startswith(("S3RS_", "BACKUP_", "S3_"))]:
    del os.environ[_name]
# Status snapshots and dashboard log files go to a throwaway state folder, not the tester's ~/.s3rs.
STATE_DIR = tempfile.mkdtemp(prefix="s3rs-test-state-")
atexit.register(shutil.rmtree, STATE_DIR, True)
os.environ["S3RS_STATE_DIR"] = STATE_DIR


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    server = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    with open(tmp_path_factory.mktemp("moto") / "moto.log", "wb") as log:  # moto keeps its own descriptor
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=log, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    client = s3_client(endpoint)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            break
        except Exception as exc:  # broad: any failure means "not up yet" until the deadline
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto S3 server did not start") from exc
            time.sleep(0.2)
    yield endpoint
    process.terminate()
    process.wait(10)


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


class Database:
    """One fresh MariaDB database for one test, with a small SQL helper."""

    def __init__(self, server, name):
        self.server, self.name = server, name

    def connect(self, **kwargs):
        return pymysql.connect(**self.server.connect_args(self.name), autocommit=True, **kwargs)

    def execute(self, *statements, params=None):
        with self.connect() as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, params)
            return cur.fetchall()

    def executemany(self, statement, rows):
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(statement, rows)


@pytest.fixture
def db(mariadb):
    name = "t_" + uuid.uuid4().hex[:12]
    database = Database(mariadb, name)
    with pymysql.connect(**mariadb.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield database
    with pymysql.connect(**mariadb.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        # A failed test may leave a connection holding a table lock (a Gate): the DROP would wait forever.
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                    (name,))
        for (thread,) in cur.fetchall():
            with suppress(pymysql.err.OperationalError):  # it ended meanwhile
                cur.execute(f"KILL {int(thread)}")
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def bucket(s3_endpoint):
    name = "s3rs-" + uuid.uuid4().hex[:12]
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def write_config(path: Path, db: Database, *, store: Path | None = None, bucket: str = "",
                 endpoint: str = "", extra: str = "", default_layout: bool = False) -> Path:
    """A config file pointing at the test MariaDB and a local folder or the S3 server.

    Tests get a file per page and no safety lag (small tables still make several files, fresh rows
    are read at once), unless `default_layout`: then file_size_mb and safety_lag_seconds keep
    their defaults, as operators run them (files of many pages, a 5 s lag)."""
    connect = db.server.connect_args()
    s3 = (f'bucket = "{bucket}"\nendpoint_url = "{endpoint}"\n' if bucket
          else f'local_path = "{store or path.parent / "store"}"\n')
    layout = "" if default_layout else "safety_lag_seconds = 0\nfile_size_mb = 0\n"
    path.write_text(
        f'[mysql]\nhost = "127.0.0.1"\nport = {connect["port"]}\nuser = "{connect["user"]}"\n'
        f'password = "{connect["password"]}"\ndatabase = "{db.name}"\n\n'
        f'[s3]\n{s3}prefix = "backups/"\n\n[backup]\n{layout}retry_attempts = 2\n{extra}')
    path.chmod(0o600)  # it holds a password: as an operator should keep it (else s3rs warns)
    return path


@pytest.fixture
def local_config(tmp_path, db):
    """Settings file for the test database and a local folder store."""
    return write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store")


@pytest.fixture
def s3_config(tmp_path, db, bucket, s3_endpoint):
    """Settings file for the test database and a bucket on the S3 server."""
    return write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint)


@pytest.fixture
def settings_for():
    def load(config_path: Path):
        return load_settings(str(config_path), environ=TEST_ENV)

    return load


@pytest.fixture(scope="session")
def postgres_server():
    """PostgreSQL started from its Debian binaries (as the postgres user when we are root)."""
    server = start_postgres()
    yield server
    server.stop()


class Warehouse:
    """One fresh PostgreSQL database for one test: its [warehouse] settings and a SQL helper."""

    def __init__(self, server, name):
        self.server, self.name = server, name

    def config(self, schema: str = "public") -> str:
        args = self.server.connect_args(self.name)
        return (f'\n[warehouse]\nkind = "postgres"\nhost = "{args["host"]}"\nport = {args["port"]}\n'
                f'database = "{self.name}"\nuser = "{args["user"]}"\npassword = "{args["password"]}"\n'
                f'schema = "{schema}"\n')

    def execute(self, sql, params=None):
        conn = psycopg2.connect(**self.server.connect_args(self.name))
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


@pytest.fixture
def pg(postgres_server):
    name = "w_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(**postgres_server.connect_args())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield Warehouse(postgres_server, name)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


SSH_PASSPHRASE = "Kp7-ssh-Passphrase-4410"  # the test key's passphrase: it must never be printed


@pytest.fixture
def sshd(tmp_path):
    """A real OpenSSH server on 127.0.0.1 (its own host key and port), with a known_hosts file that
    lists it; stopped, with its sessions, at the end. Tunnels opened by the test are closed."""
    from s3rs_tui.runtime.tunnel import close_tunnels
    from s3rs_tui.sandbox.sshd import start_sshd

    server = start_sshd(tmp_path / "sshd", key_passphrase=SSH_PASSPHRASE)
    server.known_hosts = tmp_path / "known_hosts"
    server.known_hosts.write_text(server.host_key_line)
    yield server
    close_tunnels()
    server.stop()


def ssh_config(server, keepalive: int = 1) -> str:
    """[ssh] for `server`; the passphrase comes from S3RS_SSH_KEY_PASSPHRASE (see SSH_ENV)."""
    return (f'\n[ssh]\nenabled = true\nhost = "127.0.0.1"\nport = {server.port}\nuser = "{server.user}"\n'
            f'key_file = "{server.client_key}"\nknown_hosts = "{server.known_hosts}"\n'
            f'keepalive_seconds = {keepalive}\nconnect_timeout = 5\n')


SSH_ENV = {"S3RS_SSH_KEY_PASSPHRASE": SSH_PASSPHRASE}


@pytest.fixture
def tmux_session():
    """`start(command, env, size=..., environ=..., cwd=...)` opens a private tmux (tests/tmux_helpers.py);
    every one is closed at the end."""
    sessions = []

    def start(command, env, size=(120, 40), **options):
        sessions.append(Tmux(command, env, size, **options))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()
