"""Extraction: keyset pages through an unbuffered cursor into Arrow, read ahead in a thread.

`PageReader` reads the next page while the engine encodes and stores the previous ones; a bounded
queue keeps memory flat (at most `depth` pages wait). Pages arrive in cursor order, each with its
last row's position, which becomes the watermark once the file holding it is stored.
"""

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pyarrow as pa
import pymysql

from s3rs_tui.engine import rowparse
from s3rs_tui.engine.keyset import Position, page_query
from s3rs_tui.engine.mysql import unbuffered_cursor
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.engine.typemap import ColumnPlan, rows_to_batch

FETCH_ROWS = 10_000  # rows held as Python tuples at once; Arrow holds the rest of the page
_DONE = object()


@dataclass
class Page:
    batches: list[pa.RecordBatch]
    rows: int
    last: Position | None  # the page's last row, the watermark once its file is stored
    invalid_dates: dict[str, int] = field(default_factory=dict)
    read_seconds: float = 0.0


def read_page(conn: pymysql.Connection, info: TableInfo, plans: list[ColumnPlan], start: Position,
              bound: str, limit: int) -> Page:
    """Stream up to `limit` rows after `start` (driver errors propagate for the caller to classify)."""
    sql, params = page_query(info, plans, start, bound, limit)
    names = [plan.column.name for plan in plans]
    cursor_at, key_at = names.index(info.cursor.name), names.index(info.key.name)
    page = Page(batches=[], rows=0, last=None)
    started = time.monotonic()
    with unbuffered_cursor(conn) as cur:
        cur.execute(sql, params)
        rowparse.install(conn)
        while rows := cur.fetchmany(FETCH_ROWS):
            page.batches.append(rows_to_batch(plans, rows, page.invalid_dates))
            page.rows += len(rows)
            last = rows[-1]
            page.last = Position(last[cursor_at].decode(), _key_value(info, last[key_at].decode()))
    page.read_seconds = time.monotonic() - started
    return page


def _key_value(info: TableInfo, raw: str) -> object:
    """Keys travel as text; integer keys go back to int so comparisons keep using the index."""
    return int(raw) if info.key_is_integer else raw


class PageReader:
    """Reads pages after `start` in a background thread until the bound, the limit, or `close()`.

    `fetch(start, want)` reads one page (with the caller's retries and reconnects). Iterate
    `pages()` in the consuming thread; an error in the reader is raised there.
    """

    def __init__(self, fetch: Callable[[Position, int], Page], start: Position, batch_size: int,
                 limit: int | None, depth: int = 2):
        self._fetch, self._start = fetch, start
        self._batch_size, self._limit = batch_size, limit
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self.caught_up = False
        self._thread = threading.Thread(target=self._run, name="s3rs-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        position, taken = self._start, 0
        try:
            while not self._closed.is_set() and (self._limit is None or taken < self._limit):
                want = self._batch_size if self._limit is None else min(self._batch_size, self._limit - taken)
                page = self._fetch(position, want)
                if page.rows:
                    self._put(page)
                    position, taken = page.last, taken + page.rows
                if page.rows < want:
                    self.caught_up = True
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(_DONE)

    def _put(self, item) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def pages(self) -> Iterator[Page]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead; waits for the page being read (bounded by batch_size)."""
        self._closed.set()
        self._thread.join()
