"""Typed progress events: the only thing the engine tells its consumers (dashboard, headless log).

Events are built with keywords only (a dozen positional numbers is a bug waiting to happen).
Consumers are plain callables `sink(event)`. The engine calls them from its own thread, so a
consumer that touches a UI must hand the event over (Textual: `post_message`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from s3rs_tui.runtime.keys import Key

RunOutcome = Literal["success", "interrupted", "failed"]  # of an extraction or a load
JobOutcome = Literal["success", "interrupted", "failed", "differs", "skipped"]  # skipped: locked elsewhere
Step = Literal["", "extract", "load", "verify", "reconcile", "restore"]
Level = Literal["info", "warning", "error"]
PagePhase = Literal["extracting", "storing"]
ChunkStatus = Literal["started", "done", "caught up", "failed"]


@dataclass(frozen=True, kw_only=True)
class Event:
    table: str


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    run_id: str
    start_timestamp: str | None
    start_id: Key
    upper_bound: str
    estimated_rows: int
    batch_size: int
    store_url: str
    estimate_exact: bool = False      # estimated_rows is a COUNT, not EXPLAIN's guess
    span_start: str | None = None     # the first cursor time to cover (progress = time covered / to cover)


@dataclass(frozen=True, kw_only=True)
class FileStored(Event):
    """One Parquet file is durable and the watermark now covers it."""

    key: str
    rows: int
    bytes: int
    run_rows: int
    run_files: int
    run_bytes: int
    rows_per_minute: float
    rss_mb: float
    watermark_timestamp: str | None  # as in Position
    watermark_id: Key
    elapsed_seconds: float
    seconds: dict[str, float] = field(default_factory=dict)  # this file's read/encode/store/commit
    paused_seconds: float = 0.0  # of elapsed_seconds; rows_per_minute leaves them out


@dataclass(frozen=True, kw_only=True)
class PageRead(Event):
    """Rows read into the file being written, not stored yet: sent at most every PROGRESS_SECONDS
    while pages flow (phase "extracting"), and once as the file is closed and uploaded ("storing").
    The watermark does not move on it: only FileStored moves the watermark."""

    phase: PagePhase
    file_rows: int
    file_bytes: int             # of the open file, as flushed so far
    run_rows: int               # stored files plus the open one
    rows_per_minute: float      # run average, paused time left out
    rss_mb: float
    peak_rss_mb: float
    elapsed_seconds: float
    paused_seconds: float
    position_timestamp: str | None  # the last row read (not yet durable)
    position_id: Key


PROGRESS_SECONDS = 0.5  # PageRead at most twice a second: the engine never waits on a dashboard


@dataclass(frozen=True, kw_only=True)
class Notice(Event):
    """Something the operator should read: a missing index, NULL cursors, a retry..."""

    message: str
    level: Level = "warning"


@dataclass(frozen=True, kw_only=True)
class Retrying(Event):
    attempt: int
    max_attempts: int
    delay_seconds: float
    error: str


@dataclass(frozen=True, kw_only=True)
class StateChanged(Event):
    """The run paused between files, or went on."""

    state: Literal["paused", "running", "stopping"]


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    status: RunOutcome
    rows: int
    files: int
    bytes: int
    elapsed_seconds: float
    rows_per_minute: float
    peak_rss_mb: float
    watermark_timestamp: str | None
    watermark_id: Key
    invalid_dates: dict[str, int] = field(default_factory=dict)
    null_cursor_rows: int = 0
    future_cursor_rows: int = 0
    caught_up: bool = False
    error: str = ""
    paused_seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class LoadStarted(Event):
    """Stored files that the warehouse has not loaded yet are about to be loaded."""

    files: int
    warehouse: str  # for people: "redshift at host:5439/db", "duckdb ./s3rs.duckdb"


@dataclass(frozen=True, kw_only=True)
class FilesLoaded(Event):
    """A group of files is merged into the warehouse and recorded in its ledger (one transaction)."""

    files: tuple[str, ...]
    rows: int
    run_files: int
    run_rows: int
    elapsed_seconds: float


@dataclass(frozen=True, kw_only=True)
class LoadFinished(Event):
    status: RunOutcome
    files: int
    rows: int
    elapsed_seconds: float
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class ChunkProgress(Event):
    """A progressive run started, finished or failed one chunk (a bounded sync)."""

    chunk: int
    max_chunks: int | None       # None: until caught up
    status: ChunkStatus
    rows_done: int               # by this progressive run so far
    estimated_rows: int          # still to go when the progressive run started
    rows_per_minute: float
    error: str = ""
    estimate_exact: bool = False    # estimated_rows is a COUNT (--estimate exact)
    span_start: str | None = None   # the first cursor time of the whole progressive run


@dataclass(frozen=True, kw_only=True)
class JobStarted(Event):
    """A table's job begins: which steps it will take, so a finished extraction reads "loading"
    rather than "done" while the warehouse steps are still to come."""

    steps: tuple[str, ...]     # of "extract", "load", "verify" (progressive: its chunks' steps)
    progressive: bool = False


@dataclass(frozen=True, kw_only=True)
class VerifyStarted(Event):
    """MySQL and the warehouse are being compared (`s3rs verify`, `v`, `--verify-data`)."""


@dataclass(frozen=True, kw_only=True)
class VerifyFinished(Event):
    agrees: bool
    summary: str  # one line, the verdict first ("agrees: ..." / "differs: 3 ranges, 12 keys ...")


@dataclass(frozen=True, kw_only=True)
class ReconcileStarted(Event):
    """`s3rs reconcile` compares MySQL with the newest backed-up state, range by range."""

    against: str       # "postgres at ...", "the store (12 files)"
    ranges: int        # key ranges to compare (CHAR/VARCHAR keys: hash buckets)
    resumed: bool      # going on with an interrupted run (same watermark)


@dataclass(frozen=True, kw_only=True)
class RangeReconciled(Event):
    """One key range compared, and what it found stored (fix and deletion files)."""

    label: str
    ranges_done: int
    ranges_total: int
    rows_checked: int       # MySQL rows checksummed so far
    fixed: int              # keys re-read from MySQL so far (changed, or missing in the backup)
    deleted: int            # keys found gone from MySQL so far
    rows_per_minute: float  # rows checksummed
    rss_mb: float
    elapsed_seconds: float


@dataclass(frozen=True, kw_only=True)
class JobFinished(Event):
    """The table's job is over: the outcome of all its steps, the one to show and remember."""

    outcome: JobOutcome
    failed_phase: Step
    rows: int           # extracted by this job (all chunks of a progressive run)
    seconds: float
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class RestoreStarted(Event):
    """`s3rs restore` of `table` (the source) into `target` begins (or goes on after a stop)."""

    target: str              # db.table in MySQL, or the folder of --to-parquet
    as_of: str | None        # None: everything stored
    files: int               # stored files read
    bytes: int
    resumed_rows: int = 0    # loaded by the stopped run this one goes on from


@dataclass(frozen=True, kw_only=True)
class RowsRestored(Event):
    """A batch is committed into the target (or written to the folder)."""

    rows: int
    run_rows: int            # this run's rows so far (not counting resumed_rows)
    restored: int            # in the target so far: resumed_rows + run_rows
    total: int               # rows of the state being restored (restored at the end)
    rows_per_minute: float   # run average, paused time left out
    rss_mb: float
    peak_rss_mb: float
    elapsed_seconds: float
    paused_seconds: float
    last_key: Key


@dataclass(frozen=True, kw_only=True)
class RestoreFinished(Event):
    status: RunOutcome
    target: str
    rows: int                # in the target now (resumed ones included)
    elapsed_seconds: float
    rows_per_minute: float
    peak_rss_mb: float
    error: str = ""
    paused_seconds: float = 0.0


EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink for callers that do not watch progress."""


def tee(*sinks: EventSink) -> EventSink:
    """One sink that hands every event to each of `sinks` in turn (the log, the status snapshot...)."""
    def send(event: Event) -> None:
        for sink in sinks:
            sink(event)

    return send

