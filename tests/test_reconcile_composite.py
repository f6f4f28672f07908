"""`s3rs reconcile` on composite keys (INT + DATE, VARCHAR + INT + DATE) and keyless tables, on
real MariaDB, PostgreSQL, DuckDB, the Redshift stand-in and the store alone: deletes, updates that
leave the cursor alone and inserts behind the watermark at random keys are found as whole keys,
stored as fix and deletion files keyed by every key column, applied by every key column, and leave
the backup equal to MySQL in every column; also after a SIGKILL mid-reconcile and a rerun."""

import io
import json
import random

import duckdb
import pyarrow.parquet as pq
import pytest
from cli_helpers import killed_at_failpoint, run_cli
from conftest import write_config
from exact_rows import assert_warehouse_matches_mysql, canonical, digest, mysql_columns, mysql_rows
from redshift_standin import Cluster
from test_keys import LOG_DDL, TABLES, create, fill_log, with_tables

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.jobs import checksums, reconcile as reconcile_job, verify
from s3rs_tui.jobs.store_state import TABLE, StoreState
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.store import open_store
from s3rs_tui.store.history import DELETION, FIX, FOUND_AT, kind_of
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse import loader
from s3rs_tui.warehouse.kinds.redshift import RedshiftWarehouse

ROWS = 6_000
CHANGES = 30  # of each kind
CHUNK = 150   # salaries: emp_no 10000..11199 in 8 ranges; order_lines: its few shops' hash buckets
LATE = {"salaries": ("from_date", "1980-01-01"), "order_lines": ("day", "2023-12-31")}


def keys_of(db, table: str) -> list[tuple]:
    names = TABLES[table][2]
    return sorted(db.execute(f"SELECT {', '.join(names)} FROM {table}"))


def where_key(table: str, keys) -> tuple[str, list]:
    names = TABLES[table][2]
    one = "(" + " AND ".join(f"{name} = %s" for name in names) + ")"
    return " OR ".join([one] * len(keys)), [value for key in keys for value in key]


def shown(key) -> tuple[str, ...]:
    return tuple(canonical(value) for value in key)


def change_behind_the_cursor(db, table: str, seed: int) -> tuple[set, set, set]:
    """Deletes, updates that leave update_at alone, and inserts of new keys with old cursor values
    (behind the watermark), at random keys: (deleted, updated, inserted) as canonical key texts.
    order_lines also gets a late row whose text key holds the '|' that joins a key's parts."""
    rng = random.Random(seed)
    picked = rng.sample(keys_of(db, table), 2 * CHANGES)
    deleted, updated = picked[:CHANGES], picked[CHANGES:]
    names = TABLES[table][2]
    column, value = LATE[table]
    moved = (tuple(value if name == column else part for name, part in zip(names, key, strict=True))
             for key in rng.sample(keys_of(db, table), 4 * CHANGES))
    inserted = list(dict.fromkeys(moved))[:CHANGES]
    if table == "order_lines":
        inserted[0] = ("sh|op", *inserted[0][1:])
    where, params = where_key(table, deleted)
    db.execute(f"DELETE FROM {table} WHERE {where}", params=params)
    where, params = where_key(table, updated)
    change = {"salaries": "salary = salary + 1, note = 'fixed by hand'",
              "order_lines": "qty = -qty - 1"}[table]
    db.execute(f"UPDATE {table} SET {change}, update_at = update_at WHERE {where}", params=params)
    other = {"salaries": "salary, note", "order_lines": "qty"}[table]
    late = {"salaries": "7, 'late'", "order_lines": "7"}[table]
    for key in inserted:  # behind the watermark: the oldest cursor value there is
        db.execute(f"INSERT INTO {table} ({', '.join(names)}, {other}, update_at) "
                   f"VALUES ({', '.join(['%s'] * len(names))}, {late}, '2024-01-01')", params=key)
    return ({shown(k) for k in deleted}, {shown(k) for k in updated}, {shown(k) for k in inserted})


def history_keys(settings, name: str, table: str) -> tuple[list[tuple], list[tuple]]:
    """Whole keys in the table's fix files and in its deletion files, as canonical texts."""
    store = open_store(settings)
    names = list(TABLES[table][2])
    fixed, gone = [], []
    for info in store.list(table_prefix(name)):
        kind = kind_of(info.key)
        if kind in (FIX, DELETION):
            data = pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))
            keys = zip(*(data.column(n).to_pylist() for n in names), strict=True)
            (fixed if kind == FIX else gone).extend(shown(k) for k in keys)
            if kind == DELETION:
                assert data.schema.names == [*names, FOUND_AT]
    return sorted(fixed), sorted(gone)


def setup(db, tmp_path, table: str, extra: str = "", store: str = "store"):
    create(db, table, ROWS)
    config = with_tables(write_config(tmp_path / f"{store}.toml", db, extra=extra, store=tmp_path / store),
                         db, table)
    assert run_cli("sync", "-t", table, "--no-ui", config=config).returncode == 0
    return config


def reconcile(config, table: str, *args):
    return run_cli("reconcile", "-t", table, "--no-ui", "--chunk-size", CHUNK, *args, config=config,
                   timeout=300)


def stored_keys(settings, name: str) -> list[str]:
    return [info.key for info in open_store(settings).list(table_prefix(name))]


def store_newest(settings, db, table: str) -> dict:
    """key -> (cursor, digest) of the store's newest state, as reconcile reads it."""
    name, names = f"{db.name}.{table}", TABLES[table][2]
    columns = mysql_columns(db, table)
    watermark = WatermarkStore(open_store(settings)).get(name)
    with StoreState(open_store(settings), name, watermark, names) as state:
        rows = state.run(f"SELECT {', '.join(columns)} FROM {TABLE}", [])
    ats, at_cursor = [columns.index(n) for n in names], columns.index("update_at")
    return {tuple(canonical(row[at]) for at in ats): (canonical(row[at_cursor]), digest(row)) for row in rows}


@pytest.mark.parametrize("table", ["salaries", "order_lines"])
def test_composite_keys_into_postgres_and_against_the_store(db, tmp_path, pg, settings_for, table):
    with_pg = setup(db, tmp_path, table, pg.config(), "pg")
    alone = with_tables(write_config(tmp_path / "alone.toml", db, store=tmp_path / "alone"), db, table)
    assert run_cli("sync", "-t", table, "--no-ui", config=alone).returncode == 0
    deleted, updated, inserted = change_behind_the_cursor(db, table, seed=len(table))
    assert run_cli("verify", "-t", table, config=with_pg).returncode == 1
    name, key = f"{db.name}.{table}", TABLES[table][2]

    for config in (with_pg, alone):
        result = reconcile(config, table, "--json")
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)["tables"][0]
        assert (found["fixed"], found["deleted"]) == (len(updated | inserted), len(deleted)), found
        wanted = (sorted(updated | inserted), sorted(deleted))
        assert history_keys(settings_for(config), name, table) == wanted
    assert run_cli("verify", "-t", table, config=with_pg).returncode == 0
    assert_warehouse_matches_mysql(pg.execute, db, stored_keys(settings_for(with_pg), name), table, key=key)
    assert store_newest(settings_for(alone), db, table) == mysql_rows(db, table, key=key)
    for config in (with_pg, alone):  # nothing left to find: nothing stored twice
        again = reconcile(config, table, "--json")
        assert json.loads(again.stdout)["tables"][0]["files"] == [], again.stdout


def test_sigkill_mid_reconcile_on_a_composite_key_then_rerun(db, tmp_path, pg, settings_for):
    table = "salaries"
    config = setup(db, tmp_path, table, pg.config())
    deleted, updated, inserted = change_behind_the_cursor(db, table, seed=3)
    killed_at_failpoint(config, "reconcile-stored:2", tmp_path, "reconcile", "-t", table, "--no-ui",
                        "--chunk-size", CHUNK)
    name = f"{db.name}.{table}"
    assert open_store(settings_for(config)).get_bytes(f"_state/reconcile/{name}.json")

    result = reconcile(config, table, "--break-lock")  # the killed run's lock is still there
    assert result.returncode == 0, result.stderr
    assert "going on with the reconcile interrupted" in result.stderr
    assert history_keys(settings_for(config), name, table) == (sorted(updated | inserted), sorted(deleted))
    assert run_cli("verify", "-t", table, config=config).returncode == 0
    assert_warehouse_matches_mysql(pg.execute, db, stored_keys(settings_for(config), name), table,
                                   key=TABLES[table][2])


def test_three_column_key_into_duckdb(db, tmp_path, settings_for):
    table, warehouse = "order_lines", tmp_path / "w.duckdb"
    config = setup(db, tmp_path, table, f'\n[warehouse]\nkind = "duckdb"\npath = "{warehouse}"\n')
    deleted, updated, inserted = change_behind_the_cursor(db, table, seed=8)
    result = reconcile(config, table)
    assert result.returncode == 0, result.stderr
    name = f"{db.name}.{table}"
    assert history_keys(settings_for(config), name, table) == (sorted(updated | inserted), sorted(deleted))
    assert run_cli("verify", "-t", table, config=config).returncode == 0
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert_warehouse_matches_mysql(lambda sql: conn.execute(sql).fetchall(), db,
                                       stored_keys(settings_for(config), name), table, key=TABLES[table][2])


def test_composite_key_into_the_redshift_standin(db, tmp_path, bucket, s3_endpoint, pg, monkeypatch,
                                                 settings_for):
    """Deletion files of an INT + DATE key pass the strict stand-in and delete by both columns."""
    table = "salaries"
    config = with_tables(write_config(tmp_path / "s3rs.toml", db, bucket=bucket, extra=(
        '\n[warehouse]\nkind = "redshift"\nhost = "example-cluster.invalid"\ndatabase = "dev"\n'
        'user = "loader"\niam_role = "arn:aws:iam::123456789012:role/s3rs-copy"\n')), db, table)
    settings = settings_for(config)
    settings.s3.endpoint_url = s3_endpoint
    cluster = Cluster(pg, s3_endpoint)

    def open_standin(settings, store, **_):
        return RedshiftWarehouse(settings, store, connect=cluster.connect)

    for module in (loader, verify, reconcile_job):
        monkeypatch.setattr(module, "open_warehouse", open_standin)
    try:
        create(db, table, ROWS)
        name = f"{db.name}.{table}"
        TableSync(settings, name, lambda e: None, RunControl()).run()
        loader.TableLoader(settings, name, lambda e: None, RunControl()).run()
        deleted, updated, inserted = change_behind_the_cursor(db, table, seed=9)
        assert not verify.verify_table(settings, name, lambda e: None).agrees
        found = reconcile_job.TableReconcile(settings, name, lambda e: None, RunControl(),
                                             reconcile_job.ReconcileOptions(chunk_keys=CHUNK)).run()
        assert (found.fixed, found.deleted) == (len(updated | inserted), len(deleted))
        assert any(s.startswith('DELETE FROM "public"."salaries" USING s3rs_stage') and '"from_date"' in s
                   for s in cluster.statements)
        assert verify.verify_table(settings, name, lambda e: None).agrees
        assert_warehouse_matches_mysql(pg.execute, db, stored_keys(settings, name), table,
                                       key=TABLES[table][2])
    finally:
        cluster.close()


def test_a_keyless_table_is_refused_with_one_line(db, tmp_path):
    db.execute(LOG_DDL)
    fill_log(db, 500, 10)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store")
    with open(config, "a") as handle:
        handle.write(f'\n[tables."{db.name}.log"]\ncursor_column = "update_at"\n')
    assert run_cli("sync", "-t", "log", "--no-ui", config=config).returncode == 0
    result = run_cli("reconcile", "-t", "log", "--no-ui", config=config)
    assert result.returncode == 2, result.stderr
    assert "has no unique key" in result.stderr and "none to compare them by" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("cell_rows", [200_000, 100])
def test_a_leading_text_column_of_few_values_is_narrowed_to_cells(db, tmp_path, settings_for, monkeypatch,
                                                                   cell_rows):
    """order_lines' leading column takes 3 values, so 3 hash buckets hold the table: the rows read
    to name the keys are those of the differing cells (1/256 of a bucket each), not whole buckets,
    read for several buckets in one scan of each side up to CELL_ROWS rows (one scan here; with
    100, a scan per bucket)."""
    table = "order_lines"
    config = setup(db, tmp_path, table)
    deleted, updated, inserted = change_behind_the_cursor(db, table, seed=4)
    read, scans = [], []
    diff, cells_rows = checksums.Comparison.diff, checksums.Comparison.cells_rows

    def counted(self, chunk, mine, theirs, name=None):
        read.append(len(mine) + len(theirs))
        return diff(self, chunk, mine, theirs, name)

    def scanned(self, conn, cells):
        scans.append(sorted(cells))
        return cells_rows(self, conn, cells)

    monkeypatch.setattr(checksums.Comparison, "diff", counted)
    monkeypatch.setattr(checksums.Comparison, "cells_rows", scanned)
    monkeypatch.setattr(reconcile_job, "CELL_ROWS", cell_rows)
    found = reconcile_job.TableReconcile(settings_for(config), f"{db.name}.{table}", lambda e: None,
                                         RunControl()).run()
    assert (found.fixed, found.deleted) == (len(updated | inserted), len(deleted))
    assert found.ranges == len(read) == 4 and found.rows_checked == ROWS  # shop0..2 and sh|op
    assert sum(read) < ROWS / 3, read  # both sides of whole buckets: about 2 x ROWS
    assert len(scans) == (1 if cell_rows > ROWS else 4), scans
    assert store_newest(settings_for(config), db, table) == mysql_rows(db, table, key=TABLES[table][2])


def test_a_timestamp_key_part_into_postgres_and_against_the_store(db, tmp_path, pg, settings_for):
    """A TIMESTAMP(6) key part (UTC in the files) in deletion files and in re-read rows."""
    db.execute("CREATE TABLE events (device VARCHAR(10) NOT NULL, at TIMESTAMP(6) NOT NULL, n INT, "
               "update_at DATETIME NOT NULL, PRIMARY KEY (device, at), KEY (update_at))")
    db.execute("INSERT INTO events SELECT CONCAT('d', seq % 5), "
               "'2024-01-01' + INTERVAL seq * 1001 MICROSECOND, seq, '2024-01-01' + INTERVAL seq SECOND "
               "FROM seq_1_to_2000")
    configs = [with_tables(write_config(tmp_path / f"{s}.toml", db, extra=extra, store=tmp_path / s), db,
                           "events") for s, extra in (("pg", pg.config()), ("alone", ""))]
    for config in configs:
        assert run_cli("sync", "-t", "events", "--no-ui", config=config).returncode == 0
    db.execute("DELETE FROM events WHERE n IN (7, 1500)")
    db.execute("UPDATE events SET n = -n, update_at = update_at WHERE n = 900")
    db.execute("INSERT INTO events VALUES ('d9', '2023-06-01 10:00:00.000007', 5, '2024-01-01')")
    key = ("device", "at")
    for config in configs:
        result = reconcile(config, "events", "--json")
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)["tables"][0]
        assert (found["fixed"], found["deleted"]) == (2, 2), found
    assert run_cli("verify", "-t", "events", config=configs[0]).returncode == 0
    name = f"{db.name}.events"
    assert_warehouse_matches_mysql(pg.execute, db, stored_keys(settings_for(configs[0]), name), "events",
                                   key=key)
    watermark = WatermarkStore(open_store(settings_for(configs[1]))).get(name)
    columns = mysql_columns(db, "events")
    with StoreState(open_store(settings_for(configs[1])), name, watermark, key) as state:
        rows = state.run(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} FROM {TABLE}", [])
    newest = {(canonical(r[0]), canonical(r[1])): (canonical(r[3]), digest(r)) for r in rows}
    assert newest == mysql_rows(db, "events", key=key)


def test_a_one_column_datetime_key_against_the_store(db, tmp_path, settings_for):
    """A one-column key that is not a number or text is compared as `v<text>`, like a composite
    key's part: reconcile reads it back to the column's value."""
    db.execute("CREATE TABLE ticks (at DATETIME(3) NOT NULL PRIMARY KEY, n INT, update_at DATETIME NOT NULL, "
               "KEY (update_at))")
    db.execute("INSERT INTO ticks SELECT '2024-01-01' + INTERVAL seq * 7 SECOND, seq, "
               "'2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_1000")
    config = with_tables(write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store"), db, "ticks")
    assert run_cli("sync", "-t", "ticks", "--no-ui", config=config).returncode == 0
    db.execute("DELETE FROM ticks WHERE n = 10")
    db.execute("UPDATE ticks SET n = -n, update_at = update_at WHERE n = 20")
    result = reconcile(config, "ticks", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)["tables"][0]
    assert (found["fixed"], found["deleted"]) == (1, 1), found
    assert found["sample"] == ["2024-01-01 00:02:20.000000", "2024-01-01 00:01:10.000000"], found
    name = f"{db.name}.ticks"
    watermark = WatermarkStore(open_store(settings_for(config))).get(name)
    with StoreState(open_store(settings_for(config)), name, watermark, ["at"]) as state:
        rows = state.run('SELECT "at", n, update_at FROM s3rs_newest', [])
    assert sorted((canonical(a), n) for a, n, _ in rows) == sorted(
        (canonical(a), n) for a, n in db.execute("SELECT at, n FROM ticks"))
