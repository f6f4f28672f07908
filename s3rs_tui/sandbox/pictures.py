"""A dashboard that always looks the same, for pictures: the snapshot tests and
scripts/screenshots.py. A local store in a fixed folder (paths appear on screen) with a watermark,
a reset backup and six data files of fixed dates, a fixed log clock, and a recorded run fed through
the same bridge the engine uses. `show_state` puts the table in any state of the status model
(the recorded run's figures, then the state word and any fields), for one picture per state."""

import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from s3rs_tui.runtime.config import Settings, load_settings
from s3rs_tui.runtime.events import Event, FileStored, Notice, RunStarted
from s3rs_tui.status.headless import HeadlessLog
from s3rs_tui.status.model import State, TableStatus
from s3rs_tui.status.snapshot import write_atomic
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.tui.app import DashboardApp
from s3rs_tui.tui.bridge import EngineBridge
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.watch import WatchApp

FOLDER = Path("/tmp/s3rs-pictures")
TABLE = "shop.orders"
SECRET = "Zq9-picture-Secret-7731"  # the config's password: it must appear in no picture
FROZEN_TIME = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def data_key(day: int, key: int) -> str:
    """A data file's key as the engine names them (engine.parquet.data_key)."""
    return f"data/shop/orders/part-202401{day:02d}T000000000000-{key:020d}.parquet"


def watermark_document(**changes) -> bytes:
    fields: dict[str, Any] = dict(
        table_name=TABLE, last_mysql_data_timestamp="2024-01-04 02:00:00", last_mysql_data_id=600000,
        last_mysql_extraction_time="2026-05-28T20:26:40Z", mysql_status="success",
        mysql_rows_extracted=600000, s3_file_count=12, processed_s3_files=[],
        created_at="2026-05-20T08:00:00Z", updated_at="2026-05-28T20:26:40Z",
        last_s3_file=data_key(3, 550_000),
        cursor_column="update_at", key_column="id")
    fields.update(changes)
    return Watermark(**fields).to_json()


@contextmanager
def folder_taken(folder: Path = FOLDER) -> Iterator[Path]:
    """`folder` for this process alone while taking pictures: two test runs on one machine (two
    checkouts, say) would otherwise rebuild or remove the fixed folder under each other's screens."""
    with open(f"{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def picture_settings(folder: Path = FOLDER) -> Settings:
    """A fresh store in `folder` and the settings pointing at it (MySQL on port 1: never reached)."""
    shutil.rmtree(folder, ignore_errors=True)
    store = folder / "store" / "s3rs"
    (store / "data" / "shop" / "orders").mkdir(parents=True)
    keys = []
    for n in range(6):
        key = data_key(n + 1, n * 100_000)
        (store / key).write_bytes(b"x" * (2_300_000 + n * 1000))
        stamp = FROZEN_TIME - (30 - n * 5) * 86400  # 30, 25, ... 5 days before the frozen time
        os.utime(store / key, (stamp, stamp))
        keys.append(key)
    state = store / "_state" / "watermarks"
    (state / "backups").mkdir(parents=True)
    (state / f"{TABLE}.json").write_bytes(watermark_document(processed_s3_files=keys[:3]))
    (state / "backups" / f"{TABLE}.20260520T080000000000Z.json").write_bytes(
        watermark_document(last_mysql_data_timestamp="2024-01-02 00:00:00", last_mysql_data_id=150000))
    config = folder / "s3rs.toml"
    config.write_text(f'[mysql]\nhost = "127.0.0.1"\nport = 1\ndatabase = "shop"\npassword = "{SECRET}"\n\n'
                      f'[s3]\nlocal_path = "{folder / "store"}"\n\n[backup]\nmemory_limit_mb = 1024\n\n'
                      f'[tables."{TABLE}"]\ncursor_column = "update_at"\n')
    return load_settings(str(config), environ={})


def recorded_run(table: str = TABLE, files: int = 12) -> list[Event]:
    """A run as the engine reports it: start, a notice, then files of 50,000 rows at a steady pace
    with one slow patch (so the sparkline has a shape)."""
    events: list[Event] = [
        RunStarted(
            table=table,
            run_id="a1b2c3d4e5f6",
            start_timestamp=None,
            start_id=None,
            upper_bound="2026-05-28 20:26:35",
            estimated_rows=1_000_000,
            batch_size=50_000,
            store_url="s3://backups/s3rs/",
        ),
        Notice(
            table=table,
            message="3 rows have a NULL update_at and can never be reached by the cursor",
            level="warning",
        ),
    ]
    elapsed = 0.0
    for n in range(1, files + 1):
        elapsed += 0.9 if n not in (5, 6) else 2.4
        events.append(
            FileStored(
                table=table,
                key=data_key(n % 9, n * 50_000),
                rows=50_000,
                bytes=2_300_000,
                run_rows=n * 50_000,
                run_files=n,
                run_bytes=n * 2_300_000,
                rows_per_minute=n * 50_000 * 60 / elapsed,
                rss_mb=180.0 + 4 * n,
                watermark_timestamp=f"2024-01-0{1 + n // 4} 0{n % 10}:00:00",
                watermark_id=n * 50_000,
                elapsed_seconds=elapsed,
            )
        )
    return events


def picture_app(settings: Settings, folder: Path = FOLDER):
    """The dashboard on TABLE, its log in `folder` with the frozen clock."""
    log = folder / "logs" / "dashboard.log"
    log.unlink(missing_ok=True)
    app = DashboardApp(settings, [TABLE], RunLog(log, clock=lambda: FROZEN_TIME))
    # the panels' "now" is the table's last progress: a picture shows that moment, however long
    # a loaded machine takes to draw it
    app.clock = lambda: app.statuses[TABLE].progress_at or FROZEN_TIME
    return app


def engine_bridge(app):
    """The engine's bridge into `app`."""
    return EngineBridge(app, app.log_file, app.formatter.format)


async def play_recorded_run(pilot) -> None:
    """Feed the recorded run through the engine's bridge, one event at a time (as files come in a
    real run; all at once they would coalesce), as if a run were going."""
    app = pilot.app
    app.runs.start([TABLE])  # the keys then show as for a running table
    bridge = engine_bridge(app)
    for event in recorded_run():
        bridge(event)
        await pilot.pause()
    await pilot.pause(0.6)


def status_in(state: str, table: str = TABLE, **fields) -> TableStatus:
    """TableStatus of `table` as the recorded run leaves it, then in `state` with these fields
    (failed_phase="load", verify_result="differs: 3 ranges, 12 keys", ...)."""
    status = TableStatus(table)
    for event in recorded_run(table):
        status.apply(event)
    status.state = State(state)
    for name, value in fields.items():
        setattr(status, name, value)
    return status


# A picture per state of the status model: its name -> show_state's arguments (the state word and
# the fields that go with it). The snapshot tests and scripts/screenshots.py take one of each.
STATES: dict[str, dict[str, Any]] = {
    "mid-file": dict(
        state="extracting",
        file_rows=30_000,
        file_bytes=1_400_000,
        rows_read=630_000,
        position_timestamp="2024-01-04 03:10:00",
        position_id=630_000,
    ),
    "paused": dict(state="paused"),
    "loading": dict(
        state="loading",
        phase="load",
        load_state="loading 12 files into postgres at 127.0.0.1:5432/dw",
        loaded_files=4,
        loaded_rows=200_000,
        last_load=data_key(4, 200_000),
    ),
    "failed-load": dict(state="failed", failed_phase="load", error="load failed: the warehouse went away"),
    "verified": dict(state="verified", verify_result="agrees"),
    "differs": dict(state="differs", verify_result="differs: 3 ranges, 12 keys"),
    "progressive-mid-run": dict(
        state="extracting",
        progressive=True,
        chunk="3 of 10: started",
        chunk_rows=500_000,
        chunk_estimate=3_000_000,
    ),
    "progressive-finished": dict(
        state="done",
        progressive=True,
        chunk="13: caught up",
        chunk_rows=3_000_000,
        chunk_estimate=3_000_000,
        caught_up=True,
    ),
}

GONE_PID = 2**22 + 77  # above Linux's default pid_max: never a live process


def watch_app(settings: Settings, folder: Path = FOLDER):
    """`s3rs watch` on TABLE, whose run died mid-file (its process gone, its last snapshot left
    behind in `folder`/status), its log in `folder` with the frozen clock."""
    status = status_in(**STATES["mid-file"])
    stamp = "2026-05-28 20:26:40"
    status.log = [f"{stamp} {line}" for line in map(HeadlessLog().format, recorded_run()) if line]
    status_folder = folder / "status"
    status_folder.mkdir(parents=True, exist_ok=True)
    document = {
        "pid": GONE_PID,
        "host": socket.gethostname(),
        "updated_at": FROZEN_TIME,
        "status": status.to_dict(),
    }
    write_atomic(status_folder / f"{TABLE}.json", json.dumps(document).encode())
    log = folder / "logs" / "watch.log"
    log.unlink(missing_ok=True)
    return WatchApp(settings, [TABLE], RunLog(log, clock=lambda: FROZEN_TIME), folder=status_folder)


async def show_state(pilot, state: str, **fields) -> None:
    """The dashboard showing TABLE in `state` (a run counts as going while the state is active),
    its log as the recorded run left it."""
    app = pilot.app
    for line in filter(None, map(app.formatter.format, recorded_run())):
        app.log_file.write(line)
    app.statuses[TABLE] = status = status_in(state, **fields)
    if status.active:
        app.runs.start([TABLE])
    app.dirty = True
    await pilot.pause(0.6)
