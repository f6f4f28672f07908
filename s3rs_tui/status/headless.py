"""The headless consumer of engine events: one plain line per event, for tmux scroll-back and logs.

Lines go to stderr (stdout stays free for --json). A terminal that went away (SSH dropped) must not
kill the run: write errors are swallowed and the run finishes its file and saves its watermark.
"""

import sys
import time
from typing import IO

from s3rs_tui.runtime.events import (
    ChunkProgress,
    Event,
    FilesLoaded,
    FileStored,
    LoadFinished,
    LoadStarted,
    Notice,
    RangeReconciled,
    ReconcileStarted,
    RestoreFinished,
    RestoreStarted,
    Retrying,
    RowsRestored,
    RunFinished,
    RunStarted,
)
from s3rs_tui.status.text import human_bytes

QUIET, NORMAL, DEBUG = 0, 1, 2


class HeadlessLog:
    def __init__(self, verbosity: int = NORMAL, stream: IO[str] | None = None):
        self.verbosity = verbosity
        self.stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        line = self.format(event)
        if line:
            self.write(line)

    def write(self, line: str) -> None:
        try:
            self.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
            self.stream.flush()
        except (OSError, ValueError):  # terminal gone: keep running, the watermark is what matters
            pass

    def format(self, event: Event) -> str | None:
        if isinstance(event, FileStored):
            if self.verbosity < NORMAL:
                return None
            line = (f"{event.table} file {event.run_files}: {event.rows:,} rows, total {event.run_rows:,}, "
                    f"{event.rows_per_minute:,.0f} rows/min, RSS {event.rss_mb:.0f} MB, "
                    f"{human_bytes(event.run_bytes)} in {event.run_files} files, "
                    f"watermark {event.watermark_timestamp} / {event.watermark_id}")
            if self.verbosity >= DEBUG:
                line += f" [{event.key}, {human_bytes(event.bytes)}; " + ", ".join(
                    f"{step} {seconds:.2f}s" for step, seconds in event.seconds.items()) + "]"
            return line
        if isinstance(event, RunStarted):
            if self.verbosity < NORMAL:
                return None
            start = "the beginning" if event.start_timestamp is None else \
                f"{event.start_timestamp} / {event.start_id}"
            return (f"{event.table} start: from {start} to before {event.upper_bound}, "
                    f"~{event.estimated_rows:,} rows, batch {event.batch_size:,}, store {event.store_url}")
        if isinstance(event, Notice):
            if event.level == "info" and self.verbosity < NORMAL:
                return None
            return f"{event.table} {event.level}: {event.message}"
        if isinstance(event, Retrying):
            return (f"{event.table} retry {event.attempt}/{event.max_attempts} "
                    f"in {event.delay_seconds:.1f}s: {event.error}")
        if isinstance(event, RunFinished):
            return self._finished(event)
        if isinstance(event, LoadStarted):
            return None if self.verbosity < NORMAL else (
                f"{event.table} load: {event.files} files to load into {event.warehouse}")
        if isinstance(event, FilesLoaded):
            if self.verbosity < NORMAL:
                return None
            line = (f"{event.table} loaded {len(event.files)} files, {event.rows:,} rows, total "
                    f"{event.run_files} files, {event.run_rows:,} rows, {event.elapsed_seconds:.1f}s")
            return line + (f" [{', '.join(event.files)}]" if self.verbosity >= DEBUG else "")
        if isinstance(event, LoadFinished):
            return (f"{event.table} load {event.status}: {event.files} files, {event.rows:,} rows, "
                    f"{event.elapsed_seconds:.1f}s" + (f": {event.error}" if event.error else ""))
        if isinstance(event, ChunkProgress):
            if event.status == "started" and self.verbosity < NORMAL:
                return None
            of = f" of {event.max_chunks}" if event.max_chunks else ""
            return (f"{event.table} chunk {event.chunk}{of} {event.status}: {event.rows_done:,} rows so far "
                    f"(~{event.estimated_rows:,} to go at the start), {event.rows_per_minute:,.0f} rows/min"
                    + (f": {event.error}" if event.error else ""))
        if isinstance(event, ReconcileStarted):
            return None if self.verbosity < NORMAL else (
                f"{event.table} reconcile: {event.ranges:,} key ranges to compare with {event.against}"
                + (" (going on with the interrupted run)" if event.resumed else ""))
        if isinstance(event, RangeReconciled):
            return None if self.verbosity < NORMAL else (
                f"{event.table} range {event.ranges_done}/{event.ranges_total} ({event.label}): "
                f"{event.rows_checked:,} rows compared, {event.fixed:,} re-read, {event.deleted:,} deleted, "
                f"{event.rows_per_minute:,.0f} rows/min, RSS {event.rss_mb:.0f} MB")
        return self._restore(event)

    def _restore(self, event: Event) -> str | None:
        if isinstance(event, RestoreStarted) and self.verbosity >= NORMAL:
            resumed = (f", going on after {event.resumed_rows:,} rows restored before"
                       if event.resumed_rows else "")
            return (f"{event.table} restore into {event.target} as of {event.as_of or 'the last backup'}: "
                    f"{event.files} files, {human_bytes(event.bytes)}{resumed}")
        if isinstance(event, RowsRestored) and self.verbosity >= NORMAL:
            return (f"{event.table} restored {event.rows:,} rows, {event.restored:,} of {event.total:,}, "
                    f"{event.rows_per_minute:,.0f} rows/min, RSS {event.rss_mb:.0f} MB, "
                    f"last key {event.last_key}")
        if isinstance(event, RestoreFinished):
            return (f"{event.table} restore into {event.target} {event.status}: {event.rows:,} rows, "
                    f"{event.elapsed_seconds:.1f}s, {event.rows_per_minute:,.0f} rows/min, peak RSS "
                    f"{event.peak_rss_mb:.0f} MB" + (f": {event.error}" if event.error else ""))
        return None

    @staticmethod
    def _finished(event: RunFinished) -> str:
        line = (f"{event.table} {event.status}: {event.rows:,} rows in {event.files} files "
                f"({human_bytes(event.bytes)}), {event.elapsed_seconds:.1f}s, "
                f"{event.rows_per_minute:,.0f} rows/min, peak RSS {event.peak_rss_mb:.0f} MB")
        if event.status == "success":
            line += ", caught up" if event.caught_up else ", limit reached"
        if event.invalid_dates:
            line += ", zero/invalid dates stored as NULL: " + ", ".join(
                f"{column} {count}" for column, count in sorted(event.invalid_dates.items()))
        if event.error:
            line += f": {event.error}"
        return line
