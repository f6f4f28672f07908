"""Keyset pagination on (cursor, key...): the SQL that can neither miss nor repeat a row.

A page is `c >= ts AND (c > ts OR (c = ts AND k > id)) AND c < bound ORDER BY c, k LIMIT n`; a
composite key nests the same way, `(k1 > v1 OR (k1 = v1 AND k2 > v2))`. Spelled this way MariaDB
and MySQL read it as a range on the (c, k...) index in index order (no filesort); the
row-constructor form `(c, k) > (ts, id)` scans and sorts the whole table on every page.

A table with no unique key is read by whole cursor values: a page is every row with
`ts < c <= through`, where `through` is the cursor value of the page's last wanted row, so rows
sharing a cursor value are never split across pages and a page's end is a cursor value alone.

`bound` is fixed once per run: the database's current time in the cursor's time zone, minus the
safety lag, truncated to the cursor's precision and excluded. So a run always ends on a table
under constant writes, and it never stops inside a second (or microsecond) still being written.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import pymysql

from s3rs_tui.engine.table import CURSOR_TYPES, INTEGER_TYPES, TableInfo
from s3rs_tui.engine.typemap import MySQLColumn
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.keys import KeyParts, shown_key
from s3rs_tui.runtime.parsing import quote_identifier

_SERVER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Position:
    """Where a run starts: after the row (timestamp, key), or at `timestamp` inclusive when key is
    None (a watermark set by hand to a time), or from the beginning when timestamp is None. On a
    table without a key, `key` is () and the position is after every row at `timestamp`."""

    timestamp: str | None = None
    key: KeyParts | None = None

    def label(self) -> str:
        if self.timestamp is None:
            return "the beginning"
        return f"({self.timestamp}, {shown_key(self.key)})" if self.key else f"({self.timestamp})"


def _after(keys: list[str], values: KeyParts) -> tuple[str, list]:
    """`k1 > v1 OR (k1 = v1 AND (k2 > v2 OR ...))`: after `values` in key order."""
    first, rest = keys[0], keys[1:]
    if not rest:
        return f"{first} > %s", [values[0]]
    inner, params = _after(rest, values[1:])
    return f"({first} > %s OR ({first} = %s AND {inner}))", [values[0], values[0], *params]


def _range_sql(info: TableInfo, start: Position) -> tuple[str, list]:
    """Rows after `start` (and before the bound, left as the last parameter)."""
    c = quote_identifier(info.cursor.name)
    ts = start.timestamp
    if ts is None:
        return f"{c} < %s", []
    if start.key is None:
        return f"{c} >= %s AND {c} < %s", [ts]
    if not start.key:
        return f"{c} > %s AND {c} < %s", [ts]
    # The leading `c >= ts` gives the optimizer the range's start even when the OR nests deep.
    after, params = _after([quote_identifier(name) for name in info.key_names], start.key)
    return f"{c} >= %s AND ({c} > %s OR ({c} = %s AND {after})) AND {c} < %s", [ts, ts, ts, *params]


def up_to_sql(info: TableInfo, position: Position) -> tuple[str, list]:
    """Rows at or before `position`: what a watermark there covers."""
    c, ts = quote_identifier(info.cursor.name), position.timestamp
    if position.key is None:
        return f"{c} < %s", [ts]
    if not position.key:
        return f"{c} <= %s", [ts]
    after, params = _after([quote_identifier(name) for name in info.key_names], position.key)
    return f"({c} < %s OR ({c} = %s AND NOT ({after})))", [ts, ts, *params]


def _order_by(info: TableInfo) -> str:
    # Qualified, so ORDER BY names the table's columns: a bare name would sort by a SELECT alias
    # of the same name (the fast reader's `c + 0 AS c`), a filesort of the rest of the table.
    return ", ".join(f"{info.quoted}.{quote_identifier(name)}" for name in info.order_names)


def _until_sql(info: TableInfo, until: Position) -> tuple[str, list]:
    """Rows at or before the row `until` (a range's end), with `c <= ts` first so the index range
    on the cursor is closed at both ends."""
    up_to, params = up_to_sql(info, until)
    return f" AND {quote_identifier(info.cursor.name)} <= %s AND {up_to}", [until.timestamp, *params]


def page_query(info: TableInfo, columns: list[str], start: Position, bound: str,
               limit: int, through: str | None = None, until: Position | None = None) -> tuple[str, list]:
    """SELECT `columns` (SQL expressions) for one page of at most `limit` rows after `start`; on a
    table without a key, every row after `start` up to the cursor value `through` inclusive (all
    the rest to the bound when None), however many. `until`: no row after that one (the end of a
    range of a parallel backfill)."""
    where, params = _range_sql(info, start)
    params.append(bound)
    if until is not None:
        more, more_params = _until_sql(info, until)
        where += more
        params += more_params
    select = f"SELECT {', '.join(columns)} FROM {info.quoted} WHERE {where}"
    if not info.keyless:
        return f"{select} ORDER BY {_order_by(info)} LIMIT %s", [*params, int(limit)]
    if through is not None:
        select += f" AND {quote_identifier(info.cursor.name)} <= %s"
        params.append(through)
    return f"{select} ORDER BY {_order_by(info)}", params


def has_string_key(info: TableInfo) -> bool:
    """Some key column is text: ordering its values takes MySQL's collation (sortable_key's conn)."""
    return any(column.data_type not in INTEGER_TYPES + CURSOR_TYPES for column in info.keys)


def sortable_key(conn: pymysql.Connection | None, info: TableInfo, key: KeyParts) -> str:
    """A composite key spelled so that text order is the key's order in MySQL: integers as 20
    digits (offset past the sign), dates and times as their digits, strings as the hex of their
    collation weights (WEIGHT_STRING), parts joined by '-' (which sorts before every hex digit).
    File names use it: the loader takes the files named up to the watermark's as committed."""
    parts: list[str | None] = []
    strings: list[tuple[int, object, MySQLColumn]] = []
    for column, value in zip(info.keys, key, strict=True):
        if column.data_type in INTEGER_TYPES:
            parts.append(f"{int(cast(int, value)) + 2**63:020d}")
        elif column.data_type in CURSOR_TYPES:
            parts.append("".join(ch for ch in str(value) if ch.isdigit()).ljust(20, "0"))
        else:
            strings.append((len(parts), value, column))
            parts.append(None)
    if strings and conn is not None:
        weights = ", ".join(f"HEX(WEIGHT_STRING(CONVERT(%s USING {_name(column.character_set_name)}) "
                            f"COLLATE {_name(column.collation_name)}))" for _, _, column in strings)
        with conn.cursor() as cur:
            cur.execute(f"SELECT {weights}", [value for _, value, _ in strings])
            for (at, _, _), weight in zip(strings, cur.fetchone(), strict=True):
                parts[at] = weight
    return "-".join(cast(list[str], parts))


def _name(charset_or_collation: str | None) -> str:
    """A character set or collation name from information_schema, checked before it goes in SQL."""
    name = charset_or_collation or ""
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"unexpected character set or collation {name!r}")
    return name


def page_end(conn: pymysql.Connection, info: TableInfo, start: Position, bound: str, rows: int) -> str | None:
    """The cursor value of the `rows`-th row after `start` (None: fewer rows are left), as the
    server spells it: where a page of a keyless table ends. One walk over the cursor index."""
    where, params = _range_sql(info, start)
    c = quote_identifier(info.cursor.name)
    with conn.cursor() as cur:
        cur.execute(f"SELECT CAST({c} AS CHAR) FROM {info.quoted} WHERE {where} ORDER BY {c} "
                    "LIMIT 1 OFFSET %s", [*params, bound, max(0, int(rows) - 1)])
        row = cur.fetchone()
    return None if row is None else row[0]


def row_after(conn: pymysql.Connection, info: TableInfo, start: Position, bound: str,
              rows: int) -> Position | None:
    """The position of the `rows`-th row after `start` (None: fewer rows are left), as the readers
    spell it: the cursor as the server writes it, the key typed. One walk over the keyset index."""
    where, params = _range_sql(info, start)
    names = [quote_identifier(name) for name in info.order_names]
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(f'CAST({name} AS CHAR)' for name in names)} FROM {info.quoted} "
                    f"WHERE {where} ORDER BY {_order_by(info)} LIMIT 1 OFFSET %s",
                    [*params, bound, max(0, int(rows) - 1)])
        row = cur.fetchone()
    if row is None:
        return None
    return Position(row[0], tuple(int(value) if column.data_type in INTEGER_TYPES else value
                                  for column, value in zip(info.keys, row[1:], strict=True)))


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
    expression, params = cursor_clock(info.cursor.data_type == "timestamp", cursor_timezone)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {expression}", params)
        value = cur.fetchone()[0]
    if value is None:
        raise unknown_zone(cursor_timezone)
    return value


def cursor_clock(timestamp_cursor: bool, cursor_timezone: str) -> tuple[str, list[str]]:
    """SQL (and its parameters) for the current time as a cursor column sees it, whatever the
    session's own zone (s3rs sessions run in UTC): see database_now. NULL for an unknown zone."""
    if timestamp_cursor:
        return "UTC_TIMESTAMP(6)", []
    if cursor_timezone:
        return "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', %s)", [cursor_timezone]
    return "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)", []


def unknown_zone(cursor_timezone: str) -> ConfigError:
    return ConfigError(f"time zone {cursor_timezone!r} is unknown to the server: use an offset like "
                       "+08:00, or load its time zone tables (mariadb-tzinfo-to-sql)")


def upper_bound(now: str, info: TableInfo, lag_seconds: int) -> str:
    """`now - lag`, truncated to the cursor's precision; rows at or after it wait for the next run."""
    moment = datetime.strptime(now, _SERVER_TIME_FORMAT) - timedelta(seconds=lag_seconds)
    if info.cursor.data_type == "date":
        return moment.strftime("%Y-%m-%d")
    precision = info.cursor_precision
    whole = moment.strftime("%Y-%m-%d %H:%M:%S")
    return whole if precision == 0 else f"{whole}.{moment.strftime('%f')[:precision]}"
