"""The engine against a real MariaDB and real stores: no row missed, none repeated, whatever happens.

"Exactly once" is checked on what is stored: every row of the source is in exactly one Parquet
file with every column equal (exact_rows), and no other version is.
"""

import functools
import io
import json
import random
import signal
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pymysql
import pytest
from cli_helpers import run_cli
from exact_rows import assert_store_matches_mysql

from s3rs_tui.engine import keyset
from s3rs_tui.engine.sync import SyncOptions, TableSync
from s3rs_tui.engine.table import describe_table
from s3rs_tui.engine.typemap import plan_columns
from s3rs_tui.runtime.config import TableSettings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.events import FileStored, Notice, RunFinished
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore

TABLE_DDL = ("CREATE TABLE orders (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
             "update_at DATETIME NOT NULL, amount DECIMAL(18,4), note VARCHAR(64), "
             "KEY idx_update_at_id (update_at, id))")


def fill(db, rows: int, *, per_second: int = 10, start: str = "2024-01-01 00:00:00", table="orders"):
    """`rows` rows, `per_second` of them sharing each update_at second, ids in a scrambled order
    relative to time (so key order differs from cursor order)."""
    db.execute(f"INSERT INTO {table} (id, update_at, amount, note) "
               f"SELECT seq, '{start}' + INTERVAL ((seq * 7919) % {rows}) DIV {per_second} SECOND, "
               f"seq / 100, CONCAT('row ', seq) FROM seq_1_to_{rows}")


def source_versions(db, table="orders") -> set[tuple[int, str]]:
    return {(int(i), str(u)) for i, u in db.execute(f"SELECT id, update_at FROM {table}")}


def stored_files(settings, name: str) -> dict[str, list[tuple[int, str]]]:
    """file key -> [(id, update_at)] for every data file of the table, read through the store API."""
    store = open_store(settings)
    files = {}
    for info in store.list(table_prefix(name)):
        table = pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]), columns=["id", "update_at"])
        files[info.key] = [(int(i), str(u)) for i, u in zip(table["id"].to_pylist(),
                                                            table["update_at"].to_pylist(), strict=True)]
    return files


def assert_exactly_once(db, settings, name: str, table="orders") -> None:
    """Every row stored once, every column equal to MySQL's (exact_rows)."""
    assert_store_matches_mysql(db, settings, name, table)


def run_sync(settings, name: str, **options) -> tuple[RunFinished, list]:
    events = []
    finished = TableSync(settings, name, events.append, RunControl(), SyncOptions(**options)).run()
    return finished, events


@pytest.fixture
def orders(db):
    db.execute(TABLE_DDL)
    return db


@pytest.mark.parametrize("reader", ["select_sql", "cx_sql"])
def test_page_query_uses_the_keyset_index_without_filesort(orders, reader):
    """Both readers' SELECT lists: connectorx's reads the cursor as `update_at + 0 AS update_at`,
    an alias an unqualified ORDER BY would sort by (a filesort of the whole rest of the table)."""
    fill(orders, 20000)
    orders.execute("ANALYZE TABLE orders")
    with pymysql.connect(**orders.server.connect_args(orders.name)) as conn:
        info = describe_table(conn, orders.name, "orders", TableSettings())
        sql, params = keyset.page_query(info, [getattr(p, reader) for p in plan_columns(info.columns)],
                                        keyset.Position("2024-01-01 00:05:00", (1234,)), "2030-01-01", 500)
        with conn.cursor() as cur:
            cur.execute("EXPLAIN FORMAT=JSON " + sql, params)
            plan = json.loads(cur.fetchone()[0])
            cur.execute("EXPLAIN " + sql, params)
            names = [d[0] for d in cur.description]
            row = dict(zip(names, cur.fetchone(), strict=True))
    assert info.has_keyset_index
    assert row["key"] == "idx_update_at_id" and row["type"] == "range"
    assert "filesort" not in (row["Extra"] or "").lower()
    assert "filesort" not in json.dumps(plan).lower()


def test_ties_larger_than_a_batch_are_taken_exactly_once(orders, local_config, settings_for):
    # 3,000 rows share one second, more than four batches of 700; neighbours on both sides.
    fill(orders, 2000, per_second=50, start="2024-01-01 00:00:00")
    orders.execute("INSERT INTO orders (id, update_at, note) SELECT 10000 + seq, '2024-01-01 00:00:20', "
                   "'tie' FROM seq_1_to_3000")
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 700)
    finished, _ = run_sync(settings, f"{orders.name}.orders")
    assert finished.rows == 5000 and finished.caught_up
    assert_exactly_once(orders, settings, f"{orders.name}.orders")
    # A second run finds nothing new and stores nothing.
    again, _ = run_sync(settings, f"{orders.name}.orders")
    assert (again.rows, again.files, again.status) == (0, 0, "success")


def test_limit_takes_exactly_n_rows_and_the_next_run_continues(orders, local_config, settings_for):
    fill(orders, 3000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 500)
    name = f"{orders.name}.orders"
    first, _ = run_sync(settings, name, limit=1234)
    assert first.rows == 1234 and first.files == 3 and not first.caught_up
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.mysql_rows_extracted == 1234
    rest, _ = run_sync(settings, name)
    assert rest.rows == 3000 - 1234
    assert_exactly_once(orders, settings, name)


def test_limit_larger_than_the_table(orders, local_config, settings_for):
    fill(orders, 300)
    settings = settings_for(local_config)
    finished, _ = run_sync(settings, f"{orders.name}.orders", limit=1000)
    assert finished.rows == 300 and finished.caught_up


def test_rows_in_the_current_second_and_the_future_wait(orders, local_config, settings_for, monkeypatch):
    """With no lag the bound is the database's clock cut to the cursor's second: a row stamped in
    that second waits (more rows may still come in it), one after the clock is counted as future.
    The clock is pinned inside a second: on the real one, a run starting a second after the insert
    rightly takes the row, and the test would fail now and then."""
    fill(orders, 100)
    orders.execute("INSERT INTO orders (id, update_at) VALUES (5000, '2030-01-01 12:00:00'), "
                   "(5001, '2030-01-02 12:00:00')")
    monkeypatch.setattr(keyset, "database_now", lambda *_: "2030-01-01 12:00:00.500000")
    settings = settings_for(local_config)
    finished, events = run_sync(settings, f"{orders.name}.orders")
    ids = {i for rows in stored_files(settings, f"{orders.name}.orders").values() for i, _ in rows}
    assert 5000 not in ids and 5001 not in ids and len(ids) == 100
    assert finished.future_cursor_rows == 1
    assert any(isinstance(e, Notice) and "future" in e.message for e in events)


def test_safety_lag_holds_back_recent_rows(orders, local_config, settings_for):
    orders.execute("INSERT INTO orders (id, update_at) VALUES (1, NOW() - INTERVAL 1 HOUR), "
                   "(2, NOW() - INTERVAL 30 SECOND)")
    settings = settings_for(local_config)
    settings.override("backup.safety_lag_seconds", 120)
    finished, _ = run_sync(settings, f"{orders.name}.orders")
    assert finished.rows == 1


def test_null_cursor_rows_are_counted_and_reported(db, local_config, settings_for):
    db.execute("CREATE TABLE orders (id INT PRIMARY KEY, update_at DATETIME NULL, KEY (update_at, id))",
               "INSERT INTO orders VALUES (1, '2024-01-01'), (2, NULL), (3, NULL)")
    finished, events = run_sync(settings_for(local_config), f"{db.name}.orders")
    assert finished.rows == 1 and finished.null_cursor_rows == 2
    assert any(isinstance(e, Notice) and "NULL" in e.message for e in events)


def test_zero_dates_are_stored_as_null_and_counted(db, local_config, settings_for):
    db.execute("CREATE TABLE orders (id INT PRIMARY KEY, update_at DATETIME NOT NULL, "
               "shipped DATE, KEY (update_at, id))")
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("INSERT INTO orders VALUES (1, '2024-01-01', '0000-00-00'), (2, '2024-01-01', "
                    "'2024-02-00'), (3, '2024-01-02', '2024-02-03')")
    settings = settings_for(local_config)
    finished, _ = run_sync(settings, f"{db.name}.orders")
    assert finished.invalid_dates == {"shipped": 2}
    store = open_store(settings)
    (info,) = store.list(table_prefix(f"{db.name}.orders"))
    shipped = pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))["shipped"].to_pylist()
    assert shipped[:2] == [None, None] and str(shipped[2]) == "2024-02-03"


def test_a_table_without_the_index_gets_a_warning(db, local_config, settings_for):
    db.execute("CREATE TABLE orders (id INT PRIMARY KEY, update_at DATETIME NOT NULL)",
               "INSERT INTO orders VALUES (1, '2024-01-01')")
    finished, events = run_sync(settings_for(local_config), f"{db.name}.orders")
    assert finished.rows == 1
    assert any(isinstance(e, Notice) and "no index" in e.message for e in events)


def test_files_are_named_by_their_start_and_a_redo_overwrites(orders, local_config, settings_for):
    fill(orders, 1000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 400)
    name = f"{orders.name}.orders"
    run_sync(settings, name)
    first = stored_files(settings, name)
    # Rewind to the start of the second file, as after a crash between upload and watermark.
    watermarks = WatermarkStore(open_store(settings))
    keys = sorted(first)
    watermark = watermarks.get(name)
    ts, key = first[keys[0]][-1][1], first[keys[0]][-1][0]
    watermark.last_mysql_data_timestamp, watermark.last_mysql_data_id = ts, key
    watermarks.save(watermark)
    run_sync(settings, name)
    assert sorted(stored_files(settings, name)) == keys  # same names: overwritten, nothing added
    assert_exactly_once(orders, settings, name)


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches a BaseException."""


@pytest.mark.parametrize("config_fixture", ["local_config", "s3_config"])
def test_crash_between_upload_and_watermark_write(orders, config_fixture, request, settings_for,
                                                  monkeypatch):
    fill(orders, 5000)
    settings = settings_for(request.getfixturevalue(config_fixture))
    settings.override("backup.batch_size", 1000)
    name = f"{orders.name}.orders"
    real_save, saves = WatermarkStore.save, []

    def crash_on_third_file(self, watermark):
        saves.append(watermark.s3_file_count)
        if watermark.s3_file_count == 3:
            raise Crash()
        real_save(self, watermark)

    monkeypatch.setattr(WatermarkStore, "save", crash_on_third_file)
    with pytest.raises(Crash):
        run_sync(settings, name)
    monkeypatch.setattr(WatermarkStore, "save", real_save)
    assert len(stored_files(settings, name)) == 3  # the third file is stored, its watermark is not
    assert WatermarkStore(open_store(settings)).get(name).s3_file_count == 2
    finished, _ = run_sync(settings, name)
    assert finished.rows == 3000 and finished.files == 3
    assert len(stored_files(settings, name)) == 5
    assert_exactly_once(orders, settings, name)


def test_sync_to_s3_end_to_end(orders, s3_config, settings_for):
    fill(orders, 2500)
    settings = settings_for(s3_config)
    settings.override("backup.batch_size", 1000)
    finished, events = run_sync(settings, f"{orders.name}.orders")
    assert finished.files == 3 and sum(isinstance(e, FileStored) for e in events) == 3
    assert_exactly_once(orders, settings, f"{orders.name}.orders")


def test_lost_mysql_connection_is_retried_and_resumes(orders, local_config, settings_for):
    fill(orders, 20000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 1000)
    settings.override("backup.retry_attempts", 5)
    name = f"{orders.name}.orders"
    killed = []

    def kill_once(event):
        if isinstance(event, FileStored) and event.run_files == 3 and not killed:
            rows = orders.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 's3rs' "
                                  "AND ID <> CONNECTION_ID() AND DB IS NULL")
            for (connection_id,) in rows:
                orders.execute(f"KILL CONNECTION {int(connection_id)}")
                killed.append(connection_id)

    events = []
    finished = TableSync(settings, name, lambda e: (events.append(e), kill_once(e)), RunControl()).run()
    assert killed, "the engine's connection was not found"
    assert any(type(e).__name__ == "Retrying" for e in events)
    assert finished.rows == 20000
    assert_exactly_once(orders, settings, name)


def _sync_process(config, name, *extra):
    return subprocess.Popen([sys.executable, "-m", "s3rs_tui", "--config", str(config), "sync", "-t", name,
                             "--no-ui", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_files(settings, name, count, process, timeout=60):
    watermarks = WatermarkStore(open_store(settings))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watermark = watermarks.get(name)
        if watermark and watermark.s3_file_count >= count:
            return watermark
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the run stored too few files in time")


@pytest.mark.parametrize("config_fixture", ["local_config", "s3_config"])
def test_killed_with_sigkill_mid_table_then_rerun(orders, config_fixture, request, settings_for):
    config = request.getfixturevalue(config_fixture)
    fill(orders, 60000)
    name = f"{orders.name}.orders"
    settings = settings_for(config)
    for moment in (2, 9, 15):  # killed at different depths, at a random point inside a file
        process = _sync_process(config, name, "--batch-size", "1500")
        _wait_for_files(settings, name, moment, process)
        time.sleep(random.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = run_cli("sync", "-t", name, "--batch-size", "1500", config=config)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(orders, settings, name)
    keys = sorted(stored_files(settings, name))
    assert len(keys) == 40  # 60,000 rows / 1,500: a redone file replaced its own name
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.mysql_rows_extracted == 60000 and watermark.s3_file_count == 40


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_first_signal_finishes_the_file_and_exits_130(orders, local_config, settings_for, signame):
    fill(orders, 60000)
    name = f"{orders.name}.orders"
    settings = settings_for(local_config)
    process = _sync_process(local_config, name, "--batch-size", "1000")
    _wait_for_files(settings, name, 2, process)
    process.send_signal(signal.SIGSTOP)  # frozen mid-table, so the run cannot finish first
    process.send_signal(getattr(signal, signame))
    process.send_signal(signal.SIGCONT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "rerun to resume" in stderr
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.mysql_status == "interrupted"
    stored = stored_files(settings, name)
    assert watermark.s3_file_count == len(stored) < 60
    assert watermark.mysql_rows_extracted == sum(len(rows) for rows in stored.values())
    assert run_cli("sync", "-t", name, "--batch-size", "1000", config=local_config).returncode == 0
    assert_exactly_once(orders, settings, name)


def test_second_signal_stops_at_once_and_stays_safe(orders, local_config, settings_for):
    fill(orders, 200000)
    name = f"{orders.name}.orders"
    settings = settings_for(local_config)
    process = _sync_process(local_config, name, "--batch-size", "20000")
    _wait_for_files(settings, name, 1, process)
    process.send_signal(signal.SIGSTOP)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGCONT)
    time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert run_cli("sync", "-t", name, "--batch-size", "20000", config=local_config).returncode == 0
    assert_exactly_once(orders, settings, name)


def test_concurrent_inserts_and_updates_lose_nothing(orders, local_config, settings_for):
    fill(orders, 30000, start="2024-01-01 00:00:00")
    name = f"{orders.name}.orders"
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 1000)
    settings.override("backup.safety_lag_seconds", 1)
    stop_writing = threading.Event()

    def writer():
        conn = orders.connect()
        with conn.cursor() as cur:
            n = 0
            while not stop_writing.is_set():
                n += 1
                cur.execute("INSERT INTO orders (update_at, note) VALUES (NOW(6), 'new')")
                # Updates move old rows, including ones behind and ahead of the cursor, to now.
                cur.execute("UPDATE orders SET update_at = NOW(), note = 'updated' WHERE id = %s",
                            ((n * 104729) % 30000 + 1,))
                time.sleep(0.002)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3):
            run_sync(settings, name)
            time.sleep(0.5)
    finally:
        stop_writing.set()
        thread.join()
    time.sleep(2.5)  # past the lag (1 s) plus the bound's truncation to a whole second (< 1 s)
    run_sync(settings, name)
    # Every current version is stored exactly once (older versions of updated rows are in
    # earlier files, also once each).
    stored = [v for rows in stored_files(settings, name).values() for v in rows]
    assert len(stored) == len(set(stored))
    assert source_versions(orders) <= set(stored)


def test_second_run_on_a_locked_table_exits_3(orders, local_config, settings_for):
    fill(orders, 100000)
    name = f"{orders.name}.orders"
    settings = settings_for(local_config)
    first = _sync_process(local_config, name, "--batch-size", "2000")
    _wait_for_files(settings, name, 1, first)
    first.send_signal(signal.SIGSTOP)  # holds its lock, frozen
    second = run_cli("sync", "-t", name, config=local_config)
    first.send_signal(signal.SIGTERM)
    first.send_signal(signal.SIGCONT)
    first.communicate(timeout=60)
    assert second.returncode == 3, second.stderr
    assert "locked by" in second.stderr and str(first.pid) in second.stderr


def test_different_tables_run_side_by_side(db, local_config, settings_for):
    for table in ("a", "b"):
        db.execute(TABLE_DDL.replace("orders", table))
        fill(db, 40000, table=table)
    settings = settings_for(local_config)
    processes = [_sync_process(local_config, f"{db.name}.{t}", "--batch-size", "2000") for t in ("a", "b")]
    results = [(*p.communicate(timeout=120), p.returncode) for p in processes]
    assert [code for _, _, code in results] == [0, 0], results
    for table in ("a", "b"):
        assert_exactly_once(db, settings, f"{db.name}.{table}", table)


def test_engine_reads_timestamps_in_utc_whatever_the_server_zone(db, local_config, settings_for):
    db.execute("CREATE TABLE orders (id INT PRIMARY KEY, update_at TIMESTAMP(6) NOT NULL, "
               "KEY (update_at, id))")
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+08:00'")
        cur.execute("INSERT INTO orders VALUES (1, '2024-01-01 08:00:00.250000')")
    settings = settings_for(local_config)
    run_sync(settings, f"{db.name}.orders")
    watermark = WatermarkStore(open_store(settings)).get(f"{db.name}.orders")
    assert watermark.last_mysql_data_timestamp == "2024-01-01 00:00:00.250000"


def test_s3_errors_are_retried_with_backoff(orders, tmp_path, bucket, s3_endpoint, settings_for):
    from conftest import write_config
    from s3_fault_proxy import FaultProxy

    fill(orders, 3000)
    proxy = FaultProxy(s3_endpoint)
    try:
        config = write_config(tmp_path / "s3rs.toml", orders, bucket=bucket, endpoint=proxy.endpoint)
        settings = settings_for(config)
        settings.override("backup.batch_size", 1000)
        settings.override("backup.retry_attempts", 3)
        name = f"{orders.name}.orders"
        # More 503s than boto3's own attempts on one data file: the engine's retry must take over.
        proxy.fail_next(7, "PUT", "/data/")
        proxy.fail_next(6, "PUT", "/_state/watermarks/")
        finished, events = run_sync(settings, name)
        assert proxy.failed == 13
        assert sum(type(e).__name__ == "Retrying" for e in events) >= 2
        assert finished.rows == 3000
        assert_exactly_once(orders, settings, name)
        # Retries give up after retry_attempts with a message that says a rerun resumes.
        proxy.fail_next(1000, "PUT", "/data/")
        orders.execute("UPDATE orders SET update_at = '2024-06-01' WHERE id <= 10")
        with pytest.raises(Exception, match="rerun resumes"):
            run_sync(settings, name)
    finally:
        proxy.close()


def test_pause_holds_between_files_and_resume_goes_on(orders, local_config, settings_for):
    from s3rs_tui.runtime.control import RunControl
    from s3rs_tui.runtime.events import StateChanged

    fill(orders, 5000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 1000)
    name = f"{orders.name}.orders"
    control, events = RunControl(), []

    def sink(event):
        events.append(event)
        if isinstance(event, FileStored) and event.run_files == 2:
            control.pause()

    worker = threading.Thread(target=lambda: TableSync(settings, name, sink, control).run())
    worker.start()
    deadline = time.monotonic() + 30
    while not any(isinstance(e, StateChanged) and e.state == "paused" for e in events):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    assert WatermarkStore(open_store(settings)).get(name).s3_file_count == 2  # held still
    control.resume()
    worker.join(30)
    assert events[-1].status == "success" and events[-1].rows == 5000
    assert_exactly_once(orders, settings, name)


def test_files_hold_several_pages_and_close_at_the_target_size(db, local_config, settings_for, monkeypatch):
    from s3rs_tui.engine import sync as sync_module
    from s3rs_tui.engine.memory import MemoryBudget

    db.execute("CREATE TABLE wide (id INT PRIMARY KEY, update_at DATETIME NOT NULL, a CHAR(32), b CHAR(32), "
               "KEY (update_at, id))",
               "INSERT INTO wide SELECT seq, '2024-01-01' + INTERVAL seq SECOND, MD5(seq), MD5(-seq) "
               "FROM seq_1_to_60000")
    # a file's size is known per flushed row group: small row groups for a small table
    monkeypatch.setattr(sync_module, "MemoryBudget", functools.partial(MemoryBudget, row_group_rows=4000))
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 3000)
    settings.override("backup.file_size_mb", 1)
    name = f"{db.name}.wide"
    finished, events = run_sync(settings, name)
    stored = [e for e in events if isinstance(e, FileStored)]
    assert finished.rows == 60000 and 2 <= len(stored) < 20  # pages of 3,000 rows, files of many
    assert all(e.rows > 3000 for e in stored[:-1]) and all(e.bytes >= 1024**2 for e in stored[:-1])
    store = open_store(settings)
    for info in store.list(table_prefix(name)):
        metadata = pq.ParquetFile(io.BytesIO(store.get_bytes(info.key)[0])).metadata
        assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) <= 4000
    watermark = WatermarkStore(store).get(name)
    assert watermark.s3_file_count == len(stored) and watermark.mysql_rows_extracted == 60000
    assert watermark.last_mysql_data_id == 60000


def test_memory_guard_halves_the_batch_size_when_over_the_limit(db, local_config, settings_for):
    db.execute("CREATE TABLE wide (id INT PRIMARY KEY, update_at DATETIME NOT NULL, a TEXT, "
               "KEY (update_at, id))",
               "INSERT INTO wide SELECT seq, '2024-01-01' + INTERVAL seq SECOND, REPEAT(MD5(seq), 30) "
               "FROM seq_1_to_40000")
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 8000)
    settings.override("backup.memory_limit_mb", 50)  # below any Python process: always over
    settings.override("backup.memory_check_interval", 1)
    name = f"{db.name}.wide"
    finished, events = run_sync(settings, name)
    halved = [e.message for e in events if isinstance(e, Notice) and "halved" in e.message]
    assert halved and "batch size halved to 4,000 rows" in halved[0]
    assert "500 rows" in halved[-1] or len(halved) >= 3
    assert finished.rows == 40000 and finished.status == "success"
    assert_exactly_once(db, settings, name, "wide")
