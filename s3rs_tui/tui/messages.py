"""Messages from worker threads to the UI. post_message is thread-safe; the UI handles them in
order, and a progress message still queued is dropped when a newer one for the same table arrives
(can_replace), because its counters are run totals: the UI never falls behind a fast engine."""

from dataclasses import dataclass

from textual.message import Message

from s3rs_tui.runtime.events import Event, FilesLoaded, FileStored, PageRead, RowsRestored
from s3rs_tui.status.snapshot import Snapshot
from s3rs_tui.store.lock import LockInfo
from s3rs_tui.store.watermark import Watermark

PROGRESS = (PageRead, FileStored, FilesLoaded, RowsRestored)


@dataclass
class EngineUpdate(Message):
    event: Event

    def can_replace(self, message: Message) -> bool:
        return (isinstance(message, EngineUpdate) and isinstance(self.event, PROGRESS)
                and type(message.event) is type(self.event) and message.event.table == self.event.table)


@dataclass
class RunEnded(Message):
    """A table's run is over; `error` is None on success."""

    table: str
    error: BaseException | None  # an S3rsError, or a bug's exception (its dialog logs the traceback)


@dataclass
class StoreRead(Message):
    """What the store says about a table: its watermark and who holds its lock."""

    table: str
    watermark: Watermark | None
    lock: LockInfo | None
    error: str = ""


@dataclass
class SnapshotsRead(Message):
    """`s3rs watch`: the status snapshots as just read."""

    snapshots: list[Snapshot]


@dataclass
class DeleteProgress(Message):
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DeleteProgress)
