"""The status model (events folded into what the dashboard and `watch` show) and the JSON snapshot
every run writes: folding is order-safe under coalescing, writes are throttled and atomic, and a
real headless `s3rs sync` leaves a snapshot that `watch` can read."""

import json
import os

from cli_helpers import make_table, run_cli

from s3rs_tui.engine.events import (
    FilesLoaded,
    FileStored,
    LoadFinished,
    LoadStarted,
    RunFinished,
    RunStarted,
    StateChanged,
    tee,
)
from s3rs_tui.status.model import HISTORY, TableStatus
from s3rs_tui.status.snapshot import SnapshotWriter, read_snapshots, write_atomic

T = "shop.orders"


def stored(n: int, rows_per_file: int = 1000, seconds_per_file: float = 0.5) -> FileStored:
    return FileStored(T, f"data/shop/orders/part-{n}.parquet", rows_per_file, 1000 * rows_per_file,
                      n * rows_per_file, n, n * 1000 * rows_per_file, rows_per_file * 120.0, 100.0 + n,
                      f"2024-01-01 00:00:{n:02d}", n * 10, n * seconds_per_file)


def started(estimate: int = 10_000) -> RunStarted:
    return RunStarted(T, "run1", None, None, "2024-06-01 00:00:00", estimate, 1000, "/store")


def test_fold_a_run():
    status = TableStatus(T)
    status.apply(started())
    for n in range(1, 4):
        status.apply(stored(n))
    assert (status.state, status.rows, status.files, status.last_file) == \
        ("running", 3000, 3, "data/shop/orders/part-3.parquet")
    assert status.rows_per_minute_now == 120_000
    assert status.progress == 0.3 and status.eta_seconds == 3.5
    status.apply(StateChanged(T, "paused"))
    assert status.state == "paused" and status.active
    status.apply(RunFinished(T, "interrupted", 3000, 3, 3_000_000, 1.5, 120_000, 104, "2024-01-01 00:00:03",
                             30, error="stopped"))
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
    status.apply(LoadStarted(T, 4, "duckdb ./x.duckdb"))
    status.apply(FilesLoaded(T, ("a", "b"), 2000, 2, 2000, 0.5))
    status.apply(LoadFinished(T, "success", 4, 4000, 1.0))
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
    writer = SnapshotWriter(tmp_path, interval=2.0, formatter=lambda e: type(e).__name__,
                            clock=lambda: now[0])
    writes = []
    original = writer.write
    writer.write = lambda status: (writes.append(status.rows), original(status))
    writer(started())
    for n in range(1, 6):
        now[0] += 0.5
        writer(stored(n))
    writer(StateChanged(T, "paused"))
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
    result = run_cli("sync", "-t", "orders", "--batch-size", "100", config=local_config,
                     env={"S3RS_STATE_DIR": str(state)})
    assert result.returncode == 0, result.stderr
    (snapshot,) = read_snapshots(state / "status")
    assert snapshot.status.table == f"{db.name}.orders"
    assert (snapshot.status.state, snapshot.status.rows, snapshot.status.files) == ("done", 300, 3)
    assert any("file 3" in line for line in snapshot.status.log)
