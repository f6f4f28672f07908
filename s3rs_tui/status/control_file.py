"""Pause, resume and stop a run from another process (`s3rs watch`) through the state folder:

    $S3RS_STATE_DIR (default ~/.s3rs)/control/<db>.<table>.json   {"action", "pid", "at"}

`watch` writes the request atomically; the run polls it (a thread, twice a second) and sets its
RunControl as a signal handler would, so the engine obeys at its next file boundary with the
watermark exact. A request names the process it is for and is obeyed only once and only when
written after the run started, so a leftover file never steers a later run.
"""

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from s3rs_tui.runtime.control import RunControl
from s3rs_tui.status.snapshot import state_dir, write_atomic

ACTIONS = ("pause", "resume", "stop")


def control_dir() -> Path:
    return state_dir() / "control"


def send_request(table: str, action: str, pid: int, folder: Path | None = None) -> Path:
    """Ask the run of `table` in process `pid` to pause, resume or stop."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    path = (folder or control_dir()) / f"{table}.json"
    write_atomic(path, json.dumps({"action": action, "pid": pid, "at": time.time()}).encode())
    return path


class ControlFileWatcher:
    """Polls the request files of `tables` for this process and applies them to `control`."""

    def __init__(self, control: RunControl, tables: Iterable[str], folder: Path | None = None,
                 interval: float = 0.5):
        self.control, self.tables, self.interval = control, list(tables), interval
        self.folder = folder or control_dir()
        self.seen = time.time()  # requests written before the run are not for it
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="s3rs-control-file", daemon=True)

    def __enter__(self) -> "ControlFileWatcher":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        for table in self.tables:
            try:
                request = json.loads((self.folder / f"{table}.json").read_bytes())
                action, pid, at = request["action"], int(request["pid"]), float(request["at"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if pid != os.getpid() or at <= self.seen:
                continue
            self.seen = at
            if action == "pause":
                self.control.pause()
            elif action == "resume":
                self.control.resume()
            elif action == "stop":
                self.control.request_stop(f"s3rs watch (a request in {self.folder})")
