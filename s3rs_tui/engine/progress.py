"""How far a run is, measured on its cursor rather than on EXPLAIN's guess of the row count.

A run covers cursor times from `span_start` (its first row, or the watermark) up to its fixed
upper bound; the share of that time span behind the last row read is a progress that cannot pass
100% and does not depend on a row estimate that may be half the real count.
"""

import time
from datetime import datetime


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:  # a zero date or an odd value: no time share, the caller falls back
        return None


def time_share(span_start: str | None, bound: str | None, position: str | None) -> float | None:
    """Share (0..1) of the cursor span [span_start, bound) behind `position`; None when unknown."""
    start, end, at = _moment(span_start), _moment(bound), _moment(position)
    if start is None or end is None or end <= start:
        return None
    if at is None:
        return 0.0
    return min(1.0, max(0.0, (at - start) / (end - start)))


class Ticker:
    """True at most once every `seconds`: the engine reports often enough for a live screen and
    never so often that reporting slows it down."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.last = clock()

    def due(self) -> bool:
        now = self.clock()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True
