"""Redshift cannot run here, so it is the one thing mocked: a connection that records every
statement, runs the COPY from S3 itself (reading the manifest the loader wrote to the moto S3
server) and hands everything else to a real PostgreSQL, where the shared staging, merge and ledger
logic runs for real. Checked: the SQL Redshift would get, the manifest, the merged result, and
how a failed COPY is reported."""

import io
import json
import re

import psycopg2
import pytest

from cli_helpers import make_table, run_cli
from conftest import s3_client, write_config
from s3rs_tui.engine.control import RunControl
from s3rs_tui.engine.sync import TableSync
from s3rs_tui.errors import ConfigError, S3rsError
from s3rs_tui.store import open_store
from s3rs_tui.warehouse import loader
from s3rs_tui.warehouse.merge import STAGE
from s3rs_tui.warehouse.postgres import _csv
from s3rs_tui.warehouse.redshift import RedshiftWarehouse

ROLE = "arn:aws:iam::123456789012:role/s3rs-copy"
COPY = re.compile(r"^COPY s3rs_stage FROM 's3://([^/]+)/(.+\.manifest)' IAM_ROLE '(.+)' FORMAT AS PARQUET MANIFEST$")
LOAD_ERROR = ("s3://bucket/backups/data/x.parquet", "amount", 1207, "Invalid digit, Value '.', Pos 0")


class FakeRedshift:
    """A psycopg2 connection to PostgreSQL that plays Redshift's part of the conversation."""

    def __init__(self, real, endpoint: str, fail_copy: bool = False):
        self.real, self.endpoint, self.fail_copy = real, endpoint, fail_copy
        self.statements: list[str] = []
        self.manifests: list[dict] = []

    def __getattr__(self, name):  # autocommit, commit, rollback, close
        return getattr(self.real, name)

    def __setattr__(self, name, value):
        if name == "autocommit":
            self.real.autocommit = value
        else:
            super().__setattr__(name, value)

    def cursor(self):
        return FakeCursor(self)


class FakeCursor:
    def __init__(self, conn: FakeRedshift):
        self.conn, self.real = conn, conn.real.cursor()
        self.canned = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    @property
    def description(self):
        return True if self.canned is not None else self.real.description

    def fetchall(self):
        return self.canned if self.canned is not None else self.real.fetchall()

    def execute(self, sql, params=None):
        self.conn.statements.append(sql)
        copy = COPY.match(sql)
        if copy:
            return self._copy(*copy.groups())
        if "sys_load_error_detail" in sql:
            self.canned = [LOAD_ERROR]
            return None
        # Redshift-only DDL, in PostgreSQL's words.
        sql = re.sub(r" DISTKEY\(.*?\) SORTKEY\(.*?\)$", "", sql)
        return self.real.execute(re.sub(r"varbyte\(\d+\)", "bytea", sql), params)

    def _copy(self, bucket: str, key: str, role: str) -> None:
        assert role == ROLE
        client = s3_client(self.conn.endpoint)
        manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        self.conn.manifests.append(manifest)
        if self.conn.fail_copy:
            self.real.execute("SELECT 1/0")  # any server-side error aborts the transaction, as COPY's would
        import pyarrow.parquet as pq
        for entry in manifest["entries"]:
            entry_bucket, entry_key = entry["url"][len("s3://"):].split("/", 1)
            data = client.get_object(Bucket=entry_bucket, Key=entry_key)["Body"].read()
            table = pq.read_table(io.BytesIO(data))
            for batch in table.to_batches():
                self.real.copy_expert(f"COPY {STAGE} FROM STDIN WITH (FORMAT csv)", io.BytesIO(_csv(batch)))


@pytest.fixture
def redshift(db, tmp_path, bucket, s3_endpoint, pg, monkeypatch):
    """Settings for kind = "redshift" on the moto S3 bucket; the fake connections it made."""
    make_table(db, rows=1000)
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint, extra=(
        f'\n[warehouse]\nkind = "redshift"\nhost = "example-cluster.invalid"\ndatabase = "dev"\n'
        f'user = "loader"\niam_role = "{ROLE}"\n'))
    made: list[FakeRedshift] = []
    state = {"fail_copy": False}

    def connect(**_):
        made.append(FakeRedshift(psycopg2.connect(**pg.server.connect_args(pg.name)), s3_endpoint,
                                 state["fail_copy"]))
        return made[-1]

    monkeypatch.setattr(loader, "open_warehouse",
                        lambda settings, store, **_: RedshiftWarehouse(settings, store, connect=connect))
    return config, made, state


def run(settings, name):
    TableSync(settings, name, lambda e: None, RunControl()).run()
    return loader.TableLoader(settings, name, lambda e: None, RunControl(), files_per_load=3).run()


def test_redshift_copies_through_a_manifest_and_merges(db, redshift, pg, bucket, settings_for):
    config, made, _ = redshift
    settings = settings_for(config)
    settings.override("backup.batch_size", 250)
    name = f"{db.name}.orders"
    assert run(settings, name).files == 4
    (conn,) = made
    statements = conn.statements
    create = next(s for s in statements if s.startswith('CREATE TABLE "public"."orders"'))
    assert create == ('CREATE TABLE "public"."orders" ("id" numeric(20,0), "update_at" timestamp without time zone, '
                      '"amount" numeric(18,4), "note" character varying(256), PRIMARY KEY ("id")) '
                      'DISTKEY("id") SORTKEY("id")')
    copies = [s for s in statements if s.startswith("COPY")]
    assert len(copies) == 2 and all(COPY.match(s) for s in copies)  # 3 files, then 1
    stored = {info.key: info.size for info in open_store(settings).list(f"data/{db.name}/orders/")}
    entries = [entry for manifest in conn.manifests for entry in manifest["entries"]]
    assert [e["url"] for e in entries] == [f"s3://{bucket}/backups/{key}" for key in sorted(stored)]
    assert all(e["mandatory"] is True and e["meta"]["content_length"] == stored[e["url"].split("/backups/")[1]]
               for e in entries)
    # The manifests are removed once loaded.
    assert not list(open_store(settings).list("_state/manifests/"))
    merge = statements[statements.index(copies[0]) + 1:]
    assert merge[0].startswith("CREATE TEMP TABLE s3rs_newest AS SELECT") and "ROW_NUMBER() OVER" in merge[0]
    assert merge[1].startswith('DELETE FROM "public"."orders" USING s3rs_newest WHERE')
    assert merge[2].startswith('INSERT INTO "public"."orders"') and "LEFT JOIN" in merge[2]
    assert not any(s.lstrip().upper().startswith("MERGE") for s in statements)
    rows = dict(pg.execute("SELECT id, note FROM public.orders"))
    assert len(rows) == 1000
    assert {int(k) for k, in pg.execute("SELECT count(*) FROM public.s3rs_loaded_files")} == {4}


def test_a_failed_copy_shows_redshifts_load_errors(db, redshift, pg, settings_for):
    config, made, state = redshift
    state["fail_copy"] = True
    settings = settings_for(config)
    with pytest.raises(S3rsError) as caught:
        run(settings, f"{db.name}.orders")
    message = str(caught.value)
    assert "first load errors: s3://bucket/backups/data/x.parquet column amount: 1207 Invalid digit" in message
    assert "(manifest s3://" in message
    assert any("sys_load_error_detail" in s and "pg_last_copy_id()" in s for s in made[0].statements)
    assert len(list(open_store(settings).list("_state/manifests/"))) == 1  # kept for the operator
    assert pg.execute("SELECT count(*) FROM public.s3rs_loaded_files") == [(0,)]
    result = run_cli("sync", "-t", "orders", config=config)  # the real driver: no cluster to reach
    assert result.returncode == 1 and "cannot connect to the warehouse (redshift at" in result.stderr


def test_redshift_settings_are_checked(db, tmp_path, settings_for):
    make_table(db, rows=10)
    local = settings_for(write_config(tmp_path / "a.toml", db, extra='\n[warehouse]\nkind = "redshift"\n'))
    with pytest.raises(ConfigError, match="loads straight from S3"):
        RedshiftWarehouse(local, open_store(local))
    bad_role = write_config(tmp_path / "b.toml", db, extra='\n[warehouse]\nkind = "redshift"\niam_role = "x\' --"\n')
    result = run_cli("sync", "-t", "orders", config=bad_role)
    assert result.returncode == 2 and "is not an IAM role ARN" in result.stderr
    assert not list(tmp_path.rglob("*.parquet"))  # refused before anything was stored
