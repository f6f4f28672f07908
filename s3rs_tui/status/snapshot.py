"""The status snapshot: every run writes its TableStatus as JSON to a local state folder, so
`s3rs watch` (another process, maybe after an SSH drop) can show a run going on elsewhere.

    $S3RS_STATE_DIR (default ~/.s3rs)/status/<db>.<table>.json

Written by an event sink in the engine's thread: at most every `interval` seconds while pages and
files flow, at once when the run starts, pauses, resumes or ends. Each table's last runs carry over
from one run's snapshot to the next. Each write is atomic (temporary file,
then rename), so a reader never sees half a document, and private to the user (0600).
"""

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from s3rs_tui.runtime.events import Event, FilesLoaded, FileStored, PageRead
from s3rs_tui.runtime.private import open_private
from s3rs_tui.status.model import TableStatus
from s3rs_tui.store.lock import pid_alive

STALE_SECONDS = 30  # a running snapshot older than this is flagged (the writer may be hung)


def state_dir() -> Path:
    """The local state folder: status snapshots and the dashboard's log files."""
    return Path(os.environ.get("S3RS_STATE_DIR") or Path.home() / ".s3rs")


def status_dir() -> Path:
    return state_dir() / "status"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open_private(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class SnapshotWriter:
    """Event sink: folds events into TableStatus per table and writes the snapshots."""

    def __init__(self, folder: Path | None = None, interval: float = 2.0,
                 formatter: Callable[[Event], str | None] = lambda event: None,
                 clock: Callable[[], float] = time.time):
        self.folder = folder or status_dir()
        self.interval, self.formatter, self.clock = interval, formatter, clock
        self.statuses: dict[str, TableStatus] = {}
        self.written: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        status = self.statuses.get(event.table)
        if status is None:  # the table's last runs carry over from the snapshot already there
            last_runs = previous_runs(event.table, self.folder)
            status = self.statuses[event.table] = TableStatus(event.table, last_runs=last_runs)
        status.apply(event)
        line = self.formatter(event)
        if line:
            status.add_log(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.clock()))} {line}")
        progress = isinstance(event, (PageRead, FileStored, FilesLoaded))
        if not progress or self.clock() - self.written.get(event.table, 0.0) >= self.interval:
            self.write(status)

    def write(self, status: TableStatus) -> None:
        now = self.clock()
        document = {"pid": os.getpid(), "host": socket.gethostname(), "updated_at": now,
                    "status": status.to_dict()}
        try:
            write_atomic(self.folder / f"{status.table}.json", json.dumps(document, default=str).encode())
        except OSError:  # a full or read-only disk must not stop the backup
            return
        self.written[status.table] = now


@dataclass
class Snapshot:
    status: TableStatus
    pid: int
    host: str
    updated_at: float

    def liveness(self, now: float | None = None) -> str:
        """'' when fine, else why the snapshot should not be trusted as live."""
        if not self.status.active:
            return ""
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return f"process {self.pid} is gone: the run ended without a final snapshot"
        age = (now or time.time()) - self.updated_at
        if age > STALE_SECONDS:
            return f"no update for {age:.0f}s"
        return ""


def previous_runs(table: str, folder: Path | None = None) -> list[dict]:
    """The last runs recorded in the table's snapshot, if there is one ([] otherwise)."""
    snapshot = read_snapshot((folder or status_dir()) / f"{table}.json")
    return list(snapshot.status.last_runs) if snapshot else []


def read_snapshot(path: Path) -> Snapshot | None:
    """One snapshot file; None when missing or unreadable (a reader never fails on it)."""
    try:
        document = json.loads(path.read_bytes())
        return Snapshot(TableStatus.from_dict(document["status"]), int(document["pid"]),
                        str(document["host"]), float(document["updated_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_snapshots(folder: Path | None = None, tables: list[str] | None = None) -> list[Snapshot]:
    """The snapshots in the folder (only `tables` when given), by table name; unreadable ones skipped."""
    folder = folder or status_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        snapshot = read_snapshot(path)
        if snapshot is not None and (not tables or snapshot.status.table in tables):
            found.append(snapshot)
    return found
