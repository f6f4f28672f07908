"""Where a table's data files live in the store, and what their footers say: the contract between
the engine that writes the files and the warehouse and jobs that read them."""

import hashlib
import posixpath

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


def key_spelling(key: Key, integer_key: bool) -> str:
    """A one-column key as file names spell it, sorting in key order for integers; None is "rows
    AT the timestamp, inclusive" (`watermark set` without --id), which sorts before every key at
    that timestamp and equals none of them. Other keys are spelled by the engine in their MySQL
    sort order (keyset.sortable_key, "k..."); the hash here is how text keys were spelled before
    that, kept for the positions recorded then (see legacy_text_start)."""
    if key is None:
        return "0" * 20 + "-at"
    if integer_key:
        return f"{int(key):020d}"
    return "s" + hashlib.sha1(str(key).encode()).hexdigest()[:19]


def legacy_text_start(part_file: str) -> bool:
    """A part file named before text keys were spelled in sort order: its start key is a hash
    (s + 19 hex digits), so it sorts among the files of its cursor value in no useful order."""
    name = posixpath.basename(part_file)
    tail = name[:-len(".parquet")].rsplit("-", 1)[-1]
    return len(tail) == 20 and tail[0] == "s" and all(ch in "0123456789abcdef" for ch in tail[1:])


def start_timestamp(part_file: str) -> str:
    """The start cursor value of a part file, as the 20 digits its name spells (part-<ts>-<key>)."""
    return posixpath.basename(part_file)[len("part-"):].split("-", 1)[0].replace("T", "")


def position_text(timestamp: str | None, spelled_key: str) -> str:
    """A position as file names spell it, '<timestamp>-<key>', sorting in cursor order."""
    if timestamp is None:
        return "00000000T000000000000-" + "0" * 20
    digits = timestamp_digits(timestamp)
    return f"{digits[:8]}T{digits[8:]}-{spelled_key}"


def timestamp_digits(timestamp: str) -> str:
    """A cursor time as the 20 digits file names spell it (comparable with start_timestamp)."""
    return "".join(ch for ch in timestamp if ch.isdigit()).ljust(20, "0")


def part_key(table_name: str, timestamp: str | None, spelled_key: str) -> str:
    """data/<db>/<table>/part-<start timestamp>-<start key>.parquet: the file starting after that
    position (a file redone after a crash starts at the same place, so overwrites its first copy)."""
    return f"{table_prefix(table_name)}part-{position_text(timestamp, spelled_key)}.parquet"
