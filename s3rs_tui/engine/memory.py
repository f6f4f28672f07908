"""Memory: resident size of this process (Linux /proc, no deps), the allocator, and the guard that
keeps a run under memory_limit_mb."""

import ctypes
import functools
import gc
import os
import platform
import resource
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1024**2
_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def _glibc() -> ctypes.CDLL | None:
    """glibc's malloc controls, where this Python runs on glibc (not on musl or macOS)."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_MB
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """ru_maxrss is in KB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@functools.cache
def use_compact_allocators() -> None:
    """Allocators that give memory back; both choices are process-wide, so made once per process.

    Arrow's default mimalloc pool keeps freed pages: ~50 MB more peak RSS on a 1M-row run than
    jemalloc (measured), so jemalloc, else the system allocator. glibc gives every new thread a new
    malloc arena (up to 8 per core) whose freed memory other threads do not reuse, and connectorx
    runs each page's query in new threads: a 10M-row connectorx sync grew to 502 MB peak RSS; with
    two arenas, 376 MB at the same speed (measured)."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, 2)


def release_free_memory() -> None:
    """Hand freed memory back to the system: Python's garbage, Arrow's cached pages, glibc's arenas."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_FLOOR_ROWS = 500


@dataclass
class MemoryBudget:
    """How much a run holds at once; the guard halves it under memory pressure, mid-run."""

    batch_size: int                  # rows per keyset query
    chunk_rows: int = 10_000         # rows converted to Arrow at once
    # Rows buffered before a Parquet row group is encoded; two are held at once (one filling, one
    # encoding). 64k rows encode as fast as 128k and the files are 1% bigger (measured).
    row_group_rows: int = 65_536

    def halve(self) -> bool:
        """Halve everything that can still shrink; False when all are at their floor."""
        before = (self.batch_size, self.chunk_rows, self.row_group_rows)
        self.batch_size = max(_FLOOR_ROWS, self.batch_size // 2)
        self.chunk_rows = max(_FLOOR_ROWS, self.chunk_rows // 2)
        self.row_group_rows = max(_FLOOR_ROWS, self.row_group_rows // 2)
        return before != (self.batch_size, self.chunk_rows, self.row_group_rows)


class MemoryGuard:
    """Checks RSS every `check_every` chunks. Past `gc_threshold` of the limit it frees what it
    can (release_free_memory); still over the limit, it halves the budget for the rest of the run
    and says so through `notify`."""

    def __init__(self, budget: MemoryBudget, limit_mb: int, gc_threshold: float, check_every: int,
                 notify: Callable[[str], None]):
        self.budget, self.limit_mb, self.gc_threshold = budget, limit_mb, gc_threshold
        self.check_every, self.notify = check_every, notify
        self._chunks = 0

    def after_chunk(self) -> None:
        self._chunks += 1
        if self._chunks % self.check_every:
            return
        rss = rss_mb()
        if rss < self.limit_mb * self.gc_threshold:
            return
        release_free_memory()
        rss = rss_mb()
        if rss > self.limit_mb and self.budget.halve():
            self.notify(f"RSS {rss:.0f} MB is over memory_limit_mb {self.limit_mb}: batch size halved to "
                        f"{self.budget.batch_size:,} rows (chunks {self.budget.chunk_rows:,}, row groups "
                        f"{self.budget.row_group_rows:,}) for the rest of this run")
