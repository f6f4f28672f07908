"""`progressive --parallel N`: a first backfill split into ranges, each read by a process of its
own, the progressive process the only writer of the watermark. Killed anywhere (the whole run, or
one range's process alone), stopped by a signal, or raced by writers, a rerun leaves every row
stored (and loaded) exactly once with every column equal to MySQL's (exact_rows); once every
range is done the table goes on as one cursor, exactly."""

import json
import multiprocessing
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import run_cli, s3rs_command, wait_until
from conftest import write_config
from exact_rows import (
    assert_store_matches_mysql,
    assert_warehouse_matches_mysql,
    assert_watermark_matches_files,
)
from test_faults import KILL_ROWS, RICH_DDL, change_rows, fill_rich

from s3rs_tui.jobs.progressive import ProgressiveOptions, ProgressiveRun
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.events import ChunkProgress, FileStored, PageRead
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import CursorRange, Watermark, WatermarkStore

PAGE = 6000  # a file per page: each range of ~20,000 rows stores files of 6,000, 6,000, 6,000, 2,000


@pytest.fixture
def rich(db):
    db.execute(RICH_DDL)
    fill_rich(db, 1, KILL_ROWS)
    return db


def config_for(tmp_path, db, bucket, endpoint, extra="", default_layout=False) -> Path:
    return write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=endpoint,
                        extra=f"batch_size = {PAGE}\n{extra}", default_layout=default_layout)


def progressive(config, name, *args, timeout=300) -> subprocess.CompletedProcess:
    return run_cli("progressive", name, "--no-ui", *args, config=config, cwd=config.parent, timeout=timeout)


def start(config, name, *args, env=None, log: Path) -> subprocess.Popen:
    with open(log, "w") as stderr:
        return subprocess.Popen(s3rs_command("progressive", name, "--no-ui", *args, config=config),
                                env={**os.environ, **(env or {})}, cwd=config.parent,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has died)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def kill_run(process: subprocess.Popen) -> None:
    """SIGKILL the progressive process alone; its range readers die with it (nobody writes after)."""
    workers = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    wait_until(lambda: not any(alive(pid) for pid in workers), 20, "the range readers to die with the run")


def watermark_of(settings, name) -> Watermark:
    return WatermarkStore(open_store(settings)).get(name)


def stored_keys(settings, name) -> list[str]:
    return [info.key for info in open_store(settings).list(table_prefix(name))]


def assert_exact(db, settings, name, pg=None, history=True) -> None:
    files = assert_store_matches_mysql(db, settings, name, history=history)
    assert_watermark_matches_files(settings, name, files)
    if pg is not None:
        assert_warehouse_matches_mysql(pg.execute, db, files)


# -- the split, the collapse, one cursor after ------------------------------------------------------

def test_two_ranges_then_one_cursor_then_a_sync(rich, tmp_path, bucket, s3_endpoint, settings_for):
    config = config_for(tmp_path, rich, bucket, s3_endpoint)
    settings, name = settings_for(config), f"{rich.name}.orders"
    first = progressive(config, name, "--parallel", "2", "--chunk-size", "16000", "--max-chunks", "1")
    assert first.returncode == 0, first.stderr
    watermark = watermark_of(settings, name)
    ranges = watermark.ranges
    assert ranges is not None and len(ranges) == 2 and not any(r.done for r in ranges)
    assert [r.rows for r in ranges] == [8000, 8000]  # the chunk's rows shared by the ranges
    assert ranges[0].end == ranges[1].start and ranges[1].end is None
    document = json.loads(run_cli("watermark", "get", "-t", name, "--json", config=config).stdout)
    assert document["last_mysql_data_timestamp"] is None and len(document["ranges"]) == 2
    # Cut by a counted walk over the index: the ranges hold the same rows.
    below = rich.execute("SELECT COUNT(*) FROM orders WHERE update_at < %s OR (update_at = %s AND id <= %s)",
                         params=(ranges[0].end_timestamp, ranges[0].end_timestamp, ranges[0].end_key[0]))
    assert below == ((KILL_ROWS // 2,),)
    # Another sync meanwhile is refused: there is no one position to start from.
    refused = run_cli("sync", "-t", name, config=config)
    assert refused.returncode == 2 and "parallel first backfill" in refused.stderr
    # The same command without --parallel goes on with the saved ranges, then as one cursor.
    rest = progressive(config, name, "--chunk-size", "16000")
    assert rest.returncode == 0, rest.stderr
    assert "every range is done: one cursor again" in rest.stderr and "caught up" in rest.stderr
    watermark = watermark_of(settings, name)
    assert watermark.ranges is None and "ranges" not in json.loads(watermark.to_json())
    assert_exact(rich, settings, name, history=False)
    change_rows(rich)
    later = run_cli("sync", "-t", name, config=config)
    assert later.returncode == 0, later.stderr
    assert_exact(rich, settings, name)


def test_commits_answers_per_range():
    """A part file is committed when the range it sorts in has stored past it; old watermarks
    (no ranges) keep their rule and their document."""
    def part(n: int) -> str:
        return f"data/d/t/part-20240101T000000000000-{n:020d}.parquet"

    ranges = [CursorRange(None, None, "a", [10], part(0), last_s3_file=part(5)),
              CursorRange("a", [10], None, None, part(10), last_s3_file=None),
              CursorRange("b", [20], None, None, part(20), last_s3_file=part(25))]
    watermark = Watermark(table_name="d.t", ranges=ranges)
    assert [watermark.commits(part(n)) for n in (0, 5, 6, 10, 15, 20, 25, 26)] == \
        [True, True, False, False, False, True, True, False]
    again = Watermark.from_json(watermark.to_json(), "here")
    assert again.ranges == ranges and again.has_files
    old = Watermark(table_name="d.t", last_s3_file=part(5))
    assert "ranges" not in json.loads(old.to_json()) and old.commits(part(5)) and not old.commits(part(6))
    for r in ranges:
        r.done = True
    watermark.collapse_ranges()
    assert watermark.ranges is None and watermark.last_s3_file == part(25)


# -- kill -9 at each fail point, with the load -------------------------------------------------------

POINTS = ("mid-page:3", "mid-file:3", "after-upload:2", "after-watermark:2", "after-copy:1", "after-merge:1",
          "lock-heartbeat:1")


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_a_fail_point_with_two_ranges_then_rerun(rich, tmp_path, bucket, s3_endpoint, pg,
                                                             settings_for, point):
    """`progressive --parallel 2 --mode full` SIGKILLed where a range reader or the progressive
    process stopped at `point`; rows change; the rerun (without --parallel: the ranges are saved)
    leaves every column of every stored and loaded row equal to MySQL's."""
    extra = ("lock_stale_seconds = 4\n" if point.startswith("lock") else "") + pg.config()
    config = config_for(tmp_path, rich, bucket, s3_endpoint, extra)
    settings, name = settings_for(config), f"{rich.name}.orders"
    marker = tmp_path / "reached"
    process = start(config, name, "--parallel", "2", "--chunk-size", "40000", "--mode", "full",
                    env={"S3RS_FAILPOINT": point, "S3RS_FAILPOINT_FILE": str(marker)},
                    log=tmp_path / "run.log")
    try:
        wait_until(lambda: marker.exists() or process.poll() is not None, 120, f"fail point {point}",
                   lambda: (tmp_path / "run.log").read_text())
    finally:
        kill_run(process)
    assert marker.exists(), (tmp_path / "run.log").read_text()
    watermark = watermark_of(settings, name)
    ahead = len(stored_keys(settings, name)) - watermark.s3_file_count
    assert 0 <= ahead <= 2, "at most one stored file ahead of each range's position"
    if point.startswith("after-upload"):
        assert ahead >= 1
    if point.startswith(("after-copy", "after-merge")):
        assert pg.execute("SELECT count(*) FROM public.orders") == [(0,)]
    change_rows(rich)
    rerun = progressive(config, name, "--chunk-size", "40000", "--mode", "full")
    assert rerun.returncode == 0, rerun.stderr
    assert watermark_of(settings, name).ranges is None
    assert_exact(rich, settings, name, pg)


def test_sigkill_at_random_moments_with_two_ranges(rich, tmp_path, bucket, s3_endpoint, settings_for):
    """Killed five times at a random moment of the run (spawning, reading, storing, committing),
    new rows arriving in between; then the ranges finish, one cursor goes on, all exact."""
    config = config_for(tmp_path, rich, bucket, s3_endpoint)
    settings, name = settings_for(config), f"{rich.name}.orders"
    rng, moments = random.Random(), []
    for kill in range(5):
        process = start(config, name, "--parallel", "2", "--chunk-size", "6000", log=tmp_path / "run.log")
        delay = rng.uniform(0.5, 4.0)
        time.sleep(delay)
        watermark = watermark_of(settings, name)
        moments.append(f"{delay:.1f}s: {watermark.s3_file_count if watermark else 0} files committed")
        kill_run(process)
        fill_rich(rich, 50001 + kill * 1000, 1000, start=f"2024-03-{kill + 1:02d}")
    print("killed at:", *moments, sep="\n  ")
    rerun = progressive(config, name, "--chunk-size", "20000")
    assert rerun.returncode == 0, rerun.stderr
    assert watermark_of(settings, name).ranges is None
    assert_exact(rich, settings, name, history=False)


def test_one_range_reader_killed_alone(rich, tmp_path, bucket, s3_endpoint, settings_for):
    """A range's process dies (-9) while the progressive process goes on: that chunk fails, is
    retried from the committed positions, and the backfill ends exact."""
    settings = settings_for(config_for(tmp_path, rich, bucket, s3_endpoint))
    name = f"{rich.name}.orders"
    events, killed = [], []

    def sink(event):
        events.append(event)
        if isinstance(event, FileStored) and not killed:
            victim = multiprocessing.active_children()[0]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    result = ProgressiveRun(settings, name, sink, RunControl(),
                            ProgressiveOptions(chunk_size=40000, parallel=2, retry_delay_seconds=0.1)).run()
    assert killed and result.caught_up
    failed = [e for e in events if isinstance(e, ChunkProgress) and e.status == "failed"]
    assert len(failed) == 1 and "ended (exit -9)" in failed[0].error
    # Progress inside the open files reads as one run's: every range's rows, never past the table's.
    read = [e.run_rows for e in events if isinstance(e, PageRead)]
    assert read and max(read) <= KILL_ROWS, read
    assert watermark_of(settings, name).ranges is None
    assert_exact(rich, settings, name, history=False)


# -- signals: a stop at a file boundary ------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_ends_every_range_at_a_file_boundary(rich, tmp_path, bucket, s3_endpoint, settings_for,
                                                           sig):
    config = write_config(tmp_path / "s3rs.toml", rich, bucket=bucket, endpoint=s3_endpoint,
                          # files of 100 rows: hundreds of commits, so the signal comes while
                          # the ranges read (with 1,000, CI's machine read all 40 files before it)
                          extra="batch_size = 100\n")
    settings, name = settings_for(config), f"{rich.name}.orders"
    log = tmp_path / "run.log"
    process = start(config, name, "--parallel", "2", "--chunk-size", "40000", log=log)
    wait_until(lambda: (watermark_of(settings, name) or Watermark(table_name=name)).s3_file_count >= 3, 60,
               "three files committed", log.read_text)
    process.send_signal(sig)
    assert process.wait(60) == 130, log.read_text()
    watermark = watermark_of(settings, name)
    assert watermark.ranges is not None and watermark.mysql_status == "interrupted"
    assert len(stored_keys(settings, name)) == watermark.s3_file_count, "every stored file is committed"
    assert f"stopped by {sig.name}" in log.read_text()
    rerun = progressive(config, name, "--chunk-size", "40000")
    assert rerun.returncode == 0, rerun.stderr
    assert_exact(rich, settings, name, history=False)


# -- writers during the backfill -----------------------------------------------------------------

def test_concurrent_writers_during_a_parallel_backfill(rich, tmp_path, bucket, s3_endpoint, settings_for):
    """Inserts and updates (cursor = now) all through the ranges' reads; with the 5 s safety lag,
    a sync after the writers stop leaves the newest version of every row stored, every column
    equal, none twice."""
    config = config_for(tmp_path, rich, bucket, s3_endpoint, "file_size_mb = 0\n", default_layout=True)
    settings, name = settings_for(config), f"{rich.name}.orders"
    done = threading.Event()

    def write():
        writer, n = rich.connect(), 0
        with writer.cursor() as cur:
            while not done.is_set():
                n += 1
                cur.execute("INSERT INTO orders VALUES (%s, NOW(6), 1.5, 'new', NULL, NULL)", (200000 + n,))
                cur.execute("UPDATE orders SET update_at = NOW(6), name = CONCAT('w', %s) WHERE id = %s",
                            (n, (n * 7919) % KILL_ROWS + 1))
                time.sleep(0.005)
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        run = progressive(config, name, "--parallel", "2", "--chunk-size", "8000")
    finally:
        done.set()
        thread.join()
    assert run.returncode == 0, run.stderr
    assert "every range is done" in run.stderr
    time.sleep(6)  # past the safety lag
    final = run_cli("sync", "-t", name, config=config)
    assert final.returncode == 0, final.stderr
    assert_exact(rich, settings, name)


# -- bad input and the commands that need one position --------------------------------------------

def test_bad_parallel_values_and_keyless_tables_are_refused(rich, tmp_path, bucket, s3_endpoint):
    config = config_for(tmp_path, rich, bucket, s3_endpoint)
    name = f"{rich.name}.orders"
    for value in ("0", "65"):
        refused = progressive(config, name, "--parallel", value)
        assert refused.returncode == 2 and "--parallel must be between 1 and 64" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    bad = write_config(tmp_path / "bad.toml", rich, bucket=bucket, endpoint=s3_endpoint,
                       extra="parallel_ranges = 65\n")
    refused = progressive(bad, name)
    assert refused.returncode == 2 and "parallel_ranges" in refused.stderr
    rich.execute("CREATE TABLE events (update_at DATETIME NOT NULL, what VARCHAR(10), KEY (update_at))",
                 "INSERT INTO events SELECT '2024-01-01' + INTERVAL seq SECOND, 'x' FROM seq_1_to_100")
    refused = progressive(config, f"{rich.name}.events", "--parallel", "2")
    assert refused.returncode == 2 and "no unique key" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_restore_verify_reconcile_refuse_while_ranges_are_open(rich, tmp_path, bucket, s3_endpoint, pg,
                                                               settings_for):
    config = config_for(tmp_path, rich, bucket, s3_endpoint, pg.config())
    name = f"{rich.name}.orders"
    first = progressive(config, name, "--parallel", "2", "--chunk-size", "8000", "--max-chunks", "1",
                        "--mode", "full")
    assert first.returncode == 0, first.stderr
    # The load between chunks took what the ranges committed, nothing more.
    assert pg.execute("SELECT count(*) FROM public.orders") == [(8000,)]
    for command in (("restore", "-t", name, "--to-parquet", str(tmp_path / "out")), ("verify", "-t", name),
                    ("reconcile", "-t", name), ("watermark", "set", "-t", name, "--timestamp",
                                                 "2024-01-01 00:00:00", "--yes")):
        refused = run_cli(*command, config=config)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "parallel first backfill" in refused.stderr, (command, refused.stderr)
    refused = progressive(config, name, "--start-timestamp", "2024-01-01 00:00:00")
    assert refused.returncode == 2 and "already has progress" in refused.stderr, refused.stderr
    assert watermark_of(settings_for(config), name).ranges is not None
