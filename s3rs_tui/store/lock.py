"""One run per table: a lock object in the store, created only if absent, kept alive by a heartbeat.

Taking a lock is `create` (S3: PUT If-None-Match). A lock is stale when its heartbeat is older than
`stale_seconds`, or when it belongs to a process on this host that no longer exists (a run killed
with -9); a stale lock is taken over with compare-and-swap on its tag, so two runs that both see it
stale cannot both win. `--break-lock` removes any lock. Because the lock lives in the store, runs on
different hosts sharing one bucket exclude each other too.
"""

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from s3rs_tui.runtime.errors import TableLockedError
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.store.base import ObjectStore
from s3rs_tui.store.watermark import STATE_PREFIX


@dataclass
class LockInfo:
    owner: str       # host:pid, for people
    host: str
    pid: int
    run_id: str
    purpose: str     # "sync", "watermark set"...
    started_at: float
    heartbeat_at: float

    def describe(self) -> str:
        age = time.time() - self.heartbeat_at
        return (f"{self.purpose} run {self.run_id} on {self.owner}, "
                f"started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.started_at))}, "
                f"last heartbeat {age:.0f}s ago")


def lock_key(table: str) -> str:
    return f"{STATE_PREFIX}locks/{table}.lock"


def _parse(document: bytes) -> LockInfo | None:
    try:
        return LockInfo(**json.loads(document))
    except (ValueError, TypeError):
        return None


def read_lock(store: ObjectStore, table: str) -> LockInfo | None:
    """Who holds the table's lock now (None when nobody, or when the document is unreadable)."""
    found = store.get_bytes(lock_key(table))
    return _parse(found[0]) if found else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LockLost:
    """Whether the run must stop committing: another run took the lock, or no heartbeat got through
    for `after` seconds (half the stale time: past the stale time another run may take it; the
    other half is the margin for a commit already on its way). Read with `is_set()`, like the Event
    it stands for."""

    def __init__(self, after: float):
        self._taken = threading.Event()
        self._after = after
        self.beat_at = time.monotonic()  # when the last heartbeat that got through was sent

    def set(self) -> None:
        self._taken.set()

    def is_set(self) -> bool:
        return self._taken.is_set() or time.monotonic() - self.beat_at > self._after

    @property
    def reason(self) -> str:
        if self._taken.is_set():
            return "the table lock was taken by another run (--break-lock?)"
        return (f"no lock heartbeat got through to the store for {time.monotonic() - self.beat_at:.0f}s, "
                "so another run may take the table")


class TableLock:
    """Context manager: `with TableLock(store, table, ...) as lock:`; `lock.lost` turns true if
    another process broke it or the heartbeats stopped getting through, so the engine stops before
    its next commit."""

    def __init__(self, store: ObjectStore, table: str, *, purpose: str = "sync", stale_seconds: int = 120,
                 break_lock: bool = False, heartbeat_seconds: float | None = None):
        self.store, self.table, self.purpose = store, table, purpose
        self.stale_seconds, self.break_lock = stale_seconds, break_lock
        self.heartbeat_seconds = heartbeat_seconds or max(1.0, stale_seconds / 4)
        self.run_id = uuid.uuid4().hex[:12]
        self.lost = LockLost(max(stale_seconds / 2, 2 * self.heartbeat_seconds))
        self._tag = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _document(self, started_at: float) -> bytes:
        info = LockInfo(owner=f"{socket.gethostname()}:{os.getpid()}", host=socket.gethostname(),
                        pid=os.getpid(), run_id=self.run_id, purpose=self.purpose,
                        started_at=started_at, heartbeat_at=time.time())
        return json.dumps(asdict(info)).encode()

    def is_stale(self, info: LockInfo | None) -> bool:
        if info is None:  # unreadable lock document: only a crash mid-write makes one
            return True
        if info.host == socket.gethostname() and not pid_alive(info.pid):
            return True
        return time.time() - info.heartbeat_at > self.stale_seconds

    def acquire(self) -> "TableLock":
        key, started = lock_key(self.table), time.time()
        if self.break_lock:
            self.store.delete(key)
        document = self._document(started)
        tag = self.store.create(key, document)
        if tag is None:
            found = self.store.get_bytes(key)
            info = _parse(found[0]) if found else None
            if info is not None and not self.is_stale(info):  # (no document or none readable: stale)
                raise TableLockedError(f"{self.table} is locked by {info.describe()}; "
                                       "wait for it, or use --break-lock if that run is dead")
            tag = self.store.replace(key, document, found[1]) if found else self.store.create(key, document)
            if tag is None:
                raise TableLockedError(f"{self.table} was locked by another run just now; try again")
        self._tag, self._started = tag, started
        self.lost.beat_at = time.monotonic()
        self._thread = threading.Thread(target=self._heartbeat, name=f"lock-{self.table}", daemon=True)
        self._thread.start()
        return self

    def _heartbeat(self) -> None:
        key = lock_key(self.table)
        wait = self.heartbeat_seconds
        while not self._stop.wait(wait):
            sent, wait = time.monotonic(), min(1.0, self.heartbeat_seconds)  # after a hiccup: again soon
            try:
                failpoint("lock-heartbeat")
                tag = self.store.replace(key, self._document(self._started), self._tag) or self._own_tag()
                if tag is None:
                    self.lost.set()
                    return
                self._tag, self.lost.beat_at, wait = tag, sent, self.heartbeat_seconds
            except Exception:  # noqa: BLE001 - a store hiccup; `lost` counts the time without a beat
                continue

    def _own_tag(self) -> str | None:
        """The lock's tag if it is still this run's: a beat whose answer was lost (a timeout) may
        have landed, changing the tag under us."""
        found = self.store.get_bytes(lock_key(self.table))
        info = _parse(found[0]) if found else None
        return found[1] if found and info and info.run_id == self.run_id and info.pid == os.getpid() else None

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if not self.lost.is_set():
            found = self.store.get_bytes(lock_key(self.table))
            if found and found[1] == self._tag:
                self.store.delete(lock_key(self.table))

    def __enter__(self) -> "TableLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
