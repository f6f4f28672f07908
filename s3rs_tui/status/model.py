"""TableStatus: one table's job folded from engine events (a reducer), and its JSON form.

The dashboard, the status snapshot and `s3rs watch` all read this one model, so a run looks the
same live, in a snapshot and from another terminal. Counters in progress events are run totals, so
applying only the latest of several events (the dashboard coalesces them) gives the same result.

States are `State` (the words the dashboard shows); failed comes with failed_phase, stale is only
seen in `watch`. Progress is the share of the run's cursor span covered, capped below 100%
until the job has ended, so neither a row estimate that is half the real count nor a coalesced
event can show 100% or an ETA of zero while rows still come.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from s3rs_tui.engine.progress import time_share
from s3rs_tui.runtime.events import (
    ChunkProgress,
    Event,
    FilesLoaded,
    FileStored,
    JobFinished,
    JobStarted,
    LoadFinished,
    LoadStarted,
    Notice,
    PageRead,
    RangeReconciled,
    ReconcileStarted,
    RestoreFinished,
    RestoreStarted,
    Retrying,
    RowsRestored,
    RunFinished,
    RunStarted,
    StateChanged,
    VerifyFinished,
    VerifyStarted,
)
from s3rs_tui.runtime.keys import Key


class State(StrEnum):
    """What a table's job is doing, in the words the dashboard shows."""

    IDLE = "idle"
    STARTING = "starting"
    EXTRACTING = "extracting"
    STORING = "storing"
    LOADING = "loading"
    VERIFYING = "verifying"
    RECONCILING = "reconciling"
    RESTORING = "restoring"
    PAUSING = "pausing"
    PAUSED = "paused"
    STOPPING = "stopping"
    DONE = "done"
    VERIFIED = "verified"
    DIFFERS = "differs"
    STOPPED = "stopped"
    FAILED = "failed"
    LOCKED = "locked"
    STALE = "stale"


HISTORY = 120    # sparkline samples kept (one per applied progress event)
LOG_LINES = 200  # recent log lines kept for `watch`
LAST_RUNS = 10   # outcomes kept per table
CAP = 0.99       # the highest share shown before the job has ended
PROJECT_FROM = 0.05  # the time share from which rows / share projects the total better than EXPLAIN

RUNNING = (State.STARTING, State.EXTRACTING, State.STORING, State.LOADING, State.VERIFYING, State.RECONCILING,
           State.RESTORING)
ACTIVE = (*RUNNING, State.PAUSING, State.PAUSED, State.STOPPING)
REQUESTED = (State.PAUSING, State.STOPPING)  # asked by the operator: kept until the engine answers
PHASE_STATES = {"extract": State.EXTRACTING, "load": State.LOADING, "verify": State.VERIFYING,
                "reconcile": State.RECONCILING, "restore": State.RESTORING}
# A run's or a job's outcome (RunFinished, LoadFinished, JobFinished) -> the state it leaves.
ENDED = {
    "success": State.DONE,
    "interrupted": State.STOPPED,
    "failed": State.FAILED,
    "differs": State.DIFFERS,
    "skipped": State.LOCKED,
}


@dataclass
class TableStatus:
    table: str
    state: State = State.IDLE
    failed_phase: str = ""  # "extract" | "load" | "verify" when state is failed
    verify_result: str = ""  # "agrees: 3,000,000 rows" | "differs: 3 ranges, 12 keys"
    phase: str = ""  # the step going on: extract, load, verify, reconcile, restore
    reconcile: str = ""  # ranges compared: "3/20"
    reconcile_found: str = ""  # "2 fixed, 1 gone": keys re-read from MySQL, keys deleted there
    reconcile_share: float | None = None  # ranges compared / ranges to compare
    steps: list[str] = field(default_factory=list)  # the job's steps (JobStarted)
    progressive: bool = False
    run_id: str = ""
    estimated_rows: int = 0
    estimate_exact: bool = False
    span_start: str | None = None  # the first cursor time this run covers
    rows: int = 0  # stored by this run (a progressive run: by this chunk)
    files: int = 0
    bytes: int = 0
    file_rows: int = 0  # read into the file being written, not stored yet
    file_bytes: int = 0
    rows_read: int = 0  # rows + file_rows: what the engine has read
    position_timestamp: str | None = None  # the last row read (not durable: see watermark_*)
    position_id: Key = None
    elapsed_seconds: float = 0.0
    paused_seconds: float = 0.0
    rows_per_minute: float = 0.0  # average of the run, paused time left out
    rows_per_minute_now: float = 0.0  # between the last two progress updates
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    progress_at: float = 0.0  # wall clock (time.time) of the last progress event: a stall shows
    last_file: str = ""
    store_url: str = ""
    start_position: str = ""
    upper_bound: str = ""
    watermark_timestamp: str | None = None  # durable: moves only when a file is stored
    watermark_id: Key = None
    loaded_files: int = 0
    loaded_rows: int = 0  # row versions merged into the warehouse (an update loads a row again)
    load_state: str = ""
    last_load: str = ""
    error: str = ""
    chunk: str = ""  # progressive runs: "3 of 10: done"
    chunk_rows: int = 0  # progressive runs: rows of the finished chunks
    chunk_estimate: int = 0  # progressive runs: rows to go when it started
    chunk_exact: bool = False
    chunk_span_start: str | None = None
    caught_up: bool = False  # the last extraction reached its upper bound
    last_runs: list[dict] = field(default_factory=list)  # newest first: outcome, rows, seconds, ended_at
    rate_history: list[float] = field(default_factory=list)
    rss_history: list[float] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def moving(self) -> bool:
        """Rows are flowing (not paused, not asked to pause)."""
        return self.state in (State.EXTRACTING, State.STORING, State.RESTORING)

    @property
    def job_rows(self) -> int:
        """Rows read by the whole job: a progressive run's finished chunks plus the one going on."""
        if not self.progressive:
            return self.rows_read
        return self.chunk_rows + (self.rows_read if self.chunk.endswith("started") else 0)

    def _basis(self) -> tuple[int, int, bool, str | None]:
        """(rows read, rows expected, whether that is a COUNT, first cursor time) of the job."""
        if self.progressive:
            return self.job_rows, self.chunk_estimate, self.chunk_exact, self.chunk_span_start
        return self.rows_read, self.estimated_rows, self.estimate_exact, self.span_start

    def _share(self) -> float | None:
        rows, estimate, exact, start = self._basis()
        if exact and estimate:
            return rows / estimate
        share = time_share(start, self.upper_bound, self.position_timestamp)
        if share is not None:
            return share
        return rows / estimate if estimate else None

    @property
    def progress(self) -> float | None:
        """Share of the job done (0..1): below CAP until the extraction has ended; None when unknown."""
        if self.caught_up and (not self.active or self.state in (State.LOADING, State.VERIFYING)):
            return 1.0
        share = self.reconcile_share if self.phase == "reconcile" else self._share()
        return None if share is None else min(CAP, share)

    @property
    def total_is_exact(self) -> bool:
        """False while expected_rows is an estimate (the dashboard prefixes it with ~)."""
        if not self.active:
            return self.caught_up
        return self._basis()[2]

    @property
    def expected_rows(self) -> int:
        """The job's total rows as best known: the COUNT, or rows / time share once that says more
        than EXPLAIN's guess (which may be half the real count); never below what was read."""
        rows, estimate, exact, _ = self._basis()
        if not self.active and self.caught_up:
            return rows
        share = self._share()
        if not exact and share is not None and share >= PROJECT_FROM:
            estimate = round(rows / share)
        return max(rows, estimate)

    @property
    def rate_now(self) -> float | None:
        """Rows/min at the moment; None when nothing should flow (paused, pausing, ended)."""
        return self.rows_per_minute_now if self.moving else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds to the end of the extraction at the average rate; None when paused or unknown,
        and never 0 while rows still come."""
        share = self._share()
        if not self.moving or not share or self.rows_per_minute <= 0:
            return None
        left_rows = self.job_rows * (1 - min(share, 1.0)) / share
        return max(1.0, left_rows / self.rows_per_minute * 60)

    def since_progress(self, now: float | None = None) -> float | None:
        """Seconds since the engine last reported progress (a stall grows it); None when idle."""
        if not self.active or not self.progress_at:
            return None
        return max(0.0, (now or time.time()) - self.progress_at)

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
        status = cls(**{k: v for k, v in document.items() if k in known})
        status.state = State(status.state)  # a snapshot holds the word
        return status


def _push(history: list[float], value: float) -> None:
    history.append(value)
    del history[:-HISTORY]


def _set_state(status: TableStatus, state: State) -> None:
    """A phase state, unless the operator's pause or stop is still pending."""
    if status.state not in REQUESTED:
        status.state = state


def _zero_counts(status: TableStatus) -> None:
    """A new extraction counts from zero."""
    status.rows = status.files = status.bytes = status.file_rows = status.file_bytes = status.rows_read = 0


def _job_started(status: TableStatus, event: JobStarted) -> None:
    status.steps, status.progressive = list(event.steps), event.progressive
    status.state, status.failed_phase, status.error = State.STARTING, "", ""
    status.caught_up = status.caught_up and "extract" not in event.steps
    status.phase = event.steps[0] if event.steps else ""
    if "verify" in event.steps:
        status.verify_result = ""
    if "extract" in event.steps:  # a verify alone keeps the last run's figures on screen
        status.chunk, status.chunk_rows = "", 0
        _zero_counts(status)


def _started(status: TableStatus, event: RunStarted) -> None:
    _set_state(status, State.EXTRACTING)
    status.phase, status.run_id, status.error, status.caught_up = "extract", event.run_id, "", False
    status.estimated_rows, status.estimate_exact = event.estimated_rows, event.estimate_exact
    status.store_url, status.upper_bound = event.store_url, event.upper_bound
    status.span_start = event.span_start
    _zero_counts(status)
    status.elapsed_seconds = status.paused_seconds = status.rows_per_minute = status.rows_per_minute_now = 0.0
    status.position_timestamp, status.position_id = event.start_timestamp, event.start_id
    status.start_position = (
        "the beginning" if event.start_timestamp is None else f"({event.start_timestamp}, {event.start_id})"
    )
    status.progress_at = time.time()
    if not status.progressive:
        status.rate_history.clear()
        status.rss_history.clear()


def _progress(
    status: TableStatus, rows_read: int, elapsed: float, paused: float, per_minute: float, rss: float
) -> None:
    """What every progress event says: the rate now (between the last two), average, RSS."""
    span = (elapsed - paused) - (status.elapsed_seconds - status.paused_seconds)
    if span > 0:
        status.rows_per_minute_now = max(0, rows_read - status.rows_read) * 60 / span
    status.rows_read, status.elapsed_seconds, status.paused_seconds = rows_read, elapsed, paused
    status.rows_per_minute, status.rss_mb = per_minute, rss
    status.peak_rss_mb = max(status.peak_rss_mb, rss)
    status.progress_at = time.time()
    _push(status.rate_history, status.rows_per_minute_now)
    _push(status.rss_history, rss)


def _page_read(status: TableStatus, event: PageRead) -> None:
    _set_state(status, State(event.phase))
    _progress(
        status,
        event.run_rows,
        event.elapsed_seconds,
        event.paused_seconds,
        event.rows_per_minute,
        event.rss_mb,
    )
    status.peak_rss_mb = max(status.peak_rss_mb, event.peak_rss_mb)
    status.file_rows, status.file_bytes = event.file_rows, event.file_bytes
    status.position_timestamp, status.position_id = event.position_timestamp, event.position_id


def _stored(status: TableStatus, event: FileStored) -> None:
    if status.state in (State.STARTING, State.STORING):
        status.state = State.EXTRACTING
    _progress(
        status,
        max(event.run_rows, status.rows_read),
        event.elapsed_seconds,
        event.paused_seconds,
        event.rows_per_minute,
        event.rss_mb,
    )
    status.rows, status.files, status.bytes = event.run_rows, event.run_files, event.run_bytes
    status.file_rows = status.rows_read - status.rows
    status.file_bytes = 0 if not status.file_rows else status.file_bytes
    status.last_file, status.error = event.key, ""  # a file stored: any retry has succeeded
    status.watermark_timestamp, status.watermark_id = event.watermark_timestamp, event.watermark_id
    if status.position_timestamp is None or status.rows_read == status.rows:
        status.position_timestamp, status.position_id = event.watermark_timestamp, event.watermark_id


def _state_changed(status: TableStatus, event: StateChanged) -> None:
    if event.state == "running":
        status.state = PHASE_STATES.get(status.phase, State.EXTRACTING)
    else:
        status.state = State(event.state)


def _next_step(status: TableStatus, after: str) -> State | None:
    """The state of the step after `after`, when the job has one (None: the job is over)."""
    later = status.steps[status.steps.index(after) + 1 :] if after in status.steps else []
    return PHASE_STATES[later[0]] if later else None


def _finished(status: TableStatus, event: RunFinished) -> None:
    status.rows, status.files, status.bytes = event.rows, event.files, event.bytes
    status.rows_read, status.file_rows, status.file_bytes = event.rows, 0, 0
    status.elapsed_seconds, status.rows_per_minute = event.elapsed_seconds, event.rows_per_minute
    status.paused_seconds = event.paused_seconds
    status.peak_rss_mb = max(status.peak_rss_mb, event.peak_rss_mb)
    if event.watermark_timestamp is not None:
        status.watermark_timestamp, status.watermark_id = event.watermark_timestamp, event.watermark_id
        status.position_timestamp, status.position_id = event.watermark_timestamp, event.watermark_id
    status.error = event.error
    if event.status == "failed":
        status.state, status.failed_phase = State.FAILED, "extract"
        return
    if event.status != "success":
        status.state = ENDED[event.status]
        return
    status.caught_up = event.caught_up or not status.progressive
    if status.progressive:
        return  # the next chunk, or JobFinished, says what comes
    following = _next_step(status, "extract")
    status.state = following or State.DONE
    status.phase = "load" if following == State.LOADING else "verify" if following else status.phase


def _notice(status: TableStatus, event: Notice) -> None:
    if event.level == "error":
        status.error = event.message


def _retrying(status: TableStatus, event: Retrying) -> None:
    status.error = f"retry {event.attempt}/{event.max_attempts}: {event.error}"


def _load_started(status: TableStatus, event: LoadStarted) -> None:
    status.phase = "load"
    _set_state(status, State.LOADING)
    status.load_state = f"loading {event.files} files into {event.warehouse}"
    status.loaded_files = status.loaded_rows = 0


def _files_loaded(status: TableStatus, event: FilesLoaded) -> None:
    status.loaded_files, status.loaded_rows = event.run_files, event.run_rows
    status.last_load = event.files[-1] if event.files else status.last_load
    status.progress_at = time.time()


def _load_finished(status: TableStatus, event: LoadFinished) -> None:
    status.load_state = f"{ENDED[event.status]} in {event.elapsed_seconds:.1f}s"
    status.loaded_files, status.loaded_rows = event.files, event.rows
    if event.error:
        status.error = event.error
    if event.status == "failed":
        status.state, status.failed_phase = State.FAILED, "load"
    elif event.status != "success":
        status.state = ENDED[event.status]
    elif not status.progressive:
        following = _next_step(status, "load")
        status.state = following or State.DONE
        status.phase = "verify" if following else status.phase


def _verify_started(status: TableStatus, event: VerifyStarted) -> None:
    status.phase, status.verify_result = "verify", ""
    _set_state(status, State.VERIFYING)


def _verify_finished(status: TableStatus, event: VerifyFinished) -> None:
    status.state = State.VERIFIED if event.agrees else State.DIFFERS
    status.verify_result = event.summary


def _reconcile_started(status: TableStatus, event: ReconcileStarted) -> None:
    status.phase, status.reconcile, status.reconcile_share = "reconcile", f"0/{event.ranges}", 0.0
    status.reconcile_found = ""
    _set_state(status, State.RECONCILING)


def _range_reconciled(status: TableStatus, event: RangeReconciled) -> None:
    status.reconcile = f"{event.ranges_done}/{event.ranges_total}"
    status.reconcile_found = f"{event.fixed:,} fixed, {event.deleted:,} gone"
    status.reconcile_share = event.ranges_done / event.ranges_total if event.ranges_total else None
    status.rows_read, status.rows_per_minute = event.rows_checked, event.rows_per_minute
    status.rss_mb, status.elapsed_seconds = event.rss_mb, event.elapsed_seconds
    status.peak_rss_mb = max(status.peak_rss_mb, event.rss_mb)


def _job_finished(status: TableStatus, event: JobFinished) -> None:
    state = ENDED[event.outcome]
    if state == State.DONE and "verify" in status.steps:
        state = State.VERIFIED
    status.state, status.failed_phase = state, event.failed_phase
    if event.error:
        status.error = event.error
    if status.progressive:
        status.chunk_rows = event.rows
    outcome = f"failed: {event.failed_phase}" if event.failed_phase else state
    _remember(status, outcome, event.rows, event.seconds)


def _remember(status: TableStatus, outcome: str, rows: int, seconds: float) -> None:
    """A run's outcome in the table's last runs (newest first)."""
    status.last_runs.insert(
        0, {"outcome": outcome, "rows": rows, "seconds": round(seconds, 1),
            "ended_at": time.strftime("%Y-%m-%d %H:%M:%S")})
    del status.last_runs[LAST_RUNS:]


def _restore_started(status: TableStatus, event: RestoreStarted) -> None:
    """A restore's progress is rows in the target / rows of the state (a count, known once the
    winners are picked): it reuses the extraction's counters, starting from the resumed rows."""
    status.steps, status.progressive, status.phase = ["restore"], False, "restore"
    status.error, status.failed_phase, status.caught_up = "", "", False
    status.reconcile = status.reconcile_found = status.chunk = ""
    _set_state(status, State.RESTORING)
    _zero_counts(status)
    status.rows_read, status.estimated_rows, status.estimate_exact = event.resumed_rows, 0, True
    status.span_start, status.upper_bound = None, ""
    status.position_timestamp, status.position_id = None, None
    status.elapsed_seconds = status.paused_seconds = status.rows_per_minute = status.rows_per_minute_now = 0.0
    status.progress_at = time.time()
    status.rate_history.clear()
    status.rss_history.clear()


def _rows_restored(status: TableStatus, event: RowsRestored) -> None:
    _set_state(status, State.RESTORING)
    _progress(status, event.restored, event.elapsed_seconds, event.paused_seconds, event.rows_per_minute,
              event.rss_mb)
    status.peak_rss_mb = max(status.peak_rss_mb, event.peak_rss_mb)
    status.estimated_rows, status.position_id = event.total, event.last_key


def _restore_finished(status: TableStatus, event: RestoreFinished) -> None:
    status.rows_read, status.elapsed_seconds = event.rows, event.elapsed_seconds
    status.rows_per_minute, status.paused_seconds = event.rows_per_minute, event.paused_seconds
    status.peak_rss_mb = max(status.peak_rss_mb, event.peak_rss_mb)
    status.error = event.error
    status.state = ENDED[event.status]
    status.failed_phase = "restore" if event.status == "failed" else ""
    status.caught_up = event.status == "success"
    _remember(status, f"restore {'failed' if event.status == 'failed' else status.state}", event.rows,
              event.elapsed_seconds)


def _chunk(status: TableStatus, event: ChunkProgress) -> None:
    of = f" of {event.max_chunks}" if event.max_chunks else ""
    status.progressive = True
    status.chunk = f"{event.chunk}{of}: {event.status}"
    status.chunk_rows, status.chunk_estimate = event.rows_done, event.estimated_rows
    status.chunk_exact, status.chunk_span_start = event.estimate_exact, event.span_start
    status.caught_up = event.status == "caught up"
    if event.status == "started":
        _set_state(
            status, State.STARTING if status.state in (State.IDLE, State.STARTING) else State.EXTRACTING
        )
    if event.error:
        status.error = event.error


_HANDLERS: dict[type[Event], Callable[[TableStatus, Any], None]] = {
    JobStarted: _job_started,
    ChunkProgress: _chunk,
    RunStarted: _started,
    PageRead: _page_read,
    FileStored: _stored,
    StateChanged: _state_changed,
    RunFinished: _finished,
    Notice: _notice,
    Retrying: _retrying,
    LoadStarted: _load_started,
    FilesLoaded: _files_loaded,
    LoadFinished: _load_finished,
    VerifyStarted: _verify_started,
    VerifyFinished: _verify_finished,
    ReconcileStarted: _reconcile_started,
    RangeReconciled: _range_reconciled,
    JobFinished: _job_finished,
    RestoreStarted: _restore_started,
    RowsRestored: _rows_restored,
    RestoreFinished: _restore_finished,
}
