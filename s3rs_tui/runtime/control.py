"""How the outside steers a run: stop (finish the file in flight, save the watermark) and pause.

The engine looks at its RunControl only between files, so whatever is asked, the watermark always
covers exactly the stored files. Signals: the first Ctrl+C, SIGTERM or SIGHUP requests a stop; a
second one stops at once (still safe, because the watermark never runs ahead).
"""

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from s3rs_tui.runtime.errors import StoppedByOperator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunControl:
    """Thread-safe flags shared by the engine and whoever drives it (CLI signals, the dashboard)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.reason = ""

    def request_stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless a stop is requested; True when it was."""
        return self._stop.wait(seconds)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> float:
        """Block between files while paused; returns at once when running or stopping. The seconds
        waited, which the run leaves out of its rows/min (a pause is not slowness)."""
        clock = time.monotonic()
        self._running.wait()
        return time.monotonic() - clock


def stop_at_once_on_signals() -> None:
    """Outside a run (start-up, the summary after it) a stop signal ends the process at once, as
    StoppedByOperator (exit 130) rather than the default death by signal: nothing is in flight."""

    def handle(signum: int, _frame) -> None:
        raise StoppedByOperator(f"{signal.Signals(signum).name}: stopped")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handle)


@contextmanager
def stop_on_signals(control: RunControl, announce: Callable[[str], None]) -> Iterator[None]:
    """Install the two-step handlers for the duration of a command (main thread only)."""

    def handle(signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if control.stop_requested:
            raise StoppedByOperator(f"{name} again: stopped at once; the watermark covers every stored file")
        control.request_stop(name)
        announce(f"{name}: finishing the file in flight and saving the watermark "
                 "(send it again to stop at once)")

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
