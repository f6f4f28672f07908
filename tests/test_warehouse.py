"""Loading into a real PostgreSQL from real MariaDB through a real store (moto S3 or a folder).

"Exactly once" is checked in the warehouse: one row per key, each with the newest version stored,
and the ledger naming exactly the committed files, whatever crashed when.
"""

import json
from contextlib import contextmanager

import psycopg2.errors
import pytest
from cli_helpers import make_table, run_cli
from conftest import write_config

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator, TableError
from s3rs_tui.runtime.events import FilesLoaded, LoadStarted, Notice
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.loader import TableLoader

ROWS = 2000


@pytest.fixture
def pg_config(tmp_path, db, bucket, s3_endpoint, pg):
    """MariaDB -> the moto S3 server -> PostgreSQL."""
    return write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint, extra=pg.config())


@pytest.fixture
def orders(db):
    make_table(db, rows=ROWS)
    return f"{db.name}.orders"


@pytest.fixture
def synced(orders, pg_config, settings_for):
    """Settings (500 rows a file) after the table's files are stored: 4 files."""
    settings = settings_with_batch(settings_for, pg_config)
    sync(settings, orders)
    return settings


@pytest.fixture
def loaded(orders, synced):
    """Settings after the table is stored and loaded."""
    load(synced, orders)
    return synced


def sync(settings, name) -> None:
    TableSync(settings, name, lambda event: None, RunControl()).run()


def load(settings, name, files_per_load=2, control=None):
    events = []
    finished = TableLoader(settings, name, events.append, control or RunControl(),
                           files_per_load=files_per_load).run()
    return finished, events


def settings_with_batch(settings_for, config, batch=500):
    settings = settings_for(config)
    settings.override("backup.batch_size", batch)
    return settings


def source(db) -> dict[int, tuple]:
    return {int(i): (u, a, n) for i, u, a, n in db.execute("SELECT id, update_at, amount, note FROM orders")}


def target(pg, table="orders") -> dict[int, tuple]:
    rows = pg.execute(f"SELECT id, update_at, amount, note FROM public.{table}")
    keys = [int(row[0]) for row in rows]
    assert len(keys) == len(set(keys)), "a key is in the warehouse twice"
    return {int(i): (u, a, n) for i, u, a, n in rows}


def ledger(pg) -> list[str]:
    return [key for (key,) in pg.execute("SELECT file_key FROM public.s3rs_loaded_files ORDER BY file_key")]


def stored_keys(settings, name) -> list[str]:
    return [info.key for info in open_store(settings).list(table_prefix(name))]


def watermark(settings, name):
    return WatermarkStore(open_store(settings)).get(name)


class Crash(BaseException):
    """Stands for the process dying: nothing in the loader catches a BaseException."""


@contextmanager
def crash_on_save(monkeypatch, when):
    """The process dies at the watermark write for which `when(watermark)` holds."""
    real_save = WatermarkStore.save

    def save(self, mark):
        if when(mark):
            raise Crash()
        real_save(self, mark)

    monkeypatch.setattr(WatermarkStore, "save", save)
    with pytest.raises(Crash):
        yield
    monkeypatch.setattr(WatermarkStore, "save", real_save)


def test_full_sync_loads_every_row_once_and_mirrors_the_ledger(db, orders, pg, pg_config, synced):
    settings = synced
    finished, events = load(settings, orders)
    assert (finished.status, finished.files, finished.rows) == ("success", 4, ROWS)
    assert sum(isinstance(e, FilesLoaded) for e in events) == 2  # two files per load
    assert target(pg) == source(db)
    keys = stored_keys(settings, orders)
    assert ledger(pg) == keys
    mark = watermark(settings, orders)
    loaded = (mark.redshift_status, mark.redshift_rows_loaded, mark.processed_s3_files)
    assert loaded == ("success", ROWS, keys)
    types = dict(pg.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'orders'"))
    assert types == {"id": "numeric", "update_at": "timestamp without time zone", "amount": "numeric",
                     "note": "character varying"}


def test_a_rerun_without_new_rows_loads_nothing(db, orders, pg, pg_config, loaded):
    settings = loaded
    before = pg.execute("SELECT file_key, loaded_at FROM public.s3rs_loaded_files ORDER BY 1")
    sync(settings, orders)
    finished, events = load(settings, orders)
    assert (finished.files, finished.rows) == (0, 0)
    assert next(e for e in events if isinstance(e, LoadStarted)).files == 0
    assert pg.execute("SELECT file_key, loaded_at FROM public.s3rs_loaded_files ORDER BY 1") == before
    assert target(pg) == source(db)


def test_updated_rows_merge_into_one_row_per_key_with_the_newest_values(db, orders, pg, pg_config, loaded):
    settings = loaded
    # Updated twice between loads: the same key then sits in two stored files of one load.
    db.execute("UPDATE orders SET update_at = '2024-02-01 00:00:00', note = 'first' WHERE id <= 300")
    sync(settings, orders)
    db.execute("UPDATE orders SET update_at = '2024-02-02 00:00:00', note = 'second' WHERE id <= 100")
    db.execute("INSERT INTO orders (id, update_at, amount, note) VALUES (99999, '2024-02-03', 1, 'new')")
    sync(settings, orders)
    finished, _ = load(settings, orders, files_per_load=10)
    assert finished.files == 2  # both runs' files in one group: de-duplicated in staging
    rows = target(pg)
    assert rows == source(db) and len(rows) == ROWS + 1
    assert {rows[i][2] for i in range(1, 101)} == {"second"}
    assert {rows[i][2] for i in range(101, 301)} == {"first"}


def test_an_older_version_never_overwrites_a_newer_one(db, orders, pg, pg_config, loaded):
    settings = loaded
    db.execute("UPDATE orders SET update_at = '2024-03-01', note = 'newer' WHERE id = 7")
    sync(settings, orders)
    load(settings, orders)
    # The first file (holding id 7's older version) is written again: it is loaded again, and
    # id 7 keeps its newer version.
    store = open_store(settings)
    first = stored_keys(settings, orders)[0]
    scratch = store.scratch_dir() / "again.parquet"
    scratch.write_bytes(store.get_bytes(first)[0])
    store.put_file(first, scratch)
    finished, events = load(settings, orders)
    assert finished.files == 1
    assert any(isinstance(e, Notice) and "rewritten" in e.message for e in events)
    assert target(pg)[7][2] == "newer"
    assert target(pg) == source(db)


def test_crash_between_merge_and_watermark_then_rerun(db, orders, pg, pg_config, synced, monkeypatch):
    settings = synced
    def loading_with_files(mark):
        return mark.redshift_status == "in_progress" and mark.processed_s3_files

    with crash_on_save(monkeypatch, loading_with_files):
        load(settings, orders)
    keys = stored_keys(settings, orders)
    assert ledger(pg) == keys[:2]  # the group's merge and ledger rows committed together
    assert watermark(settings, orders).processed_s3_files == []  # the mirror did not
    finished, _events = load(settings, orders)
    assert finished.files == 2  # only the other two
    assert target(pg) == source(db) and ledger(pg) == keys
    assert watermark(settings, orders).processed_s3_files == keys


def test_crash_inside_the_load_transaction_leaves_nothing_behind(db, orders, pg, pg_config, synced,
                                                                 monkeypatch):
    settings = synced
    real_load = Warehouse.load
    calls = []

    def crash_in_second_group(self, target_table, files, run_id):
        calls.append(files)
        if len(calls) == 2:
            real_fill = self.fill_stage

            def fill_then_crash(group):
                real_fill(group)
                raise Crash()  # after COPY, before the merge and the ledger

            monkeypatch.setattr(self, "fill_stage", fill_then_crash)
        return real_load(self, target_table, files, run_id)

    monkeypatch.setattr(Warehouse, "load", crash_in_second_group)
    with pytest.raises(Crash):
        load(settings, orders)
    monkeypatch.setattr(Warehouse, "load", real_load)
    keys = stored_keys(settings, orders)
    assert ledger(pg) == keys[:2] and len(target(pg)) == 1000
    load(settings, orders)
    assert target(pg) == source(db) and ledger(pg) == keys


def test_a_file_stored_after_the_watermark_is_not_loaded(db, orders, pg, pg_config, settings_for,
                                                         monkeypatch):
    settings = settings_with_batch(settings_for, pg_config)
    with crash_on_save(monkeypatch, lambda mark: mark.s3_file_count == 3):  # stored, not committed
        sync(settings, orders)
    keys = stored_keys(settings, orders)
    assert len(keys) == 3 and watermark(settings, orders).last_s3_file == keys[1]
    finished, events = load(settings, orders)
    assert finished.files == 2 and ledger(pg) == keys[:2]
    assert any(isinstance(e, Notice) and "not committed" in e.message for e in events)
    sync(settings, orders)  # rewrites the third file and goes on
    load(settings, orders)
    assert target(pg) == source(db)


def test_watermark_reset_rewrites_files_and_they_load_again(db, orders, pg, pg_config, loaded):
    settings = loaded
    # Changed behind the cursor's back (update_at kept): only a full re-read brings it.
    db.execute("UPDATE orders SET note = 'fixed by hand' WHERE id = 42")
    assert run_cli("watermark", "reset", "-t", orders, "--yes", config=pg_config).returncode == 0
    sync(settings, orders)
    finished, events = load(settings, orders)
    assert finished.files == 4
    assert any(isinstance(e, Notice) and "4 files were rewritten" in e.message for e in events)
    assert target(pg)[42][2] == "fixed by hand"
    assert target(pg) == source(db)


def test_a_new_mysql_column_is_added_to_the_target(db, orders, pg, pg_config, loaded):
    settings = loaded
    db.execute("ALTER TABLE orders ADD COLUMN channel VARCHAR(20) NULL AFTER amount")
    db.execute("UPDATE orders SET channel = 'web', update_at = '2024-02-01' WHERE id <= 10")
    sync(settings, orders)
    _, events = load(settings, orders)
    assert any(isinstance(e, Notice) and "added column channel character varying(20)" in e.message
               for e in events)
    rows = dict(pg.execute("SELECT id, channel FROM public.orders"))
    assert sum(value == "web" for value in rows.values()) == 10 and len(rows) == ROWS
    assert target(pg) == source(db)


def test_a_changed_column_type_stops_with_a_clear_message(db, orders, pg, pg_config, loaded):
    settings = loaded
    db.execute("ALTER TABLE orders MODIFY amount VARCHAR(30)")
    db.execute("UPDATE orders SET update_at = '2024-02-01' WHERE id <= 10")
    result = run_cli("sync", "-t", orders, config=pg_config)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "column amount of public.orders is numeric(18,4)" in last
    assert "character varying(30)" in last and "MySQL varchar(30)" in last
    with pytest.raises(TableError):
        load(settings, orders)


def test_loaded_files_missing_from_the_store_are_reported(db, orders, pg, pg_config, loaded):
    settings = loaded
    open_store(settings).delete(stored_keys(settings, orders)[0])
    finished, events = load(settings, orders)
    assert finished.files == 0
    assert any(isinstance(e, Notice) and "no longer in the store" in e.message for e in events)
    assert len(target(pg)) == ROWS


def test_a_dropped_target_table_is_loaded_again_from_every_file(db, orders, pg, pg_config, loaded):
    settings = loaded
    pg.execute("DROP TABLE public.orders")
    finished, events = load(settings, orders)
    assert finished.files == 4
    assert any(isinstance(e, Notice) and "not in the warehouse any more" in e.message for e in events)
    assert target(pg) == source(db)


def test_a_stop_request_ends_the_load_between_groups(db, orders, pg, pg_config, synced):
    settings = synced
    control = RunControl()
    control.request_stop("SIGTERM")
    with pytest.raises(StoppedByOperator, match="rerun to go on"):
        load(settings, orders, control=control)
    assert watermark(settings, orders).redshift_status == "interrupted"
    assert load(settings, orders)[0].files == 4


def test_sync_loads_after_extracting_and_honours_the_step_flags(db, orders, pg, pg_config):
    stored = json.loads(run_cli("sync", "-t", "orders", "--backup-only", "--json", config=pg_config).stdout)
    assert stored["loads"] == [] and stored["rows"] == ROWS
    with pytest.raises(psycopg2.errors.UndefinedTable):
        pg.execute("SELECT 1 FROM public.orders")
    loaded = run_cli("sync", "-t", "orders", "--load-only", "--json", config=pg_config)
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["loads"][0]["rows"] == ROWS
    assert "load success" in loaded.stderr and " start: " not in loaded.stderr  # nothing extracted
    assert target(pg) == source(db)
    db.execute("UPDATE orders SET update_at = '2024-02-01', note = 'late' WHERE id = 5")
    both = run_cli("sync", "-t", "orders", "--redshift-only", config=pg_config)  # the older name
    assert both.returncode == 0 and target(pg)[5][2] != "late"  # loads only: nothing new was stored
    full = run_cli("sync", "-t", "orders", "--verify-data", "--json", config=pg_config)
    assert full.returncode == 0, full.stderr
    summary = json.loads(full.stdout)
    assert summary["loads"][0]["rows"] == 1 and summary["verifications"][0]["agrees"]
    assert target(pg)[5][2] == "late"


@pytest.mark.parametrize("flags, message", [
    (["--backup-only", "--load-only"], "--backup-only stops before the warehouse"),
    (["--backup-only", "--verify-data"], "cannot go with --verify-data"),
])
def test_contradictory_flags_exit_2(orders, pg_config, flags, message):
    result = run_cli("sync", "-t", "orders", *flags, config=pg_config)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_load_only_without_a_warehouse_exits_2(orders, local_config):
    result = run_cli("sync", "-t", "orders", "--load-only", config=local_config)
    assert result.returncode == 2 and "needs a warehouse" in result.stderr
    result = run_cli("verify", "-t", "orders", config=local_config)
    assert result.returncode == 2 and "no warehouse configured" in result.stderr


def test_bad_warehouse_settings_are_one_line_errors(orders, tmp_path, db, pg):
    secret = "Zq9-distinctive-warehouse-secret"
    bad_schema = write_config(tmp_path / "a.toml", db, extra=pg.config(schema='x; drop table y; --'))
    result = run_cli("sync", "-t", "orders", "--load-only", config=bad_schema)
    assert result.returncode == 2 and "warehouse.schema" in result.stderr and "invalid name" in result.stderr
    bad_target = write_config(tmp_path / "t.toml", db, extra=f'[tables."{db.name}.orders"]\ntarget = "a b"\n')
    result = run_cli("sync", "-t", "orders", config=bad_target)
    assert result.returncode == 2 and "tables." in result.stderr and "invalid table name" in result.stderr
    unreachable = write_config(tmp_path / "b.toml", db, extra=(
        f'\n[warehouse]\nkind = "postgres"\nhost = "127.0.0.1"\nport = 1\ndatabase = "x"\nuser = "u"\n'
        f'password = "{secret}"\n'))
    result = run_cli("sync", "-t", "orders", config=unreachable)
    assert result.returncode == 1 and "cannot connect to the warehouse" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr and secret not in result.stderr + result.stdout
    shown = run_cli("config", config=unreachable)
    assert secret not in shown.stdout and "********" in shown.stdout


def test_a_running_sync_keeps_the_loader_out(orders, pg_config, settings_for):
    from s3rs_tui.runtime.errors import TableLockedError
    from s3rs_tui.store.lock import TableLock

    settings = settings_for(pg_config)
    with TableLock(open_store(settings), orders, purpose="sync"):
        with pytest.raises(TableLockedError):
            load(settings, orders)
        result = run_cli("sync", "-t", "orders", "--load-only", config=pg_config)
        assert result.returncode == 3


def test_loading_needs_nothing_stored_to_be_a_no_op(orders, pg_config, settings_for):
    finished, events = load(settings_for(pg_config), orders)
    assert finished.files == 0
    assert any(isinstance(e, Notice) and "nothing is stored yet" in e.message for e in events)


def test_errors_inside_the_warehouse_are_one_line(db, orders, pg, pg_config, synced):
    settings = synced
    pg.execute("CREATE TABLE public.orders (id numeric(20,0) PRIMARY KEY, update_at timestamp, "
               "amount numeric(18,4), note varchar(64) CHECK (note <> 'note 7'))")
    with pytest.raises(S3rsError, match=r"warehouse error .* violates check constraint"):
        load(settings, orders)
    assert ledger(pg) == [] and watermark(settings, orders).redshift_status == "failed"


def test_status_reaches_the_warehouse(orders, pg, pg_config):
    result = run_cli("status", "--json", config=pg_config)
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["warehouse"].startswith("ok: postgres at 127.0.0.1:")
    major = pg.server.bin_dir.parent.name  # whichever /usr/lib/postgresql/<major> the tests started
    assert f"PostgreSQL {major}." in json.loads(result.stdout)["warehouse"]


def test_files_the_ledger_does_not_know_are_reported_and_loaded(db, orders, pg, loaded):
    pg.execute("DELETE FROM public.s3rs_loaded_files")  # as in a restored or different warehouse
    finished, events = load(loaded, orders)
    assert finished.files == 4
    assert any(isinstance(e, Notice) and "4 files the watermark lists as loaded are not in the ledger"
               in e.message for e in events)
    assert target(pg) == source(db) and ledger(pg) == stored_keys(loaded, orders)


def test_s3clean_keeps_the_files_not_loaded_yet(db, orders, pg, pg_config, loaded):
    db.execute("UPDATE orders SET update_at = '2024-02-01' WHERE id = 1")
    sync(loaded, orders)  # stored, not loaded
    keys = stored_keys(loaded, orders)
    result = run_cli("s3clean", "clean", "-t", "orders", "--yes", config=pg_config)
    assert result.returncode == 0, result.stderr
    assert "1 not yet loaded into the warehouse kept" in result.stdout
    assert stored_keys(loaded, orders) == keys[-1:]
