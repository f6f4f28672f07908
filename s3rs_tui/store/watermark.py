"""The watermark: a JSON document in the store saying how far a table is backed up.

It is written after, and only after, the file it covers is stored, always as one atomic object
write, so position and counters can never disagree. A document that does not parse is never
overwritten silently: reading it raises WatermarkError and only `force-reset` replaces it.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

from s3rs_tui.runtime.errors import WatermarkError
from s3rs_tui.runtime.keys import Key, KeyParts, KeyValue, shown_key
from s3rs_tui.store.base import ObjectStore
from s3rs_tui.store.layout import legacy_text_start, start_timestamp

STATE_PREFIX = "_state/"
EPOCH = "1970-01-01 00:00:00"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def commits(self, part_file: str) -> bool:
        """Whether a part file (its store key) is covered by this watermark: stored before the
        watermark was saved past it, so loaders and restore may read it. Part file names sort in
        position order and last_s3_file is the newest committed one."""
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

    @property
    def key_names(self) -> tuple[str, ...] | None:
        """The key columns it was made with (None: not recorded yet)."""
        return None if self.key_column is None else tuple(filter(None, self.key_column.split(",")))

    @property
    def shown_id(self) -> Key:
        return shown_key(self.position_key)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, default=str).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "Watermark":
        try:
            document = json.loads(data)
            known = {f.name for f in fields(cls)}
            if not isinstance(document, dict) or "table_name" not in document:
                raise ValueError("not a watermark document")
            watermark = cls(**{k: v for k, v in document.items() if k in known})
            _check_types(watermark)
            return watermark
        except (ValueError, TypeError) as exc:
            raise WatermarkError(
                f"watermark {where} is corrupt ({exc}); fix it, or replace it with "
                "`s3rs watermark force-reset` or `watermark set`") from None


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
