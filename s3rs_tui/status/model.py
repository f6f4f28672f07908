"""TableStatus: one table's run folded from engine events (a reducer), and its JSON form.

The dashboard, the status snapshot and `s3rs watch` all read this one model, so a run looks the
same live, in a snapshot and from another terminal. Counters in FileStored are run totals, so
applying only the latest of several events (the dashboard coalesces them) gives the same result.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from s3rs_tui.engine.events import (
    ChunkProgress,
    Event,
    FilesLoaded,
    FileStored,
    LoadFinished,
    LoadStarted,
    Notice,
    Retrying,
    RunFinished,
    RunStarted,
    StateChanged,
)

HISTORY = 120   # sparkline samples kept (one per applied progress event)
LOG_LINES = 200  # recent log lines kept for `watch`

FINISHED_STATES = {"success": "done", "interrupted": "stopped", "failed": "failed"}


@dataclass
class TableStatus:
    table: str
    state: str = "idle"  # idle, starting, running, paused, stopping, done, stopped, failed, locked
    run_id: str = ""
    estimated_rows: int = 0
    rows: int = 0
    files: int = 0
    bytes: int = 0
    elapsed_seconds: float = 0.0
    rows_per_minute: float = 0.0      # average of the run
    rows_per_minute_now: float = 0.0  # between the last two progress updates
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    last_file: str = ""
    store_url: str = ""
    start_position: str = ""
    upper_bound: str = ""
    watermark_timestamp: str | None = None
    watermark_id: object = None
    loaded_files: int = 0
    loaded_rows: int = 0
    load_state: str = ""
    last_load: str = ""
    error: str = ""
    chunk: str = ""             # progressive runs: "chunk 3 of 10: done"
    chunk_rows: int = 0         # progressive runs: rows of the finished chunks
    chunk_estimate: int = 0     # progressive runs: rows to go when it started
    rate_history: list[float] = field(default_factory=list)
    rss_history: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "paused", "stopping")

    @property
    def progress(self) -> float | None:
        """Share of the run's estimate done (0..1), None when there is no estimate."""
        if not self.estimated_rows:
            return None
        return min(1.0, self.rows / self.estimated_rows)

    @property
    def eta_seconds(self) -> float | None:
        if not self.active or not self.estimated_rows or self.rows_per_minute <= 0:
            return None
        return max(0, self.estimated_rows - self.rows) / self.rows_per_minute * 60

    def apply(self, event: Event) -> None:
        """Fold one engine event into the status."""
        handler = _HANDLERS.get(type(event))
        if handler:
            handler(self, event)

    def add_log(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-LOG_LINES]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict) -> "TableStatus":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in document.items() if k in known})


def _push(history: list[float], value: float) -> None:
    history.append(value)
    del history[:-HISTORY]


def _started(status: TableStatus, event: RunStarted) -> None:
    status.state, status.run_id, status.error = "running", event.run_id, ""
    status.estimated_rows, status.store_url, status.upper_bound = event.estimated_rows, event.store_url, \
        event.upper_bound
    status.rows = status.files = status.bytes = 0
    status.elapsed_seconds = status.rows_per_minute = status.rows_per_minute_now = 0.0
    status.start_position = "the beginning" if event.start_timestamp is None else \
        f"({event.start_timestamp}, {event.start_id})"
    status.rate_history.clear()
    status.rss_history.clear()


def _stored(status: TableStatus, event: FileStored) -> None:
    span = event.elapsed_seconds - status.elapsed_seconds
    if span > 0:
        status.rows_per_minute_now = (event.run_rows - status.rows) * 60 / span
    status.rows, status.files, status.bytes = event.run_rows, event.run_files, event.run_bytes
    status.elapsed_seconds, status.rows_per_minute = event.elapsed_seconds, event.rows_per_minute
    status.rss_mb, status.peak_rss_mb = event.rss_mb, max(status.peak_rss_mb, event.rss_mb)
    status.last_file, status.error = event.key, ""  # a file stored: any retry has succeeded
    status.watermark_timestamp, status.watermark_id = event.watermark_timestamp, event.watermark_id
    if status.state == "starting":
        status.state = "running"
    _push(status.rate_history, status.rows_per_minute_now)
    _push(status.rss_history, event.rss_mb)


def _state_changed(status: TableStatus, event: StateChanged) -> None:
    status.state = event.state


def _finished(status: TableStatus, event: RunFinished) -> None:
    status.state = FINISHED_STATES.get(event.status, event.status)
    status.rows, status.files, status.bytes = event.rows, event.files, event.bytes
    status.elapsed_seconds, status.rows_per_minute = event.elapsed_seconds, event.rows_per_minute
    status.peak_rss_mb = max(status.peak_rss_mb, event.peak_rss_mb)
    if event.watermark_timestamp is not None:
        status.watermark_timestamp, status.watermark_id = event.watermark_timestamp, event.watermark_id
    status.error = event.error


def _notice(status: TableStatus, event: Notice) -> None:
    if event.level == "error":
        status.error = event.message


def _retrying(status: TableStatus, event: Retrying) -> None:
    status.error = f"retry {event.attempt}/{event.max_attempts}: {event.error}"


def _load_started(status: TableStatus, event: LoadStarted) -> None:
    status.load_state = f"loading {event.files} files into {event.warehouse}"
    status.loaded_files = status.loaded_rows = 0


def _files_loaded(status: TableStatus, event: FilesLoaded) -> None:
    status.loaded_files, status.loaded_rows = event.run_files, event.run_rows
    status.last_load = event.files[-1] if event.files else status.last_load


def _load_finished(status: TableStatus, event: LoadFinished) -> None:
    status.load_state = f"{FINISHED_STATES.get(event.status, event.status)} in {event.elapsed_seconds:.1f}s"
    status.loaded_files, status.loaded_rows = event.files, event.rows
    if event.error:
        status.error = event.error


def _chunk(status: TableStatus, event: ChunkProgress) -> None:
    of = f" of {event.max_chunks}" if event.max_chunks else ""
    status.chunk = f"{event.chunk}{of}: {event.status}"
    status.chunk_rows, status.chunk_estimate = event.rows_done, event.estimated_rows
    if event.error:
        status.error = event.error


_HANDLERS: dict[type[Event], Callable[[TableStatus, Any], None]] = {
    ChunkProgress: _chunk, RunStarted: _started, FileStored: _stored, StateChanged: _state_changed,
    RunFinished: _finished, Notice: _notice, Retrying: _retrying, LoadStarted: _load_started,
    FilesLoaded: _files_loaded, LoadFinished: _load_finished}
