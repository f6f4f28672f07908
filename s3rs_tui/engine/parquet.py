"""Parquet encoding and the deterministic names of data files.

A file's name comes from the position it starts after, so a file redone after a crash (same
watermark, so same start) overwrites its own earlier copy instead of adding a duplicate.
"""

import hashlib
import json
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.memory import MemoryBudget
from s3rs_tui.engine.table import INTEGER_TYPES, TableInfo
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import KeyParts
from s3rs_tui.store.layout import LONGEST_KEY, key_spelling, part_key, variable_width

_LONGEST_KEY_PART = 640  # of a file name (S3 keys hold 1024 bytes)


def data_key(info: TableInfo, start: Position, sortable: str = "") -> str:
    """data/<db>/<table>/part-<start timestamp>-<start key>.parquet, sorting in cursor order.
    `sortable`: a composite start key as keyset.sortable_key spells it."""
    return part_key(info.name, start.timestamp, _key_part(info, start.key, sortable))


def _key_part(info: TableInfo, key: KeyParts | None, sortable: str) -> str:
    if not key and key is not None:  # no key: after every row at the timestamp
        return "9" * 20 + "-after"
    if key is not None and len(key) > 1:  # in key order; past _LONGEST_KEY_PART, cut and made distinct
        if len(sortable) <= _LONGEST_KEY_PART:
            return "k" + sortable
        return f"k{sortable[:_LONGEST_KEY_PART - 20]}-{hashlib.sha1(sortable.encode()).hexdigest()[:19]}"
    integer = bool(info.keys) and info.keys[0].data_type in INTEGER_TYPES
    return key_spelling(None if key is None else cast(int, key[0]), integer)  # typed on opening


class ParquetFile:
    """One data file being written: chunks go in as they arrive, buffered into row groups of
    budget.row_group_rows (128k rows unless the memory guard shrank it), so memory holds at most a
    row group whatever the file size. zstd; timestamps in microseconds (nanoseconds confuse Redshift
    and Spectrum). The footer records the longest value of each string and binary column."""

    def __init__(self, path: Path, schema: pa.Schema, budget: MemoryBudget):
        self.path, self.rows, self._budget = path, 0, budget
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", coerce_timestamps="us",
                                        allow_truncated_timestamps=False)
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._schema = schema
        self._longest = {f.name: 0 for f in schema if variable_width(f.type)}

    def add(self, batch: pa.RecordBatch) -> None:
        for name, longest in self._longest.items():
            self._longest[name] = max(longest, pc.max(pc.binary_length(batch.column(name))).as_py() or 0)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= self._budget.row_group_rows:
            self._flush()
        failpoint("mid-file")

    def _flush(self) -> None:
        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self._schema)
            self._writer.write_table(table, row_group_size=self._budget.row_group_rows)
            self._pending, self._pending_rows = [], 0

    @property
    def size(self) -> int:
        """Bytes written so far (row groups already flushed)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self, metadata: dict[str, str] | None = None) -> None:
        """Finish the file; `metadata`: more footer keys (reconcile's fix files say when they were made)."""
        self._flush()
        self._writer.add_key_value_metadata({LONGEST_KEY: json.dumps(self._longest), **(metadata or {})})
        self._writer.close()

    def abandon(self) -> None:
        """Discard a file that will not be stored (the run stopped on an error)."""
        try:
            self._writer.close()
        finally:
            self.path.unlink(missing_ok=True)
