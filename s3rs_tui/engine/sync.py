"""One table's backup run: extract a page -> encode Parquet -> store it -> advance the watermark.

The order is the whole safety argument: a watermark is saved only after the file it covers is
durable in the store, and the file's name is fixed by where it starts. A crash anywhere leaves at
worst one stored file ahead of the watermark, which the rerun rewrites under the same name.
"""

import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from s3rs_tui.engine.cxreader import connection_url, cx_chunks
from s3rs_tui.engine.extract import Chunk, ChunkReader, ChunkSource, pymysql_chunks, typed_key
from s3rs_tui.engine.keyset import Position, has_string_key, sortable_key
from s3rs_tui.engine.memory import MemoryBudget, MemoryGuard, peak_rss_mb, rss_mb, use_compact_allocators
from s3rs_tui.engine.mysql import classify, close_quietly, connect, connectorx_endpoint
from s3rs_tui.engine.parquet import ParquetFile, WriterChoices, data_key, spelled_by_sort_order
from s3rs_tui.engine.plan import Plan, make_plan, plan_notices
from s3rs_tui.engine.progress import Ticker
from s3rs_tui.engine.split import cursor_ranges, range_ends
from s3rs_tui.engine.table import TableInfo, describe_table, show_create_table
from s3rs_tui.engine.typemap import arrow_schema, plan_columns
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import ConfigError, RunTimedOut, S3rsError, StoppedByOperator, TableError
from s3rs_tui.runtime.events import (
    PROGRESS_SECONDS,
    EventSink,
    FileStored,
    Level,
    Notice,
    PagePhase,
    PageRead,
    RunFinished,
    RunOutcome,
    RunStarted,
    StateChanged,
)
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import shown_key
from s3rs_tui.runtime.retry import reported_retries
from s3rs_tui.store import open_store
from s3rs_tui.store.local import disk_error
from s3rs_tui.store.lock import LockLost, TableLock
from s3rs_tui.store.schemas import save_definition
from s3rs_tui.store.watermark import Watermark, WatermarkStore, utc_now


@dataclass(frozen=True)
class Span:
    """One range of a parallel first backfill, read by a process of its own (jobs/ranges.py): rows
    after `start` up to the row `end` inclusive (None: up to the run's bound). The process that
    split the table holds its lock and is the only writer of its watermark: `commit(file key,
    rows, end of the file)` returns once that process has saved the watermark past the file."""

    start: Position
    end: Position | None
    commit: Callable[[str, int, Position], None]


@dataclass
class SyncOptions:
    limit: int | None = None       # take at most this many rows in this run
    break_lock: bool = False
    backup_strategy: str = "sequential"
    deadline: float | None = None  # time.monotonic() after which the run stops at a file boundary
    span: Span | None = None       # read one range of a parallel backfill, report its files


class _HeldByParent:
    """The lock of a span's run: held by the process that started it, which checks it before
    each commit."""

    run_id = "span"
    lost = LockLost(float("inf"))

    def __enter__(self) -> "_HeldByParent":
        return self

    def __exit__(self, *exc) -> None:
        return None


@dataclass
class _Run:
    """What one run knows and has done so far."""

    info: TableInfo
    watermark: Watermark
    lock: TableLock | _HeldByParent
    started: float
    choices: WriterChoices  # the Parquet settings of its files
    rows: int = 0
    files: int = 0
    bytes: int = 0
    paused: float = 0.0  # seconds spent paused between files: not part of the rate
    file_invalid_dates: dict = field(default_factory=dict)  # of the file being written
    step_seconds: dict = field(default_factory=lambda: {"read": 0.0, "encode": 0.0})

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def per_minute(self, rows: int | None = None) -> float:
        """Rows a minute while it ran (paused time left out)."""
        working = self.elapsed() - self.paused
        return (self.rows if rows is None else rows) * 60 / working if working > 0 else 0.0


def _add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    for name, count in more.items():
        total[name] = total.get(name, 0) + count


class TableSync:
    """Runs one table; `run()` returns the RunFinished event it also sends to the sink."""

    def __init__(self, settings: Settings, table_name: str, sink: EventSink, control: RunControl,
                 options: SyncOptions | None = None):
        self.settings, self.sink, self.control = settings, sink, control
        self.options = options or SyncOptions()
        self.database, self.table, self.spec = settings.table(table_name)
        self.name = f"{self.database}.{self.table}"
        self.store = open_store(settings)
        self.watermarks = WatermarkStore(self.store)
        self.conn = self.side_conn = None
        self.invalid_dates: dict[str, int] = {}
        self.null_cursor_rows = self.future_cursor_rows = 0
        use_compact_allocators()

    # -- connections, retries, notices ---------------------------------------------------------

    def _reconnect(self, which: str = "conn") -> None:
        """A new connection (through a tunnel rebuilt first if it dropped): `conn` for the pages,
        `side_conn` for queries made while a page streams on `conn`."""
        close_quietly(getattr(self, which))
        setattr(self, which, None)
        setattr(self, which, connect(self.settings, notify=self._notice))

    def _retrying(self, action, recover=lambda: None, what: str = "the store"):
        return reported_retries(action, sink=self.sink, table=self.name, control=self.control, what=what,
                                attempts=self.settings.backup.retry_attempts, recover=recover)

    def _query(self, doing: str, action, which: str = "conn"):
        """Run `action(conn)` with a live connection: driver errors classified, transient ones retried."""
        def attempt():
            try:
                if getattr(self, which) is None:
                    self._reconnect(which)
                return action(getattr(self, which))
            except S3rsError:
                raise
            except Exception as exc:  # broad: classified into transient or fatal
                raise classify(exc, doing) from exc

        return self._retrying(attempt, lambda: self._reconnect(which), "MySQL")

    def _notice(self, message: str, level: Level = "warning") -> None:
        self.sink(Notice(table=self.name, message=message, level=level))

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunFinished:
        started = time.monotonic()
        run: _Run | None = None
        try:
            info = self._connect_and_describe()
            span = self.options.span
            with self._lock() if span is None else _HeldByParent() as lock:
                watermark = self._open_watermark(info) if span is None else self._span_watermark(info, span)
                run = _Run(info, watermark, lock, started, WriterChoices((*info.key_names, info.cursor.name)))
                if span is None:
                    self._capture_definition(info)
                finished = self._extract(run)
        except (S3rsError, OSError) as caught:  # OSError: the local disk, where files are written first
            exc = caught if isinstance(caught, S3rsError) else disk_error(caught)
            stopped = isinstance(exc, (StoppedByOperator, RunTimedOut))
            status: RunOutcome = "interrupted" if stopped else "failed"
            self._mark(run, status)
            self.sink(self._finished(run, status, started, error=str(exc)))
            if exc is not caught:
                raise exc from caught
            raise
        finally:
            close_quietly(self.conn)
            close_quietly(self.side_conn)
        self.sink(finished)
        return finished

    def _lock(self, purpose: str = "sync") -> TableLock:
        return TableLock(self.store, self.name, purpose=purpose, break_lock=self.options.break_lock,
                         stale_seconds=self.settings.backup.lock_stale_seconds)

    def _check_columns(self, info: TableInfo, watermark: Watermark) -> None:
        """The watermark was made with this cursor and key (recorded now when it was not)."""
        key_column = ",".join(info.key_names)
        for attribute, column in (("cursor_column", info.cursor.name), ("key_column", key_column)):
            stored = getattr(watermark, attribute)
            if watermark.has_position and stored is not None and stored != column:
                raise TableError(f"the watermark of {self.name} was made with {attribute} {stored!r}, not "
                                 f"{column!r}: set it back, or `s3rs watermark reset` to start over")
            setattr(watermark, attribute, column)

    def _open_watermark(self, info: TableInfo) -> Watermark:
        watermark = self._retrying(lambda: self.watermarks.get_or_new(self.name))
        watermark.refuse_open_ranges("a sync")
        self._check_columns(info, watermark)
        self._start(info, watermark)
        watermark.backup_strategy = self.options.backup_strategy
        watermark.mysql_status = "in_progress"
        self._retrying(lambda: self.watermarks.save(watermark))
        return watermark

    def _span_watermark(self, info: TableInfo, span: Span) -> Watermark:
        """A span's run keeps its position in memory (its parent saves it): at the span's start."""
        watermark = Watermark(table_name=self.name, backup_strategy=self.options.backup_strategy)
        self._check_columns(info, watermark)
        watermark.move_to(span.start.timestamp, span.start.key)
        return watermark

    def split(self, parts: int) -> Watermark:
        """A first backfill (no file stored yet) cut into up to `parts` ranges of about equal rows,
        saved in the watermark under the table's lock; a watermark with files or ranges already is
        returned as it is. Fewer rows than ranges (or one range): no ranges, one cursor. The rows
        are counted on the index (EXPLAIN's estimate may be off by half), then walked once."""
        try:
            info = self._connect_and_describe()
            if info.keyless:
                raise ConfigError(f"{self.name} has no unique key, so its first backfill cannot be split "
                                  "into ranges (it is read by whole cursor values): use --parallel 1 "
                                  "([backup] parallel_ranges = 1)")
            with self._lock("progressive split"):
                watermark = self._retrying(lambda: self.watermarks.get_or_new(self.name))
                if watermark.ranges_open or watermark.has_files:
                    return watermark
                self._check_columns(info, watermark)
                self._capture_definition(info)
                plan = self._plan(info, watermark, exact=True)  # ranges of equal rows: counted
                ends = range_ends(self._query, info, plan.start, plan.bound, plan.estimated_rows, parts)
                if ends:
                    watermark.ranges = cursor_ranges(
                        plan.start, ends, lambda at: data_key(info, at, self._sortable(info, at)))
                    self._retrying(lambda: self.watermarks.save(watermark))
                return watermark
        finally:
            close_quietly(self.conn)
            close_quietly(self.side_conn)

    def _start(self, info: TableInfo, watermark: Watermark) -> Position:
        """Where the watermark says to start, its key typed as the key columns are."""
        key = watermark.position_key
        if key is None or watermark.last_mysql_data_timestamp is None:
            return Position(watermark.last_mysql_data_timestamp, key)
        try:
            return Position(watermark.last_mysql_data_timestamp, typed_key(info, key))
        except ValueError as exc:
            raise TableError(f"the watermark of {self.name} has key {list(key)!r}, which does not fit "
                             f"the key ({', '.join(info.key_names) or 'none'}): {exc}; fix it with "
                             "`s3rs watermark set`") from None

    def _connect_and_describe(self) -> TableInfo:
        self._retrying(self._reconnect, self._reconnect, "MySQL")
        return self._query("reading the table definition",
                           lambda conn: describe_table(conn, self.database, self.table, self.spec))

    def _capture_definition(self, info: TableInfo) -> None:
        """SHOW CREATE TABLE into the store when it changed, for `s3rs restore`."""
        sql = self._query("reading SHOW CREATE TABLE", lambda conn: show_create_table(conn, info))
        self._retrying(lambda: save_definition(self.store, self.name, sql))

    def _plan(self, info: TableInfo, watermark: Watermark, exact: bool = False) -> Plan:
        return make_plan(self._query, info, self._start(info, watermark), self.spec.cursor_timezone,
                         self.settings.backup.safety_lag_seconds, exact)

    def dry_run(self, exact: bool = False) -> tuple[TableInfo, Watermark, Plan]:
        """Everything a run would decide, without the lock and without writing anything."""
        try:
            info = self._connect_and_describe()
            watermark = self.watermarks.get_or_new(self.name)
            return info, watermark, self._plan(info, watermark, exact)
        finally:
            close_quietly(self.conn)

    def _extract(self, run: _Run) -> RunFinished:
        info, watermark = run.info, run.watermark
        plan = self._plan(info, watermark)
        for message in plan_notices(plan, info):
            self._notice(message)
        self.null_cursor_rows, self.future_cursor_rows = plan.null_cursor_rows, plan.future_cursor_rows
        position, bound, estimate = plan.start, plan.bound, plan.estimated_rows
        batch_size, limit = self.settings.backup.batch_size, self.options.limit
        plans = plan_columns(info.columns)
        schema = arrow_schema(plans)
        self.sink(
            RunStarted(
                table=self.name,
                run_id=run.lock.run_id,
                start_timestamp=position.timestamp,
                start_id=shown_key(position.key),
                upper_bound=bound,
                estimated_rows=min(estimate, limit) if limit else estimate,
                batch_size=batch_size,
                store_url=self.store.url,
                estimate_exact=plan.exact and not limit,
                span_start=plan.span_start,
            )
        )
        ticker = Ticker(PROGRESS_SECONDS)
        budget = MemoryBudget(batch_size)
        guard = MemoryGuard(
            budget,
            self.settings.backup.memory_limit_mb,
            self.settings.backup.gc_threshold,
            self.settings.backup.memory_check_interval,
            self._notice,
        )
        reader = ChunkReader(
            self._query,
            self._chunk_source(info, plans, bound, budget, self.options.span),
            position,
            budget,
            limit,
            f"reading {self.name}",
            whole_pages_mb=self.settings.backup.memory_limit_mb / 2 if info.keyless else None,
        )
        current: ParquetFile | None = None
        try:
            for chunk in reader.chunks():
                if current is None:
                    current, file_start = self._new_file(schema, budget, run.choices), position
                self._add_chunk(run, current, chunk)
                position = chunk.last
                guard.after_chunk()
                if ticker.due():
                    self._page_read(run, current, position, "extracting")
                if self._file_is_done(current, chunk):
                    self._store_file(run, current, file_start, position)
                    current = None
                    self._pause_point(run)
                    if self.control.stop_requested or self._past_deadline():
                        break
            if current is not None:
                self._store_file(run, current, file_start, position)
                current = None
        finally:
            reader.close()
            if current is not None:
                current.abandon()
        caught_up = reader.caught_up
        if self._past_deadline() and not caught_up:
            raise RunTimedOut(
                f"{self.name}: the time allowed ran out after {run.files} files; the watermark "
                f"is at {position.label()}"
            )
        if self.control.stop_requested and not caught_up:
            raise StoppedByOperator(
                f"{self.name}: stopped by {self.control.reason} after {run.files} files; "
                f"the watermark is at {position.label()}; rerun to resume"
            )
        self._mark(run, "success")
        return self._finished(run, "success", run.started, caught_up=caught_up)

    def _chunk_source(self, info: TableInfo, plans, bound: str, budget: MemoryBudget,
                      span: Span | None) -> ChunkSource:
        """The configured reader; both share the keyset SQL and the Arrow conversion."""
        until = span.end if span else None
        if self.settings.backup.reader == "connectorx":
            url = connection_url(connectorx_endpoint(self.settings), info.database)
            return cx_chunks(url, info, plans, bound, budget, until)
        return pymysql_chunks(info, plans, bound, budget, until)

    def _new_file(self, schema, budget: MemoryBudget, choices: WriterChoices) -> ParquetFile:
        return ParquetFile(self.store.scratch_dir() / f"{uuid.uuid4().hex}.parquet", schema, budget, choices)

    def _add_chunk(self, run: _Run, file: ParquetFile, chunk: Chunk) -> None:
        clock = time.monotonic()
        file.add(chunk.batch)
        run.step_seconds["encode"] += time.monotonic() - clock
        run.step_seconds["read"] += chunk.read_seconds
        _add_counts(run.file_invalid_dates, chunk.invalid_dates)

    def _file_is_done(self, file: ParquetFile, chunk: Chunk) -> bool:
        """Close once big enough (file_size_mb = 0: at each page's end), or now when the run is
        asked to stop or pause; never where the run could not resume (inside a keyless page)."""
        if not chunk.resumable:
            return False
        if self.control.stop_requested or self.control.paused or self._past_deadline():
            return True
        target = self.settings.backup.file_size_mb * 1024**2
        return chunk.ends_page if target == 0 else file.size >= target

    def _past_deadline(self) -> bool:
        return self.options.deadline is not None and time.monotonic() > self.options.deadline

    def _pause_point(self, run: _Run) -> None:
        """Between files is the only place a run pauses: the watermark is exact here."""
        if self.control.paused:
            self.sink(StateChanged(table=self.name, state="paused"))
            run.paused += self.control.wait_while_paused()
            self.sink(
                StateChanged(table=self.name, state="stopping" if self.control.stop_requested else "running")
            )

    def _store_file(self, run: _Run, file: ParquetFile, start: Position, end: Position) -> None:
        """Store the file durably, then (and only then) advance the watermark to its last row."""
        key = data_key(run.info, start, self._sortable(run.info, start))
        self._page_read(run, file, end, "storing")
        clock = time.monotonic()
        file.close()
        run.step_seconds["encode"] += time.monotonic() - clock
        clock = time.monotonic()
        size = self._retrying(lambda: self.store.put_file(key, file.path))
        failpoint("after-upload")
        store_seconds, clock = time.monotonic() - clock, time.monotonic()
        if run.lock.lost.is_set():
            raise S3rsError(f"{self.name}: {run.lock.lost.reason}; stopped before saving the watermark")
        watermark = run.watermark
        watermark.move_to(end.timestamp, end.key)
        watermark.last_mysql_extraction_time = utc_now()
        watermark.mysql_rows_extracted += file.rows
        watermark.s3_file_count += 1
        watermark.last_s3_file = key
        if self.options.span is not None:
            self.options.span.commit(key, file.rows, end)  # the parent saves, then says so
        else:
            self._retrying(lambda: self.watermarks.save(watermark))
            failpoint("after-watermark")
        seconds = {**run.step_seconds, "store": store_seconds, "commit": time.monotonic() - clock}
        _add_counts(self.invalid_dates, run.file_invalid_dates)
        run.file_invalid_dates, run.step_seconds = {}, {"read": 0.0, "encode": 0.0}
        run.rows += file.rows
        run.files += 1
        run.bytes += size
        self.sink(
            FileStored(
                table=self.name,
                key=key,
                rows=file.rows,
                bytes=size,
                run_rows=run.rows,
                run_files=run.files,
                run_bytes=run.bytes,
                rows_per_minute=run.per_minute(),
                rss_mb=rss_mb(),
                watermark_timestamp=end.timestamp,
                watermark_id=shown_key(end.key),
                elapsed_seconds=run.elapsed(),
                seconds=seconds,
                paused_seconds=run.paused,
            )
        )

    def _sortable(self, info: TableInfo, start: Position) -> str:
        """A composite or text start key spelled for the file name (strings need MySQL's
        collation); "" for a one-column integer key, which file names spell as digits."""
        if not start.key or not spelled_by_sort_order(info, start):
            return ""
        key = start.key
        if not has_string_key(info):
            return sortable_key(None, info, key)
        # The reader may be streaming a page on self.conn: a connection of its own.
        return self._query("naming the file", lambda conn: sortable_key(conn, info, key), "side_conn")

    def _page_read(self, run: _Run, file: ParquetFile, position: Position, phase: PagePhase) -> None:
        """Progress inside the file being written: the dashboard ticks with it, the watermark does not."""
        self.sink(
            PageRead(
                table=self.name,
                phase=phase,
                file_rows=file.rows,
                file_bytes=file.size,
                run_rows=run.rows + file.rows,
                rows_per_minute=run.per_minute(run.rows + file.rows),
                rss_mb=rss_mb(),
                peak_rss_mb=peak_rss_mb(),
                elapsed_seconds=run.elapsed(),
                paused_seconds=run.paused,
                position_timestamp=position.timestamp,
                position_id=shown_key(position.key),
            )
        )

    def _mark(self, run: _Run | None, status: str) -> None:
        """Record how the run ended; best effort, since position and counters are already safe."""
        if run is None or self.options.span is not None:
            return
        run.watermark.mysql_status = status
        with suppress(Exception):  # broad: the store may be what failed; the position is intact
            self.watermarks.save(run.watermark)

    def _finished(self, run: _Run | None, status: RunOutcome, started: float, *, caught_up: bool = False,
                  error: str = "") -> RunFinished:
        elapsed = time.monotonic() - started
        rows, files, size, paused = (run.rows, run.files, run.bytes, run.paused) if run else (0, 0, 0, 0.0)
        watermark = run.watermark if run else None
        working = elapsed - paused
        return RunFinished(
            table=self.name,
            status=status,
            rows=rows,
            files=files,
            bytes=size,
            elapsed_seconds=elapsed,
            rows_per_minute=rows * 60 / working if working > 0 else 0.0,
            peak_rss_mb=peak_rss_mb(),
            watermark_timestamp=watermark.last_mysql_data_timestamp if watermark else None,
            watermark_id=watermark.shown_id if watermark else None,
            invalid_dates=dict(self.invalid_dates),
            null_cursor_rows=self.null_cursor_rows,
            future_cursor_rows=self.future_cursor_rows,
            caught_up=caught_up,
            error=error,
            paused_seconds=paused,
        )
