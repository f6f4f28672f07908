"""The runs this dashboard has going: each a thread worker with its own RunControl. Plain Python,
so signal handlers and the exit path can stop and await them without the UI's event loop."""

import threading
from dataclasses import dataclass, field

from s3rs_tui.runtime.control import RunControl


@dataclass
class Run:
    tables: list[str]
    control: RunControl = field(default_factory=RunControl)
    done: threading.Event = field(default_factory=threading.Event)


class Runs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: list[Run] = []

    def start(self, tables: list[str]) -> Run:
        run = Run(list(tables))
        with self._lock:
            self._runs.append(run)
        return run

    def finish(self, run: Run) -> None:
        with self._lock:
            if run in self._runs:
                self._runs.remove(run)
        run.done.set()

    def active(self) -> list[Run]:
        with self._lock:
            return list(self._runs)

    def for_table(self, table: str) -> Run | None:
        return next((run for run in self.active() if table in run.tables), None)

    def stop_all(self, reason: str) -> None:
        for run in self.active():
            run.control.request_stop(reason)

    def wait_all(self, timeout: float | None = None) -> bool:
        """True when every run has ended (within `timeout` seconds each)."""
        return all(run.done.wait(timeout) for run in self.active())
