"""A table's state as of a moment, computed from its stored history out of core, in two passes.

Every version of a key has an effective time: a part file row its cursor value, a fix row and a
deletion the `found_at` of the reconcile run that stored it. The state as of T holds, for each
(whole) key, of the versions whose effective time is at or before T, the one that applies last in
position order (store/history.py: the order the backups saw them in, and the order the warehouse
loads them in), the later row of a file within it; a key whose winning version is a deletion is
absent. Rows whose cursor is NULL (a zero date in the cursor) are never after T. With no T every
version counts: that is the newest backed-up state, the very one loading every file into a
warehouse leaves, which reconcile compares with MySQL when there is no warehouse
(jobs/store_state.py uses `winners` too). Ordering by effective time instead would let a version
stored later lose to an earlier one whenever a cursor value is behind the found_at of a reconcile
before it (a back-dated write, a row re-inserted after its deletion was recorded).

1. DuckDB reads only the key and cursor columns of every file and picks each key's winner with a
   window, spilling to `temp_directory` beyond `memory_limit`: the winners are (file, row number)
   pairs, sorted. Narrow rows make this pass several times faster than sorting whole rows.
2. pyarrow then reads the files one row group at a time, in position order, and takes the winning
   rows. The order is fixed by the files alone, so a rerun can go on at (file, row) where a stopped
   one left off. The files are local copies (no httpfs: DuckDB downloads nothing).
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.store.history import DELETION, FIX, PART

_FILE, _INDEX = "_s3rs_file", "_s3rs_index"
WINNER_FILE = _INDEX  # the column of `winners` output naming the file (its index in `files`)
_WINNER_GROUP_ROWS = 131_072  # winners_by_file reads this many at a time
KeyBound = tuple[object, ...]  # a key range's bound: one value per key column (int, str, Decimal, date...)


@dataclass(frozen=True)
class LocalFile:
    """A stored file copied to the work folder."""

    path: Path
    kind: str                       # part, fix or del
    found_at_us: int | None = None  # fix and deletion files: found_at in the cursor's time (µs since 1970)


@dataclass(frozen=True)
class StateQuery:
    key_columns: Sequence[str]
    cursor: str
    as_of: str | None = None            # cursor time ('YYYY-MM-DD HH:MM:SS[.ffffff]'); None: all
    key_from: KeyBound | None = None    # inclusive key range, compared as a tuple of the key columns
    key_to: KeyBound | None = None


def connect_duckdb(work: Path, memory_mb: int, threads: int = 2) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to `work`; nothing is ever downloaded."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    spill = str(work / "duckdb-spill").replace("'", "''")
    con.execute(f"SET temp_directory = '{spill}'")
    return con


def winners(con: duckdb.DuckDBPyConnection, files: list[LocalFile], query: StateQuery, out: Path) -> None:
    """Write to the Parquet file `out` the (file index into `files`, row number in that file) of
    every row of the state, sorted; DuckDB's memory is free again once it is written. `files` are
    in position order (store/history.position_order): the newest version of each key in it wins."""
    keys = [quote_standard(column) for column in query.key_columns]
    con.register("s3rs_files", pa.table({
        _FILE: [str(file.path) for file in files], _INDEX: pa.array(range(len(files)), pa.int32()),
        "at_us": pa.array([file.found_at_us for file in files], pa.int64())}))
    params: dict[str, object] = {}
    where = _key_filter(keys, query, params)
    at_most = " AND {at} <= CAST($as_of AS TIMESTAMP)" if query.as_of else ""
    if query.as_of:
        params["as_of"] = query.as_of
    selects = []
    for kind, rank in ((PART, 0), (FIX, 1), (DELETION, 2)):
        paths = [str(file.path) for file in files if file.kind == kind]
        if not paths:
            continue
        params[kind] = paths
        at = f"CAST({quote_standard(query.cursor)} AS TIMESTAMP)" if kind == PART else "make_timestamp(at_us)"
        limit = at_most.format(at=at)
        if kind == PART and limit:
            limit = f" AND ({at} IS NULL OR {limit[5:]})"
        selects.append(f"SELECT {', '.join(keys)}, {rank} AS s3rs_kind, {_INDEX}, "
                       f"file_row_number AS s3rs_row FROM read_parquet(${kind}, union_by_name = true, "
                       f"filename = '{_FILE}', file_row_number = true) JOIN s3rs_files USING ({_FILE}) "
                       f"WHERE TRUE{where}{limit}")
    versions = " UNION ALL ".join(f"({select})" for select in selects)
    newest = (f"SELECT {_INDEX}, s3rs_row, s3rs_kind FROM ({versions}) QUALIFY row_number() OVER ("
              f"PARTITION BY {', '.join(keys)} ORDER BY {_INDEX} DESC, s3rs_row DESC) = 1")
    sql = f"SELECT {_INDEX}, s3rs_row FROM ({newest}) WHERE s3rs_kind < 2 ORDER BY {_INDEX}, s3rs_row"
    params["out"] = str(out)
    con.execute(f"COPY ({sql}) TO $out (FORMAT parquet, ROW_GROUP_SIZE {_WINNER_GROUP_ROWS})", params)


def _key_filter(keys: list[str], query: StateQuery, params: dict[str, object]) -> str:
    """The key range as row comparisons: (k1, k2) >= (a, b) is lexicographic, as the key sorts."""
    where = ""
    for name, bound, compare in (("key_from", query.key_from, ">="), ("key_to", query.key_to, "<=")):
        if bound is None:
            continue
        names = [f"{name}_{number}" for number in range(len(bound))]
        params.update(zip(names, bound, strict=True))
        where += f" AND ({', '.join(keys)}) {compare} ({', '.join(f'${one}' for one in names)})"
    return where


def winners_by_file(path: Path) -> Iterator[tuple[int, Iterator[pa.Array]]]:
    """The winners `winners` wrote, file by file: (file index, its row numbers in sorted chunks).
    A chunk is the file's part of one row group (_WINNER_GROUP_ROWS) of `path`: only a chunk is
    held, never a whole file's row numbers (a 2.7M-row file's took 90 MB of Arrow memory at once),
    and `path` is read one row group after another (iterating all of them in one go held 36 MB
    more at 10M rows, growing with their number; measured)."""
    for index, chunks in groupby(_winner_chunks(path), key=itemgetter(0)):
        yield index, (rows for _, rows in chunks)


def _winner_chunks(path: Path) -> Iterator[tuple[int, pa.Array]]:
    reader = pq.ParquetFile(path)
    for group in range(reader.num_row_groups):
        files, rows = (column.combine_chunks() for column in reader.read_row_group(group).columns)
        for file in pc.unique(files).to_pylist():
            yield file, rows.filter(pc.equal(files, file))


def taken_rows(path: Path, rows: Iterable[pa.Array], start_row: int = 0,
               read_rows: int = 16_384) -> Iterator[tuple[pa.RecordBatch, pa.Array]]:
    """The rows numbered `rows` (sorted chunks) of one file, from `start_row` on, a few thousand rows
    read at a time: (batch, the row numbers of its rows). Row groups without a wanted row are not
    read, nor any after the last wanted row."""
    wanted = _Wanted(rows, start_row)
    reader = pq.ParquetFile(path)
    first = 0
    for group in range(reader.metadata.num_row_groups):
        size = reader.metadata.row_group(group).num_rows
        following = wanted.following()
        if following is None:
            return
        if following >= first + size:
            first += size
            continue
        for batch in reader.iter_batches(batch_size=read_rows, row_groups=[group]):
            inside = wanted.below(first + batch.num_rows, batch.num_rows)
            if len(inside):
                yield batch.take(pc.subtract(inside, first)), inside
            first += batch.num_rows


class _Wanted:
    """Sorted unique row numbers, taken from the front as the reading goes past them."""

    def __init__(self, chunks: Iterable[pa.Array], start_row: int):
        self.chunks, self.start_row = iter(chunks), start_row
        self.rest = pa.array([], pa.int64())

    def _filled(self) -> bool:
        while not len(self.rest):
            chunk = next(self.chunks, None)
            if chunk is None:
                return False
            self.rest = chunk.filter(pc.greater_equal(chunk, self.start_row)) if self.start_row else chunk
        return True

    def following(self) -> int | None:
        """The next wanted row number; None when none is left."""
        return self.rest[0].as_py() if self._filled() else None

    def below(self, limit: int, span: int) -> pa.Array:
        """The wanted rows under `limit`, taken off; none is below limit - span (read past), so
        only the first `span` of them can be under it and only those are looked at."""
        parts = []
        while span and self._filled():
            count = pc.sum(pc.less(self.rest.slice(0, span), limit)).as_py() or 0
            parts.append(self.rest.slice(0, count))
            self.rest, span = self.rest.slice(count), span - count
            if len(self.rest):
                break
        return pa.concat_arrays(parts) if parts else pa.array([], pa.int64())


def aligned(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A file's batch in the state's schema: columns the file lacks as NULL, types as the newest
    file has them."""
    columns = []
    for field in schema:
        if field.name in batch.schema.names:
            columns.append(batch.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(batch.num_rows, field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
