"""Where a table's data files live in the store, and what their footers say: the contract between
the engine that writes the files and the warehouse and jobs that read them."""

import hashlib

import pyarrow as pa

from s3rs_tui.runtime.keys import Key

DATA_PREFIX = "data/"
# Footer key: {column: its longest value in bytes} for string and binary columns, so a warehouse
# with length limits (Redshift) learns from the footer alone whether a file fits its columns.
LONGEST_KEY = "s3rs.longest_bytes"


def variable_width(data_type: pa.DataType) -> bool:
    """String and binary types: the ones whose values have a length in bytes."""
    types = pa.types
    return types.is_string(data_type) or types.is_large_string(data_type) or types.is_binary(data_type)


def table_prefix(table_name: str) -> str:
    """Where a table's data files live in the store: data/<db>/<table>/."""
    database, table = table_name.split(".")
    return f"{DATA_PREFIX}{database}/{table}/"


def position_text(timestamp: str | None, key: Key, integer_key: bool) -> str:
    """A position as file names spell it, '<timestamp>-<key>', sorting in cursor order (string keys
    are hashed, so only their timestamp sorts)."""
    if timestamp is None:
        return "00000000T000000000000-" + "0" * 20
    digits = "".join(ch for ch in timestamp if ch.isdigit()).ljust(20, "0")
    if key is None:  # rows AT the timestamp, inclusive (`watermark set` without --id):
        spelled = "0" * 20 + "-at"  # sorts before every key at that timestamp and equals none of them
    elif integer_key:
        spelled = f"{int(key):020d}"
    else:
        spelled = "s" + hashlib.sha1(str(key).encode()).hexdigest()[:19]
    return f"{digits[:8]}T{digits[8:]}-{spelled}"


def part_key(table_name: str, timestamp: str | None, key: Key, integer_key: bool) -> str:
    """data/<db>/<table>/part-<start timestamp>-<start key>.parquet: the file starting after that
    position (a file redone after a crash starts at the same place, so overwrites its first copy)."""
    return f"{table_prefix(table_name)}part-{position_text(timestamp, key, integer_key)}.parquet"
