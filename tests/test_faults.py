"""The fault suite: kills, dropped connections, failing S3, a full disk, all on the real servers.

Each test ends the same way: the store holds every row version exactly once, the watermark agrees
with the stored files, and (where a warehouse is in play) the warehouse holds one row per key, the
newest, with a ledger naming exactly the committed files. Kill tests that already live elsewhere
are not repeated here: test_engine.py (SIGKILL at three depths, crash between upload and watermark,
KILL CONNECTION between files, S3 503s), test_warehouse.py (crash after COPY, between merge and
watermark).
"""

import io
import json
import random
import signal
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest

from cli_helpers import run_cli
from conftest import Database, write_config
from s3_fault_proxy import FaultProxy
from s3rs_tui.engine.control import RunControl
from s3rs_tui.engine.events import FilesLoaded, FileStored, Notice, Retrying
from s3rs_tui.engine.parquet import table_prefix
from s3rs_tui.engine.sync import TableSync
from s3rs_tui.sandbox.mariadb import start_mariadb
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse import ledger
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.loader import TableLoader
from s3rs_tui.warehouse.postgres import PostgresWarehouse
from test_engine import TABLE_DDL, assert_exactly_once, fill, stored_files


def sync(settings, name, on_file=lambda n: None, control=None):
    """Sync in-process; `on_file(n)` runs after the n-th stored file (the fault goes there)."""
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, FileStored):
            on_file(event.run_files)

    finished = TableSync(settings, name, sink, control or RunControl()).run()
    return finished, events


def back_after(events, what) -> list[float]:
    """Outage lengths the run reported for `what` ("MySQL", "the store", "the warehouse")."""
    return [float(e.message.split("back after ")[1].split("s ")[0]) for e in events
            if isinstance(e, Notice) and e.message.startswith(f"{what} is back after")]


def assert_watermark_matches_the_files(settings, name) -> None:
    """The watermark counts exactly the stored files and rows, and ends at the last row stored."""
    files = stored_files(settings, name)
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.s3_file_count == len(files)
    assert watermark.mysql_rows_extracted == sum(len(rows) for rows in files.values())
    assert watermark.last_s3_file == max(files)
    last = max((update_at, key) for rows in files.values() for key, update_at in rows)
    assert (watermark.last_mysql_data_timestamp, watermark.last_mysql_data_id) == last


def assert_warehouse_matches(pg, db, settings, name) -> None:
    rows = pg.execute("SELECT id, update_at FROM public.orders")
    assert len(rows) == len({r[0] for r in rows}), "a key is in the warehouse twice"
    assert {(int(i), str(u)) for i, u in rows} == {(int(i), str(u)) for i, u in db.execute(
        "SELECT id, update_at FROM orders")}
    recorded = sorted(k for (k,) in pg.execute("SELECT file_key FROM public.s3rs_loaded_files"))
    assert recorded == sorted(stored_files(settings, name)), "the ledger does not name the stored files"


@pytest.fixture
def orders(db):
    db.execute(TABLE_DDL)
    return db


# -- kill -9 -------------------------------------------------------------------------------------

def test_sigkill_at_twelve_random_moments_then_rerun(orders, tmp_path, bucket, s3_endpoint, pg, settings_for):
    """sync with its load, killed 12 times, each a rerun of the last: six times a random few
    milliseconds after a random file was stored (reading, encoding, uploading, between upload and
    watermark), six times after a random group was loaded (the next COPY, merge, ledger record or
    watermark mirror), with new rows arriving in between; then every row is stored and loaded once."""
    config = write_config(tmp_path / "s3rs.toml", orders, bucket=bucket, endpoint=s3_endpoint, extra=pg.config())
    settings = settings_for(config)
    name = f"{orders.name}.orders"
    rng = random.Random()
    moments = []
    for kill in range(12):
        orders.execute(f"INSERT INTO orders (id, update_at, amount, note) SELECT {kill * 4000} + seq, "
                       f"'2024-02-01' + INTERVAL {kill} DAY + INTERVAL seq SECOND, seq, 'k' FROM seq_1_to_4000")
        process = subprocess.Popen([sys.executable, "-m", "s3rs_tui", "--config", str(config), "sync", "-t", name,
                                    "--no-ui", "--batch-size", "200"], stderr=subprocess.PIPE, text=True)
        phase, wanted = (" file ", rng.randint(1, 18)) if kill % 2 == 0 else (" loaded ", rng.randint(1, 2))
        seen, moment = 0, "the run ended first"
        for line in process.stderr:
            seen += phase in line
            if seen == wanted:
                time.sleep(rng.uniform(0, 0.03))
                process.send_signal(signal.SIGKILL)
                moment = line[20:].strip()
                break
        process.wait()
        moments.append(moment)
    print("killed after:", *moments, sep="\n  ")
    done = run_cli("sync", "-t", name, "--batch-size", "200", config=config, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(orders, settings, name)
    assert_watermark_matches_the_files(settings, name)
    assert_warehouse_matches(pg, orders, settings, name)
    assert sum(" file " in m for m in moments) >= 5 and sum(" loaded " in m for m in moments) >= 5, moments


class Crash(BaseException):
    """Stands for the process dying: nothing in the loader catches a BaseException."""


def test_crash_between_merge_and_ledger_record(orders, tmp_path, bucket, s3_endpoint, pg, settings_for,
                                               monkeypatch):
    fill(orders, 3000)
    settings = settings_for(write_config(tmp_path / "s3rs.toml", orders, bucket=bucket, endpoint=s3_endpoint,
                                         extra=pg.config()))
    settings.override("backup.batch_size", 500)
    name = f"{orders.name}.orders"
    sync(settings, name)
    real_run, record = Warehouse.run, ledger.record_sql(settings.warehouse.schema, "%s", 2)[:40]
    groups = []

    def die_before_the_second_record(self, sql, params=()):
        if sql.startswith(record):
            groups.append(sql)
            if len(groups) == 2:
                raise Crash()  # the merge of group 2 ran in this transaction; its ledger rows did not
        return real_run(self, sql, params)

    monkeypatch.setattr(Warehouse, "run", die_before_the_second_record)
    with pytest.raises(Crash):
        TableLoader(settings, name, lambda e: None, RunControl(), files_per_load=2).run()
    monkeypatch.setattr(Warehouse, "run", real_run)
    assert pg.execute("SELECT count(*) FROM public.s3rs_loaded_files")[0][0] == 2  # group 1 only
    assert pg.execute("SELECT count(*) FROM public.orders")[0][0] == 1000         # its rows only
    TableLoader(settings, name, lambda e: None, RunControl(), files_per_load=2).run()
    assert_warehouse_matches(pg, orders, settings, name)


# -- MySQL -----------------------------------------------------------------------------------------

def test_mysql_connection_killed_mid_stream(orders, local_config, settings_for):
    """KILL CONNECTION while a page is streaming (not between files), twice; the run finishes.
    A slow writer keeps the read-ahead thread's page query open, where the killer finds it."""
    fill(orders, 120000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 30000)
    settings.override("backup.retry_attempts", 5)
    name = f"{orders.name}.orders"
    killed, done = [], threading.Event()

    def killer():
        with orders.connect() as conn, conn.cursor() as cur:
            while len(killed) < 2 and not done.is_set():
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 's3rs' AND "
                            "COMMAND = 'Query' AND INFO LIKE 'SELECT %orders%LIMIT%' AND ID <> CONNECTION_ID()")
                for connection_id, in cur.fetchall():
                    cur.execute(f"KILL CONNECTION {int(connection_id)}")
                    killed.append(connection_id)
                    time.sleep(0.5)
                time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        finished, events = sync(settings, name, on_file=lambda files: time.sleep(0.3))
    finally:
        done.set()
        thread.join()
    assert len(killed) == 2 and finished.rows == 120000
    assert sum(isinstance(e, Retrying) and "MySQL" in e.error for e in events) >= 2
    assert back_after(events, "MySQL")
    assert_exactly_once(orders, settings, name)
    assert_watermark_matches_the_files(settings, name)


def test_mysql_restarted_mid_run(tmp_path, settings_for):
    """The server stops (clean shutdown) after the 3rd file and is back 2 s later on the same port."""
    server = start_mariadb(tmp_path / "mariadb", databases=("shop",))
    try:
        db = Database(server, "shop")
        db.execute(TABLE_DDL)
        fill(db, 20000)
        settings = settings_for(write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store"))
        settings.override("backup.batch_size", 1000)
        settings.override("backup.retry_attempts", 8)
        restarted = []

        def restart(files):
            if files == 3:
                server.stop()
                timer = threading.Timer(2.0, lambda: restarted.append(start_mariadb(server.base_dir, server.port)))
                timer.start()
                restarted.append(timer)

        finished, events = sync(settings, "shop.orders", restart)
        restarted[0].join()
        server = restarted[1]
        assert finished.rows == 20000
        assert back_after(events, "MySQL")[0] >= 2.0
        assert_exactly_once(db, settings, "shop.orders")
        assert_watermark_matches_the_files(settings, "shop.orders")
    finally:
        server.stop()


# -- S3 --------------------------------------------------------------------------------------------

@pytest.fixture
def proxied(orders, tmp_path, bucket, s3_endpoint, settings_for):
    """Settings whose S3 endpoint is a fault proxy in front of the S3 server (timeout 1 s)."""
    proxy = FaultProxy(s3_endpoint)
    config = write_config(tmp_path / "s3rs.toml", orders, bucket=bucket, endpoint=proxy.endpoint,
                          extra="retry_attempts = 6\n")
    config.write_text(config.read_text().replace("retry_attempts = 2\n", "").replace(
        "[s3]\n", "[s3]\ntimeout_seconds = 1\n"))
    settings = settings_for(config)
    settings.override("backup.batch_size", 1000)
    yield settings, proxy, config
    proxy.close()


def test_s3_answering_500_503_and_timing_out_for_a_while(orders, proxied):
    settings, proxy, _ = proxied
    fill(orders, 8000)
    name = f"{orders.name}.orders"

    def trouble(files):
        if files == 2:
            proxy.fail_next(8, "PUT", "/data/")                 # 503s, more than boto's own attempts
        if files == 4:
            proxy.delay_next(7, "PUT", "/data/", seconds=2.5)    # silent past the 1 s timeout

    finished, events = sync(settings, name, trouble)
    assert proxy.failed == 8 and proxy.delayed == 7
    assert finished.rows == 8000
    assert sum(isinstance(e, Retrying) for e in events) >= 2
    assert len(back_after(events, "the store")) >= 2
    assert_exactly_once(orders, settings, name)
    assert_watermark_matches_the_files(settings, name)


def test_s3_server_gone_and_back(orders, proxied):
    """The S3 endpoint refuses connections for 3 s, then answers again on the same port (boto's own
    retries usually ride that out, the engine's take over past them). (The proxy
    restarts, not moto: moto keeps its buckets in memory, so restarting it would not be a restart
    of S3 but the loss of every object, which no real S3 does.)"""
    settings, proxy, _ = proxied
    fill(orders, 8000)
    name = f"{orders.name}.orders"
    timers = []

    def outage(files):
        if files == 3:
            proxy.stop()
            timers.append(threading.Timer(3.0, proxy.start))
            timers[0].start()

    started = time.monotonic()
    finished, events = sync(settings, name, outage)
    timers[0].join()
    assert finished.rows == 8000 and time.monotonic() - started > 3.0  # it waited the outage out
    assert_exactly_once(orders, settings, name)
    assert_watermark_matches_the_files(settings, name)


def test_retries_give_up_with_exit_1_then_a_rerun_resumes(orders, proxied):
    settings, proxy, config = proxied
    fill(orders, 5000)
    name = f"{orders.name}.orders"
    proxy.fail_next(10**6, "PUT", "/data/")
    failed = run_cli("sync", "-t", name, "--batch-size", "1000", config=config, timeout=300)
    assert failed.returncode == 1, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("s3rs: S3 error InternalError for s3://") and "/data/" in last
    assert "gave up after 6 retries" in last and "a rerun resumes from the last stored file" in last
    assert "Traceback" not in failed.stderr
    assert stored_files(settings, name) == {}
    proxy.heal()
    assert run_cli("sync", "-t", name, "--batch-size", "1000", config=config).returncode == 0
    assert_exactly_once(orders, settings, name)


# -- the local disk ----------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs for the local store (root only); unmounted at the end."""
    folder = tmp_path / "store"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)]).returncode:
        pytest.fail("cannot mount a tmpfs here: this test needs root (as CI runs)", pytrace=False)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_local_disk_full(orders, tmp_path, small_disk, settings_for):
    orders.execute("INSERT INTO orders (id, update_at, amount, note) SELECT seq, '2024-01-01' + INTERVAL seq SECOND, "
                   "seq, MD5(RAND()) FROM seq_1_to_100000")  # incompressible notes: ~4 MB of Parquet
    config = write_config(tmp_path / "s3rs.toml", orders, store=small_disk)
    settings = settings_for(config)
    name = f"{orders.name}.orders"
    full = run_cli("sync", "-t", name, "--batch-size", "5000", config=config)
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("s3rs: the local disk is full") and "free space, then rerun" in last, last
    assert "Traceback" not in full.stderr
    # Nothing is damaged: the watermark parses, counts the stored files, and every file reads.
    store = open_store(settings)
    for info in store.list(table_prefix(name)):
        pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))
    assert_watermark_matches_the_files(settings, name)
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    rerun = run_cli("sync", "-t", name, "--batch-size", "5000", config=config)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(orders, settings, name)
    assert_watermark_matches_the_files(settings, name)


# -- the warehouse -----------------------------------------------------------------------------------

def test_warehouse_connection_dropped_during_a_load(orders, tmp_path, bucket, s3_endpoint, pg, settings_for,
                                                    monkeypatch):
    """pg_terminate_backend from another session: once between two groups, once inside a group's
    transaction (after its COPY, before its merge); the load reconnects and finishes."""
    fill(orders, 6000)
    settings = settings_for(write_config(tmp_path / "s3rs.toml", orders, bucket=bucket, endpoint=s3_endpoint,
                                         extra=pg.config()))
    settings.override("backup.batch_size", 500)
    settings.override("backup.retry_attempts", 4)
    name = f"{orders.name}.orders"
    sync(settings, name)
    terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 's3rs'"
    real_fill, fills = PostgresWarehouse.fill_stage, []

    def fill_then_drop(self, files):
        real_fill(self, files)
        fills.append(len(files))
        if len(fills) == 4:
            pg.execute(terminate)

    monkeypatch.setattr(PostgresWarehouse, "fill_stage", fill_then_drop)
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, FilesLoaded) and event.run_files == 2:
            pg.execute(terminate)

    TableLoader(settings, name, sink, RunControl(), files_per_load=2).run()
    assert sum(isinstance(e, Retrying) and "lost the warehouse connection" in e.error for e in events) == 2
    assert back_after(events, "the warehouse")  # one notice: the second drop came during the retry
    assert_warehouse_matches(pg, orders, settings, name)
    assert json.loads(json.dumps(WatermarkStore(open_store(settings)).get(name).processed_s3_files)) == sorted(
        stored_files(settings, name))


def test_a_long_action_that_progresses_gets_fresh_attempts_for_each_outage():
    """A load that runs for hours meets several outages; each gets retry_attempts, not all together."""
    from s3rs_tui.engine.retry import with_retries
    from s3rs_tui.errors import TransientError

    done = []

    def action():  # each attempt loads a group, then loses the connection, until three are in
        done.append(1)
        if len(done) < 3:
            raise TransientError("lost after a group")
        return "loaded"

    common = dict(attempts=1, control=RunControl(), on_retry=lambda *a: None, base_delay=0.001)
    assert with_retries(action, progress=lambda: len(done), **common) == "loaded"
    done.clear()
    with pytest.raises(TransientError, match="gave up after 1 retries"):
        with_retries(action, **common)
