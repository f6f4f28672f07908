"""Parquet encoding and the deterministic names of data files.

A file's name comes from the position it starts after, so a file redone after a crash (same
watermark, so same start) overwrites its own earlier copy instead of adding a duplicate.
"""

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.table import TableInfo

ROW_GROUP_ROWS = 131_072  # large enough for fast scans, small enough for readers with little memory
DATA_PREFIX = "data/"


def table_prefix(table_name: str) -> str:
    """Where a table's data files live in the store: data/<db>/<table>/."""
    database, table = table_name.split(".")
    return f"{DATA_PREFIX}{database}/{table}/"


def data_key(info: TableInfo, start: Position) -> str:
    """data/<db>/<table>/part-<start timestamp>-<start key>.parquet, sorting in cursor order."""
    if start.timestamp is None:
        stamp, key = "00000000T000000000000", "0" * 20
    else:
        digits = "".join(ch for ch in start.timestamp if ch.isdigit()).ljust(20, "0")
        stamp = f"{digits[:8]}T{digits[8:]}"
        if start.key is None:  # rows AT the timestamp, inclusive (`watermark set` without --id):
            key = "0" * 20 + "-at"  # sorts before every key at that timestamp and equals none of them
        else:
            key = (f"{int(start.key):020d}" if info.key_is_integer
                   else "s" + hashlib.sha1(str(start.key).encode()).hexdigest()[:19])
    return f"{table_prefix(info.name)}part-{stamp}-{key}.parquet"


def write_parquet(batches: list[pa.RecordBatch], schema: pa.Schema, path: Path) -> None:
    """zstd, microsecond timestamps (nanoseconds confuse Redshift and Spectrum)."""
    table = pa.Table.from_batches(batches, schema=schema)
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                   coerce_timestamps="us", allow_truncated_timestamps=False)
