"""Extraction: keyset pages streamed in chunks through a bounded queue, read ahead in a thread.

A page is one keyset query (`batch_size` rows); it arrives as chunks of a few thousand rows, each
with the position of its last row. Rows come in (cursor, key) order, so the position after any
chunk is a valid resume point: files can close at any chunk, a retry resumes from the last chunk
taken, and memory holds a few chunks whatever the page size.
"""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import pyarrow as pa
import pymysql

from s3rs_tui.engine import rowparse
from s3rs_tui.engine.keyset import Position, page_query
from s3rs_tui.engine.memory import MemoryBudget
from s3rs_tui.engine.mysql import unbuffered_cursor
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.engine.typemap import ColumnPlan, columns_to_batch
from s3rs_tui.runtime.failpoints import failpoint

_DONE = object()


@dataclass
class Chunk:
    """Rows typed in Arrow by the reader thread. (Typing them in the writer thread instead was
    measured slower: both readers hold the GIL much of the time, so the casts' Python glue waited
    for it, while the writer's Parquet encoding runs without it.)"""

    batch: pa.RecordBatch
    last: Position  # the position after this chunk's last row
    invalid_dates: dict[str, int] = field(default_factory=dict)
    read_seconds: float = 0.0
    ends_page: bool = False  # the last chunk of its page (its query)

    @property
    def rows(self) -> int:
        return self.batch.num_rows


# read(conn, start, limit) -> chunks of at most `limit` rows after `start`, in order.
ChunkSource = Callable[[pymysql.Connection, Position, int], Iterator[Chunk]]


def key_value(info: TableInfo, raw: str) -> object:
    """Keys travel as text; integer keys go back to int so comparisons keep using the index."""
    return int(raw) if info.key_is_integer else raw


def pymysql_chunks(info: TableInfo, plans: list[ColumnPlan], bound: str, budget: MemoryBudget) -> ChunkSource:
    """The default reader: pymysql's unbuffered cursor with the raw row parser."""
    names = [plan.column.name for plan in plans]
    cursor_at, key_at = names.index(info.cursor.name), names.index(info.key.name)
    columns = [plan.select_sql for plan in plans]

    def read(conn: pymysql.Connection, start: Position, limit: int) -> Iterator[Chunk]:
        sql, params = page_query(info, columns, start, bound, limit)
        with unbuffered_cursor(conn) as cur:
            clock = time.monotonic()
            cur.execute(sql, params)
            while fields := rowparse.fetch(conn, budget.chunk_rows, len(plans)):
                invalid: dict[str, int] = {}
                batch = columns_to_batch(plans, [pa.array(values, pa.binary()) for values in fields], invalid)
                # never NULL: the keyset query skips NULL cursors, and keys are NOT NULL
                cursor, key = cast(bytes, fields[cursor_at][-1]), cast(bytes, fields[key_at][-1])
                position = Position(cursor.decode(), key_value(info, key.decode()))
                yield Chunk(batch, position, invalid, time.monotonic() - clock)
                failpoint("mid-page")  # the page's query is open, its next rows not fetched
                clock = time.monotonic()

    return read


class ChunkReader:
    """Reads pages after `start` in a background thread until the bound, the limit, or `close()`.

    `run_query(doing, action)` runs `action(conn)` with retries and reconnects (TableSync._query);
    a retry resumes after the last chunk already queued. Iterate `chunks()` in the consuming
    thread; an error in the reader is raised there.
    """

    def __init__(self, run_query: Callable, source: ChunkSource, start: Position, budget: MemoryBudget,
                 limit: int | None, what: str, depth: int = 2):
        self._run_query, self._source, self._what = run_query, source, what
        self._position, self._budget, self._limit = start, budget, limit
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self.caught_up = False
        self._thread = threading.Thread(target=self._run, name="s3rs-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        taken = 0
        try:
            while not self._closed.is_set() and (self._limit is None or taken < self._limit):
                size = self._budget.batch_size  # read per page: the memory guard may halve it
                want = size if self._limit is None else min(size, self._limit - taken)
                got = self._read_page(want)
                taken += got
                if got < want and not self._closed.is_set():
                    self.caught_up = True
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(_DONE)

    def _read_page(self, want: int) -> int:
        """Queue one page's chunks; each is held back until the next arrives, so the last one
        can be marked as ending the page."""
        got, held = 0, None

        def action(conn: pymysql.Connection) -> None:  # runs again after a retry: resumes
            nonlocal got, held
            for chunk in self._source(conn, self._position, want - got):
                if held is not None and not self._put(held):
                    return
                held, self._position, got = chunk, chunk.last, got + chunk.rows

        self._run_query(self._what, action)
        if held is not None:
            held.ends_page = True
            self._put(held)
        return got

    def _put(self, item) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def chunks(self) -> Iterator[Chunk]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead; waits for the query in flight to be drained (at most a page)."""
        self._closed.set()
        self._thread.join()
