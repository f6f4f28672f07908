"""`s3rs reconcile` on real MariaDB, PostgreSQL and store: deletes, changes that left the cursor
alone and inserts behind the watermark are found exactly, stored as fix and deletion files, loaded
once, and leave the warehouse (or the store's newest state) equal to MySQL in every column; also
after a SIGKILL mid-reconcile and a rerun."""

import io
import json
import random

import duckdb
import pyarrow.parquet as pq
from cli_helpers import cursor_time, killed_at_failpoint, make_table, run_cli
from conftest import write_config
from exact_rows import assert_warehouse_matches_mysql, canonical, digest, mysql_columns, mysql_rows
from redshift_standin import Cluster

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.jobs import reconcile as reconcile_job, verify
from s3rs_tui.jobs.store_state import TABLE, StoreState
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.store import open_store
from s3rs_tui.store.history import DELETION, FIX, FOUND_AT, kind_of
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse import loader
from s3rs_tui.warehouse.kinds.redshift import RedshiftWarehouse

ROWS = 20_000
CHANGES = 60   # of each kind
CHUNK = 2_000  # keys per range: ids 1..~20,100 make 11 ranges


def changed_table(db) -> None:
    """make_table's rows with every 97th id left out (gaps to insert into later)."""
    make_table(db, rows=ROWS)
    db.execute("DELETE FROM orders WHERE id % 97 = 0")


def change_behind_the_cursor(db, seed: int = 11) -> tuple[set[int], set[int], set[int]]:
    """Deletes, updates that leave update_at alone, inserts behind the watermark (into the gaps
    and past the last id, with old cursor values), at random keys: (deleted, updated, inserted)."""
    rng = random.Random(seed)
    present = [i for i in range(1, ROWS + 1) if i % 97]
    picked = rng.sample(present, 2 * CHANGES)
    deleted, updated = set(picked[:CHANGES]), set(picked[CHANGES:])
    gaps = [i for i in range(97, ROWS, 97)]
    inserted = set(rng.sample(gaps, CHANGES // 2)) | {ROWS + 1 + i for i in range(CHANGES - CHANGES // 2)}
    db.execute(f"DELETE FROM orders WHERE id IN ({', '.join(map(str, deleted))})")
    db.execute(f"UPDATE orders SET note = CONCAT('fixed by hand ', id), amount = amount + 1, "
               f"update_at = update_at WHERE id IN ({', '.join(map(str, updated))})")
    db.executemany("INSERT INTO orders (id, update_at, amount, note) VALUES (%s, %s, %s, %s)",
                   [(i, cursor_time(i, ROWS).strftime("%Y-%m-%d %H:%M:%S"), i, "late")
                    for i in sorted(inserted)])
    return deleted, updated, inserted


def history_keys(settings, name: str) -> tuple[list[int], list[int]]:
    """Keys in the table's fix files and in its deletion files (each list may repeat a key)."""
    store = open_store(settings)
    fixed, gone = [], []
    for info in store.list(table_prefix(name)):
        kind = kind_of(info.key)
        if kind in (FIX, DELETION):
            table = pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))
            (fixed if kind == FIX else gone).extend(int(k) for k in table.column("id").to_pylist())
            if kind == DELETION:
                assert table.schema.names == ["id", FOUND_AT]
    return fixed, gone


def reconcile(config, *args, env=None):
    return run_cli("reconcile", "-t", "orders", "--no-ui", "--chunk-size", CHUNK, *args, config=config,
                   env=env, timeout=300)


def store_newest(settings, db) -> dict[str, tuple]:
    """key -> (cursor, digest) of the store's newest state, as reconcile reads it."""
    name = f"{db.name}.orders"
    columns = mysql_columns(db)
    watermark = WatermarkStore(open_store(settings)).get(name)
    with StoreState(open_store(settings), name, watermark, ["id"]) as state:
        rows = state.run(f"SELECT {', '.join(columns)} FROM {TABLE}", [])
    at_key, at_cursor = columns.index("id"), columns.index("update_at")
    return {canonical(row[at_key]): (canonical(row[at_cursor]), digest(row)) for row in rows}


def test_reconcile_into_postgres_finds_exactly_the_changed_keys(db, tmp_path, pg, settings_for):
    changed_table(db)
    config = write_config(tmp_path / "s3rs.toml", db, extra=pg.config(), default_layout=True)
    assert run_cli("sync", "-t", "orders", "--no-ui", config=config).returncode == 0
    deleted, updated, inserted = change_behind_the_cursor(db)
    assert run_cli("verify", "-t", "orders", config=config).returncode == 1

    dry = reconcile(config, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    found = json.loads(dry.stdout)["tables"][0]
    assert (found["fixed"], found["deleted"]) == (len(updated | inserted), len(deleted))
    assert history_keys(settings_for(config), f"{db.name}.orders") == ([], [])

    result = reconcile(config, "--json")
    assert result.returncode == 0, result.stderr
    assert "range 11/11" in result.stderr  # a progress line per range
    done = json.loads(result.stdout)["tables"][0]
    assert (done["fixed"], done["deleted"]) == (len(updated | inserted), len(deleted))
    assert done["status"] == "success"
    fixed, gone = history_keys(settings_for(config), f"{db.name}.orders")
    assert sorted(fixed) == sorted(updated | inserted)
    assert sorted(gone) == sorted(deleted)
    assert run_cli("verify", "-t", "orders", config=config).returncode == 0
    stored = [info.key for info in open_store(settings_for(config)).list(table_prefix(f"{db.name}.orders"))]
    assert_warehouse_matches_mysql(pg.execute, db, stored)

    again = reconcile(config, "--json")  # nothing left to find; nothing stored or loaded twice
    assert again.returncode == 0 and json.loads(again.stdout)["tables"][0]["files"] == []
    assert_warehouse_matches_mysql(pg.execute, db, stored)


def test_reconcile_against_the_store_alone(db, tmp_path, settings_for):
    changed_table(db)
    config = write_config(tmp_path / "s3rs.toml", db, default_layout=True)
    assert run_cli("sync", "-t", "orders", "--no-ui", config=config).returncode == 0
    deleted, updated, inserted = change_behind_the_cursor(db, seed=5)
    settings = settings_for(config)
    assert store_newest(settings, db) != mysql_rows(db)

    result = reconcile(config, "--json")
    assert result.returncode == 0, result.stderr
    fixed, gone = history_keys(settings, f"{db.name}.orders")
    assert sorted(fixed) == sorted(updated | inserted) and sorted(gone) == sorted(deleted)
    assert store_newest(settings, db) == mysql_rows(db)
    assert not open_store(settings).get_bytes(f"_state/reconcile/{db.name}.orders.json")

    # a key deleted by reconcile and inserted again later comes back with the next sync
    back = min(deleted)
    db.execute("INSERT INTO orders (id, update_at, amount, note) VALUES (%s, '2025-06-01', 1, 'back')",
               params=(back,))
    assert run_cli("sync", "-t", "orders", "--no-ui", config=config).returncode == 0
    assert store_newest(settings, db) == mysql_rows(db)
    # restore picks the newest version by the same rule: the key is back although its cursor value
    # (2025) is behind the found_at of the deletion stored before it (today)
    restored = run_cli("restore", "-t", "orders", "--into", f"{db.name}.orders_back", "--no-ui",
                       config=config)
    assert restored.returncode == 0, restored.stderr
    assert mysql_rows(db, "orders_back") == mysql_rows(db)
    again = reconcile(config, "--json")
    assert json.loads(again.stdout)["tables"][0]["files"] == [], again.stdout


def test_sigkill_mid_reconcile_then_rerun(db, tmp_path, pg, settings_for):
    changed_table(db)
    config = write_config(tmp_path / "s3rs.toml", db, extra=pg.config(), default_layout=True)
    assert run_cli("sync", "-t", "orders", "--no-ui", config=config).returncode == 0
    deleted, updated, inserted = change_behind_the_cursor(db, seed=7)
    killed_at_failpoint(config, "reconcile-stored:3", tmp_path, "reconcile", "-t", "orders", "--no-ui",
                        "--chunk-size", CHUNK)
    name = f"{db.name}.orders"
    assert open_store(settings_for(config)).get_bytes(f"_state/reconcile/{name}.json")

    result = reconcile(config, "--break-lock")  # the killed run's lock is still there
    assert result.returncode == 0, result.stderr
    assert "going on with the reconcile interrupted" in result.stderr
    fixed, gone = history_keys(settings_for(config), name)
    assert sorted(fixed) == sorted(updated | inserted) and sorted(gone) == sorted(deleted)
    assert run_cli("verify", "-t", "orders", config=config).returncode == 0
    stored = [info.key for info in open_store(settings_for(config)).list(table_prefix(name))]
    assert_warehouse_matches_mysql(pg.execute, db, stored)


def test_reconcile_into_duckdb(db, tmp_path, settings_for):
    changed_table(db)
    warehouse = tmp_path / "w.duckdb"
    config = write_config(tmp_path / "s3rs.toml", db, default_layout=True,
                          extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{warehouse}"\n')
    assert run_cli("sync", "-t", "orders", "--no-ui", config=config).returncode == 0
    deleted, updated, inserted = change_behind_the_cursor(db, seed=3)
    result = reconcile(config)
    assert result.returncode == 0, result.stderr
    fixed, gone = history_keys(settings_for(config), f"{db.name}.orders")
    assert sorted(fixed) == sorted(updated | inserted) and sorted(gone) == sorted(deleted)
    assert run_cli("verify", "-t", "orders", config=config).returncode == 0
    stored = [info.key for info in open_store(settings_for(config)).list(table_prefix(f"{db.name}.orders"))]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert_warehouse_matches_mysql(lambda sql: conn.execute(sql).fetchall(), db, stored)


def test_reconcile_into_the_redshift_standin(db, tmp_path, bucket, s3_endpoint, pg, monkeypatch,
                                             settings_for):
    """Every statement reconcile and the loader send passes the strict stand-in (its checks run on
    each statement), and the result is exact."""
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, extra=(
        '\n[warehouse]\nkind = "redshift"\nhost = "example-cluster.invalid"\ndatabase = "dev"\n'
        'user = "loader"\niam_role = "arn:aws:iam::123456789012:role/s3rs-copy"\n'))
    settings = settings_for(config)
    settings.s3.endpoint_url = s3_endpoint
    cluster = Cluster(pg, s3_endpoint)

    def open_standin(settings, store, **_):
        return RedshiftWarehouse(settings, store, connect=cluster.connect)

    for module in (loader, verify, reconcile_job):
        monkeypatch.setattr(module, "open_warehouse", open_standin)
    try:
        changed_table(db)
        name = f"{db.name}.orders"
        settings.override("backup.batch_size", 5000)
        TableSync(settings, name, lambda e: None, RunControl()).run()
        loader.TableLoader(settings, name, lambda e: None, RunControl()).run()
        deleted, updated, inserted = change_behind_the_cursor(db, seed=9)
        assert not verify.verify_table(settings, name, lambda e: None).agrees
        found = reconcile_job.TableReconcile(settings, name, lambda e: None, RunControl(),
                                             reconcile_job.ReconcileOptions(chunk_keys=CHUNK)).run()
        assert (found.fixed, found.deleted) == (len(updated | inserted), len(deleted))
        assert any(s.startswith('DELETE FROM "public"."orders" USING s3rs_stage') for s in cluster.statements)
        assert verify.verify_table(settings, name, lambda e: None).agrees
        stored = [info.key for info in open_store(settings).list(table_prefix(name))]
        assert_warehouse_matches_mysql(pg.execute, db, stored)
    finally:
        cluster.close()


def test_string_keys_by_hash_bucket_into_postgres_and_against_the_store(db, tmp_path, pg, settings_for):
    db.execute("CREATE TABLE orders (code VARCHAR(20) PRIMARY KEY, update_at DATETIME NOT NULL, "
               "qty INT, KEY (update_at, code))")
    db.executemany("INSERT INTO orders VALUES (%s, %s, %s)",
                   [(f"c-{i:04d}", f"2024-01-01 00:{i // 60 % 60:02d}:{i % 60:02d}", i) for i in range(2000)])
    with_pg = write_config(tmp_path / "pg.toml", db, extra=pg.config(), store=tmp_path / "pg-store")
    alone = write_config(tmp_path / "alone.toml", db, store=tmp_path / "store")
    for config in (with_pg, alone):
        assert run_cli("sync", "-t", "orders", "--no-ui", config=config).returncode == 0
    db.execute("DELETE FROM orders WHERE code IN ('c-0007', 'c-1999')")
    db.execute("UPDATE orders SET qty = -1, update_at = update_at WHERE code = 'c-0042'")
    db.execute("INSERT INTO orders VALUES ('b-late', '2024-01-01 00:00:01', 5)")
    for config in (with_pg, alone):
        result = run_cli("reconcile", "-t", "orders", "--no-ui", "--json", config=config)
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)["tables"][0]
        assert (found["fixed"], found["deleted"]) == (2, 2), found
        assert "code with MD5 starting" in result.stderr
    assert run_cli("verify", "-t", "orders", config=with_pg).returncode == 0
    stored = [info.key for info in open_store(settings_for(with_pg)).list(table_prefix(f"{db.name}.orders"))]
    assert sorted(pg.execute("SELECT code, qty FROM public.orders")) == sorted(
        db.execute("SELECT code, qty FROM orders"))
    assert len(stored) > 1
    again = run_cli("reconcile", "-t", "orders", "--no-ui", "--json", config=alone)
    assert json.loads(again.stdout)["tables"][0]["files"] == [], again.stdout
