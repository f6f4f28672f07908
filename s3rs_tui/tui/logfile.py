"""The dashboard's log file: everything the Log pane shows, plus tracebacks the screen never shows.

One file per dashboard session, in the state folder: $S3RS_STATE_DIR (default ~/.s3rs)/logs/.
Lines come from the engine's thread, the UI and signal handlers, so writing is locked (re-entrant:
a signal handler may interrupt a write on the main thread).
"""

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from s3rs_tui.runtime.private import open_private
from s3rs_tui.status.snapshot import state_dir


def new_log_path(folder: Path | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return (folder or state_dir() / "logs") / f"dashboard-{stamp}-{os.getpid()}.log"


class RunLog:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path, self.clock = path, clock
        self._lock = threading.RLock()
        self._pending: deque[str] = deque()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open_private(path, "a", buffering=1, encoding="utf-8")

    def stamp(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.clock()))

    def write(self, text: str) -> None:
        """A line for the Log pane and the file."""
        line = f"{self.stamp()} {text}"
        with self._lock:
            self._pending.append(line)
            self._write_file(line + "\n")

    def detail(self, text: str) -> None:
        """File only: tracebacks and other detail that must not reach the screen."""
        with self._lock:
            self._write_file(f"{self.stamp()} {text.rstrip()}\n")

    def _write_file(self, text: str) -> None:
        with suppress(OSError, ValueError):  # a full disk or a closed file must not stop the backup
            self._file.write(text)

    def drain(self) -> list[str]:
        """Lines written since the last drain, for the Log pane."""
        with self._lock:
            lines = list(self._pending)
            self._pending.clear()
        return lines

    def close(self) -> None:
        with self._lock:
            self._file.close()
