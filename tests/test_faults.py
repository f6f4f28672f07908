"""The fault suite: kills, dropped connections, failing S3, a full disk, all on the real servers.

Each test ends the same way: the store holds every row version exactly once, every column equal
to MySQL's (exact_rows: a digest of all columns per row), the watermark agrees with the stored
files, and (where a warehouse is in play) the warehouse holds one row per key, the newest, every
column equal, with a ledger naming exactly the committed files. The kill tests SIGKILL a real
`s3rs sync` process stopped at a named fail point (S3RS_FAILPOINT), in the default layout (files
of many pages, a 5 s safety lag) and with a file per page. Kill tests that already live elsewhere
are not repeated here: test_engine.py (SIGKILL at three depths, crash between upload and watermark,
KILL CONNECTION between files, S3 503s), test_warehouse.py (crash after COPY, between merge and
watermark).
"""

import http.client
import io
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from cli_helpers import killed_at_failpoint, run_cli, s3rs_command, wait_until
from conftest import Database, write_config
from exact_rows import (
    assert_store_matches_mysql,
    assert_warehouse_matches_mysql,
    assert_watermark_matches_files,
)
from s3_fault_proxy import FaultProxy
from test_engine import stored_files

from s3rs_tui.engine import extract
from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.events import FilesLoaded, FileStored, Notice, Retrying
from s3rs_tui.sandbox.mariadb import start_mariadb
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.lock import TableLock, lock_key, read_lock
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse import ledger
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.kinds.postgres import PostgresWarehouse
from s3rs_tui.warehouse.loader import TableLoader

LAYOUTS = ("default", "file-per-page")  # file_size_mb 128 and a 5 s lag (as operators run it), or 0 and 0


def sync(settings, name, on_file=lambda n: None, control=None):
    """Sync in-process; `on_file(n)` runs after the n-th stored file (the fault goes there)."""
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, FileStored):
            on_file(event.run_files)

    finished = TableSync(settings, name, sink, control or RunControl()).run()
    return finished, events


def sync_in(layout: str, settings, name, at, monkeypatch):
    """Sync in-process with `at(n)` run at the n-th step of progress: after the n-th stored file
    with a file per page; in the default layout, where a run stores one file at its end, after the
    n-th chunk read (in the reader thread, its page's query still open)."""
    if layout == "file-per-page":
        return sync(settings, name, at)
    chunks, real = itertools.count(1), extract.failpoint

    def after_a_chunk(point):
        real(point)
        if point == "mid-page":
            at(next(chunks))

    monkeypatch.setattr(extract, "failpoint", after_a_chunk)
    return sync(settings, name)


def stored_in_files(db, settings, name, layout: str, files: int, rows_per_file: int) -> None:
    """`files` data files of `rows_per_file` rich rows each: one run, a file per page; in the default
    layout one run per file (a run stores one file), each file of four pages."""
    if layout == "file-per-page":
        fill_rich(db, 1, files * rows_per_file)
        settings.override("backup.batch_size", rows_per_file)
        sync(settings, name)
    else:
        settings.override("backup.batch_size", rows_per_file // 4)
        for n in range(files):
            fill_rich(db, n * rows_per_file + 1, rows_per_file, start=f"2024-01-{n + 1:02d}")
            sync(settings, name)
    assert len(stored_files(settings, name)) == files


def back_after(events, what) -> list[float]:
    """Outage lengths the run reported for `what` ("MySQL", "the store", "the warehouse")."""
    return [float(e.message.split("back after ")[1].split("s ")[0]) for e in events
            if isinstance(e, Notice) and e.message.startswith(f"{what} is back after")]


# -- kill -9 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
def test_sigkill_at_twelve_random_moments_then_rerun(rich, tmp_path, bucket, s3_endpoint, pg, settings_for,
                                                      layout):
    """sync with its load, killed 12 times, each a rerun of the last, with new rows arriving in
    between; then every row is stored and loaded once, every column equal. A file per page: six
    times a random few milliseconds after a random file was stored (reading, encoding, uploading,
    between upload and watermark), six times after a random group was loaded (the next COPY, merge,
    ledger record or watermark mirror). Default layout, where a run stores one file at its end: six
    times a random 0-0.3 s after the run said where it starts (between page reads mostly, else
    closing, uploading or loading the file), six times at a random fail point (the n-th chunk read
    or encoded, after the upload, after the watermark, after COPY, after the merge)."""
    config = layout_config(tmp_path, rich, layout, bucket=bucket, endpoint=s3_endpoint, extra=pg.config())
    settings = settings_for(config)
    name = f"{rich.name}.orders"
    rng, moments = random.Random(), []
    for kill in range(12):
        fill_rich(rich, kill * 4000 + 1, 4000, start=f"2024-02-{kill + 1:02d}")
        moments.append(kill_at_random(config, name, layout, kill % 2, rng))
    print("killed after:", *moments, sep="\n  ")
    done = run_cli("sync", "-t", name, "--batch-size", "200", config=config, timeout=300)
    assert done.returncode == 0, done.stderr
    files = assert_store_matches_mysql(rich, settings, name)
    assert_watermark_matches_files(settings, name, files)
    assert_warehouse_matches_mysql(pg.execute, rich, files)
    if layout == "file-per-page":
        files, loads = sum(" file " in m for m in moments), sum(" loaded " in m for m in moments)
        assert files >= 5 and loads >= 5, moments
    else:
        assert sum(m.startswith("fail point") for m in moments) == 6, moments  # each was reached
        assert sum("no file stored yet" in m for m in moments) >= 3, moments  # mostly between page reads


def kill_at_random(config, name: str, layout: str, second_kind: int, rng: random.Random) -> str:
    """One `s3rs sync` SIGKILLed at a random moment (see the test above); returns what it was doing.
    Default layout: pages of 50 rows, so a run reads for a while before its one file is stored."""
    point = ""
    if layout == "default" and second_kind:
        point = rng.choice([f"mid-page:{rng.randint(1, 10)}", f"mid-file:{rng.randint(1, 10)}",
                            "after-upload", "after-watermark", "after-copy", "after-merge"])
    env, batch = {**os.environ, "S3RS_FAILPOINT": point}, 200 if layout == "file-per-page" else 50
    process = subprocess.Popen(
        s3rs_command("sync", "-t", name, "--no-ui", "--batch-size", batch, config=config),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if layout == "file-per-page":
        phase, wanted = (" file ", rng.randint(1, 18)) if not second_kind else (" loaded ", rng.randint(1, 2))
        delay, until = rng.uniform(0, 0.03), lambda line, seen: seen == wanted and phase in line
    elif point:
        delay, until = 0.0, lambda line, seen: "failpoint" in line and "reached" in line
    else:
        delay, until = rng.uniform(0, 0.3), lambda line, seen: " start: " in line
    seen, moment = 0, "the run ended first"
    for line in process.stderr:
        seen += layout == "file-per-page" and phase in line
        if until(line, seen):
            time.sleep(delay)
            alive = process.poll() is None
            process.send_signal(signal.SIGKILL)
            said = process.stderr.read().strip().splitlines()
            moment = line[20:].strip() if layout == "file-per-page" else f"fail point {point}" if point else (
                f"{delay:.2f}s after the start, " + ("the run had ended" if not alive else
                                                     f"after: {said[-1][20:]}"
                                                     if said else "no file stored yet"))
            break
    process.wait()
    return moment


class Crash(BaseException):
    """Stands for the process dying: nothing in the loader catches a BaseException."""


@pytest.mark.parametrize("layout", LAYOUTS)
def test_crash_between_merge_and_ledger_record(rich, tmp_path, bucket, s3_endpoint, pg, settings_for,
                                               monkeypatch, layout):
    """Six files of 500 rows, loaded two per group; the 2nd group's transaction dies after its merge,
    before its ledger rows (in-process: the loader's own cleanup runs, the server rolls back)."""
    settings = settings_for(layout_config(tmp_path, rich, layout, bucket=bucket, endpoint=s3_endpoint,
                                          extra=pg.config()))
    name = f"{rich.name}.orders"
    stored_in_files(rich, settings, name, layout, 6, 500)
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
    assert_all_columns_equal(rich, settings, name, pg)


# -- fail points: a real process stopped at a named moment, then SIGKILLed ----------------------------

RICH_DDL = ("CREATE TABLE orders (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, update_at DATETIME(6) NOT NULL, "
            "amount DECIMAL(18,4), name VARCHAR(64), shipped DATE, payload BLOB, "
            "KEY idx_update_at_id (update_at, id))")
KILL_ROWS, KILL_BATCH = 40000, 12000  # pages of 12,000 rows arrive as chunks of 10,000 and 2,000
KILL_POINTS = {  # the n-th time: a point the layout reaches, with files already stored where it has several
    "default": ("mid-page:3", "mid-file:3", "after-upload:1", "after-watermark:1", "after-copy:1",
                "after-merge:1"),
    "file-per-page": ("mid-page:3", "mid-file:3", "after-upload:2", "after-watermark:2", "after-copy:1",
                      "after-merge:1"),
}


def fill_rich(db, first: int, count: int, start: str = "2024-01-01") -> None:
    """Rows `first`.. (all older than any lag): four per cursor value (ties), cursor order unlike
    key order, fractional seconds, NULLs in every nullable column, negative decimals, non-ASCII
    text, binary bytes ending in a zero byte."""
    db.execute(f"INSERT INTO orders SELECT {first - 1} + seq, "
               f"'{start}' + INTERVAL ((seq * 7919) % {count}) DIV 4 * 250000 MICROSECOND, "
               "IF(seq % 13 = 0, NULL, seq * 1.2345 - 5000), "
               "IF(seq % 17 = 0, NULL, CONCAT('näme ', seq, ' €')), "
               "IF(seq % 11 = 0, NULL, '2023-01-01' + INTERVAL seq % 700 DAY), "
               f"IF(seq % 7 = 0, NULL, UNHEX(CONCAT(MD5(seq), '00'))) FROM seq_1_to_{count}")


def change_rows(db) -> None:
    """What happens between a dead run and its rerun: new rows, and every column of old rows
    changed (moved to a newer cursor value, still older than the lag)."""
    fill_rich(db, 100001, 3000, start="2024-06-01")
    db.execute("UPDATE orders SET update_at = '2024-07-01' + INTERVAL id MICROSECOND, "
               "amount = amount + 0.0001, name = CONCAT('upd ', id), shipped = NULL, "
               "payload = UNHEX(SHA1(id)) WHERE id % 41 = 0 AND id <= 100000")


@pytest.fixture
def rich(db):
    db.execute(RICH_DDL)
    return db


def layout_config(tmp_path, db, layout: str, **where) -> "Path":
    return write_config(tmp_path / "s3rs.toml", db, default_layout=layout == "default", **where)


def kill_at_failpoint(config, point: str, tmp_path, *args) -> None:
    """`s3rs sync --no-ui ARGS` run until it stops at fail point `point`, then SIGKILLed there: no
    `finally`, rollback or lock release runs, as when a machine dies."""
    killed_at_failpoint(config, point, tmp_path, "sync", "--no-ui", *args)


def assert_state_at_the_kill(point: str, layout: str, settings, name: str, pg) -> None:
    """The moment was the one named: a file stored but not committed after-upload (and perhaps
    mid-page or mid-file, from the writer thread); none otherwise; nothing of the load committed
    after-copy and after-merge."""
    step = point.split(":")[0]
    stored = [info.key for info in open_store(settings).list(table_prefix(name))]
    watermark = WatermarkStore(open_store(settings)).get(name)
    committed = watermark.s3_file_count if watermark else 0
    ahead = len(stored) - committed  # stored, not yet covered by the watermark: at most one, ever
    if step in ("mid-page", "mid-file"):  # the reader stops there; the writer thread may be storing
        assert ahead in (0, 1), (stored, committed)  # the file before (upload, then watermark)
    else:
        assert ahead == (step == "after-upload"), (stored, committed)
    if step in ("mid-page", "mid-file") and layout == "default":
        assert not stored, "the only file (of several pages) was still open"
    if step in ("after-copy", "after-merge"):
        assert pg.execute("SELECT count(*) FROM public.s3rs_loaded_files") == [(0,)]
        assert pg.execute("SELECT count(*) FROM public.orders") == [(0,)]


@pytest.mark.parametrize("layout, point", [(layout, point) for layout in LAYOUTS
                                           for point in KILL_POINTS[layout]])
def test_sigkill_at_a_fail_point_then_rerun(rich, tmp_path, bucket, s3_endpoint, pg, settings_for, layout,
                                            point):
    """A real `s3rs sync` (backup, then load into PostgreSQL) SIGKILLed at `point`; rows change;
    the rerun leaves every column of every stored and loaded row equal to MySQL's."""
    kill_change_rerun(rich, tmp_path, bucket, s3_endpoint, pg, settings_for, layout, point, KILL_BATCH)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sigkill_mid_page_with_the_connectorx_reader(rich, tmp_path, bucket, s3_endpoint, pg, settings_for,
                                                     layout):
    """The same with `reader = "connectorx"`, whose chunks are 20,000 rows: pages of 30,000, killed
    after the first chunk of the first page."""
    kill_change_rerun(rich, tmp_path, bucket, s3_endpoint, pg, settings_for, layout, "mid-page:1", 30000,
                      'reader = "connectorx"\n')


def kill_change_rerun(db, tmp_path, bucket, endpoint, pg, settings_for, layout, point, batch, extra=""):
    config = layout_config(tmp_path, db, layout, bucket=bucket, endpoint=endpoint, extra=extra + pg.config())
    settings = settings_for(config)
    name = f"{db.name}.orders"
    fill_rich(db, 1, KILL_ROWS)
    kill_at_failpoint(config, point, tmp_path, "-t", name, "--batch-size", str(batch))
    assert_state_at_the_kill(point, layout, settings, name, pg)
    change_rows(db)
    rerun = run_cli("sync", "-t", name, "--batch-size", str(batch), config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    files = assert_store_matches_mysql(db, settings, name, history=True)
    assert_watermark_matches_files(settings, name, files)
    assert_warehouse_matches_mysql(pg.execute, db, files)


def duckdb_rows(path, copy_to=None):
    """A query function on the DuckDB file at `path`, opened read-only; `copy_to`: on a copy of the
    file and its WAL instead, so the original stays exactly as the killed run left it."""
    if copy_to is not None:
        for suffix in ("", ".wal"):
            if Path(f"{path}{suffix}").exists():
                shutil.copy(f"{path}{suffix}", f"{copy_to}{suffix}")
        path = copy_to
    connection = duckdb.connect(str(path), read_only=True)
    return connection, lambda sql: connection.execute(sql).fetchall()


def test_the_all_columns_check_sees_one_wrong_value(rich, tmp_path, bucket, s3_endpoint, pg, settings_for):
    """The check these tests end with can fail: one amount off by 0.0001, with id and update_at
    unchanged, in the warehouse, then (MySQL changed the same way) in the stored files."""
    config = layout_config(tmp_path, rich, "default", bucket=bucket, endpoint=s3_endpoint, extra=pg.config())
    settings = settings_for(config)
    name = f"{rich.name}.orders"
    fill_rich(rich, 1, 2000)
    assert run_cli("sync", "-t", name, config=config).returncode == 0
    files = assert_store_matches_mysql(rich, settings, name)
    assert_warehouse_matches_mysql(pg.execute, rich, files)
    pg.execute("UPDATE public.orders SET amount = amount + 0.0001 WHERE id = 8")
    with pytest.raises(AssertionError, match=r"the warehouse differs from MySQL: 0 keys .*1 with other"):
        assert_warehouse_matches_mysql(pg.execute, rich, files)
    rich.execute("UPDATE orders SET amount = amount + 0.0001 WHERE id = 8")
    assert_warehouse_matches_mysql(pg.execute, rich, files)
    with pytest.raises(AssertionError, match=r"the stored rows differ from MySQL: 0 keys .*1 with other"):
        assert_store_matches_mysql(rich, settings, name)


@pytest.mark.parametrize("point", ["after-copy:1", "after-merge:1"])
def test_duckdb_warehouse_killed_in_a_load_then_rerun(rich, tmp_path, settings_for, point):
    """kind = "duckdb", default layout: a first run loads; rows change; the next run is SIGKILLed
    inside its load (staging filled, or merged and recorded but not committed); the rerun loads
    each file exactly once."""
    path = tmp_path / "warehouse.duckdb"
    config = layout_config(tmp_path, rich, "default", store=tmp_path / "store",
                           extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{path}"\n')
    settings = settings_for(config)
    name = f"{rich.name}.orders"
    fill_rich(rich, 1, KILL_ROWS)
    first = run_cli("sync", "-t", name, "--batch-size", str(KILL_BATCH), config=config, timeout=300)
    assert first.returncode == 0, first.stderr
    change_rows(rich)
    kill_at_failpoint(config, point, tmp_path, "-t", name, "--batch-size", str(KILL_BATCH))
    connection, query = duckdb_rows(path, copy_to=tmp_path / "as-left.duckdb")
    with connection:  # what a reader finds after the crash: the first load only
        assert query("SELECT count(*) FROM public.s3rs_loaded_files") == [(1,)]
        assert query("SELECT count(*) FROM public.orders") == [(KILL_ROWS,)]
    rerun = run_cli("sync", "-t", name, "--batch-size", str(KILL_BATCH), config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    files = assert_store_matches_mysql(rich, settings, name, history=True)
    assert len(files) == 2
    assert_watermark_matches_files(settings, name, files)
    connection, query = duckdb_rows(path)
    with connection:
        assert_warehouse_matches_mysql(query, rich, files)


# -- MySQL -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
def test_mysql_connection_killed_mid_stream(rich, tmp_path, settings_for, monkeypatch, layout):
    """KILL CONNECTION while a page is streaming (not between files), twice; the run finishes.
    A slow writer (a file per page) or a slow reader (default layout: a pause after each chunk)
    keeps a page query open, where the killer finds it."""
    fill_rich(rich, 1, 120000)
    settings = settings_for(layout_config(tmp_path, rich, layout, store=tmp_path / "store"))
    settings.override("backup.batch_size", 30000)
    settings.override("backup.retry_attempts", 5)
    name = f"{rich.name}.orders"
    killed, done = [], threading.Event()

    def killer():
        with rich.connect() as conn, conn.cursor() as cur:
            while len(killed) < 2 and not done.is_set():
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 's3rs' AND "
                            "COMMAND = 'Query'"
                            " AND INFO LIKE 'SELECT %orders%LIMIT%' AND ID <> CONNECTION_ID()")
                for connection_id, in cur.fetchall():
                    cur.execute(f"KILL CONNECTION {int(connection_id)}")
                    killed.append(connection_id)
                    time.sleep(0.5)
                time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        finished, events = sync_in(layout, settings, name, lambda step: time.sleep(0.3), monkeypatch)
    finally:
        done.set()
        thread.join()
    assert len(killed) == 2 and finished.rows == 120000
    assert sum(isinstance(e, Retrying) and "MySQL" in e.error for e in events) >= 2
    assert back_after(events, "MySQL")
    assert_all_columns_equal(rich, settings, name)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_mysql_restarted_mid_run(tmp_path, settings_for, monkeypatch, layout):
    """The server stops (clean shutdown) after the 3rd file (default layout: after the 3rd page of
    the one file) and is back 2 s later on the same port."""
    server = start_mariadb(tmp_path / "mariadb", databases=("shop",))
    try:
        db = Database(server, "shop")
        db.execute(RICH_DDL)
        fill_rich(db, 1, 20000)
        settings = settings_for(layout_config(tmp_path, db, layout, store=tmp_path / "store"))
        settings.override("backup.batch_size", 1000)
        settings.override("backup.retry_attempts", 8)
        restarted = []

        def restart(step):
            if step == 3:
                server.stop()
                timer = threading.Timer(
                    2.0, lambda: restarted.append(start_mariadb(server.base_dir, server.port)))
                timer.start()
                restarted.append(timer)

        finished, events = sync_in(layout, settings, "shop.orders", restart, monkeypatch)
        restarted[0].join()
        server = restarted[1]
        assert finished.rows == 20000
        assert back_after(events, "MySQL")[0] >= 2.0
        assert_all_columns_equal(db, settings, "shop.orders")
    finally:
        server.stop()


# -- S3 --------------------------------------------------------------------------------------------

@pytest.fixture
def proxy(s3_endpoint):
    """A fault proxy in front of the S3 server."""
    proxy = FaultProxy(s3_endpoint)
    yield proxy
    proxy.close()


def proxied_config(tmp_path, db, bucket, proxy, layout: str, extra: str = "", retries: int = 6) -> "Path":
    """S3 through `proxy` (timeout 1 s, `retries` retries), in `layout`."""
    config = layout_config(tmp_path, db, layout, bucket=bucket, endpoint=proxy.endpoint,
                           extra=f"retry_attempts = {retries}\n" + extra)
    config.write_text(config.read_text().replace("retry_attempts = 2\n", "").replace(
        "[s3]\n", "[s3]\ntimeout_seconds = 1\n"))
    return config


def assert_all_columns_equal(db, settings, name, pg=None) -> None:
    files = assert_store_matches_mysql(db, settings, name, history=True)
    assert_watermark_matches_files(settings, name, files)
    if pg is not None:
        assert_warehouse_matches_mysql(pg.execute, db, files)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_s3_answering_503_and_timing_out_for_a_while(rich, tmp_path, bucket, proxy, settings_for, layout):
    """Data uploads answered 503, then silent past the 1 s timeout, each more often than boto's
    own 5 attempts, so the engine's retries take over too."""
    settings = settings_for(proxied_config(tmp_path, rich, bucket, proxy, layout))
    settings.override("backup.batch_size", 1000)
    fill_rich(rich, 1, 8000)
    name = f"{rich.name}.orders"
    proxy.fail_next(6, "PUT", "/data/")
    proxy.delay_next(6, "PUT", "/data/", seconds=1.5)
    finished, events = sync(settings, name)
    assert proxy.pending() == 0 and proxy.failed == 6 and proxy.delayed == 6
    assert finished.rows == 8000
    assert sum(isinstance(e, Retrying) for e in events) >= 2
    assert back_after(events, "the store")  # one outage: the faults come back to back
    assert_all_columns_equal(rich, settings, name)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_s3_gone_and_back(rich, tmp_path, bucket, proxy, settings_for, layout):
    """At the first data upload the S3 endpoint goes away for 3 s: that upload unanswered, the
    client's established keep-alive connections cut, new ones refused; then it answers again on
    the same port. (The proxy goes, not moto: moto keeps its objects in memory, so restarting it
    would lose every object, which no real S3 outage does.)"""
    settings = settings_for(proxied_config(tmp_path, rich, bucket, proxy, layout))
    settings.override("backup.batch_size", 1000)
    fill_rich(rich, 1, 8000)
    name = f"{rich.name}.orders"
    proxy.gone_at("PUT", "/data/", seconds=3.0)
    started = time.monotonic()
    finished, _events = sync(settings, name)
    assert proxy.outages == 1 and proxy.cut >= 1  # at least the keep-alive connection the upload came on
    assert finished.rows == 8000 and time.monotonic() - started > 3.0  # it waited the outage out
    assert_all_columns_equal(rich, settings, name)


def test_the_proxy_gone_cuts_established_keep_alive_connections(proxy, bucket):
    """What "S3 gone" means: a connection a client keeps open for its next request dies with the
    server; only new connections, once it is back, are answered."""
    client = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    client.request("HEAD", f"/{bucket}")
    client.getresponse().read()  # the connection stays open (HTTP/1.1 keep-alive)
    proxy.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        client.request("HEAD", f"/{bucket}")
        client.getresponse()
    client.close()
    proxy.start()
    client = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    client.request("HEAD", f"/{bucket}")
    assert client.getresponse().status == 200
    client.close()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("step", ["sync", "load-only"])
def test_s3_get_list_head_failing_during_a_load(rich, tmp_path, bucket, proxy, pg, settings_for, layout,
                                                step):
    """LIST, HEAD and GET of data files and of the watermark answered 503 while a real `s3rs sync`
    loads (after its backup, or `--load-only` after a `--backup-only` run): LIST and GET more often
    than boto's own attempts, so the engine's retries take over (the load starts over from the
    ledger)."""
    config = proxied_config(tmp_path, rich, bucket, proxy, layout, extra=pg.config())
    settings = settings_for(config)
    fill_rich(rich, 1, 8000)
    name = f"{rich.name}.orders"
    command = ("sync", "-t", name, "--batch-size", "1000")
    if step == "load-only":
        assert run_cli(*command, "--backup-only", config=config).returncode == 0
    proxy.fail_next(6, "GET", "/_state/watermarks/")  # read when the load starts
    proxy.fail_next(6, "GET", "list-type=2")
    proxy.fail_next(3, "HEAD", "/data/")
    proxy.fail_next(6, "GET", "/data/")
    done = run_cli(*command, *(["--load-only"] if step == "load-only" else []), config=config, timeout=300)
    assert done.returncode == 0, done.stderr
    assert proxy.pending() == 0 and proxy.failed == 21
    assert "retry" in done.stderr.lower()
    assert_all_columns_equal(rich, settings, name, pg)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lock_heartbeats_failing_for_a_while_keep_the_lock(rich, tmp_path, bucket, proxy, settings_for,
                                                           monkeypatch, layout):
    """A heartbeat refused once, then its retry silent past the timeout while the write still
    lands (the lock's tag changed under the run): the lock is kept, the run finishes, and it
    releases its lock. Stale after 20 s: a beat every 5 s."""
    settings = settings_for(proxied_config(tmp_path, rich, bucket, proxy, layout,
                                           extra="lock_stale_seconds = 20\n"))
    settings.override("backup.batch_size", 1000)
    fill_rich(rich, 1, 14000)
    name = f"{rich.name}.orders"

    def slowly(step):
        if step == 1:
            proxy.fail_next(1, "PUT", "/locks/")
            proxy.delay_next(1, "PUT", "/locks/", seconds=1.2)
        time.sleep(0.8)  # 14 files (default: pages of one file): the run outlasts a beat and its retries

    finished, _ = sync_in(layout, settings, name, slowly, monkeypatch)
    assert proxy.pending() == 0 and finished.rows == 14000 and finished.status == "success"
    assert read_lock(open_store(settings), name) is None  # released
    assert_all_columns_equal(rich, settings, name)


def test_a_heartbeat_whose_answer_was_lost_keeps_the_lock(tmp_path):
    """The write of a beat lands but its answer is lost (a timeout), so the run still holds the old
    tag: the next beat's compare-and-swap fails, and the lock, still this run's, is kept."""
    from s3rs_tui.runtime.errors import TransientError
    from s3rs_tui.store.local import LocalStore

    class AnswerLost(LocalStore):
        lost_answers = 0

        def replace(self, key, data, tag):
            new_tag = super().replace(key, data, tag)
            if not self.lost_answers:
                self.lost_answers += 1
                raise TransientError("S3 unreachable: read timeout")
            return new_tag

    store = AnswerLost(tmp_path / "store", "")
    with TableLock(store, "db.t", stale_seconds=20, heartbeat_seconds=0.05) as lock:
        wait_until(lambda: store.lost_answers and store.get_bytes(lock_key("db.t"))[1] == lock._tag, 10,
                   "a beat after the lost answer")
        beat = read_lock(store, "db.t").heartbeat_at
        wait_until(lambda: read_lock(store, "db.t").heartbeat_at > beat, 10, "the beats going on")
        assert not lock.lost.is_set()
    assert read_lock(store, "db.t") is None  # released


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lock_heartbeats_failing_past_the_stale_time_stop_the_run(rich, tmp_path, bucket, proxy,
                                                                  settings_for, monkeypatch, layout):
    """Every heartbeat refused from the 2nd file (default layout: the 2nd page of the one file) on:
    past half the stale time (4 s) the run stops before its next commit (default: the one file's,
    at the end), says why, and the watermark covers exactly the committed files; once the lock is
    stale a rerun takes it and finishes."""
    config = proxied_config(tmp_path, rich, bucket, proxy, layout, extra="lock_stale_seconds = 4\n")
    settings = settings_for(config)
    settings.override("backup.batch_size", 1000)
    fill_rich(rich, 1, 14000)
    name = f"{rich.name}.orders"

    def slowly(step):
        if step == 2:
            proxy.fail_next(10**6, "PUT", "/locks/")
        time.sleep(0.5)

    with pytest.raises(S3rsError, match="no lock heartbeat got through to the store for"):
        sync_in(layout, settings, name, slowly, monkeypatch)
    proxy.heal()
    stored = stored_files(settings, name)  # the file uploaded before the check is not committed:
    watermark = WatermarkStore(open_store(settings)).get(name)  # the rerun rewrites it, the loader skips it
    committed = watermark.s3_file_count if watermark else 0
    assert committed == len(stored) - 1
    assert (2 <= committed < 13 if layout == "file-per-page" else committed == 0)
    wait_until(lambda: TableLock(open_store(settings), name, stale_seconds=4).is_stale(
        read_lock(open_store(settings), name)), 30, "the lock to go stale")
    done = run_cli("sync", "-t", name, "--batch-size", "1000", config=config)
    assert done.returncode == 0, done.stderr
    assert_all_columns_equal(rich, settings, name)


def test_sigkill_while_writing_a_lock_heartbeat(rich, tmp_path, bucket, proxy, pg, settings_for):
    """Default layout, killed inside a heartbeat (uploads slowed so the run lasts past a beat):
    the rerun takes over the dead run's lock and ends exact."""
    config = proxied_config(tmp_path, rich, bucket, proxy, "default",
                            extra="lock_stale_seconds = 4\n" + pg.config())
    settings = settings_for(config)
    fill_rich(rich, 1, KILL_ROWS)
    name = f"{rich.name}.orders"
    proxy.delay_next(1, "PUT", "/data/", seconds=0.9)  # under the 1 s timeout: slow, not failed
    kill_at_failpoint(config, "lock-heartbeat:1", tmp_path, "-t", name, "--batch-size", str(KILL_BATCH))
    assert read_lock(open_store(settings), name) is not None  # left behind by the dead run
    change_rows(rich)
    rerun = run_cli("sync", "-t", name, "--batch-size", str(KILL_BATCH), config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_all_columns_equal(rich, settings, name, pg)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_retries_give_up_with_exit_1_then_a_rerun_resumes(rich, tmp_path, bucket, proxy, settings_for,
                                                          layout):
    """Every data upload answered 503: past boto3's own attempts and the engine's 3 retries the run
    exits 1 with one line; nothing is stored; once S3 answers a rerun stores everything."""
    config = proxied_config(tmp_path, rich, bucket, proxy, layout, retries=3)
    settings = settings_for(config)
    fill_rich(rich, 1, 5000)
    name = f"{rich.name}.orders"
    proxy.fail_next(10**6, "PUT", "/data/")
    failed = run_cli("sync", "-t", name, "--batch-size", "1000", config=config, timeout=300)
    assert failed.returncode == 1, failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("s3rs: S3 error InternalError for s3://") and "/data/" in last
    assert "gave up after 3 retries" in last and "a rerun resumes from the last stored file" in last
    assert "Traceback" not in failed.stderr
    assert stored_files(settings, name) == {}
    proxy.heal()
    assert run_cli("sync", "-t", name, "--batch-size", "1000", config=config).returncode == 0
    assert_all_columns_equal(rich, settings, name)


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


@pytest.mark.parametrize("layout", LAYOUTS)
def test_local_disk_full(rich, tmp_path, small_disk, settings_for, layout):
    """The local store's disk fills up: with a file per page after some stored files, in the
    default layout while the one open file grows in the store's scratch folder."""
    fill_rich(rich, 1, 80000)
    rich.execute("UPDATE orders SET name = MD5(RAND())")  # incompressible names: ~3.6 MB of Parquet
    config = layout_config(tmp_path, rich, layout, store=small_disk)
    settings = settings_for(config)
    name = f"{rich.name}.orders"
    full = run_cli("sync", "-t", name, "--batch-size", "5000", config=config)
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("s3rs: the local disk is full") and "free space, then rerun" in last, last
    assert "Traceback" not in full.stderr
    # Nothing is damaged: the watermark parses, counts the stored files, and every file reads.
    store = open_store(settings)
    for info in store.list(table_prefix(name)):
        pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))
    if layout == "file-per-page":
        assert_watermark_matches_files(settings, name)
    else:  # the only file was still open: nothing stored, nothing committed
        assert stored_files(settings, name) == {}
        watermark = WatermarkStore(store).get(name)
        assert watermark is None or watermark.s3_file_count == 0
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    rerun = run_cli("sync", "-t", name, "--batch-size", "5000", config=config)
    assert rerun.returncode == 0, rerun.stderr
    files = assert_store_matches_mysql(rich, settings, name)
    assert_watermark_matches_files(settings, name, files)


# -- the warehouse -----------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
def test_warehouse_connection_dropped_during_a_load(rich, tmp_path, bucket, s3_endpoint, pg, settings_for,
                                                    monkeypatch, layout):
    """pg_terminate_backend from another session: once between two groups, once inside a group's
    transaction (after its COPY, before its merge); the load reconnects and finishes. Eight files
    of 500 rows (default layout: one backup run each), two per group."""
    settings = settings_for(layout_config(tmp_path, rich, layout, bucket=bucket, endpoint=s3_endpoint,
                                          extra=pg.config()))
    settings.override("backup.retry_attempts", 4)
    name = f"{rich.name}.orders"
    stored_in_files(rich, settings, name, layout, 8, 500)
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
    assert_all_columns_equal(rich, settings, name, pg)
    loaded = WatermarkStore(open_store(settings)).get(name).processed_s3_files
    assert json.loads(json.dumps(loaded)) == sorted(
        stored_files(settings, name))


def test_a_long_action_that_progresses_gets_fresh_attempts_for_each_outage():
    """A load that runs for hours meets several outages; each gets retry_attempts, not all together."""
    from s3rs_tui.runtime.errors import TransientError
    from s3rs_tui.runtime.retry import with_retries

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
