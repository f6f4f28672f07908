"""The status model (events folded into what the dashboard and `watch` show) and the JSON snapshot
every run writes: folding is order-safe under coalescing, writes are throttled and atomic, and a
real headless `s3rs sync` leaves a snapshot that `watch` can read."""

import json
import os

from cli_helpers import make_table, run_cli, wait_until

from s3rs_tui.runtime.events import (
    ChunkProgress,
    FilesLoaded,
    FileStored,
    JobFinished,
    JobStarted,
    LoadFinished,
    LoadStarted,
    PageRead,
    RunFinished,
    RunStarted,
    StateChanged,
    VerifyFinished,
    VerifyStarted,
    tee,
)
from s3rs_tui.status.model import HISTORY, TableStatus
from s3rs_tui.status.snapshot import SnapshotWriter, read_snapshots, write_atomic
from s3rs_tui.tui import panel_rows

T = "shop.orders"


def stored(n: int, rows_per_file: int = 1000, seconds_per_file: float = 0.5) -> FileStored:
    return FileStored(
        table=T,
        key=f"data/shop/orders/part-{n}.parquet",
        rows=rows_per_file,
        bytes=1000 * rows_per_file,
        run_rows=n * rows_per_file,
        run_files=n,
        run_bytes=n * 1000 * rows_per_file,
        rows_per_minute=rows_per_file * 120.0,
        rss_mb=100.0 + n,
        watermark_timestamp=f"2024-01-01 00:00:{n:02d}",
        watermark_id=n * 10,
        elapsed_seconds=n * seconds_per_file,
    )


def started(estimate: int = 10_000) -> RunStarted:
    return RunStarted(
        table=T,
        run_id="run1",
        start_timestamp=None,
        start_id=None,
        upper_bound="2024-06-01 00:00:00",
        estimated_rows=estimate,
        batch_size=1000,
        store_url="/store",
    )


def test_fold_a_run():
    status = TableStatus(T)
    status.apply(started())
    for n in range(1, 4):
        status.apply(stored(n))
    assert (status.state, status.rows, status.files, status.last_file) == (
        "extracting",
        3000,
        3,
        "data/shop/orders/part-3.parquet",
    )
    assert status.rows_per_minute_now == 120_000
    assert status.progress == 0.3 and status.eta_seconds == 3.5
    status.apply(StateChanged(table=T, state="paused"))
    assert status.state == "paused" and status.active
    status.apply(
        RunFinished(
            table=T,
            status="interrupted",
            rows=3000,
            files=3,
            bytes=3_000_000,
            elapsed_seconds=1.5,
            rows_per_minute=120_000,
            peak_rss_mb=104,
            watermark_timestamp="2024-01-01 00:00:03",
            watermark_id=30,
            error="stopped",
        )
    )
    assert status.state == "stopped" and not status.active and status.eta_seconds is None
    assert status.watermark_id == 30


def test_coalesced_progress_gives_the_same_totals():
    """The dashboard may apply only the latest of several FileStored: totals must not drift."""
    every, latest = TableStatus(T), TableStatus(T)
    for status in (every, latest):
        status.apply(started())
    for n in range(1, 6):
        every.apply(stored(n))
    latest.apply(stored(5))
    for name in ("rows", "files", "bytes", "watermark_timestamp", "watermark_id", "rows_per_minute"):
        assert getattr(every, name) == getattr(latest, name)
    assert latest.rows_per_minute_now == every.rows_per_minute_now == 120_000


def test_history_is_bounded_and_warehouse_events_fold():
    status = TableStatus(T)
    for n in range(1, HISTORY + 50):
        status.apply(stored(n))
    assert len(status.rate_history) == len(status.rss_history) == HISTORY
    status.apply(LoadStarted(table=T, files=4, warehouse="duckdb ./x.duckdb"))
    status.apply(
        FilesLoaded(table=T, files=("a", "b"), rows=2000, run_files=2, run_rows=2000, elapsed_seconds=0.5)
    )
    status.apply(LoadFinished(table=T, status="success", files=4, rows=4000, elapsed_seconds=1.0))
    assert (status.loaded_files, status.loaded_rows, status.last_load) == (4, 4000, "b")
    assert status.load_state == "done in 1.0s"


def test_round_trip():
    status = TableStatus(T)
    status.apply(started())
    status.apply(stored(1))
    status.add_log("a line")
    assert TableStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_writer_throttles_progress_but_not_state_changes(tmp_path):
    now = [1000.0]
    writer = SnapshotWriter(
        tmp_path, interval=2.0, formatter=lambda e: type(e).__name__, clock=lambda: now[0]
    )
    writes = []
    original = writer.write
    writer.write = lambda status: (writes.append(status.rows), original(status))
    writer(started())
    for n in range(1, 6):
        now[0] += 0.5
        writer(stored(n))
    writer(StateChanged(table=T, state="paused"))
    assert writes == [0, 4000, 5000]  # start, the first progress 2 s later, then the pause at once
    (snapshot,) = read_snapshots(tmp_path)
    assert snapshot.status.state == "paused" and snapshot.pid == os.getpid()
    assert snapshot.liveness(now[0]) == ""
    assert "no update" in snapshot.liveness(now[0] + 60)
    assert [line.split(" ", 2)[2] for line in snapshot.status.log][:2] == ["RunStarted", "FileStored"]


def test_dead_writer_and_unreadable_files(tmp_path):
    write_atomic(tmp_path / "broken.json", b"{not json")
    writer = SnapshotWriter(tmp_path)
    writer(started())
    document = json.loads((tmp_path / f"{T}.json").read_text())
    document["pid"] = 2**22 + 12345  # above pid_max: never a live process
    write_atomic(tmp_path / f"{T}.json", json.dumps(document).encode())
    (snapshot,) = read_snapshots(tmp_path, [T])
    assert "is gone" in snapshot.liveness()
    assert read_snapshots(tmp_path, ["other.table"]) == []
    assert not list(tmp_path.glob(".*.tmp"))


def test_tee_hands_every_event_to_each_sink():
    seen_a, seen_b = [], []
    tee(seen_a.append, seen_b.append)(started())
    assert seen_a == seen_b == [started()]


def test_headless_sync_writes_the_snapshot(tmp_path, db, local_config):
    make_table(db, rows=300)
    state = tmp_path / "state"
    result = run_cli(
        "sync", "-t", "orders", "--batch-size", "100", config=local_config, env={"S3RS_STATE_DIR": str(state)}
    )
    assert result.returncode == 0, result.stderr
    (snapshot,) = read_snapshots(state / "status")
    assert snapshot.status.table == f"{db.name}.orders"
    assert (snapshot.status.state, snapshot.status.rows, snapshot.status.files) == ("done", 300, 3)
    assert any("file 3" in line for line in snapshot.status.log)


def page(
    run_rows: int, minute: int, elapsed: float, paused: float = 0.0, phase: str = "extracting"
) -> PageRead:
    """Progress inside the open file: rows read up to 2024-01-01 00:<minute>:00 of a day-long span."""
    return PageRead(
        table=T,
        phase=phase,
        file_rows=run_rows % 1000,
        file_bytes=10,
        run_rows=run_rows,
        rows_per_minute=run_rows * 60 / (elapsed - paused),
        rss_mb=200.0 + minute,
        peak_rss_mb=900.0,
        elapsed_seconds=elapsed,
        paused_seconds=paused,
        position_timestamp=f"2024-01-01 {minute // 60:02d}:{minute % 60:02d}:00",
        position_id=run_rows,
    )


def day_run(estimate: int) -> RunStarted:
    """A run over one day of cursor times whose EXPLAIN estimate is `estimate` rows."""
    return RunStarted(
        table=T,
        run_id="run1",
        start_timestamp=None,
        start_id=None,
        upper_bound="2024-01-02 00:00:00",
        estimated_rows=estimate,
        batch_size=1000,
        store_url="/store",
        span_start="2024-01-01 00:00:00",
    )


def test_progress_is_the_cursor_span_covered_not_the_row_estimate():
    """Defect 2: EXPLAIN said half the real count; at 1.68M of 3M rows the dashboard said 100%."""
    status = TableStatus(T)
    status.apply(JobStarted(table=T, steps=("extract",)))
    status.apply(day_run(estimate=1_496_275))
    status.apply(page(1_680_000, minute=806, elapsed=60.0))  # 56% of the day's minutes
    assert 0.55 < status.progress < 0.57
    assert status.eta_seconds > 30 and not status.total_is_exact
    assert 2_900_000 < status.expected_rows < 3_100_000
    assert panel_rows.rows_done(status).startswith("1,680,000 / ~")
    status.apply(page(3_300_000, minute=1439, elapsed=120.0))  # the last minute: still not 100%
    assert status.progress == 0.99 and status.eta_seconds >= 1
    status.apply(
        RunFinished(
            table=T,
            status="success",
            rows=3_300_000,
            files=26,
            bytes=1,
            elapsed_seconds=121.0,
            rows_per_minute=1.6e6,
            peak_rss_mb=900.0,
            watermark_timestamp="2024-01-01 23:59:00",
            watermark_id=3_300_000,
            caught_up=True,
        )
    )
    status.apply(JobFinished(table=T, outcome="success", failed_phase="", rows=3_300_000, seconds=121.0))
    finished = (status.state, status.progress, status.expected_rows, status.total_is_exact)
    assert finished == ("done", 1.0, 3_300_000, True)
    assert panel_rows.rows_done(status) == "3,300,000 / 3,300,000"


def test_rows_tick_inside_a_file_and_the_watermark_stays_durable():
    """Defect 1: nothing moved until a file was stored."""
    status = TableStatus(T)
    status.apply(day_run(estimate=10_000))
    status.apply(page(400, minute=60, elapsed=2.0))
    assert (status.state, status.rows_read, status.rows, status.file_rows) == ("extracting", 400, 0, 400)
    assert status.watermark_timestamp is None and status.position_id == 400  # read, not durable
    assert status.rss_mb == 260 and status.peak_rss_mb == 900 and status.since_progress() < 5
    status.apply(page(999, minute=90, elapsed=3.0, phase="storing"))
    assert status.state == "storing"
    status.apply(stored(1))
    assert (status.state, status.rows, status.watermark_id) == ("extracting", 1000, 10)
    throughput = dict(panel_rows.throughput(status))
    assert throughput["now"].endswith("/min") and throughput["last"] == "progress just now"
    stalled = dict(panel_rows.throughput(status, now=status.progress_at + 42))
    assert stalled["last"] == "progress 42s ago" and stalled["for"] == "0m42s"  # the time goes on


def test_a_paused_run_has_no_rate_now_and_no_eta_and_its_pause_is_not_in_the_average():
    """Defect 6: a paused run showed `now 8,807,904 rows/min, ETA 0m07s`."""
    status = TableStatus(T)
    status.apply(day_run(estimate=10_000))
    status.apply(page(1000, minute=60, elapsed=10.0))
    status.apply(StateChanged(table=T, state="paused"))
    assert status.rate_now is None and status.eta_seconds is None
    assert dict(panel_rows.throughput(status))["now"] == "-"
    assert "ETA -" in dict(panel_rows.progress(status))["done"]
    status.apply(StateChanged(table=T, state="running"))
    status.apply(page(2000, minute=120, elapsed=70.0, paused=50.0))  # 50 of the 60 s were paused
    assert status.rows_per_minute == 2000 * 60 / 20 and status.rows_per_minute_now == 1000 * 60 / 10


def test_a_state_for_every_phase_of_sync_load_verify():
    """Defect 3: `v` left the table `starting`; a failed load or a running one showed `done`."""
    status = TableStatus(T)
    status.apply(JobStarted(table=T, steps=("extract", "load", "verify")))
    status.apply(day_run(estimate=1000))
    status.apply(
        RunFinished(
            table=T,
            status="success",
            rows=1000,
            files=1,
            bytes=1,
            elapsed_seconds=1.0,
            rows_per_minute=6e4,
            peak_rss_mb=100.0,
            watermark_timestamp="2024-01-01 12:00:00",
            watermark_id=1000,
            caught_up=True,
        )
    )
    assert status.state == "loading"  # not done: the load is still to come
    status.apply(LoadStarted(table=T, files=1, warehouse="postgres"))
    status.apply(LoadFinished(table=T, status="success", files=1, rows=1000, elapsed_seconds=1.0))
    assert status.state == "verifying"
    status.apply(VerifyStarted(table=T))
    status.apply(VerifyFinished(table=T, agrees=False, summary="differs: 1 ranges, 2 keys"))
    status.apply(JobFinished(table=T, outcome="differs", failed_phase="", rows=1000, seconds=3.0, error="x"))
    assert (status.state, status.verify_result) == ("differs", "differs: 1 ranges, 2 keys")
    assert ("verify", "differs: 1 ranges, 2 keys") in panel_rows.progress(status)

    status.apply(JobStarted(table=T, steps=("extract", "load")))
    status.apply(day_run(estimate=1000))
    status.apply(
        RunFinished(
            table=T,
            status="success",
            rows=0,
            files=0,
            bytes=0,
            elapsed_seconds=1.0,
            rows_per_minute=0,
            peak_rss_mb=100.0,
            watermark_timestamp=None,
            watermark_id=None,
            caught_up=True,
        )
    )
    status.apply(LoadStarted(table=T, files=1, warehouse="postgres"))
    assert status.state == "loading"
    status.apply(
        LoadFinished(
            table=T, status="failed", files=0, rows=0, elapsed_seconds=1.0, error="connection refused"
        )
    )
    status.apply(
        JobFinished(
            table=T, outcome="failed", failed_phase="load", rows=0, seconds=2.0, error="connection refused"
        )
    )
    assert (status.state, status.failed_phase, panel_rows.state(status)) == ("failed", "load", "failed: load")
    assert [run["outcome"] for run in status.last_runs] == ["failed: load", "differs"]
    assert panel_rows.history(status)[0][1].startswith("failed: load, 0 rows")
    assert ("row versions", "0") in panel_rows.warehouse(status, "postgres")


def test_progressive_shows_all_chunks_and_ends_on_its_totals():
    """Defect 4: after 3M rows the final screen said `rows 0 / ~2  done 0%`."""
    status = TableStatus(T)
    status.apply(JobStarted(table=T, steps=("extract",), progressive=True))
    for chunk, rows in ((1, 1_500_000), (2, 1_500_000), (3, 0)):
        done = (chunk - 1) * 1_500_000
        status.apply(
            ChunkProgress(
                table=T,
                chunk=chunk,
                max_chunks=None,
                status="started",
                rows_done=done,
                estimated_rows=3_000_000,
                rows_per_minute=1e6,
                span_start="2024-01-01 00:00:00",
            )
        )
        status.apply(day_run(estimate=rows))
        if rows:
            status.apply(page(rows // 2, minute=300 + 700 * (chunk - 1), elapsed=5.0))
            assert status.job_rows == done + rows // 2 and status.progress < 1
        status.apply(
            RunFinished(
                table=T,
                status="success",
                rows=rows,
                files=rows // 1000,
                bytes=1,
                elapsed_seconds=10.0,
                rows_per_minute=1e6,
                peak_rss_mb=100.0,
                watermark_timestamp="2024-01-01 23:00:00",
                watermark_id=done + rows,
                caught_up=chunk == 3,
            )
        )
        status.apply(
            ChunkProgress(
                table=T,
                chunk=chunk,
                max_chunks=None,
                status="caught up" if chunk == 3 else "done",
                rows_done=done + rows,
                estimated_rows=3_000_000,
                rows_per_minute=1e6,
                span_start="2024-01-01 00:00:00",
            )
        )
    status.apply(JobFinished(table=T, outcome="success", failed_phase="", rows=3_000_000, seconds=30.0))
    assert (status.state, status.job_rows, status.progress) == ("done", 3_000_000, 1.0)
    assert dict(panel_rows.progress(status))["rows"] == "3,000,000 / 3,000,000"


def test_last_runs_carry_over_between_writers(tmp_path):
    """Defect 7: a last-runs list per table, kept across runs in the snapshot."""
    for outcome in ("interrupted", "success"):
        writer = SnapshotWriter(tmp_path)
        writer(JobStarted(table=T, steps=("extract",)))
        writer(JobFinished(table=T, outcome=outcome, failed_phase="", rows=5, seconds=1.0))
    (snapshot,) = read_snapshots(tmp_path)
    assert [run["outcome"] for run in snapshot.status.last_runs] == ["done", "stopped"]


def test_control_requests_are_for_one_process_and_obeyed_once(tmp_path):
    """`watch` steers a run through a request file: only the process it names obeys, only a request
    newer than the run, and only once (a leftover file never steers a later run)."""
    from s3rs_tui.runtime.control import RunControl
    from s3rs_tui.status.control_file import ControlFileWatcher, send_request

    send_request(T, "stop", os.getpid(), tmp_path)  # before the run started: not for it
    control = RunControl()
    watcher = ControlFileWatcher(control, [T], tmp_path)
    watcher.poll()
    assert not control.stop_requested
    send_request(T, "pause", os.getpid() + 1, tmp_path)  # another process's run
    watcher.poll()
    assert not control.paused
    send_request(T, "pause", os.getpid(), tmp_path)
    watcher.poll()
    assert control.paused
    control.resume()
    watcher.poll()  # the same request again: already obeyed
    assert not control.paused
    send_request(T, "stop", os.getpid(), tmp_path)
    with watcher:  # as a run uses it: polled in its thread
        wait_until(lambda: control.stop_requested, timeout=5, what="the stop")
    assert "s3rs watch" in control.reason
