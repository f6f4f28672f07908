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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.store.history import DELETION, FIX, PART

_FILE, _INDEX = "_s3rs_file", "_s3rs_index"
WINNER_FILE = _INDEX  # the column of `winners` output naming the file (its index in `files`)
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
    con.execute(f"COPY ({sql}) TO $out (FORMAT parquet)", params)


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


def rows_by_file(path: Path, batch_rows: int = 1_000_000) -> Iterator[tuple[int, pa.Array]]:
    """The winners `winners` wrote, grouped by file: (file index, its row numbers in order)."""
    current: int | None = None
    parts: list[pa.Array] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        files, rows = batch.column(0), batch.column(1)
        for file in pc.unique(files).to_pylist():
            chosen = rows.filter(pc.equal(files, file))
            if file != current:
                if current is not None:
                    yield current, pa.concat_arrays(parts)
                current, parts = file, []
            parts.append(chosen)
    if current is not None:
        yield current, pa.concat_arrays(parts)


def taken_rows(path: Path, rows: pa.Array, start_row: int = 0,
               read_rows: int = 16_384) -> Iterator[tuple[pa.RecordBatch, pa.Array]]:
    """The rows numbered `rows` (sorted) of one file, from `start_row` on, a few thousand rows read
    at a time: (batch, the row numbers of its rows). Row groups without a wanted row are not read."""
    rest = rows.filter(pc.greater_equal(rows, start_row)) if start_row else rows
    reader = pq.ParquetFile(path)
    first = 0
    for group in range(reader.metadata.num_row_groups):
        size = reader.metadata.row_group(group).num_rows
        inside, _ = _below(rest, first, size)
        if not len(inside):
            first += size
            continue
        for batch in reader.iter_batches(batch_size=read_rows, row_groups=[group]):
            inside, rest = _below(rest, first, batch.num_rows)
            if len(inside):
                yield batch.take(pc.subtract(inside, first)), inside
            first += batch.num_rows


def _below(rows: pa.Array, first: int, span: int) -> tuple[pa.Array, pa.Array]:
    """Sorted unique `rows`, none below `first`, split at first + span; only the first `span` of
    them can be below it, so only those are looked at."""
    count = pc.sum(pc.less(rows.slice(0, span), first + span)).as_py() or 0
    return rows.slice(0, count), rows.slice(count)


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
