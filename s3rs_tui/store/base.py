"""The object-store interface every backend implements: a local folder or S3.

Keys are '/'-separated relative paths. Writes are atomic: readers see the whole old object or the
whole new one, never a part. `tag` is an opaque version (the S3 ETag, a content hash locally) used
for compare-and-swap on small state objects such as locks.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware UTC


class ObjectStore(Protocol):
    url: str  # where it lives, for people: '/abs/path' or 's3://bucket/prefix'

    def scratch_dir(self) -> Path:
        """A local folder for files on their way into the store (same filesystem when local)."""

    def put_file(self, key: str, path: Path) -> int:
        """Store a local file under `key` durably, consuming `path`; returns the stored size."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Atomically replace `key` with `data`."""

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """(data, tag), or None when the key does not exist."""

    def get_tail(self, key: str, length: int) -> bytes | None:
        """The last `length` bytes (all of a smaller object), or None when the key does not exist:
        enough to read a Parquet footer without fetching the file."""

    def download(self, key: str, path: Path) -> None:
        """Copy `key` into the local file `path` (for reading large files without holding them in
        memory)."""

    def create(self, key: str, data: bytes) -> str | None:
        """Write `key` only if absent; its new tag, or None when it already exists."""

    def replace(self, key: str, data: bytes, tag: str) -> str | None:
        """Write `key` only if its current tag is `tag`; the new tag, or None when it changed or
        vanished."""

    def delete(self, key: str) -> None:
        """Remove `key`; no error if it is already gone."""

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in key order."""
