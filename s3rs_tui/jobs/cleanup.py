"""A table's data files in the store, and deleting old ones.

Files not yet loaded into the warehouse are the backup itself: a cleanup keeps them unless forced.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.parsing import parse_duration
from s3rs_tui.store import ObjectInfo, ObjectStore, open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore


@dataclass(frozen=True)
class StoredFile:
    info: ObjectInfo
    loaded: bool  # recorded by the warehouse load in the watermark's processed_s3_files

    def as_dict(self) -> dict:
        return {"key": self.info.key, "size": self.info.size, "modified": self.info.modified.isoformat(),
                "loaded": self.loaded}


@dataclass(frozen=True)
class TableFiles:
    store: ObjectStore
    name: str
    files: list[StoredFile]


@dataclass(frozen=True)
class CleanupPlan:
    doomed: list[StoredFile]
    kept: list[StoredFile]  # not loaded yet, and not forced

    @property
    def size(self) -> int:
        return sum(f.info.size for f in self.doomed)


def cutoff(older_than: str | None, now: datetime | None = None) -> datetime | None:
    """The modification time before which files qualify; None means every file."""
    if older_than is None or not older_than.strip():
        return None
    try:
        return (now or datetime.now(UTC)) - parse_duration(older_than)
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from None


def table_files(settings: Settings, table: str) -> TableFiles:
    """Every data file of the table, with whether the warehouse has loaded it."""
    database, name, _ = settings.table(table)
    full_name = f"{database}.{name}"
    store = open_store(settings)
    watermark = WatermarkStore(store).get(full_name)
    loaded = set(watermark.processed_s3_files) if watermark else set()
    files = [StoredFile(info, info.key in loaded) for info in store.list(table_prefix(full_name))]
    return TableFiles(store, full_name, files)


def older(files: list[StoredFile], before: datetime | None) -> list[StoredFile]:
    return [f for f in files if before is None or f.info.modified < before]


def plan_cleanup(files: list[StoredFile], force: bool) -> CleanupPlan:
    return CleanupPlan([f for f in files if f.loaded or force], [f for f in files if not (f.loaded or force)])


def delete_files(store: ObjectStore, files: list[StoredFile],
                 progress: Callable[[int, int], object] = lambda done, total: None,
                 stop: Callable[[], bool] = lambda: False) -> int:
    """Delete one by one, reporting (done, total) after each; `stop()` ends it early. Returns how
    many were deleted."""
    done = 0
    for stored in files:
        if stop():
            break
        store.delete(stored.info.key)
        done += 1
        progress(done, len(files))
    return done
