"""A run's plan, fixed before the first page: where it starts, where it stops, what it will skip."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from s3rs_tui.engine import keyset
from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.runtime.parsing import quote_identifier

T = TypeVar("T")


class Query(Protocol):
    """(what we are doing, fn(conn)) -> its result, with retries."""

    def __call__(self, doing: str, action: Callable[[Any], T], /) -> T: ...


@dataclass(frozen=True)
class Plan:
    start: Position
    now: str                 # the database's clock, in the cursor's time zone
    bound: str               # exclusive upper bound of this run
    estimated_rows: int      # EXPLAIN's estimate of rows between start and bound (exact: a COUNT)
    null_cursor_rows: int    # unreachable by any cursor
    future_cursor_rows: int  # stamped after `now`
    exact: bool = False
    span_start: str | None = None  # the first cursor time to cover: progress is time covered / to cover


def make_plan(query: Query, info: TableInfo, start: Position, cursor_timezone: str, lag_seconds: int,
              exact: bool = False) -> Plan:
    """`exact` counts the rows to go on the index instead of asking EXPLAIN (slower, exact)."""
    now = query("reading the clock", lambda c: keyset.database_now(c, info, cursor_timezone))
    bound = keyset.upper_bound(now, info, lag_seconds)
    return Plan(
        start, now, bound,
        query("counting rows" if exact else "estimating rows",
              lambda c: keyset.count_range(c, info, start, bound, estimate=not exact)),
        query("counting NULL cursors", lambda c: keyset.null_cursor_rows(c, info)),
        query("counting future cursors", lambda c: keyset.future_cursor_rows(c, info, now)),
        exact, start.timestamp or query("finding the first row", lambda c: first_cursor(c, info, bound)))


def first_cursor(conn, info: TableInfo, bound: str) -> str | None:
    """The earliest cursor time before `bound`: one index lookup (None without the keyset index,
    where it would scan the table; progress then falls back on the row estimate)."""
    if not info.has_keyset_index:
        return None
    with conn.cursor() as cur:
        cur.execute(f"SELECT MIN({quote_identifier(info.cursor.name)}) FROM {info.quoted} "
                    f"WHERE {quote_identifier(info.cursor.name)} < %s", [bound])
        value = cur.fetchone()[0]
    return None if value is None else str(value)


def plan_notices(plan: Plan, info: TableInfo) -> list[str]:
    """What the operator should know before trusting the run's totals."""
    notices = []
    if not info.has_keyset_index:
        notices.append(f"{info.name} has no index starting with ({', '.join(info.order_names)}): "
                       "every page scans the table; add one for speed")
    if info.keyless:
        notices.append(f"{info.name} has no unique key: it is read by whole {info.cursor.name} values and "
                       "loaded append-only (README: Tables without a unique key)")
    if plan.null_cursor_rows:
        notices.append(f"{plan.null_cursor_rows} rows have a NULL {info.cursor.name} and can never be "
                       "reached by the cursor (see README: NULL cursors)")
    if plan.future_cursor_rows:
        notices.append(f"{plan.future_cursor_rows} rows have {info.cursor.name} in the future (after "
                       f"{plan.now}); they wait until their time comes")
    return notices
