"""Values longer than their column (Redshift's): loaded cut to fit, from a load copy of the file.

Redshift's VARCHAR(n) and VARBYTE(n) hold at most n bytes (65,535 and 1,024,000 here), and a
Parquet COPY has no TRUNCATECOLUMNS: one longer value fails the whole COPY, on every rerun. So a
file whose footer says a value is too long (or a file from before footers said so) is read, and
when something is too long, a copy with those values cut (text on a character boundary) is
written under _state/load-copies/ for the COPY, then deleted. The backup file itself never
changes; the values cut are counted per column for the operator.
"""

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3rs_tui.store import ObjectStore
from s3rs_tui.store.layout import variable_width
from s3rs_tui.store.watermark import STATE_PREFIX
from s3rs_tui.warehouse.datafiles import DataFile, read_batches
from s3rs_tui.warehouse.typemap import Column

COPIES_PREFIX = f"{STATE_PREFIX}load-copies/"
ByteLimit = Callable[[Column], int | None]  # a column's most bytes per value in the warehouse, if any


def byte_limits(data_file: DataFile, byte_limit: ByteLimit) -> dict[str, int]:
    """Column -> its limit in bytes, for the string and binary columns of the file."""
    return {c.name: limit for c in data_file.columns
            if variable_width(c.arrow_type) and (limit := byte_limit(c)) is not None}


def fits(data_file: DataFile, byte_limit: ByteLimit) -> bool:
    """Does the footer say every value fits its column? (False when it does not say.)"""
    longest = data_file.longest
    return longest is not None and all(longest.get(name, 0) <= limit
                                       for name, limit in byte_limits(data_file, byte_limit).items())


def cut(values: pa.Array, limit: int) -> tuple[pa.Array, int]:
    """`values` with those longer than `limit` bytes cut to it; how many were."""
    over = pc.greater(pc.binary_length(values), limit)
    count = pc.sum(over).as_py() or 0
    if not count:
        return values, 0
    text = not pa.types.is_binary(values.type)

    def shorter(value):
        return value.encode()[:limit].decode("utf-8", "ignore") if text else value[:limit]

    pairs = zip(values.to_pylist(), over.to_pylist(), strict=True)
    return pa.array([shorter(v) if long else v for v, long in pairs], values.type), count


def load_copy(store: ObjectStore, data_file: DataFile, byte_limit: ByteLimit,
              counts: Counter) -> tuple[str, int] | None:
    """Store a copy of `data_file` with its too long values cut, adding to `counts` per column;
    (its key, its size), or None when every value fits after all."""
    limits = byte_limits(data_file, byte_limit)
    path = store.scratch_dir() / f"fit-{uuid.uuid4().hex}.parquet"
    found: Counter = Counter()
    writer = None
    try:
        for batch in read_batches(store, data_file.info.key):
            columns = []
            for name, values in zip(batch.schema.names, batch.columns, strict=True):
                if name in limits:
                    values, count = cut(values, limits[name])
                    found[name] += count
                columns.append(values)
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema, compression="zstd", coerce_timestamps="us")
            writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=batch.schema))
        if writer is not None:
            writer.close()
            writer = None
        if not any(found.values()):
            return None
        key = f"{COPIES_PREFIX}{uuid.uuid4().hex}/{Path(data_file.info.key).name}"
        size = store.put_file(key, path)
        counts.update(found)
        return key, size
    finally:
        if writer is not None:
            writer.close()
        path.unlink(missing_ok=True)
