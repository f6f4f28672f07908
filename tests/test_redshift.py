"""The real Redshift loader and the Redshift `verify` SQL against a strict stand-in for Redshift
(tests/redshift_standin.py: PostgreSQL underneath, Redshift's documented rules on top, Parquet
COPY run from the moto S3 server). Checked: the SQL Redshift would get, the manifest, the merged
result, mixed-case names, values longer than Redshift columns, how a failed COPY is reported,
retried serializable isolation violations, `verify` agreeing and disagreeing, composite keys and
tables without a unique key."""

import io
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import make_table, run_cli
from conftest import s3_client, write_config
from exact_rows import assert_store_matches_mysql, assert_warehouse_matches_mysql
from redshift_standin import Cluster, StandInError, check_parquet, check_redshift_sql
from test_keys import LOG_DDL, TABLES, create, fill_log, sync_while_writing
from test_keys_warehouse import assert_log_in_warehouse, change

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.jobs import verify
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import ConfigError, S3rsError
from s3rs_tui.runtime.events import Notice, Retrying
from s3rs_tui.store import open_store
from s3rs_tui.warehouse import check_config, loader
from s3rs_tui.warehouse.kinds.redshift import RedshiftWarehouse

ROLE = "arn:aws:iam::123456789012:role/s3rs-copy"
COPY = re.compile(r"^COPY s3rs_stage FROM 's3://([^/]+)/(.+\.manifest)' IAM_ROLE '(.+)' "
                  r"FORMAT AS PARQUET MANIFEST$")


@pytest.fixture
def redshift(db, tmp_path, bucket, s3_endpoint, pg, monkeypatch, settings_for):
    """(settings for kind = "redshift" on the moto S3 bucket, the stand-in cluster)."""
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, extra=(
        f'\n[warehouse]\nkind = "redshift"\nhost = "example-cluster.invalid"\ndatabase = "dev"\n'
        f'user = "loader"\niam_role = "{ROLE}"\n'))
    settings = settings_for(config)
    # moto plays AWS S3 in the cluster's region (a configured endpoint_url is refused with Redshift)
    settings.s3.endpoint_url = s3_endpoint
    cluster = Cluster(pg, s3_endpoint)

    def open_standin(settings, store, **_):
        return RedshiftWarehouse(settings, store, connect=cluster.connect)

    monkeypatch.setattr(loader, "open_warehouse", open_standin)
    monkeypatch.setattr(verify, "open_warehouse", open_standin)
    yield settings, cluster
    cluster.close()


def run(settings, name, events=None):
    sink = events.append if events is not None else (lambda e: None)
    TableSync(settings, name, sink, RunControl()).run()
    return loader.TableLoader(settings, name, sink, RunControl(), files_per_load=3).run()


def test_redshift_copies_through_a_manifest_and_merges(db, redshift, pg, bucket):
    settings, cluster = redshift
    make_table(db, rows=1000)
    settings.override("backup.batch_size", 250)
    name = f"{db.name}.orders"
    assert run(settings, name).files == 4
    statements = cluster.statements
    create = next(s for s in statements if s.startswith('CREATE TABLE "public"."orders"'))
    assert create == ('CREATE TABLE "public"."orders" ("id" numeric(20,0), '
                      '"update_at" timestamp without time zone, "amount" numeric(18,4), '
                      '"note" character varying(256), PRIMARY KEY ("id")) DISTKEY("id") SORTKEY("id")')
    copies = [s for s in statements if s.startswith("COPY")]
    assert len(copies) == 2 and all(COPY.match(s) for s in copies)  # 3 files, then 1
    stored = {info.key: info.size for info in open_store(settings).list(f"data/{db.name}/orders/")}
    entries = [entry for manifest in cluster.manifests for entry in manifest["entries"]]
    assert [e["url"] for e in entries] == [f"s3://{bucket}/backups/{key}" for key in sorted(stored)]
    assert all(e["mandatory"] is True
               and e["meta"]["content_length"] == stored[e["url"].split("/backups/")[1]] for e in entries)
    assert not list(open_store(settings).list("_state/manifests/"))  # removed once loaded
    first = statements[statements.index(copies[0]) + 1:]  # into the empty table: a plain insert
    assert first[0].startswith("SELECT (SELECT COUNT(*) FROM s3rs_stage) = (SELECT COUNT(*) FROM (SELECT "
                               'DISTINCT "id" FROM s3rs_stage)')
    assert first[1] == 'SELECT 1 FROM "public"."orders" LIMIT 1'
    assert first[2].startswith('INSERT INTO "public"."orders"') and first[2].endswith("FROM s3rs_stage")
    merge = statements[statements.index(copies[1]) + 1:]  # into rows: the full merge
    assert merge[2].startswith('DELETE FROM "public"."orders" USING s3rs_stage WHERE')
    assert merge[3].startswith('INSERT INTO "public"."orders"') and "LEFT JOIN" in merge[3]
    assert not any(s.lstrip().upper().startswith("MERGE") for s in statements)
    assert pg.execute("SELECT count(*), count(note), sum(amount) FROM public.orders") == [
        (1000, 900, sum(i * 1.25 for i in range(1, 1001)))]
    assert pg.execute("SELECT count(*) FROM public.s3rs_loaded_files") == [(4,)]


def test_the_standin_refuses_what_redshift_refuses(redshift):
    """The stand-in is only worth its checks: each of these fails on a real Redshift."""
    for sql in ("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING", "COPY t FROM STDIN WITH (FORMAT csv)",
                "SELECT string_agg(a, ',') FROM t", "SELECT CAST('x' || substr(h, 1, 15) AS bit(60)) FROM t",
                "SELECT 't'::regclass", "SELECT encode(b, 'hex') FROM t", "SELECT div(k, 10) FROM t",
                "CREATE TABLE t (a character varying(70000))", "CREATE TABLE t (b bytea)"):
        with pytest.raises(StandInError):
            check_redshift_sql(sql)
    _settings, cluster = redshift
    conn = cluster.connect()
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE "public"."Orders" ("Id" bigint)')
        cur.execute("SELECT relname FROM pg_catalog.pg_class WHERE relname IN ('Orders', 'orders')")
        assert cur.fetchall() == [("orders",)]  # r_names: folded, quoted or not
        for options in ("FORMAT AS PARQUET MANIFEST REGION 'us-east-1'", "FORMAT AS PARQUET TRUNCATECOLUMNS",
                        "FORMAT AS PARQUET MAXERROR 10"):
            with pytest.raises(StandInError, match="not supported for PARQUET based COPY"):
                cur.execute(f"COPY orders FROM 's3://b/k' IAM_ROLE '{ROLE}' {options}")


def _parquet(**columns) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out, coerce_timestamps=None)
    return out.getvalue()


@pytest.mark.parametrize("values, redshift_type, refused", [
    (pa.array([1], pa.int64()), "bigint", False),
    (pa.array([1], pa.int64()), "integer", True),            # no narrowing
    (pa.array([1], pa.uint64()), "bigint", True),            # Redshift has no unsigned integers
    (pa.array([1], pa.decimal128(20, 0)), "numeric(20,0)", False),
    (pa.array([1], pa.decimal128(20, 0)), "numeric(18,0)", True),  # no coercion between decimals
    (pa.array([1], pa.timestamp("us")), "timestamp without time zone", False),
    (pa.array([1], pa.timestamp("ns")), "timestamp without time zone", True),  # read as year 161065
    (pa.array([1.5], pa.float64()), "numeric(18,4)", True),
    (pa.array(["ab"]), "character varying(2)", False),
    (pa.array(["éa"]), "character varying(2)", True),        # 3 bytes: lengths are bytes
    (pa.array([b"abc"]), "varbyte(2)", True),
    (pa.array([b"abc"]), "character varying(10)", True),
])
def test_parquet_copy_accepts_only_documented_pairs(values, redshift_type, refused):
    data = _parquet(a=values)
    assert (check_parquet(data, [("a", redshift_type)], "s3://b/k") is not None) == refused
    two_columns = [("a", redshift_type), ("b", "bigint")]
    assert check_parquet(data, two_columns, "s3://b/k")[2] == "Unmatched number of columns"


def test_load_errors_outlive_the_rollback_but_pg_last_copy_id_does_not(redshift, bucket):
    settings, cluster = redshift
    client = s3_client(settings.s3.endpoint_url)
    client.put_object(Bucket=bucket, Key="x.parquet", Body=_parquet(a=pa.array(["toolong"])))
    conn = cluster.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (a character varying(3))")
        conn.autocommit = False
        with pytest.raises(StandInError, match=r"(?s)Spectrum Scan Error.*DETAIL.*context:.*longer than"):
            cur.execute(f"COPY t FROM 's3://{bucket}/x.parquet' IAM_ROLE '{ROLE}' FORMAT AS PARQUET")
        with pytest.raises(Exception, match="current transaction is aborted"):
            cur.execute("SELECT pg_last_copy_id()")  # an aborted transaction runs nothing else
        conn.rollback()
        cur.execute("SELECT pg_last_copy_id(), (SELECT count(*) FROM sys_load_error_detail WHERE "
                    "session_id = pg_backend_pid())")
        assert cur.fetchall() == [(-1, 1)]


def test_a_mixed_case_table_loads_twice(db, redshift, pg):
    """Defect 1: Redshift folds "MixedCase" to mixedcase; describing it by its MySQL spelling found
    nothing, so the second load tried to create it again and dropped its ledger rows."""
    settings, _cluster = redshift
    make_table(db, name="MixedCase", rows=200)
    db.execute("ALTER TABLE `MixedCase` ADD COLUMN `OrderNote` VARCHAR(10) DEFAULT 'n'")
    name = f"{db.name}.MixedCase"
    events = []
    run(settings, name, events)
    db.execute("UPDATE `MixedCase` SET note = 'changed', update_at = '2024-02-01 00:00:00' WHERE id <= 10")
    finished = run(settings, name, events)
    assert finished.status == "success" and finished.rows == 10
    assert not any(isinstance(e, Notice) and "not in the warehouse any more" in e.message for e in events)
    assert pg.execute("SELECT count(*), count(*) FILTER (WHERE note = 'changed') FROM public.mixedcase") == [
        (200, 10)]
    assert pg.execute("SELECT count(DISTINCT file_key) FROM public.s3rs_loaded_files") == [
        (len(list(open_store(settings).list(f"data/{db.name}/MixedCase/"))),)]
    assert pg.execute("SELECT count(ordernote) FROM public.mixedcase") == [(200,)]
    assert verify.verify_table(settings, name, lambda e: None).agrees


def test_values_longer_than_redshift_columns_are_cut_in_a_load_copy(db, redshift, pg):
    """Defect 2: a 70,000-byte TEXT and a 2 MB LONGBLOB failed every COPY (Parquet COPY cannot
    truncate). Now they load cut to the column's size, counted per column, and the backup file
    keeps the whole values."""
    settings, _cluster = redshift
    db.execute("CREATE TABLE docs (id BIGINT PRIMARY KEY, update_at DATETIME NOT NULL, body LONGTEXT, "
               "data LONGBLOB, KEY (update_at, id))")
    body, data = "é" * 35_000, bytes(range(256)) * 8192  # 70,000 bytes of UTF-8; 2 MiB
    db.executemany("INSERT INTO docs VALUES (%s, '2024-01-01 00:00:00', %s, %s)",
                   [(1, body, data), (2, "short", b"\x00\x01")])
    events = []
    run(settings, f"{db.name}.docs", events)
    rows = pg.execute("SELECT id, body, data FROM public.docs ORDER BY id")
    assert [(i, text, bytes(blob)) for i, text, blob in rows] == [
        (1, "é" * 32_767, data[:1_024_000]),  # 65,534 bytes: cut on a character, not inside one
        (2, "short", b"\x00\x01")]
    notices = [e.message for e in events if isinstance(e, Notice) and "cut" in e.message]
    assert notices and "body: 1" in notices[0] and "data: 1" in notices[0]
    store = open_store(settings)
    (key,) = [info.key for info in store.list(f"data/{db.name}/docs/")]
    stored = pq.read_table(io.BytesIO(s3_client(settings.s3.endpoint_url).get_object(
        Bucket=settings.s3.bucket, Key=settings.s3.prefix + key)["Body"].read()))
    assert stored.column("body")[0].as_py() == body and stored.column("data")[0].as_py() == data
    assert not list(store.list("_state/load-copies/")) and not list(store.list("_state/manifests/"))
    db.execute("UPDATE docs SET body = CONCAT(body, 'x'), update_at = '2024-01-02 00:00:00' WHERE id = 1")
    assert run(settings, f"{db.name}.docs").rows == 1  # and again: never unloadable


def _replace_with_nanosecond_timestamps(settings, key):
    """Rewrite a stored data file as another tool might have: timestamps in nanoseconds."""
    client = s3_client(settings.s3.endpoint_url)
    table = pq.read_table(io.BytesIO(client.get_object(Bucket=settings.s3.bucket,
                                                       Key=settings.s3.prefix + key)["Body"].read()))
    table = table.set_column(1, table.schema.field(1).with_type(pa.timestamp("ns")),
                             table.column(1).cast(pa.timestamp("ns")))
    out = io.BytesIO()
    pq.write_table(table, out, coerce_timestamps=None)
    client.put_object(Bucket=settings.s3.bucket, Key=settings.s3.prefix + key, Body=out.getvalue())


def test_a_failed_copy_keeps_redshifts_detail_and_load_errors(db, redshift, pg, settings_for):
    """Defect 3: the error kept its first line only, and the load errors were looked up by
    pg_last_copy_id() after the rollback, which no longer points at the failed COPY."""
    settings, _cluster = redshift
    make_table(db, rows=100)
    name = f"{db.name}.orders"
    TableSync(settings, name, lambda e: None, RunControl()).run()
    (key,) = [info.key for info in open_store(settings).list(f"data/{db.name}/orders/")][:1]
    _replace_with_nanosecond_timestamps(settings, key)
    with pytest.raises(S3rsError) as caught:
        loader.TableLoader(settings, name, lambda e: None, RunControl()).run()
    message = str(caught.value)
    assert "\n" not in message
    assert "Spectrum Scan Error" in message and "has an incompatible Parquet schema for column" in message
    assert f"first load errors: s3://{settings.s3.bucket}/backups/{key} column update_at: 15007" in message
    assert "(manifest s3://" in message
    assert len(list(open_store(settings).list("_state/manifests/"))) == 1  # kept for the operator
    assert pg.execute("SELECT count(*) FROM public.s3rs_loaded_files") == [(0,)]


def test_a_serializable_isolation_violation_is_retried(db, redshift, pg):
    """Defect 4: error 1023 (two loads writing the shared ledger at once) is transient: the
    group's transaction is rolled back and retried (c_serial_isolation)."""
    settings, cluster = redshift
    make_table(db, rows=300)
    cluster.fail_serializable(r'^INSERT INTO "public"\."s3rs_loaded_files"')
    events = []
    finished = run(settings, f"{db.name}.orders", events)
    retries = [e for e in events if isinstance(e, Retrying)]
    assert finished.status == "success" and len(retries) == 1
    assert "Serializable isolation violation" in retries[0].error
    assert pg.execute("SELECT count(*), count(DISTINCT id) FROM public.orders") == [(300, 300)]
    assert not cluster.serializable  # the violation did happen


def test_redshift_with_an_s3_endpoint_is_refused_at_config_time(db, tmp_path, s3_endpoint, bucket,
                                                                settings_for):
    """Defect 5: Redshift COPY reads only AWS S3 in its own region, never MinIO and the like."""
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint,
                          extra='\n[warehouse]\nkind = "redshift"\n')
    with pytest.raises(ConfigError) as error:
        check_config(settings_for(config))
    assert error.value.exit_code == 2 and "\n" not in str(error.value)
    assert "endpoint_url" in str(error.value) and "AWS S3" in str(error.value)
    result = run_cli("config", config=config)
    assert result.returncode == 2 and "Redshift COPY reads only AWS S3" in result.stderr


def test_redshift_verify_runs_and_finds_a_difference(db, redshift, pg):
    """Defect 6: the Redshift verify SQL (STRTOL, TO_HEX, TRUNC, GROUP BY an alias) runs."""
    settings, cluster = redshift
    db.execute("CREATE TABLE files (id BIGINT PRIMARY KEY, update_at DATETIME NOT NULL, name VARCHAR(20), "
               "digest VARBINARY(16), made DATE, KEY (update_at, id))")
    db.executemany("INSERT INTO files VALUES (%s, '2024-01-01 00:00:00', %s, %s, '2023-05-06')",
                   [(i, f"file {i}", bytes([i % 256]) * 16) for i in range(1, 301)])
    name = f"{db.name}.files"
    run(settings, name)
    agreed = verify.verify_table(settings, name, lambda e: None, chunk_keys=100)
    assert agreed.agrees and agreed.mysql_rows == agreed.warehouse_rows == 300 and agreed.chunks == 4
    assert any("STRTOL(" in s and "TO_HEX(" in s and "GROUP BY s3rs_chunk" in s for s in cluster.statements)
    pg.execute("UPDATE public.files SET digest = '\\x00'::bytea WHERE id = 150")
    differs = verify.verify_table(settings, name, lambda e: None, chunk_keys=100)
    assert not differs.agrees and [r.changed for r in differs.ranges] == [["150"]]


def test_redshift_settings_are_checked(db, tmp_path, settings_for):
    make_table(db, rows=10)
    local = settings_for(write_config(tmp_path / "a.toml", db, extra='\n[warehouse]\nkind = "redshift"\n'))
    with pytest.raises(ConfigError, match="loads straight from S3"):
        RedshiftWarehouse(local, open_store(local))
    bad_role = write_config(tmp_path / "b.toml", db,
                            extra='\n[warehouse]\nkind = "redshift"\niam_role = "x\' --"\n')
    result = run_cli("sync", "-t", "orders", config=bad_role)
    assert result.returncode == 2 and "is not an IAM role ARN" in result.stderr
    assert not list(tmp_path.rglob("*.parquet"))  # refused before anything was stored


# -- composite keys and tables without one (test_keys.py, test_keys_warehouse.py) ------------

@pytest.mark.parametrize("table", ["salaries", "order_lines"])
def test_composite_keys_merge_into_the_redshift_standin(db, redshift, pg, table):
    """The primary key (two or three columns) is picked up without any table settings."""
    settings, cluster = redshift
    name = f"{db.name}.{table}"
    settings.override("backup.batch_size", 300)
    create(db, table, 3000)
    run(settings, name)
    change(db, table)
    run(settings, name)
    key = TABLES[table][2]
    files = assert_store_matches_mysql(db, settings, name, table, key=key, history=True)
    assert_warehouse_matches_mysql(pg.execute, db, files, table, key=key)
    keys = ", ".join(f'"{k}"' for k in key)
    assert any(f"SELECT DISTINCT {keys} FROM s3rs_stage" in s for s in cluster.statements)
    assert any(s.startswith(f'DELETE FROM "public"."{table}" USING s3rs_stage WHERE')
               and all(f'"{k}" = s3rs_stage."{k}"' in s for k in key) for s in cluster.statements)
    differs_at = TABLES[table][3]
    pg.execute(f"UPDATE public.{table} SET update_at = update_at + interval '1 second' "
               f"WHERE ({keys}) = %s", (differs_at,))
    found = verify.verify_table(settings, name, lambda e: None)
    shown = f"({', '.join(map(str, differs_at))})"
    assert not found.agrees and [r.changed for r in found.ranges] == [[shown]]



def test_concurrent_writers_on_a_composite_key_into_the_redshift_standin(db, redshift, pg):
    settings, _ = redshift
    create(db, "salaries", 2000)
    name = f"{db.name}.salaries"
    files = sync_while_writing(
        db, settings, name, lambda: loader.TableLoader(settings, name, lambda e: None, RunControl()).run())
    assert_warehouse_matches_mysql(pg.execute, db, files, "salaries", key=TABLES["salaries"][2])


def test_a_keyless_table_loads_into_the_redshift_standin(db, redshift, pg):
    settings, _ = redshift
    db.execute(LOG_DDL)
    fill_log(db, 5000, 50)
    settings.override("backup.batch_size", 700)
    name = f"{db.name}.log"
    run(settings, name)
    fill_log(db, 500, 5, start="2024-02-01", offset=5000)
    run(settings, name)
    assert_log_in_warehouse(db, pg.execute)
    with pytest.raises(Exception, match="no unique key"):
        verify.verify_table(settings, name, lambda e: None)
    assert loader.TableLoader(settings, name, lambda e: None, RunControl()).run().files == 0
