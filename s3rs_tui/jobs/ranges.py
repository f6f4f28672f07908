"""A parallel first backfill (`progressive --parallel N`): each open range of the table read by a
process of its own, this process the only writer of the watermark.

One chunk starts a spawned process per open range (TableSync in Span mode: its own connection,
keyset order inside its range, at most chunk_size / open ranges rows). A worker stores a file,
then asks this process to commit it and waits for the answer, so a range never has more than one
stored file its position does not cover, as with one cursor. This process checks the lock it holds,
saves the watermark (the range's position, the totals), then answers. A worker dies with this
process (PR_SET_PDEATHSIG, and its pipe closing), so a run killed with -9 leaves nobody writing
behind it; stop signals come to this process, which passes stop and pause on to the workers.
When every range is done the ranges collapse into one cursor, at the end of the last range.
"""

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.memory import peak_rss_mb
from s3rs_tui.engine.sync import Span, SyncOptions, TableSync
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import STOP_SIGNALS, RunControl
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator, TransientError
from s3rs_tui.runtime.events import (
    EventSink,
    FileStored,
    Notice,
    PageRead,
    RunFinished,
    RunOutcome,
    RunStarted,
)
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import shown_key
from s3rs_tui.runtime.retry import reported_retries
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import CursorRange, Watermark, WatermarkStore, utc_now

MAX_RANGES = 64
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


# -- the worker: one range, in a process of its own ---------------------------------------------------


class _Link:
    """The worker's end of its pipe: events and commits go up; answers, stop and pause come down.
    The pipe closing means the parent is gone: the worker ends at once, storing nothing more."""

    def __init__(self, pipe: Connection, control: RunControl):
        self.pipe, self.control = pipe, control
        self._sending = threading.Lock()
        self._answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._listen, name="s3rs-range-link", daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                kind, *rest = self.pipe.recv()
            except (EOFError, OSError):
                os._exit(1)
            if kind == "committed":
                self._answers.put(True)
            elif kind == "stop":
                self.control.request_stop(rest[0])
            elif kind == "pause":
                self.control.pause()
            elif kind == "resume":
                self.control.resume()

    def send(self, *message: object) -> None:
        with self._sending:
            self.pipe.send(message)

    def event(self, event: object) -> None:
        self.send("event", event)

    def commit(self, key: str, rows: int, end: Position) -> None:
        self.send("commit", key, rows, end)
        self._answers.get()


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies (Linux); elsewhere the pipe closing ends the worker."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def run_range(settings: Settings, table: str, start: Position, end: Position | None, limit: int | None,
              deadline: float | None, pipe: Connection, parent: int) -> None:
    """A worker's whole life: read its range from its position, commit each file through the parent."""
    _die_with_parent(parent)
    for sig in STOP_SIGNALS:  # a terminal's Ctrl+C reaches the whole group: the parent decides
        signal.signal(sig, signal.SIG_IGN)
    control = RunControl()
    link = _Link(pipe, control)
    options = SyncOptions(limit=limit, backup_strategy="progressive", deadline=deadline,
                          span=Span(start, end, link.commit))
    try:
        link.send("finished", TableSync(settings, table, link.event, control, options).run())
    except S3rsError as exc:
        link.send("failed", exc)
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which ends the chunk with it
        link.send("failed", S3rsError(f"{table}: a range reader failed: {type(exc).__name__}: {exc}"))


# -- the parent: one chunk over every open range -------------------------------------------------------


@dataclass
class _Worker:
    index: int  # of its range in the watermark
    process: BaseProcess
    pipe: Connection
    result: RunFinished | None = None
    error: BaseException | None = None
    ended: bool = False


def _position(cursor_range: CursorRange) -> Position:
    timestamp, key = cursor_range.position
    return Position(timestamp, key)


class RangesChunk:
    """One chunk of a parallel backfill: each open range advanced by at most limit / open ranges
    rows, in processes of their own; `run()` returns the chunk's RunFinished (never caught up: once
    every range is done, `collapsed` is true and the table goes on as one cursor)."""

    def __init__(self, settings: Settings, table: str, sink: EventSink, control: RunControl,
                 limit: int | None, deadline: float | None = None):
        self.settings, self.table, self.sink, self.control = settings, table, sink, control
        self.limit, self.deadline = limit, deadline
        self.store = open_store(settings)
        self.watermarks = WatermarkStore(self.store)
        self.collapsed = False
        self.rows = self.files = self.bytes = 0
        self._started = 0.0
        self._announced = False
        self._relayed = (False, False)  # (stop, pause) passed on so far

    def _retrying(self, action):
        return reported_retries(action, sink=self.sink, table=self.table, control=self.control,
                                what="the store", attempts=self.settings.backup.retry_attempts)

    def run(self) -> RunFinished:
        self._started = time.monotonic()
        with TableLock(self.store, self.table, purpose="progressive --parallel",
                       stale_seconds=self.settings.backup.lock_stale_seconds) as lock:
            watermark = self._retrying(lambda: self.watermarks.get_or_new(self.table))
            if watermark.ranges is None:
                self.collapsed = True
                return self._finished(watermark, "success")
            open_ranges = [i for i, r in enumerate(watermark.ranges) if not r.done]
            share = max(1, self.limit // len(open_ranges)) if self.limit else None
            watermark.mysql_status = "in_progress"
            watermark.backup_strategy = "progressive"
            self._retrying(lambda: self.watermarks.save(watermark))
            workers = [self._spawn(i, watermark.ranges[i], share) for i in open_ranges]
            try:
                self._serve(workers, watermark, lock)
            finally:
                for worker in workers:
                    if worker.process.is_alive():
                        worker.process.kill()
                    worker.process.join()
                    worker.pipe.close()
            return self._end(workers, watermark)

    def _spawn(self, index: int, cursor_range: CursorRange, limit: int | None) -> _Worker:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        end = None if cursor_range.end is None else Position(*cursor_range.end)
        process = context.Process(target=run_range, name=f"s3rs-range-{index + 1}", daemon=True,
                                  args=(self.settings, self.table, _position(cursor_range), end, limit,
                                        self.deadline, theirs, os.getpid()))
        process.start()
        theirs.close()
        return _Worker(index, process, ours)

    def _serve(self, workers: list[_Worker], watermark: Watermark, lock: TableLock) -> None:
        """Answer the workers until each has ended."""
        while not all(worker.ended for worker in workers):
            self._relay(workers)
            waiting: dict[object, _Worker] = {}
            for worker in workers:
                if not worker.ended:
                    waiting[worker.pipe] = waiting[worker.process.sentinel] = worker
            for ready in wait(list(waiting), timeout=0.2):  # type: ignore[arg-type]
                worker = waiting[ready]
                if worker.ended:
                    continue
                if ready is worker.pipe:
                    try:
                        message = worker.pipe.recv()
                    except (EOFError, OSError):
                        self._gone(worker)
                        continue
                    self._handle(worker, message, watermark, lock)
                else:  # the process ended: what it said last may still be in the pipe
                    while not worker.ended and worker.pipe.poll():
                        try:
                            self._handle(worker, worker.pipe.recv(), watermark, lock)
                        except (EOFError, OSError):
                            break
                    self._gone(worker)

    def _relay(self, workers: list[_Worker]) -> None:
        """Stop and pause, asked of this process, passed on to every worker still running."""
        wanted = (self.control.stop_requested, self.control.paused)
        if wanted == self._relayed:
            return
        if wanted[0] and not self._relayed[0]:
            message: tuple = ("stop", self.control.reason or "stop")
        else:
            message = ("pause",) if wanted[1] else ("resume",)
        self._relayed = wanted
        for worker in workers:
            if not worker.ended:
                with contextlib.suppress(OSError):
                    worker.pipe.send(message)

    def _gone(self, worker: _Worker) -> None:
        worker.ended = True
        if worker.result is None and worker.error is None:
            worker.process.join(5)
            worker.error = TransientError(
                f"{self.table}: the process reading range {worker.index + 1} ended (exit "
                f"{worker.process.exitcode}) before finishing its chunk; the range resumes after its "
                "last committed file")

    def _handle(self, worker: _Worker, message: tuple, watermark: Watermark, lock: TableLock) -> None:
        kind, *rest = message
        if kind == "commit":
            self._commit(worker, watermark, lock, *rest)
        elif kind == "event":
            self._forward(rest[0])
        elif kind == "finished":
            worker.result, worker.ended = rest[0], True
        elif kind == "failed":
            worker.error, worker.ended = rest[0], True

    def _commit(self, worker: _Worker, watermark: Watermark, lock: TableLock, key: str, rows: int,
                end: Position) -> None:
        """A worker's file is stored: the watermark moves past it (its range's position and the
        totals), then the worker hears so and goes on."""
        if lock.lost.is_set():
            raise S3rsError(f"{self.table}: {lock.lost.reason}; stopped before saving the watermark")
        assert watermark.ranges is not None
        watermark.ranges[worker.index].stored(key, rows, end.timestamp, end.key)
        watermark.mysql_rows_extracted += rows
        watermark.s3_file_count += 1
        watermark.last_mysql_extraction_time = utc_now()
        self._retrying(lambda: self.watermarks.save(watermark))
        failpoint("after-watermark")
        self.rows, self.files = self.rows + rows, self.files + 1
        worker.pipe.send(("committed",))

    def _forward(self, event: object) -> None:
        """A worker's events, as one run's: its own start once, files with the chunk's totals;
        page progress and each worker's end stay with the worker."""
        elapsed = time.monotonic() - self._started
        if isinstance(event, (PageRead, RunFinished)):
            return
        if isinstance(event, RunStarted):
            if self._announced:
                return
            self._announced = True
        if isinstance(event, FileStored):
            self.bytes += event.bytes
            event = replace(event, run_rows=self.rows, run_files=self.files, run_bytes=self.bytes,
                            elapsed_seconds=elapsed,
                            rows_per_minute=self.rows * 60 / elapsed if elapsed > 0 else 0.0)
        self.sink(event)  # type: ignore[arg-type]

    def _end(self, workers: list[_Worker], watermark: Watermark) -> RunFinished:
        """Record what the chunk did; collapse the ranges when all are done; raise what failed."""
        assert watermark.ranges is not None
        for worker in workers:
            if worker.result is not None and worker.result.caught_up:
                watermark.ranges[worker.index].done = True
        if all(r.done for r in watermark.ranges):
            watermark.collapse_ranges()
            self.collapsed = True
            at = Position(watermark.last_mysql_data_timestamp, watermark.position_key)
            self.sink(Notice(table=self.table, level="info",
                             message=f"every range is done: one cursor again, at {at.label()}"))
        errors = [worker.error for worker in workers if worker.error is not None]
        stopped = self.control.stop_requested or any(isinstance(e, StoppedByOperator) for e in errors)
        status: RunOutcome = "success" if not errors else "interrupted" if stopped else "failed"
        watermark.mysql_status = status
        self._retrying(lambda: self.watermarks.save(watermark))
        finished = self._finished(watermark, status, str(errors[0]) if errors else "")
        self.sink(finished)
        if errors:
            if stopped:
                raise StoppedByOperator(f"{self.table}: stopped by {self.control.reason or 'the operator'} "
                                        f"after {self.files} files; every range resumes after its last "
                                        "stored file: rerun to resume")
            error = next((e for e in errors if isinstance(e, S3rsError) and e.exit_code != 1), errors[0])
            raise error
        return finished

    def _finished(self, watermark: Watermark, status: RunOutcome, error: str = "") -> RunFinished:
        elapsed = time.monotonic() - self._started
        return RunFinished(table=self.table, status=status, rows=self.rows, files=self.files,
                           bytes=self.bytes, elapsed_seconds=elapsed,
                           rows_per_minute=self.rows * 60 / elapsed if elapsed > 0 else 0.0,
                           peak_rss_mb=peak_rss_mb(), watermark_timestamp=watermark.last_mysql_data_timestamp,
                           watermark_id=shown_key(watermark.position_key), error=error)
