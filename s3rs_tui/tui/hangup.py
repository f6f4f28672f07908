"""SIGHUP (the terminal went away: an SSH drop without tmux) and SIGTERM in the dashboard: stop
every run gracefully (finish the file in flight, save the watermark), say so in the log file, exit.

The UI may be unable to draw by then (its terminal is gone), so nothing here waits for the event
loop: the handler only sets the runs' stop flags and starts a thread that awaits them; if the app
cannot close itself within GRACE_SECONDS afterwards, the process exits with 130 regardless, which
is safe because every run has ended and released its lock. A second signal exits at once (the
watermark never runs ahead of the stored files).
"""

import os
import signal
import threading
from collections.abc import Callable
from contextlib import suppress
from types import FrameType
from typing import Any

from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.runs import Runs

SIGNALS = (signal.SIGHUP, signal.SIGTERM)
GRACE_SECONDS = 5.0
EXIT_CODE = 130


class HangupGuard:
    def __init__(self, runs: Runs, log: RunLog, on_stopped: Callable[[], None]):
        self.runs, self.log, self.on_stopped = runs, log, on_stopped
        self.fired = False
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
        self._deadline: threading.Timer | None = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}

    def disarm(self) -> None:
        """The app has really ended (its run() returned): no need for the deadline any more. Not done
        on unmount: an app closing on a dead terminal can hang after unmounting, writing to it."""
        if self._deadline is not None:
            self._deadline.cancel()

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def handle(self, signum: int, _frame=None) -> None:
        name = signal.Signals(signum).name
        if self.fired:
            self.log.write(f"{name} again: exiting at once; the watermark covers every stored file")
            os._exit(EXIT_CODE)
        self.fired = True
        why = "the terminal went away" if signum == signal.SIGHUP else "asked to stop"
        self.log.write(f"{name}: {why}: finishing the file in flight and saving the watermark, then exiting")
        self.runs.stop_all(name)
        threading.Thread(target=self._finish, args=(name,), name="s3rs-hangup", daemon=True).start()

    def _finish(self, name: str) -> None:
        self.runs.wait_all()
        self.log.write(f"{name}: every run has stopped with its watermark saved; run the same command "
                       "again to resume")
        self._deadline = threading.Timer(GRACE_SECONDS, os._exit, args=(EXIT_CODE,))
        self._deadline.daemon = True
        self._deadline.start()
        with suppress(RuntimeError):  # the app is already gone: the command's own exit path takes over
            self.on_stopped()
