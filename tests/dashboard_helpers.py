"""Helpers for the dashboard tests: building the app on a test config, waiting on a condition
while the app runs, a recorded event sequence for pictures, and reading back what a run stored
(local folder or S3) to check it against the source table."""

import html
import io
import re
import time
from pathlib import Path

import pyarrow.parquet as pq

from s3rs_tui.engine.events import FileStored, Notice, RunStarted
from s3rs_tui.engine.parquet import table_prefix
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.tui.app import DashboardApp
from s3rs_tui.tui.launch import full_names
from s3rs_tui.tui.logfile import RunLog

FROZEN_TIME = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC: log lines in pictures never change


def make_app(settings, tables, log_path: Path, clock=time.time, **options) -> DashboardApp:
    return DashboardApp(settings, full_names(settings, tables), RunLog(log_path, clock), **options)


class Gate:
    """Holds `LOCK TABLES t WRITE` in MariaDB: the engine's reads wait until it opens, so a test
    can press keys while a run is certainly between two files, however fast the engine is."""

    def __init__(self, db, table="orders"):
        self.conn = db.connect()
        with self.conn.cursor() as cur:
            cur.execute(f"LOCK TABLES `{table}` WRITE")

    def open(self):
        with self.conn.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        self.conn.close()


async def wait_for(pilot, condition, timeout: float = 30.0, what: str = "condition"):
    """Let the app run until condition() is true; on timeout, say what the app's log shows."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            app = pilot.app
            states = {name: status.state for name, status in app.statuses.items()}
            raise AssertionError(f"timed out waiting for {what}; states {states}; screen {app.screen!r}; "
                                 f"log:\n{app.log_file.path.read_text()}")
        await pilot.pause(0.05)


def recorded_run(table: str = "shop.orders", files: int = 12) -> list:
    """A run as the engine reports it: start, a notice, then files of 50,000 rows at a steady pace
    with one slow patch (so the sparkline has a shape)."""
    events = [RunStarted(table, "a1b2c3d4e5f6", None, None, "2026-05-28 20:26:35", 1_000_000, 50_000,
                         "s3://backups/s3rs/"),
              Notice(table, "3 rows have a NULL update_at and can never be reached by the cursor", "warning")]
    elapsed = 0.0
    for n in range(1, files + 1):
        elapsed += 0.9 if n not in (5, 6) else 2.4
        events.append(FileStored(table, f"data/shop/orders/part-2024010{n % 9}T000000-{n * 50_000}.parquet",
                                 50_000, 2_300_000, n * 50_000, n, n * 2_300_000, n * 50_000 * 60 / elapsed,
                                 180.0 + 4 * n, f"2024-01-0{1 + n // 4} 0{n % 10}:00:00", n * 50_000, elapsed))
    return events


def stored_ids(settings, table: str) -> list[int]:
    """The ids in the table's stored Parquet files, in file (= sync) order."""
    store = open_store(settings)
    ids: list[int] = []
    for info in store.list(table_prefix(table)):
        data, _ = store.get_bytes(info.key)
        ids.extend(int(v) for v in pq.read_table(io.BytesIO(data), columns=["id"]).column("id").to_pylist())
    return ids


def watermark_of(settings, table: str):
    return WatermarkStore(open_store(settings)).get(table)


def screen_text(app) -> str:
    """Everything on screen as plain text, from the SVG export (what a picture shows); long lines
    wrap, so look for short fragments only."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg.split("</style>")[-1]))
