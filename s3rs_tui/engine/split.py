"""Cutting a table's first backfill into ranges of about equal rows, for `progressive --parallel`.

Each cut is the position of a row found by walking the keyset index from the previous cut
(`LIMIT 1 OFFSET rows/parts`): the ranges hold about the same rows as far as the estimate is
right, and a cut is a real (cursor, key) position, in the terms of the watermark. The last range
has no end: it reads up to each run's bound, as one cursor does.
"""

from collections.abc import Callable

from s3rs_tui.engine import keyset
from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.plan import Query
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.store.watermark import CursorRange


def range_ends(query: Query, info: TableInfo, start: Position, bound: str, rows: int,
               parts: int) -> list[Position]:
    """Up to `parts - 1` cuts after `start`, `rows / parts` rows apart (fewer when the table holds
    fewer rows than `rows`): the last row of each range but the last."""
    step, at = rows // parts, start
    ends: list[Position] = []

    def cut(after: Position) -> Position | None:
        return query("splitting the table into ranges",
                     lambda conn: keyset.row_after(conn, info, after, bound, step))

    for _ in range(parts - 1 if step > 0 else 0):
        end = cut(at)
        if end is None:
            break
        ends.append(end)
        at = end
    return ends


def cursor_ranges(start: Position, ends: list[Position],
                  file_name: Callable[[Position], str]) -> list[CursorRange]:
    """The ranges between the cuts, each named by the file that would start it."""
    def listed(position: Position | None) -> list | None:
        return None if position is None or position.key is None else list(position.key)

    starts, stops = [start, *ends], [*ends, None]
    return [CursorRange(begin.timestamp, listed(begin), stop.timestamp if stop else None, listed(stop),
                        file_name(begin)) for begin, stop in zip(starts, stops, strict=True)]
