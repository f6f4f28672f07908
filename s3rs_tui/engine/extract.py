"""Extraction: keyset pages streamed in chunks through a bounded queue, read ahead in a thread.

A page is one keyset query (`batch_size` rows); it arrives as chunks of a few thousand rows, each
with the position of its last row. Rows come in (cursor, key) order, so the position after any
chunk is a valid resume point: files can close at any chunk, a retry resumes from the last chunk
taken, and memory holds a few chunks whatever the page size.

A table without a key resumes only where the cursor value changes, so only a page's end is a
resume point: its pages are read whole into memory before any chunk is handed on (a retry
re-reads the page), and a page that would not fit in half of memory_limit_mb is read again
smaller, or refused when a single cursor value holds that many rows.
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
from s3rs_tui.engine.keyset import Position, page_end, page_query
from s3rs_tui.engine.memory import MemoryBudget
from s3rs_tui.engine.mysql import unbuffered_cursor
from s3rs_tui.engine.table import INTEGER_TYPES, TableInfo
from s3rs_tui.engine.typemap import ColumnPlan, MySQLColumn, columns_to_batch
from s3rs_tui.runtime.errors import TableError
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import KeyParts, KeyValue

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
    resumable: bool = True   # `last` is a place to resume from (keyless tables: only a page's end)

    @property
    def rows(self) -> int:
        return self.batch.num_rows


# read(conn, start, limit) -> chunks of at most `limit` rows after `start`, in order.
ChunkSource = Callable[[pymysql.Connection, Position, int], Iterator[Chunk]]


def key_value(column: MySQLColumn, raw: str) -> KeyValue:
    """Keys travel as text; integer keys go back to int so comparisons keep using the index."""
    return int(raw) if column.data_type in INTEGER_TYPES else raw


def typed_key(info: TableInfo, values: tuple) -> KeyParts:
    """`values` (from a watermark or the command line) typed as the key's columns are; a value
    that cannot be raises ValueError."""
    if len(values) != len(info.keys):
        raise ValueError(f"{len(values)} key values for {len(info.keys)} key columns "
                         f"({', '.join(info.key_names) or 'none: the table has no key'})")
    return tuple(_typed(column, value) for column, value in zip(info.keys, values, strict=True))


def _typed(column: MySQLColumn, value: object) -> KeyValue:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not a key value")
    try:
        return key_value(column, str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an integer, and key column {column.name} is "
                         f"{column.column_type}") from None


def page_sql(conn: pymysql.Connection, info: TableInfo, columns: list[str], start: Position, bound: str,
             limit: int, until: Position | None = None) -> tuple[str, list]:
    """The page's query; a keyless table's page first finds the cursor value it ends at. `until`:
    the last row of the range being read (a parallel backfill's range; keyed tables only)."""
    through = page_end(conn, info, start, bound, limit) if info.keyless else None
    return page_query(info, columns, start, bound, limit, through, until)


def pymysql_chunks(info: TableInfo, plans: list[ColumnPlan], bound: str, budget: MemoryBudget,
                   until: Position | None = None) -> ChunkSource:
    """The default reader: pymysql's unbuffered cursor with the raw row parser."""
    names = [plan.column.name for plan in plans]
    cursor_at = names.index(info.cursor.name)
    keys = [(names.index(column.name), column) for column in info.keys]
    columns = [plan.select_sql for plan in plans]

    def read(conn: pymysql.Connection, start: Position, limit: int) -> Iterator[Chunk]:
        sql, params = page_sql(conn, info, columns, start, bound, limit, until)
        with unbuffered_cursor(conn) as cur:
            clock = time.monotonic()
            cur.execute(sql, params)
            while fields := rowparse.fetch(conn, budget.chunk_rows, len(plans)):
                invalid: dict[str, int] = {}
                batch = columns_to_batch(plans, fields, invalid)
                # never NULL: the keyset query skips NULL cursors, and keys are NOT NULL
                cursor = fields[cursor_at][-1].as_py()
                key = tuple(key_value(column, fields[at][-1].as_py().decode()) for at, column in keys)
                position = Position(cursor.decode(), key)
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
                 limit: int | None, what: str, depth: int = 2, whole_pages_mb: float | None = None):
        """`whole_pages_mb`: a table without a key; its pages are read whole, each at most this big."""
        self._run_query, self._source, self._what = run_query, source, what
        self._whole_pages_bytes = None if whole_pages_mb is None else whole_pages_mb * 1024**2
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
                read = self._read_page if self._whole_pages_bytes is None else self._read_whole_page
                got, last_page = read(want)
                taken += got
                if last_page and not self._closed.is_set():
                    self.caught_up = True
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(_DONE)

    def _read_page(self, want: int) -> tuple[int, bool]:
        """Queue one page's chunks; each is held back until the next arrives, so the last one
        can be marked as ending the page. Returns (rows, whether it was the last page)."""
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
        return got, got < want

    def _read_whole_page(self, want: int) -> tuple[int, bool]:
        """Read a keyless table's page into memory, then queue it; only its end is resumable. Too
        big for memory: read again with half the rows that did fit, down to one cursor value."""
        limit = cast(float, self._whole_pages_bytes)

        def action(conn: pymysql.Connection) -> list[Chunk] | int:  # runs again after a retry: restarts
            chunks: list[Chunk] = []
            held = 0
            for chunk in self._source(conn, self._position, want):
                chunks.append(chunk)
                held += chunk.batch.nbytes
                if held > limit:
                    return sum(c.rows for c in chunks)
            return chunks

        while True:
            page = self._run_query(self._what, action)
            if isinstance(page, list):
                break
            if want == 1:
                raise TableError(
                    f"{self._what}: the table has no unique key, so all rows with one cursor value are read "
                    f"at once, and the rows after {self._position.label()} at the next cursor value need "
                    f"more than half of memory_limit_mb ({limit / 1024**2:.0f} MB, over {page:,} rows): "
                    "raise [backup] memory_limit_mb, or give the table a unique key")
            want = max(1, min(want, page) // 2)
        for chunk in page:
            chunk.resumable = chunk is page[-1]
            chunk.ends_page = chunk is page[-1]
            if not self._put(chunk):
                break
        got = sum(chunk.rows for chunk in page)
        if page:
            self._position = page[-1].last
        return got, got < want

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
