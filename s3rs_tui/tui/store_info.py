"""What the store says about the dashboard's tables, read in a thread worker every few seconds:
each table's watermark (the Watermark panel, the list's last position) and whether another
process holds its lock (state "locked")."""

from typing import TYPE_CHECKING

from textual import work
from textual.message import Message

from s3rs_tui.runtime.config import Settings
from s3rs_tui.status.model import State, TableStatus
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import read_lock
from s3rs_tui.store.watermark import Watermark, WatermarkStore
from s3rs_tui.tui.messages import StoreRead
from s3rs_tui.tui.runs import Runs

STORE_REFRESH_SECONDS = 10


class StoreInfo:
    """Mixed into the dashboard app (which provides settings, statuses, watermarks and runs)."""

    settings: Settings
    statuses: dict[str, TableStatus]
    watermarks: dict[str, Watermark | None]
    runs: Runs
    dirty: bool

    if TYPE_CHECKING:  # the App's, at run time
        def post_message(self, message: Message) -> bool: ...

    @work(thread=True, exclusive=True, group="store", exit_on_error=False, description="store read")
    def refresh_store(self) -> None:
        """Watermarks and locks of every listed table (and of tables found in the store)."""
        try:
            store = open_store(self.settings)
            watermarks = WatermarkStore(store)
            names = list(dict.fromkeys([*self.statuses, *watermarks.tables()]))
        except Exception as exc:  # noqa: BLE001 - shown in the panels, not fatal
            for name in list(self.statuses):
                self.post_message(StoreRead(name, None, None, str(exc)))
            return
        for name in names:
            try:
                self.post_message(StoreRead(name, watermarks.get(name), read_lock(store, name)))
            except Exception as exc:  # noqa: BLE001
                self.post_message(StoreRead(name, None, None, str(exc)))

    def on_store_read(self, message: StoreRead) -> None:
        status = self.statuses.setdefault(message.table, TableStatus(message.table))
        self.watermarks[message.table] = message.watermark
        self.dirty = True
        if status.active:
            return
        if message.error:
            status.error = message.error
        watermark = message.watermark
        if watermark is not None:
            status.watermark_timestamp, status.watermark_id = (watermark.last_mysql_data_timestamp,
                                                               watermark.shown_id)
        if message.lock is not None and self.runs.for_table(message.table) is None:
            status.state = State.LOCKED
            status.error = f"locked by {message.lock.describe()}"
        elif status.state == State.LOCKED:
            status.state = State.IDLE

