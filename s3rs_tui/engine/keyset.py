"""Keyset pagination on (cursor, key): the SQL that can neither miss nor repeat a row.

A page is `(c > ts OR (c = ts AND k > id)) AND c < bound ORDER BY c, k LIMIT n`. Spelled this way
MariaDB and MySQL read it as a range on the (c, k) index in index order (no filesort); the
row-constructor form `(c, k) > (ts, id)` scans and sorts the whole table on every page.

`bound` is fixed once per run: the database's current time in the cursor's time zone, minus the
safety lag, truncated to the cursor's precision and excluded. So a run always ends on a table
under constant writes, and it never stops inside a second (or microsecond) still being written.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pymysql

from s3rs_tui.engine.table import TableInfo
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.keys import Key
from s3rs_tui.runtime.parsing import quote_identifier

_SERVER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Position:
    """Where a run starts: after the row (timestamp, key), or at `timestamp` inclusive when key is
    None (a watermark set by hand to a time), or from the beginning when timestamp is None."""

    timestamp: str | None = None
    key: Key = None

    def label(self) -> str:
        return "the beginning" if self.timestamp is None else f"({self.timestamp}, {self.key})"


def _range_sql(info: TableInfo, start: Position) -> tuple[str, list]:
    c, k = quote_identifier(info.cursor.name), quote_identifier(info.key.name)
    if start.timestamp is None:
        return f"{c} < %s", []
    if start.key is None:
        return f"{c} >= %s AND {c} < %s", [start.timestamp]
    return f"({c} > %s OR ({c} = %s AND {k} > %s)) AND {c} < %s", [start.timestamp, start.timestamp,
                                                                   start.key]


def page_query(info: TableInfo, columns: list[str], start: Position, bound: str,
               limit: int) -> tuple[str, list]:
    """SELECT `columns` (SQL expressions) for one page of at most `limit` rows after `start`."""
    where, params = _range_sql(info, start)
    # Qualified, so ORDER BY names the table's columns: a bare name would sort by a SELECT alias
    # of the same name (the fast reader's `c + 0 AS c`), a filesort of the rest of the table.
    c, k = (f"{info.quoted}.{quote_identifier(column.name)}" for column in (info.cursor, info.key))
    sql = f"SELECT {', '.join(columns)} FROM {info.quoted} WHERE {where} ORDER BY {c}, {k} LIMIT %s"
    return sql, [*params, bound, int(limit)]


def count_range(conn: pymysql.Connection, info: TableInfo, start: Position, bound: str,
                estimate: bool = True) -> int:
    """Rows between start and bound: EXPLAIN's estimate (instant) or an exact COUNT on the index."""
    where, params = _range_sql(info, start)
    sql = f"SELECT COUNT(*) FROM {info.quoted} WHERE {where}"
    with conn.cursor() as cur:
        if not estimate:
            cur.execute(sql, [*params, bound])
            return int(cur.fetchone()[0])
        cur.execute("EXPLAIN " + sql, [*params, bound])
        names = [d[0] for d in cur.description]
        return sum(int(row[names.index("rows")] or 0) for row in cur.fetchall())


def count_where(conn: pymysql.Connection, info: TableInfo, condition: str, params: list) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {info.quoted} WHERE {condition}", params)
        return int(cur.fetchone()[0])


def null_cursor_rows(conn: pymysql.Connection, info: TableInfo) -> int:
    """Rows no cursor can ever reach (only counted when the column allows NULL)."""
    if not info.cursor.is_nullable:
        return 0
    return count_where(conn, info, f"{quote_identifier(info.cursor.name)} IS NULL", [])


def future_cursor_rows(conn: pymysql.Connection, info: TableInfo, now: str) -> int:
    """Rows stamped later than the database's own clock: usually a writer with a wrong clock."""
    return count_where(conn, info, f"{quote_identifier(info.cursor.name)} > %s", [now])


def database_now(conn: pymysql.Connection, info: TableInfo, cursor_timezone: str) -> str:
    """The current time as the cursor column sees it.

    TIMESTAMP columns are read in the session zone (UTC); a DATETIME or DATE holds wall-clock
    values of whatever zone its writers used: `cursor_timezone`, else the server's own zone.
    """
    if info.cursor.data_type == "timestamp":
        expression, params = "UTC_TIMESTAMP(6)", []
    elif cursor_timezone:
        expression, params = "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', %s)", [cursor_timezone]
    else:
        expression, params = "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)", []
    with conn.cursor() as cur:
        cur.execute(f"SELECT {expression}", params)
        value = cur.fetchone()[0]
    if value is None:
        raise ConfigError(f"time zone {cursor_timezone!r} is unknown to the server: use an offset like "
                          "+08:00, or load its time zone tables (mariadb-tzinfo-to-sql)")
    return value


def upper_bound(now: str, info: TableInfo, lag_seconds: int) -> str:
    """`now - lag`, truncated to the cursor's precision; rows at or after it wait for the next run."""
    moment = datetime.strptime(now, _SERVER_TIME_FORMAT) - timedelta(seconds=lag_seconds)
    if info.cursor.data_type == "date":
        return moment.strftime("%Y-%m-%d")
    precision = info.cursor_precision
    whole = moment.strftime("%Y-%m-%d %H:%M:%S")
    return whole if precision == 0 else f"{whole}.{moment.strftime('%f')[:precision]}"
