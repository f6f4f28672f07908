"""The watermark: a JSON document in the store saying how far a table is backed up.

It is written after, and only after, the file it covers is stored, always as one atomic object
write, so position and counters can never disagree. A document that does not parse is never
overwritten silently: reading it raises WatermarkError and only `force-reset` replaces it.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

from s3rs_tui.runtime.errors import TableError, WatermarkError
from s3rs_tui.runtime.keys import Key, KeyParts, KeyValue, shown_key
from s3rs_tui.store.base import ObjectStore
from s3rs_tui.store.layout import legacy_text_start, start_timestamp

STATE_PREFIX = "_state/"
RANGES = "ranges"
EPOCH = "1970-01-01 00:00:00"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CursorRange:
    """One range of a first backfill split over several processes (`progressive --parallel`): rows
    after `start` up to `end` inclusive (None: up to each run's bound, the last range), and the
    range's own position: the last row stored, the last file stored, what it stored so far.
    Positions are (timestamp, key list) as the watermark spells them; `first_file` is the name a
    file starting at `start` gets: every file of the range sorts at or after it."""

    start_timestamp: str | None
    start_key: list[KeyValue] | None
    end_timestamp: str | None
    end_key: list[KeyValue] | None
    first_file: str
    position_timestamp: str | None = None  # None: nothing stored yet, the range is at its start
    position_key: list[KeyValue] | None = None
    last_s3_file: str | None = None
    rows: int = 0
    files: int = 0
    done: bool = False

    @property
    def start(self) -> tuple[str | None, KeyParts | None]:
        return self.start_timestamp, None if self.start_key is None else tuple(self.start_key)

    @property
    def end(self) -> tuple[str, KeyParts] | None:
        return None if self.end_timestamp is None else (self.end_timestamp, tuple(self.end_key or ()))

    @property
    def position(self) -> tuple[str | None, KeyParts | None]:
        """Where the range's next read starts: after its last stored row, else at its start."""
        if self.last_s3_file is None:
            return self.start
        return self.position_timestamp, None if self.position_key is None else tuple(self.position_key)

    def stored(self, part_file: str, rows: int, timestamp: str | None, key: KeyParts | None) -> None:
        self.position_timestamp, self.position_key = timestamp, None if key is None else list(key)
        self.last_s3_file, self.rows, self.files = part_file, self.rows + rows, self.files + 1


@dataclass
class Watermark:
    """Field names are the ones operators of the older system know."""

    table_name: str
    last_mysql_data_timestamp: str | None = None   # cursor value of the last row stored
    last_mysql_data_id: Key = None              # key of the last row stored (ties on the cursor)
    last_mysql_extraction_time: str | None = None
    mysql_status: str = "pending"                  # pending | in_progress | success | interrupted | failed
    redshift_status: str = "pending"
    mysql_rows_extracted: int = 0
    redshift_rows_loaded: int = 0
    backup_strategy: str = "sequential"
    s3_file_count: int = 0
    processed_s3_files: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    last_s3_file: str | None = None
    cursor_column: str | None = None
    key_column: str | None = None                  # "id"; "emp_no,from_date"; "": the table has no key
    last_mysql_data_key: list[KeyValue] | None = None  # a composite key (one column: last_mysql_data_id)
    # A first backfill split into ranges (progressive --parallel); None: one cursor (the document
    # then has no "ranges" field at all, as before). While set, the position above is where the
    # split started and each range has its own; the counters are totals over the ranges.
    ranges: list[CursorRange] | None = None

    @property
    def has_position(self) -> bool:
        return self.last_mysql_data_timestamp is not None

    @property
    def position_key(self) -> KeyParts | None:
        """The last row's key as a tuple; () after a whole cursor value (no key); None = the rows
        AT the timestamp are still to come (`watermark set` without --id)."""
        if self.last_mysql_data_key is not None:
            return tuple(self.last_mysql_data_key)
        return None if self.last_mysql_data_id is None else (self.last_mysql_data_id,)

    def move_to(self, timestamp: str | None, key: KeyParts | None) -> None:
        """A one-column key stays in last_mysql_data_id, as before composite keys."""
        one = key is not None and len(key) == 1
        self.last_mysql_data_timestamp = timestamp
        self.last_mysql_data_id = key[0] if key is not None and one else None
        self.last_mysql_data_key = None if key is None or one else list(key)

    @property
    def ranges_open(self) -> bool:
        return self.ranges is not None

    @property
    def has_files(self) -> bool:
        """Some part file is committed (loaders and restore have something to read)."""
        return self.last_s3_file is not None or any(r.last_s3_file for r in self.ranges or ())

    def commits(self, part_file: str) -> bool:
        """Whether a part file (its store key) is covered by this watermark: stored before the
        watermark was saved past it, so loaders and restore may read it. Part file names sort in
        position order and last_s3_file is the newest committed one; while ranges are open, the
        range whose files the name sorts among answers with its own last file."""
        owner = next((r for r in reversed(self.ranges or ()) if r.first_file <= part_file), None)
        if owner is not None:
            return owner.last_s3_file is not None and part_file <= owner.last_s3_file
        last = self.last_s3_file
        if last is None:
            return False
        if part_file <= last:
            return True
        # Before text keys were spelled in sort order, two files starting at one cursor value sorted
        # either way: such a file counts as committed. Reading a file a stopped run left is safe
        # (its rewrite is read again); skipping a committed one would lose its rows.
        return ((legacy_text_start(part_file) or legacy_text_start(last))
                and start_timestamp(part_file) == start_timestamp(last))

    def collapse_ranges(self) -> None:
        """Every range is done: one cursor again, at the end of the whole span (the last range's
        position), its last file the newest of all."""
        ranges = self.ranges or []
        if not ranges or not all(r.done for r in ranges):
            raise ValueError("collapse_ranges: some range is not done")
        timestamp, key = ranges[-1].position
        self.move_to(timestamp, key)
        self.last_s3_file = max((r.last_s3_file for r in ranges if r.last_s3_file), default=self.last_s3_file)
        self.ranges = None

    def refuse_open_ranges(self, doing: str) -> None:
        """Commands that need one position (verify, reconcile, restore, sync, watermark set)
        refuse while a parallel first backfill is under way."""
        if self.ranges is not None:
            done = sum(r.done for r in self.ranges)
            raise TableError(f"{self.table_name} is in a parallel first backfill ({done} of "
                             f"{len(self.ranges)} ranges done): {doing} needs one watermark position; "
                             f"finish it first with `s3rs progressive {self.table_name}` (or "
                             "`s3rs watermark reset` to start over)")

    def document(self) -> dict:
        """The JSON document's fields; `ranges` only while there are some (older readers and
        older watermarks see the format they know)."""
        fields_ = asdict(self)
        if self.ranges is None:
            del fields_[RANGES]
        return fields_

    @property
    def key_names(self) -> tuple[str, ...] | None:
        """The key columns it was made with (None: not recorded yet)."""
        return None if self.key_column is None else tuple(filter(None, self.key_column.split(",")))

    @property
    def shown_id(self) -> Key:
        return shown_key(self.position_key)

    def to_json(self) -> bytes:
        return json.dumps(self.document(), indent=2, default=str).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Watermark":
        try:
            document = json.loads(data)
            known = {f.name for f in fields(cls)}
            if not isinstance(document, dict) or "table_name" not in document:
                raise ValueError("not a watermark document")
            watermark = cls(**{k: v for k, v in document.items() if k in known and k != RANGES})
            if document.get(RANGES) is not None:
                watermark.ranges = _ranges(document[RANGES])
            _check_types(watermark)
            return watermark
        except (ValueError, TypeError) as exc:
            raise WatermarkError(
                f"watermark {where} is corrupt ({exc}); fix it, or replace it with "
                "`s3rs watermark force-reset` or `watermark set`") from None


def _ranges(found: object) -> list[CursorRange]:
    if not isinstance(found, list) or not found or not all(isinstance(r, dict) for r in found):
        raise ValueError("ranges must be a list of ranges")
    known = {f.name for f in fields(CursorRange)}
    ranges = [CursorRange(**{k: v for k, v in r.items() if k in known}) for r in found]
    for r in ranges:
        if not isinstance(r.first_file, str) or not isinstance(r.done, bool):
            raise ValueError("a range needs first_file and done")
    return ranges


def _check_types(watermark: Watermark) -> None:
    for name in ("mysql_rows_extracted", "redshift_rows_loaded", "s3_file_count"):
        value = getattr(watermark, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    if watermark.last_mysql_data_timestamp is not None and not isinstance(
            watermark.last_mysql_data_timestamp, str):
        raise ValueError("last_mysql_data_timestamp must be a string")
    key = watermark.last_mysql_data_key
    if key is not None and (not isinstance(key, list) or
                            not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in key)):
        raise ValueError("last_mysql_data_key must be a list of key values")
    if not isinstance(watermark.processed_s3_files, list):
        raise ValueError("processed_s3_files must be a list")


class WatermarkStore:
    """Reads and writes watermarks (and reset backups) under `_state/watermarks/` in a store."""

    def __init__(self, store: ObjectStore):
        self.store = store

    @staticmethod
    def key(table: str) -> str:
        return f"{STATE_PREFIX}watermarks/{table}.json"

    def get(self, table: str) -> Watermark | None:
        found = self.store.get_bytes(self.key(table))
        return Watermark.from_json(found[0], self.where(table)) if found else None

    def get_or_new(self, table: str) -> Watermark:
        return self.get(table) or Watermark(table_name=table)

    def save(self, watermark: Watermark) -> None:
        watermark.updated_at = utc_now()
        self.store.put_bytes(self.key(watermark.table_name), watermark.to_json())

    def backup(self, table: str) -> str | None:
        """Copy the current document aside (as it is, even if corrupt); returns the backup key."""
        found = self.store.get_bytes(self.key(table))
        if not found:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup_key = f"{STATE_PREFIX}watermarks/backups/{table}.{stamp}.json"
        self.store.put_bytes(backup_key, found[0])
        return backup_key

    def latest_backup(self, table: str) -> tuple[str, Watermark] | None:
        keys = [info.key for info in self.store.list(f"{STATE_PREFIX}watermarks/backups/{table}.")]
        if not keys:
            return None
        data, _ = self.store.get_bytes(keys[-1]) or (b"", "")
        return keys[-1], Watermark.from_json(data, keys[-1])

    def tables(self) -> list[str]:
        prefix = f"{STATE_PREFIX}watermarks/"
        return [info.key[len(prefix):-len(".json")] for info in self.store.list(prefix)
                if info.key.endswith(".json") and "/" not in info.key[len(prefix):]]

    def where(self, table: str) -> str:
        return f"{self.store.url.rstrip('/')}/{self.key(table)}"
