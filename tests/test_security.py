"""Security: TLS verified to MySQL and the warehouse, S3 server-side encryption on every write,
secrets never printed or written, state files private, a warning for a config others can read."""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from cli_helpers import make_table, run_cli
from conftest import SSH_ENV, SSH_PASSPHRASE, Database, s3_client, ssh_config, write_config

from s3rs_tui.sandbox.mariadb import start_mariadb
from s3rs_tui.sandbox.postgres import start_postgres

MYSQL_SECRET = "Mq4-mysql-Secret-9021"
WAREHOUSE_SECRET = "Wq5-warehouse-Secret-3317"
S3_SECRET = "Sq6-s3-Secret-5593"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


ELSEWHERE = "db.elsewhere.test"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA; server certificates it signed for 127.0.0.1 (server.*) and for another host name
    (elsewhere.*); and an unrelated CA."""
    folder = tmp_path_factory.mktemp("tls")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                "-days", "2", "-subj", f"/CN=s3rs test {ca}", cwd=folder)
    for name, common_name, alt_name in (("server", "127.0.0.1", "IP:127.0.0.1"),
                                        ("elsewhere", ELSEWHERE, f"DNS:{ELSEWHERE}")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={common_name}", cwd=folder)
        (folder / f"{name}.ext").write_text(f"subjectAltName={alt_name}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)
    return folder


def with_line(config: Path, section: str, line: str) -> Path:
    config.write_text(config.read_text().replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1))
    return config


def test_tls_to_mysql_is_verified(tmp_path, certificates):
    server = start_mariadb(tmp_path / "mariadb", databases=("shop",), options=(
        f"--ssl-ca={certificates / 'ca.crt'}", f"--ssl-cert={certificates / 'server.crt'}",
        f"--ssl-key={certificates / 'server.key'}"))
    try:
        server.client("ALTER USER 's3rs'@'%' REQUIRE SSL")
        db = Database(server, "shop")
        make_table(db, rows=300)
        plain = write_config(tmp_path / "plain.toml", db, store=tmp_path / "store")
        unverified = run_cli("status", config=plain)  # pymysql uses TLS when offered, but checks nothing
        assert "NOT verified (set [mysql] ssl_ca)" in unverified.stdout, unverified.stdout
        good = with_line(write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store"), "mysql",
                         f'ssl_ca = "{certificates / "ca.crt"}"')
        assert run_cli("sync", "-t", "orders", config=good).returncode == 0
        status = run_cli("status", config=good)
        assert any(f"TLS TLSv1.{minor}, verified" in status.stdout for minor in (2, 3)), status.stdout
        wrong = with_line(write_config(tmp_path / "wrong.toml", db, store=tmp_path / "store"), "mysql",
                          f'ssl_ca = "{certificates / "other-ca.crt"}"')
        result = run_cli("sync", "-t", "orders", config=wrong)
        assert result.returncode == 2 and "MySQL TLS refused" in result.stderr, result.stderr
        cx = run_cli("sync", "-t", "orders", config=good, env={"S3RS_BACKUP_READER": "connectorx"})
        assert cx.returncode == 2 and "connectorx\" cannot verify TLS" in cx.stderr, cx.stderr
    finally:
        server.stop()


def test_tls_to_the_warehouse_is_verified(db, tmp_path, certificates):
    server = start_postgres(tls=(certificates / "server.crt", certificates / "server.key"))
    try:
        admin = server.connect_args()
        import psycopg2

        conn = psycopg2.connect(**admin, sslmode="require")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE shop")
        conn.close()
        make_table(db, rows=300)
        warehouse = (f'\n[warehouse]\nkind = "postgres"\nhost = "127.0.0.1"\nport = {server.port}\n'
                     f'database = "shop"\nuser = "{admin["user"]}"\npassword = "{admin["password"]}"\n')
        for name, ca, code in (("good", "ca.crt", 0), ("wrong", "other-ca.crt", 2)):
            config = write_config(tmp_path / f"{name}.toml", db, store=tmp_path / name,
                                  extra=warehouse + f'ssl_ca = "{certificates / ca}"\n')
            result = run_cli("sync", "-t", "orders", config=config)
            assert result.returncode == code, result.stderr
        assert "certificate verify failed" in result.stderr
        check = psycopg2.connect(**{**admin, "dbname": "shop"}, sslmode="require")
        with check.cursor() as cur:
            cur.execute("SELECT count(*) FROM public.orders")
            assert cur.fetchone()[0] == 300  # loaded over TLS: the server refuses anything else
        check.close()
    finally:
        server.stop()


def test_tls_refuses_a_certificate_for_another_host_name(db, tmp_path, certificates):
    """Signed by the trusted CA, but naming another host than the 127.0.0.1 we connect to (what a
    man in the middle holding any certificate of that CA presents): refused by MySQL's and the
    warehouse's verification alike, exit 2, nothing read or loaded."""
    import psycopg2

    ca = f'ssl_ca = "{certificates / "ca.crt"}"'
    mysql = start_mariadb(tmp_path / "mariadb", databases=("shop",), options=(
        f"--ssl-ca={certificates / 'ca.crt'}", f"--ssl-cert={certificates / 'elsewhere.crt'}",
        f"--ssl-key={certificates / 'elsewhere.key'}"))
    try:
        shop = Database(mysql, "shop")
        make_table(shop, rows=50)
        store = tmp_path / "mysql-store"
        config = with_line(write_config(tmp_path / "mysql.toml", shop, store=store), "mysql", ca)
        result = run_cli("sync", "-t", "orders", config=config)
        assert result.returncode == 2 and "MySQL TLS refused" in result.stderr, result.stderr
        assert "mismatch" in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert not list(store.rglob("*.parquet"))
    finally:
        mysql.stop()
    warehouse_server = start_postgres(tls=(certificates / "elsewhere.crt", certificates / "elsewhere.key"))
    try:
        admin = warehouse_server.connect_args()
        make_table(db, rows=50)
        warehouse = (f'\n[warehouse]\nkind = "postgres"\nhost = "127.0.0.1"\n'
                     f'port = {warehouse_server.port}\ndatabase = "postgres"\nuser = "{admin["user"]}"\n'
                     f'password = "{admin["password"]}"\n{ca}\n')
        config = write_config(tmp_path / "warehouse.toml", db, store=tmp_path / "store", extra=warehouse)
        result = run_cli("sync", "-t", "orders", config=config)
        assert result.returncode == 2, result.stderr
        assert f'server certificate for "{ELSEWHERE}"' in result.stderr, result.stderr
        assert 'does not match host name "127.0.0.1"' in result.stderr, result.stderr
        with psycopg2.connect(**admin, sslmode="require") as check, check.cursor() as cur:
            cur.execute("SELECT to_regclass('public.orders')")
            assert cur.fetchone()[0] is None  # nothing was loaded
        check.close()
    finally:
        warehouse_server.stop()


@pytest.mark.parametrize("sse, key_id", [("AES256", ""),
                                         ("aws:kms", "arn:aws:kms:us-east-1:123456789012:key/s3rs")])
def test_server_side_encryption_on_every_object(db, tmp_path, bucket, s3_endpoint, sse, key_id):
    make_table(db, rows=300)
    config = with_line(write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint), "s3",
                       f'sse = "{sse}"\nsse_kms_key_id = "{key_id}"')
    assert run_cli("sync", "-t", "orders", "--batch-size", "100", config=config).returncode == 0
    client = s3_client(s3_endpoint)
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len([k for k in keys if k.endswith(".parquet")]) == 3 and any("/watermarks/" in k for k in keys)
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == sse, key
        if key_id:
            assert head["SSEKMSKeyId"].endswith(key_id.split("/")[-1]), key


def test_secrets_are_never_printed_nor_written(db, tmp_path, bucket, s3_endpoint, pg, sshd):
    """Every main command, MySQL through the tunnel, with distinctive secrets; then stdout, stderr,
    the state folder (snapshots, logs), the error log and every object in the bucket are searched."""
    user = "u" + uuid.uuid4().hex[:8]
    db.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{MYSQL_SECRET}'",
               f"GRANT ALL ON `{db.name}`.* TO '{user}'@'%'")
    pg.execute(f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{WAREHOUSE_SECRET}'")
    make_table(db, rows=500)
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint,
                          extra=ssh_config(sshd) + pg.config())
    text = config.read_text().replace('user = "s3rs"', f'user = "{user}"')
    config.write_text("\n".join(line for line in text.splitlines() if not line.startswith("password")) + "\n")
    home, state = tmp_path / "home", tmp_path / "state"
    env = {**SSH_ENV, "HOME": str(home), "S3RS_STATE_DIR": str(state), "S3RS_MYSQL_PASSWORD": MYSQL_SECRET,
           "S3RS_WAREHOUSE_PASSWORD": WAREHOUSE_SECRET, "S3RS_S3_SECRET_ACCESS_KEY": S3_SECRET,
           "S3RS_S3_ACCESS_KEY_ID": "s3rstest"}
    commands = [["config"], ["config", "--json"], ["status"], ["status", "--json"],
                ["sync", "-t", "orders", "--dry-run"], ["sync", "-t", "orders", "--json", "--verify-data"],
                ["verify", "-t", "orders"], ["watermark", "get", "-t", "orders"],
                ["watermark", "list", "--json"],
                ["s3clean", "list", "-t", "orders"], ["sync", "-t", "orders", "--debug"]]
    outputs = []
    for command in commands:
        result = run_cli(*command, config=config, env=env)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    for broken in ({"S3RS_MYSQL_PASSWORD": MYSQL_SECRET + "x"},
                   {"S3RS_WAREHOUSE_PASSWORD": WAREHOUSE_SECRET + "x"},
                   {"S3RS_BACKUP_READER": "connectorx", "S3RS_MYSQL_PORT": "1"}):
        result = run_cli("sync", "-t", "orders", config=config, env={**env, **broken})
        assert result.returncode != 0 and "Traceback" not in result.stderr
        outputs.append(result.stdout + result.stderr)
    written = [path.read_bytes() for folder in (home, state) for path in folder.rglob("*") if path.is_file()]
    client = s3_client(s3_endpoint)
    stored = [client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
              for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    snapshots = list((state / "status").glob("*.json"))
    assert snapshots and all(path.stat().st_mode & 0o077 == 0 for path in snapshots)
    for secret in (MYSQL_SECRET, WAREHOUSE_SECRET, S3_SECRET, SSH_PASSPHRASE):
        assert not any(secret in output for output in outputs), secret
        assert not any(secret.encode() in data for data in written + stored), secret


def test_state_files_are_private_and_a_readable_config_is_warned_about(db, tmp_path):
    make_table(db, rows=100)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store")
    state = tmp_path / "state"
    env = {"S3RS_STATE_DIR": str(state)}
    assert "warning" not in run_cli("config", config=config).stderr  # 0600: no warning
    for args in (["sync", "-t", "orders"], ["watermark", "reset", "-t", "orders", "--yes"],
                 ["progressive", "orders", "--max-chunks", "1", "--no-ui"]):
        assert run_cli(*args, config=config, env=env, cwd=tmp_path).returncode == 0, args
    private = [*(tmp_path / "store" / "backups" / "_state").rglob("*.json"), *state.rglob("*.json"),
               *tmp_path.glob("progressive_*.log")]
    assert len(private) >= 4
    for path in private:
        assert path.stat().st_mode & 0o777 == 0o600, path
    from s3rs_tui.store.local import LocalStore
    from s3rs_tui.store.lock import TableLock, lock_key

    store = LocalStore(tmp_path / "store", "backups/")
    with TableLock(store, f"{db.name}.orders"):
        assert (store.base / lock_key(f"{db.name}.orders")).stat().st_mode & 0o777 == 0o600
    config.chmod(0o644)
    warned = run_cli("config", "--json", config=config)
    assert warned.returncode == 0
    assert f"s3rs: warning: {config} holds secrets (mysql.password)" in warned.stderr
    assert "chmod 600" in warned.stderr and json.loads(warned.stdout)["warnings"]
    assert os.environ.get("S3RS_MYSQL_PASSWORD") is None
