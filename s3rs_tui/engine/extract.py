"""Read one keyset page through an unbuffered cursor into Arrow record batches."""

from dataclasses import dataclass, field

import pyarrow as pa
import pymysql

from s3rs_tui.engine.keyset import Position, page_query
from s3rs_tui.engine.mysql import unbuffered_cursor
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.engine.typemap import ColumnPlan, rows_to_batch

FETCH_ROWS = 10_000  # rows held as Python tuples at once; Arrow holds the rest of the page


@dataclass
class Page:
    batches: list[pa.RecordBatch]
    rows: int
    last: Position | None  # the page's last row, the watermark once its file is stored
    invalid_dates: dict[str, int] = field(default_factory=dict)


def read_page(conn: pymysql.Connection, info: TableInfo, plans: list[ColumnPlan], start: Position,
              bound: str, limit: int) -> Page:
    """Stream up to `limit` rows after `start` (driver errors propagate for the caller to classify)."""
    sql, params = page_query(info, plans, start, bound, limit)
    names = [plan.column.name for plan in plans]
    cursor_at, key_at = names.index(info.cursor.name), names.index(info.key.name)
    page = Page(batches=[], rows=0, last=None)
    with unbuffered_cursor(conn) as cur:
        cur.execute(sql, params)
        while rows := cur.fetchmany(FETCH_ROWS):
            page.batches.append(rows_to_batch(plans, rows, page.invalid_dates))
            page.rows += len(rows)
            last = rows[-1]
            page.last = Position(last[cursor_at], _key_value(info, last[key_at]))
    return page


def _key_value(info: TableInfo, raw: str) -> object:
    """Keys travel as text; integer keys go back to int so comparisons keep using the index."""
    return int(raw) if info.key_is_integer else raw
