"""A table's data files as the loader sees them: committed or not, loaded or not, and what they hold.

Only files the watermark covers are committed: names sort in cursor order and the watermark's
`last_s3_file` is the last committed one, so a file sorting after it was stored by a run that died
before saving its watermark; the next sync rewrites it, and until then it is not loaded. A file
after it that is older than the watermark itself was left by the runs before a reset, not by a
stopped run: it is not loaded either, and said so in those words. Which files the watermark
covers is Watermark.commits's to say.
"""

import json
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO

import pyarrow as pa
import pyarrow.parquet as pq

from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.store import ObjectInfo, ObjectStore
from s3rs_tui.store.history import DELETION, FIX, PART, Mark, kind_of, mark_from_footer, position_order
from s3rs_tui.store.layout import LONGEST_KEY
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.warehouse.ledger import LedgerEntry
from s3rs_tui.warehouse.typemap import Column, file_columns

_TAIL_BYTES = 64 * 1024  # one request reads the footer of almost every file
_READ_ROWS = 65_536


@dataclass(frozen=True)
class DataFile:
    """A committed file about to be loaded, with its columns and rows read from its footer."""

    info: ObjectInfo
    columns: tuple[Column, ...]
    rows: int
    longest: dict[str, int] | None = None  # bytes of the longest string/binary values; None: not recorded
    mark: Mark | None = None  # reconcile's fix and deletion files: when they were found, the watermark then

    @property
    def kind(self) -> str:
        """part (sync), fix or del (reconcile): see store/history.py."""
        return kind_of(self.info.key) or PART


@dataclass
class LoadPlan:
    todo: list[ObjectInfo] = field(default_factory=list)         # committed, not loaded (or rewritten)
    rewritten: list[str] = field(default_factory=list)           # loaded once, since replaced
    uncommitted: list[str] = field(default_factory=list)         # after the watermark's last file
    left_over: list[str] = field(default_factory=list)           # the same, but older than the watermark
    watermark_made: str = ""                                     # when the watermark was made (reset)
    missing: list[str] = field(default_factory=list)             # loaded, no longer in the store
    unknown: list[str] = field(default_factory=list)             # watermark says loaded, ledger does not

    def notices(self, target: str) -> list[str]:
        notes = []
        if self.uncommitted:
            notes.append(f"{len(self.uncommitted)} stored files after the watermark's last file are not "
                         f"committed (a run stopped between storing and saving the watermark): not loaded; "
                         f"the next sync rewrites them ({self.uncommitted[0]})")
        if self.left_over:
            notes.append(f"{len(self.left_over)} stored files after the watermark's last file are older "
                         f"than the watermark (made {self.watermark_made}, by a reset?): not loaded; a sync "
                         f"reaching them rewrites them, `s3rs s3clean` removes them ({self.left_over[0]})")
        if self.rewritten:
            notes.append(f"{len(self.rewritten)} files were rewritten since {target} loaded them "
                         f"(watermark reset?): loading them again ({self.rewritten[0]})")
        if self.missing:
            notes.append(f"{len(self.missing)} files loaded into {target} are no longer in the store "
                         f"(s3clean?); their rows stay in the warehouse ({self.missing[0]})")
        if self.unknown:
            notes.append(f"{len(self.unknown)} files the watermark lists as loaded are not in the ledger of "
                         f"{target} (a new or restored warehouse?): loading them ({self.unknown[0]})")
        return notes


def plan_load(stored: list[ObjectInfo], ledger: dict[str, LedgerEntry], watermark: Watermark) -> LoadPlan:
    """Which stored files to load, in key order, and what the operator should hear about."""
    plan = LoadPlan(watermark_made=watermark.created_at)
    made = _parse_utc(watermark.created_at)
    for info in stored:
        kind = kind_of(info.key)
        if kind is None:
            continue
        if kind == PART and not watermark.commits(info.key):  # fix and del files: stored whole, committed
            (plan.left_over if made and info.modified < made else plan.uncommitted).append(info.key)
            continue
        entry = ledger.get(info.key)
        if entry is None or not entry.matches(info):
            plan.todo.append(info)
            if entry is not None:
                plan.rewritten.append(info.key)
    keys = {info.key for info in stored}
    plan.missing = sorted(key for key in ledger if key not in keys)
    plan.unknown = sorted(key for key in watermark.processed_s3_files if key in keys and key not in ledger)
    return plan


def _parse_utc(stamp: str) -> datetime | None:
    """utc_now()'s format, to the second; None for anything else (then no file counts as older)."""
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def loaded_mirror(stored: list[ObjectInfo], ledger: dict[str, LedgerEntry]) -> list[str]:
    """What the watermark's processed_s3_files should say: files whose stored version is loaded,
    and loaded files since removed from the store."""
    current = {info.key: info for info in stored}
    return sorted(key for key, entry in ledger.items() if key not in current or entry.matches(current[key]))


def read_footer(store: ObjectStore, info: ObjectInfo) -> DataFile:
    """Columns and row count from the Parquet footer alone (one small ranged read)."""
    tail = store.get_tail(info.key, _TAIL_BYTES)
    if tail is None:
        raise S3rsError(f"data file {info.key} vanished from the store while loading")
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise S3rsError(f"data file {info.key} is damaged (truncated? it does not end as a Parquet file): "
                        "nothing was loaded; restore it, or make it again from MySQL (README: Faults, "
                        "a damaged data file)")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 8 > len(tail):
        tail = store.get_tail(info.key, length + 8) or b""
    footer = pq.ParquetFile(BytesIO(b"PAR1" + tail[-(length + 8):]))  # the footer alone is enough
    metadata = footer.metadata.metadata or {}
    recorded = metadata.get(LONGEST_KEY.encode())
    mark = mark_from_footer(metadata, info.key) if kind_of(info.key) in (FIX, DELETION) else None
    return DataFile(info, file_columns(footer.schema_arrow), footer.metadata.num_rows,
                    json.loads(recorded) if recorded else None, mark)


def apply_order(files: list[DataFile]) -> list[DataFile]:
    """Files in the order they apply (store/history.py): part files by start position, reconcile's
    files at the watermark position they record."""
    by_key = {f.info.key: f for f in files}
    marks = {f.info.key: f.mark for f in files if f.mark is not None}
    return [by_key[info.key] for info in position_order([f.info for f in files], marks)]


def read_batches(store: ObjectStore, key: str) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches, through a local copy, so memory holds one batch at a time."""
    path = store.scratch_dir() / f"load-{uuid.uuid4().hex}.parquet"
    try:
        store.download(key, path)
        yield from pq.ParquetFile(path).iter_batches(batch_size=_READ_ROWS)
    finally:
        path.unlink(missing_ok=True)
