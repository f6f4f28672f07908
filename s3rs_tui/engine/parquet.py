"""Parquet encoding and the deterministic names of data files.

A file's name comes from the position it starts after, so a file redone after a crash (same
watermark, so same start) overwrites its own earlier copy instead of adding a duplicate.

Encoding runs in a pool of threads (pyarrow encodes without the GIL): the thread that takes rows
from the reader hands each full row group over and goes on collecting the next one, so reading,
converting and encoding overlap on several cores. A file's row groups are written one after the
other, in order; files of different tables (or a file and the one after it) encode at once.
"""

import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.memory import MemoryBudget
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import KeyParts
from s3rs_tui.store.layout import LONGEST_KEY, key_spelling, part_key, position_text, variable_width

_LONGEST_KEY_PART = 640  # of a file name (S3 keys hold 1024 bytes)

# Writer settings, each measured on the benchmark table (benchmarks/throughput.py prints them):
# dictionary encoding where under a tenth of a row group's values are distinct (elsewhere it costs
# time and makes files bigger: ids, order numbers, phones, addresses, amounts of many values);
# zstd level 1 (level 3: 15% more CPU for 0.1% smaller; negative levels: 7% less CPU, 30% bigger);
# min/max statistics on fixed-width columns and on the key and cursor, not on other strings (where
# they cost about a tenth of all encoding and nothing here reads them).
DICTIONARY_MAX_SHARE = 0.1
ZSTD_LEVEL = 1
_ENCODERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="s3rs-encode")


def data_key(info: TableInfo, start: Position, sortable: str = "") -> str:
    """data/<db>/<table>/part-<start timestamp>-<start key>.parquet, sorting in position order.
    `sortable`: a composite or text start key as keyset.sortable_key spells it."""
    return part_key(info.name, start.timestamp, _key_part(info, start.key, sortable))


def spelled_by_sort_order(info: TableInfo, start: Position) -> bool:
    """Whether a file starting at `start` spells its start key in MySQL's sort order
    (keyset.sortable_key, the `sortable` of data_key): every key but a one-column integer one."""
    return bool(start.key) and start.timestamp is not None and not info.integer_key


def start_text(info: TableInfo, start: Position, sortable: str = "") -> str:
    """A start position as part file names spell it (data_key's name without the folder)."""
    return position_text(start.timestamp, _key_part(info, start.key, sortable))


def _key_part(info: TableInfo, key: KeyParts | None, sortable: str) -> str:
    if not key and key is not None:  # no key: after every row at the timestamp
        return "9" * 20 + "-after"
    if key is not None and sortable:  # in key order; past _LONGEST_KEY_PART, cut and made distinct
        if len(sortable) <= _LONGEST_KEY_PART:
            return "k" + sortable
        return f"k{sortable[:_LONGEST_KEY_PART - 20]}-{hashlib.sha1(sortable.encode()).hexdigest()[:19]}"
    return key_spelling(None if key is None else cast(int, key[0]), info.integer_key)  # typed on opening


class WriterChoices:
    """Per-column Parquet settings for one run: measured on its first row group, then kept, so
    every file of the run is written alike. `keep_statistics`: string columns that keep min/max
    (the key and the cursor)."""

    def __init__(self, keep_statistics: tuple[str, ...] = ()):
        self.keep_statistics = keep_statistics
        self._options: dict | None = None

    def options(self, sample: pa.Table) -> dict:
        if self._options is None:
            self._options = writer_options(sample, self.keep_statistics)
        return self._options


def writer_options(sample: pa.Table, keep_statistics: tuple[str, ...] = ()) -> dict:
    """ParquetWriter keywords for files holding rows like `sample` (see DICTIONARY_MAX_SHARE)."""
    rows = sample.num_rows
    dictionary = [name for name in sample.column_names
                  if pc.count_distinct(sample.column(name)).as_py() < rows * DICTIONARY_MAX_SHARE]
    statistics = [field.name for field in sample.schema
                  if not variable_width(field.type) or field.name in keep_statistics]
    return {"compression": "zstd", "compression_level": ZSTD_LEVEL, "use_dictionary": dictionary,
            "write_statistics": statistics}


class ParquetFile:
    """One data file being written: chunks go in as they arrive, buffered into row groups of
    budget.row_group_rows (64k rows unless the memory guard shrank it), each encoded by the pool
    while the next one fills, so memory holds at most two row groups whatever the file size.
    Timestamps in microseconds (nanoseconds confuse Redshift and Spectrum). The footer records the
    longest value of each string and binary column."""

    def __init__(self, path: Path, schema: pa.Schema, budget: MemoryBudget, choices: WriterChoices):
        self.path, self.rows, self._budget, self._choices = path, 0, budget, choices
        self._writer: pq.ParquetWriter | None = None  # made with the first row group (choices need it)
        self._encoding: Future | None = None  # the row group being written
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._schema = schema
        self._longest = {f.name: 0 for f in schema if variable_width(f.type)}

    def add(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        while self._pending_rows >= self._budget.row_group_rows:
            self._flush(self._budget.row_group_rows)
        failpoint("mid-file")

    def _flush(self, rows: int | None = None) -> None:
        """Hand a row group of `rows` pending rows (None: all of them) to the pool, once the row
        group before it is written. Row groups of exactly `rows` compress alike (chunks of other
        sizes would leave ragged ones)."""
        if self._pending_rows:
            table = pa.Table.from_batches(self._pending, schema=self._schema)
            rest = table.slice(table.num_rows if rows is None else rows)
            self._pending, self._pending_rows = rest.to_batches(), rest.num_rows
            self._wait()
            self._encoding = _ENCODERS.submit(self._write, table.slice(0, table.num_rows - rest.num_rows))

    def _write(self, table: pa.Table) -> None:
        """In a pool thread; only one at a time per file."""
        for name, longest in self._longest.items():
            self._longest[name] = max(longest, pc.max(pc.binary_length(table.column(name))).as_py() or 0)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema, coerce_timestamps="us",
                                            allow_truncated_timestamps=False, **self._choices.options(table))
        self._writer.write_table(table, row_group_size=table.num_rows)

    def _wait(self) -> None:
        """Until the row group in the pool is written; its error, if any, is raised here."""
        if self._encoding is not None:
            encoding, self._encoding = self._encoding, None
            encoding.result()

    @property
    def size(self) -> int:
        """Bytes written so far (row groups already encoded)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self, metadata: dict[str, str] | None = None) -> None:
        """Finish the file; `metadata`: more footer keys (reconcile's fix files say when they were made)."""
        self._flush()
        self._wait()
        if self._writer is None:  # no rows: an empty file with the schema
            self._writer = pq.ParquetWriter(self.path, self._schema, coerce_timestamps="us",
                                            allow_truncated_timestamps=False)
        self._writer.add_key_value_metadata({LONGEST_KEY: json.dumps(self._longest), **(metadata or {})})
        self._writer.close()

    def abandon(self) -> None:
        """Discard a file that will not be stored (the run stopped on an error)."""
        try:
            if self._encoding is not None:
                self._encoding.exception()  # wait; the error that stopped the run is raised elsewhere
            if self._writer is not None:
                self._writer.close()
        finally:
            self.path.unlink(missing_ok=True)
