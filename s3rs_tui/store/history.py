"""A table's history besides sync's part files: reconcile's fix and deletion files.

`s3rs reconcile` stores, next to the part files under data/<db>/<table>/:
- fix-<stamp>-<nnnn>.parquet: rows re-read from MySQL (changed without their cursor moving, or
  missing below the watermark), written like a part file;
- del-<stamp>-<nnnn>.parquet: keys gone from MySQL, the key column(s) plus `_s3rs_found_at`.
Both carry the footer key `s3rs.reconcile`: when they were found, and the table's watermark then.
<stamp> is found_at in UTC (YYYYMMDDTHHMMSSffffff) and <nnnn> a sequence within the run, so names
sort in the order written and a rerun of the same run overwrites rather than duplicates.

Files apply in position order: part files by their start position, fix and deletion files at the
watermark position they record (after every part file starting before it), among themselves by
name. The warehouse loader and restore both follow that order (see also the "as of" rules in
README, Reconcile).
"""

import json
import posixpath
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.keys import Key, KeyValue
from s3rs_tui.store.base import ObjectInfo, ObjectStore
from s3rs_tui.store.layout import key_spelling, position_text, table_prefix

PART, FIX, DELETION = "part", "fix", "del"
MARK_KEY = "s3rs.reconcile"        # footer key of fix and deletion files
FOUND_AT = "_s3rs_found_at"        # deletion files: when the key was found gone
_STAMP = "%Y%m%dT%H%M%S%f"
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Mark:
    """When a reconcile run found what it stores, and the table's watermark position then."""

    found_at: datetime               # timezone-aware UTC
    timestamp: str                   # the watermark's cursor value
    key: Key | list[KeyValue]        # the watermark's key, a composite one as a list (None: a
                                     # watermark set to a time alone)
    spelled: str | None = None       # the watermark as part file names spell positions (engine)

    @property
    def stamp(self) -> str:
        return self.found_at.astimezone(UTC).strftime(_STAMP)

    def to_json(self) -> str:
        spelled = {} if self.spelled is None else {"position": self.spelled}
        return json.dumps({"found_at": self.found_at.astimezone(UTC).isoformat(),
                           "watermark": [self.timestamp, self.key], **spelled})

    @classmethod
    def from_json(cls, text: str | bytes) -> "Mark":
        document = json.loads(text)
        timestamp, key = document["watermark"]
        found_at = datetime.fromisoformat(document["found_at"])
        if found_at.tzinfo is None:
            raise ValueError("found_at has no time zone")
        parts = key if isinstance(key, list) else [] if key is None else [key]
        if not isinstance(timestamp, str) or not all(isinstance(k, int | str) for k in parts):
            raise ValueError("watermark must be [cursor text, key]")
        spelled = document.get("position")
        if not (spelled is None or isinstance(spelled, str)):
            raise ValueError("position must be text")
        return cls(found_at.astimezone(UTC), timestamp, key, spelled)

    def footer(self) -> dict[str, str]:
        return {MARK_KEY: self.to_json()}

    def position(self) -> str:
        """The recorded watermark as part file names spell positions: as the engine spelled it,
        or, in marks written before it did, from the key (integer keys as JSON ints)."""
        if self.spelled is not None:
            return self.spelled
        assert not isinstance(self.key, list)  # composite keys came after marks spelled positions
        return position_text(self.timestamp, key_spelling(self.key, isinstance(self.key, int)))


def history_key(table_name: str, kind: str, mark: Mark, sequence: int) -> str:
    """data/<db>/<table>/<fix|del>-<stamp>-<nnnn>.parquet."""
    if kind not in (FIX, DELETION):
        raise ValueError(f"not a history file kind: {kind}")
    return f"{table_prefix(table_name)}{kind}-{mark.stamp}-{sequence:04d}.parquet"


def kind_of(key: str) -> str | None:
    """part, fix or del for a table's Parquet files; None for anything else."""
    name = posixpath.basename(key)
    kind = name.split("-", 1)[0]
    return kind if name.endswith(".parquet") and kind in (PART, FIX, DELETION) else None


def sequence_of(key: str) -> int:
    return int(posixpath.basename(key)[:-len(".parquet")].rsplit("-", 1)[1])


def stamp_of(key: str) -> str:
    """The run stamp in a fix or deletion file's name."""
    return posixpath.basename(key).split("-")[1]


def run_files(stored: list[ObjectInfo], mark: Mark) -> list[ObjectInfo]:
    """The fix and deletion files one run (its found_at) has stored so far."""
    return [info for info in stored
            if kind_of(info.key) in (FIX, DELETION) and stamp_of(info.key) == mark.stamp]


FOUND_AT_FIELD = pa.field(FOUND_AT, pa.timestamp("us", tz="UTC"), nullable=False)


def write_deletions(path: Path, keys: pa.Table, mark: Mark) -> None:
    """A deletion file at `path`: the key column(s) of `keys` (typed as in the data files) and
    when they were found gone."""
    found = pa.array([mark.found_at] * keys.num_rows, FOUND_AT_FIELD.type)
    table = keys.append_column(FOUND_AT_FIELD, found)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{k.encode(): v.encode() for k, v in mark.footer().items()}})
    pq.write_table(table, path, compression="zstd", coerce_timestamps="us")


def read_mark(store: ObjectStore, key: str) -> Mark:
    """The mark of a fix or deletion file, from its footer alone (one ranged read)."""
    tail = store.get_tail(key, _TAIL_BYTES)
    if tail is None or len(tail) < 12 or tail[-4:] != b"PAR1":
        raise S3rsError(f"history file {key} is missing or damaged (not a whole Parquet file)")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 8 > len(tail):
        tail = store.get_tail(key, length + 8) or b""
    metadata = pq.ParquetFile(BytesIO(b"PAR1" + tail[-(length + 8):])).metadata.metadata or {}
    return mark_from_footer(metadata, key)


def mark_from_footer(metadata: dict[bytes, bytes], where: str) -> Mark:
    found = metadata.get(MARK_KEY.encode())
    if found is None:
        raise S3rsError(f"history file {where} has no {MARK_KEY} footer key: it was not written by reconcile")
    try:
        return Mark.from_json(found)
    except (ValueError, KeyError, TypeError) as exc:
        raise S3rsError(f"history file {where}: footer key {MARK_KEY} is damaged ({exc})") from None


def read_deletions(path: Path) -> pa.Table:
    """The keys and found_at of a deletion file (a local copy: the store's download())."""
    return pq.read_table(path)


def position_order(stored: list[ObjectInfo], marks: dict[str, Mark]) -> list[ObjectInfo]:
    """Part, fix and deletion files in the order they apply: part files by start position, fix and
    deletion files at their mark's position, before any part file starting there (that file holds
    rows after it), among themselves in the order written: stamp, then sequence (one counter for
    both kinds within a run; fix before deletion should two share a number). `marks` holds
    the mark of every fix and deletion file in `stored` (read_mark)."""
    rank = {FIX: "0", DELETION: "1"}

    def order(info: ObjectInfo) -> tuple[str, str, str]:
        kind = kind_of(info.key)
        name = posixpath.basename(info.key)
        if kind == PART:
            return name[len("part-"):-len(".parquet")], "1", ""
        written = f"{stamp_of(info.key)}{sequence_of(info.key):08d}{rank[name[:3]]}"
        return marks[info.key].position(), "0", written

    return sorted((info for info in stored if kind_of(info.key)), key=order)
