"""Helpers for the dashboard tests: building the app on a test config, holding the engine between
two files (Gate), waiting on a condition while the app runs, the screen as text, and reading back
what a run stored (local folder or S3) to check it against the source table."""

import html
import io
import re
import time
from pathlib import Path

import pyarrow.parquet as pq

from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.tui.app import DashboardApp
from s3rs_tui.tui.launch import full_names
from s3rs_tui.tui.logfile import RunLog


def make_app(settings, tables, log_path: Path, **options) -> DashboardApp:
    return DashboardApp(settings, full_names(settings, tables), RunLog(log_path), **options)


class Gate:
    """Holds `LOCK TABLES t WRITE` in MariaDB: the engine's reads wait until it opens, so a test
    can press keys while a run is certainly between two files, however fast the engine is."""

    def __init__(self, db, table="orders"):
        self.db, self.table = db, table
        self.conn = db.connect()
        with self.conn.cursor() as cur:
            cur.execute(f"LOCK TABLES `{table}` WRITE")

    def waited_at(self) -> bool:
        """A read of the engine's is waiting here (so the run is past any pause between files)."""
        return bool(self.db.execute(
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%%' "
            "AND INFO LIKE %s",
            params=(f"%`{self.db.name}`.`{self.table}`%",)))

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
