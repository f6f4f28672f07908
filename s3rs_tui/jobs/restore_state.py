"""A table's state as of a moment, computed from its stored history with DuckDB, out of core.

Every version of a key has an effective time: a part file row its cursor value, a fix row and a
deletion the `found_at` of the reconcile run that stored it. The state as of T holds, for each
key, the version with the latest effective time at or before T (ties: part < fix < deletion,
then the later file in position order); a key whose winning version is a deletion is absent.
Rows whose cursor is NULL (a zero date in the cursor) count as the oldest versions.

DuckDB picks the winners with a window over the files, spilling to `temp_directory` beyond
`memory_limit`, and streams them out in key order, so a rerun can go on after the last key it
loaded. The files are local copies (no httpfs: nothing is downloaded by DuckDB itself).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from s3rs_tui.runtime.keys import KeyValue
from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.store.history import DELETION, FIX, FOUND_AT, PART

_AT, _KIND, _FILE = "_s3rs_at", "_s3rs_kind", "_s3rs_file"
_RANK = {PART: 0, FIX: 1, DELETION: 2}


@dataclass(frozen=True)
class LocalFile:
    """A stored file copied to the work folder; names sort in position order."""

    path: Path
    kind: str                      # part, fix or del
    found_at_us: int | None = None  # fix files: found_at in the cursor's time (µs since the epoch)


@dataclass(frozen=True)
class StateQuery:
    key_columns: Sequence[str]
    cursor: str
    as_of: str | None = None            # cursor time ('YYYY-MM-DD HH:MM:SS[.ffffff]'); None: all
    key_from: KeyValue | None = None    # inclusive key range (single-column keys)
    key_to: KeyValue | None = None
    offset_seconds: int = 0             # cursor time minus UTC, for found_at


def connect_duckdb(work: Path, memory_mb: int, threads: int = 2) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to `work`; nothing is ever downloaded."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{_literal(str(work / 'duckdb-spill'))}'")
    return con


def _literal(text: str) -> str:
    return text.replace("'", "''")


def _files(files: list[LocalFile], kind: str) -> list[str]:
    return [str(file.path) for file in files if file.kind == kind]


def state_reader(con: duckdb.DuckDBPyConnection, files: list[LocalFile], query: StateQuery,
                 after: Sequence[KeyValue] | None, batch_rows: int) -> pa.RecordBatchReader:
    """The rows of the state, in key order, after the key `after` (a resumed run) when given."""
    keys = [quote_standard(column) for column in query.key_columns]
    cursor = quote_standard(query.cursor)
    params: dict[str, object] = {}
    where = _key_filter(keys, query, after, params)
    parts, fixes, deletions = _files(files, PART), _files(files, FIX), _files(files, DELETION)
    if not parts and not fixes:
        raise ValueError("no data files")
    selects = []
    if parts:
        params["parts"] = parts
        at_most = f" AND ({cursor} IS NULL OR CAST({cursor} AS TIMESTAMP) <= CAST($as_of AS TIMESTAMP))" \
            if query.as_of else ""
        selects.append(f"SELECT *, CAST({cursor} AS TIMESTAMP) AS {_AT}, 0 AS {_KIND} "
                       f"FROM read_parquet($parts, union_by_name = true, filename = '{_FILE}') "
                       f"WHERE TRUE{where}{at_most}")
    found = f"(CAST({quote_standard(FOUND_AT)} AS TIMESTAMP) + to_seconds($offset))"
    if fixes:
        params["fixes"] = fixes
        fix_at = pa.table({_FILE: [str(f.path) for f in files if f.kind == FIX],
                           "at_us": [f.found_at_us for f in files if f.kind == FIX]})
        con.register("s3rs_fix_marks", fix_at)
        at_most = " AND make_timestamp(m.at_us) <= CAST($as_of AS TIMESTAMP)" if query.as_of else ""
        selects.append(f"SELECT f.*, make_timestamp(m.at_us) AS {_AT}, 1 AS {_KIND} "
                       f"FROM read_parquet($fixes, union_by_name = true, filename = '{_FILE}') f "
                       f"JOIN s3rs_fix_marks m USING ({_FILE}) WHERE TRUE{where}{at_most}")
    if deletions:
        params["deletions"] = deletions
        at_most = f" AND {found} <= CAST($as_of AS TIMESTAMP)" if query.as_of else ""
        selects.append(f"SELECT {', '.join(keys)}, {found} AS {_AT}, 2 AS {_KIND}, {_FILE} "
                       f"FROM read_parquet($deletions, union_by_name = true, filename = '{_FILE}') "
                       f"WHERE TRUE{where}{at_most}")
    if query.as_of:
        params["as_of"] = query.as_of
    if deletions:
        params["offset"] = query.offset_seconds
    versions = " UNION ALL BY NAME ".join(f"({select})" for select in selects)
    newest = (f"SELECT * FROM ({versions}) QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} "
              f"ORDER BY {_AT} DESC NULLS LAST, {_KIND} DESC, {_FILE} DESC) = 1")
    sql = (f"SELECT * EXCLUDE ({_AT}, {_KIND}, {_FILE}) FROM ({newest}) "
           f"WHERE {_KIND} < 2 ORDER BY {', '.join(keys)}")
    return con.sql(sql, params=params).to_arrow_reader(batch_rows)


def _key_filter(keys: list[str], query: StateQuery, after: Sequence[KeyValue] | None,
                params: dict[str, object]) -> str:
    """AND-clauses on the key: the asked range, and past the last key a stopped run loaded."""
    where = ""
    if query.key_from is not None:
        params["key_from"] = query.key_from
        where += f" AND {keys[0]} >= $key_from"
    if query.key_to is not None:
        params["key_to"] = query.key_to
        where += f" AND {keys[0]} <= $key_to"
    if after is not None:
        names = [f"$after{i}" for i in range(len(keys))]
        params.update({name[1:]: value for name, value in zip(names, after, strict=True)})
        where += f" AND ({', '.join(keys)}) > ({', '.join(names)})" if len(keys) > 1 \
            else f" AND {keys[0]} > {names[0]}"
    return where
