"""Progressive backups: a huge table taken in bounded chunks, each a sync of at most `chunk_size`
rows, until it is caught up. A chunk that fails (or runs out of time: it stops at a file boundary
with its watermark saved) is retried; three failures in a row end the run. Rerunning resumes.
Only failures a retry can cure (exit code 1) are retried: bad input, a lock or a stop end it at once.
With `parallel` > 1 a first backfill is split into ranges, each chunk reading them side by side
(jobs/ranges.py) until all are done; then the chunks go on as one cursor.
"""

import time
from dataclasses import dataclass

from s3rs_tui.engine.plan import Plan
from s3rs_tui.engine.sync import SyncOptions, TableSync
from s3rs_tui.jobs.ranges import RangesChunk
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import ConfigError, S3rsError, StoppedByOperator
from s3rs_tui.runtime.events import (
    ChunkProgress,
    ChunkStatus,
    EventSink,
    JobFinished,
    JobOutcome,
    JobStarted,
    Level,
    Notice,
    RunFinished,
    Step,
)
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import Watermark, WatermarkStore
from s3rs_tui.warehouse.loader import TableLoader

MAX_FAILURES_IN_A_ROW = 3


@dataclass
class ProgressiveOptions:
    chunk_size: int = 250_000
    max_chunks: int | None = None
    timeout_minutes: float | None = None
    pause_seconds: float = 0
    start_timestamp: str | None = None
    restart: bool = False
    exact_estimate: bool = False
    retry_delay_seconds: float = 5  # times the failures in a row, at most a minute
    mode: str = "backup-only"       # or "full": also load into the warehouse
    load_at_end: bool = False       # full: load once at the end instead of after each chunk
    parallel: int = 1               # ranges a first backfill is split into (each read by a process)


@dataclass
class ProgressiveResult:
    chunks: int
    rows: int
    caught_up: bool
    elapsed_seconds: float


def set_start(settings: Settings, table: str, timestamp: str, restart: bool) -> None:
    """--start-timestamp: only for a table with no progress, unless --restart (which keeps a backup
    of the old watermark), so a rerun of the same command can never throw progress away."""
    store = open_store(settings)
    watermarks = WatermarkStore(store)
    current = watermarks.get(table)
    if current is not None and (current.has_position or current.has_files) and not restart:
        raise ConfigError(f"{table} already has progress (watermark at {current.last_mysql_data_timestamp} / "
                          f"{current.shown_id}, {current.s3_file_count} files stored"
                          f"{', in ranges' if current.ranges_open else ''}): --start-timestamp is refused; "
                          "rerun without it to "
                          "resume, or add --restart to start over from that timestamp")
    with TableLock(store, table, purpose="progressive start",
                   stale_seconds=settings.backup.lock_stale_seconds):
        if current is not None:
            watermarks.backup(table)
        watermarks.save(Watermark(table_name=table, last_mysql_data_timestamp=timestamp))


class ProgressiveRun:
    """Runs the chunks (and, in mode full, the loads) for one table."""

    def __init__(self, settings: Settings, table: str, sink: EventSink, control: RunControl,
                 options: ProgressiveOptions):
        database, name, _ = settings.table(table)
        self.settings, self.table, self.sink, self.control = settings, f"{database}.{name}", sink, control
        self.options = options
        self.phase: Step = "extract"
        self.rows = 0
        self.plan: Plan | None = None  # made by _run before the first chunk
        self.ranges_open = False       # the chunks read the ranges of a split first backfill

    def run(self) -> ProgressiveResult:
        """The chunks, framed by JobStarted / JobFinished (its outcome, all chunks' rows)."""
        started = time.monotonic()
        steps = ("extract", "load") if self.options.mode == "full" else ("extract",)
        self.sink(JobStarted(table=self.table, steps=steps, progressive=True))
        outcome: JobOutcome = "failed"
        error = ""
        try:
            result = self._run(started)
            outcome = "success"
            return result
        except StoppedByOperator as exc:
            outcome, error = "interrupted", str(exc)
            raise
        except S3rsError as exc:
            error = str(exc)
            raise
        finally:
            self.sink(JobFinished(table=self.table, outcome=outcome, rows=self.rows,
                                  failed_phase=self.phase if outcome == "failed" else "",
                                  seconds=time.monotonic() - started, error=error))

    def _run(self, started: float) -> ProgressiveResult:
        options = self.options
        if options.start_timestamp:
            set_start(self.settings, self.table, options.start_timestamp, options.restart)
        sync = TableSync(self.settings, self.table, self.sink, self.control)
        _, watermark, plan = sync.dry_run(options.exact_estimate)
        self.plan, estimate = plan, plan.estimated_rows
        self._split(watermark)
        chunk, rows, failures, caught_up = 0, 0, 0, False
        while not caught_up and (options.max_chunks is None or chunk < options.max_chunks):
            if self.control.stop_requested:  # asked between two chunks, or in one that read nothing
                raise StoppedByOperator(f"{self.table}: stopped by {self.control.reason or 'the operator'} "
                                        f"after {chunk} chunks; the watermark is saved: rerun to resume")
            chunk += 1
            self._progress(chunk, "started", rows, estimate, started)
            try:
                finished = self._chunk()
            except S3rsError as exc:
                if exc.exit_code != 1:
                    raise  # bad input or config, a lock, a stop: retrying cannot change the answer
                failures += 1
                self._progress(chunk, "failed", rows, estimate, started, str(exc))
                if failures >= MAX_FAILURES_IN_A_ROW:
                    raise S3rsError(
                        f"{self.table}: {failures} chunks failed in a row, last: {exc}; the "
                        "watermark is at the last stored file: rerun to resume"
                    ) from exc
                chunk -= 1  # the same chunk again, from its saved watermark
                delay = min(60, options.retry_delay_seconds * failures)
                self.sink(
                    Notice(
                        table=self.table,
                        message=f"chunk failed ({failures}/{MAX_FAILURES_IN_A_ROW}), "
                        f"retrying in {delay:.0f}s: {exc}",
                    )
                )
                if self.control.sleep(delay):
                    raise StoppedByOperator(f"{self.table}: stopped while waiting to retry a chunk") from exc
                continue
            failures = 0
            rows += finished.rows
            self.rows = rows
            if options.mode == "full" and not options.load_at_end:
                self._load()
            caught_up = finished.caught_up
            self._progress(chunk, "caught up" if caught_up else "done", rows, estimate, started)
            if not caught_up and options.pause_seconds and self.control.sleep(options.pause_seconds):
                break
        if caught_up:
            self.sink(
                Notice(
                    table=self.table,
                    message=f"caught up after {chunk} chunks and {rows:,} rows",
                    level="info",
                )
            )
        if options.mode == "full" and options.load_at_end:
            self._load()
        return ProgressiveResult(chunk, rows, caught_up, time.monotonic() - started)

    def _split(self, watermark: Watermark) -> None:
        """--parallel N on a first backfill: split it (once; a rerun goes on with the ranges saved)."""
        if watermark.ranges is None and self.options.parallel > 1 and not watermark.has_files:
            watermark = TableSync(self.settings, self.table, self.sink, self.control).split(
                self.options.parallel)
            if watermark.ranges is None:
                self._notice("too few rows to split: one cursor", "info")
        elif watermark.ranges is None and self.options.parallel > 1:
            self._notice("--parallel splits only a first backfill (this table has stored files): one cursor",
                         "info")
        if watermark.ranges is None:
            return
        self.ranges_open = True
        done = sum(r.done for r in watermark.ranges)
        self._notice(f"first backfill in {len(watermark.ranges)} ranges ({done} done), each read by a "
                     "process of its own: " + "; ".join(
                         f"{n + 1}: {r.position[0] or 'the beginning'} to {r.end_timestamp or 'the bound'}"
                         for n, r in enumerate(watermark.ranges)), "info")

    def _notice(self, message: str, level: Level = "warning") -> None:
        self.sink(Notice(table=self.table, message=message, level=level))

    def _load(self) -> None:
        self.phase = "load"
        TableLoader(self.settings, self.table, self.sink, self.control).run()
        self.phase = "extract"

    def _chunk(self) -> RunFinished:
        timeout = self.options.timeout_minutes
        deadline = time.monotonic() + timeout * 60 if timeout else None
        if self.ranges_open:
            ranges = RangesChunk(self.settings, self.table, self.sink, self.control, self.options.chunk_size,
                                 deadline)
            try:
                return ranges.run()
            finally:
                self.ranges_open = not ranges.collapsed
        options = SyncOptions(limit=self.options.chunk_size, backup_strategy="progressive", deadline=deadline)
        return TableSync(self.settings, self.table, self.sink, self.control, options).run()

    def _progress(
        self, chunk: int, status: ChunkStatus, rows: int, estimate: int, started: float, error: str = ""
    ) -> None:
        elapsed = time.monotonic() - started
        assert self.plan is not None  # _run plans before the first chunk
        self.sink(
            ChunkProgress(
                table=self.table,
                chunk=chunk,
                max_chunks=self.options.max_chunks,
                status=status,
                rows_done=rows,
                estimated_rows=estimate,
                rows_per_minute=rows * 60 / elapsed if elapsed > 0 else 0.0,
                error=error,
                estimate_exact=self.plan.exact,
                span_start=self.plan.span_start,
            )
        )
