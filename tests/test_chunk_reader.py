"""ChunkReader's own logic: read-ahead, page ends, limits, and resuming after a failure mid-page."""

import pyarrow as pa
import pytest

from s3rs_tui.engine.extract import Chunk, ChunkReader
from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.memory import MemoryBudget
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import S3rsError, TableError, TransientError
from s3rs_tui.runtime.retry import with_retries

ROWS = list(range(1, 96))  # keys 1..95 in cursor order


def source(fail_after_chunks: int | None = None, chunk_rows: int = 4):
    """A ChunkSource over ROWS; the first call can fail after some chunks, like a dropped link."""
    calls = []

    def read(_conn, start: Position, limit: int):
        calls.append((start.key, limit))
        after = start.key[0] if start.key else 0
        keys = [k for k in ROWS if k > after][:limit]
        for n, i in enumerate(range(0, len(keys), chunk_rows)):
            if fail_after_chunks is not None and len(calls) == 1 and n == fail_after_chunks:
                raise TransientError("connection lost")
            part = keys[i:i + chunk_rows]
            yield Chunk(pa.record_batch([pa.array(part)], names=["id"]), Position("2024-01-01", (part[-1],)))

    return read, calls


def run_query(_what, action):
    return with_retries(lambda: action(None), attempts=2, control=RunControl(), on_retry=lambda *a: None,
                        base_delay=0)


def collect(reader: ChunkReader) -> list[Chunk]:
    try:
        return list(reader.chunks())
    finally:
        reader.close()


def test_pages_are_read_in_order_with_their_ends_marked():
    read, calls = source()
    chunks = collect(ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=None, what="t"))
    keys = [k for c in chunks for k in c.batch.column(0).to_pylist()]
    assert keys == ROWS
    ends = [c.last.key for c in chunks if c.ends_page]
    assert ends == [(k,) for k in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)]
    assert [limit for _, limit in calls] == [10] * 10  # the last page came back short: caught up


def test_a_failure_mid_page_resumes_after_the_last_chunk_taken():
    read, calls = source(fail_after_chunks=2)
    reader = ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=None, what="t")
    keys = [k for c in collect(reader) for k in c.batch.column(0).to_pylist()]
    assert keys == ROWS and reader.caught_up
    assert calls[:2] == [(None, 10), ((8,), 2)]  # resumed after key 8 for the 2 rows left of that page


def test_limit_is_exact():
    read, _ = source()
    reader = ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=23, what="t")
    keys = [k for c in collect(reader) for k in c.batch.column(0).to_pylist()]
    assert keys == ROWS[:23] and not reader.caught_up


def test_an_error_reaches_the_consumer():
    def broken(_conn, start, limit):
        raise S3rsError("table dropped")
        yield  # pragma: no cover - makes this a generator

    with pytest.raises(S3rsError, match="table dropped"):
        collect(ChunkReader(run_query, broken, Position(), MemoryBudget(10), limit=None, what="t"))


def test_close_stops_reading_ahead():
    read, calls = source()
    reader = ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=None, what="t", depth=1)
    first = next(reader.chunks())
    reader.close()
    assert first.last.key == (4,) and len(calls) <= 2


# A table without a key: cursor values 1..20, value v held by v rows (210 rows), read by whole values.
GROUPS = [v for v in range(1, 21) for _ in range(v)]


def keyless_source(fail_first: bool = False, chunk_rows: int = 4):
    """Pages as keyset.page_query spells them for a keyless table: every row after the start's
    cursor value up to the value of the `limit`-th row, inclusive; chunk positions are mid-page."""
    calls = []

    def read(_conn, start: Position, limit: int):
        calls.append((start.timestamp, limit))
        rest = [v for v in GROUPS if v > int(start.timestamp or 0)]
        rows = [v for v in rest if v <= rest[limit - 1]] if len(rest) >= limit else rest
        for n, i in enumerate(range(0, len(rows), chunk_rows)):
            if fail_first and len(calls) == 1 and n == 2:
                raise TransientError("connection lost")
            part = rows[i:i + chunk_rows]
            batch = pa.record_batch([pa.array(part, pa.int64())], names=["c"])
            yield Chunk(batch, Position(str(part[-1]), ()))

    return read, calls


def values(chunks: list[Chunk]) -> list[int]:
    return [v for c in chunks for v in c.batch.column(0).to_pylist()]


def test_a_keyless_page_ends_only_where_the_cursor_value_changes():
    read, _ = keyless_source()
    chunks = collect(ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=None, what="t",
                                 whole_pages_mb=1))
    assert values(chunks) == GROUPS
    resumable = [c for c in chunks if c.resumable]
    assert all(c.ends_page for c in resumable) and resumable[-1] is chunks[-1]
    for chunk in resumable:  # no value continues after a resumable chunk
        assert int(chunk.last.timestamp) not in values(chunks[chunks.index(chunk) + 1:])


def test_a_failure_inside_a_keyless_page_reads_the_whole_page_again():
    read, calls = keyless_source(fail_first=True)
    chunks = collect(ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=None, what="t",
                                 whole_pages_mb=1))
    assert values(chunks) == GROUPS  # nothing of the failed attempt was handed on
    assert calls[:2] == [(None, 10), (None, 10)]


def test_a_keyless_page_too_big_is_read_smaller_and_one_value_too_big_is_refused():
    read, calls = keyless_source()
    # 8 bytes a row: 100 bytes hold 12 rows; the value 13 alone (13 rows) does not fit.
    reader = ChunkReader(run_query, read, Position(), MemoryBudget(10), limit=None, what="reading t",
                         whole_pages_mb=100 / 1024**2)
    with pytest.raises(TableError, match=r"reading t: the table has no unique key.*after \(12\)"):
        collect(reader)
    assert (None, 10) in calls and len(calls) > 2  # the first page was read again, smaller
