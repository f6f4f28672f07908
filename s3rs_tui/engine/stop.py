"""Stopping on request: the first Ctrl+C, SIGTERM or SIGHUP asks the run to finish the file in flight
and save its watermark; a second one stops at once (still safe: the watermark never runs ahead)."""

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from s3rs_tui.errors import StoppedByOperator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignal:
    """A flag the engine checks between files; also an interruptible sleep for retry backoff."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless a stop is requested; True when it was."""
        return self._event.wait(seconds)


@contextmanager
def stop_on_signals(stop: StopSignal, announce: Callable[[str], None]) -> Iterator[None]:
    """Install the two-step handlers for the duration of a command (main thread only)."""

    def handle(signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if stop.requested:
            raise StoppedByOperator(f"{name} again: stopped at once; the watermark covers every stored file")
        stop.request(name)
        announce(f"{name}: finishing the file in flight and saving the watermark "
                 "(send it again to stop at once)")

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
