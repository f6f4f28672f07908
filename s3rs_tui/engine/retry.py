"""Exponential backoff with full jitter for transient failures (MySQL lost, S3 5xx or timeout)."""

import random
from typing import Callable, TypeVar

from s3rs_tui.engine.control import RunControl
from s3rs_tui.errors import StoppedByOperator, TransientError

T = TypeVar("T")


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Attempt 1 waits up to `base` seconds, doubling up to `cap` (full jitter: AWS's advice)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def with_retries(action: Callable[[], T], *, attempts: int, control: RunControl,
                 on_retry: Callable[[int, float, TransientError], None],
                 recover: Callable[[], None] = lambda: None, base_delay: float = 1.0) -> T:
    """Run `action`; on TransientError call `recover` (reconnect) and try again, `attempts` times."""
    attempt = 0
    while True:
        try:
            if attempt:
                recover()
            return action()
        except TransientError as exc:
            attempt += 1
            if attempt > attempts:
                raise TransientError(f"{exc} (gave up after {attempts} retries; a rerun resumes "
                                     "from the last stored file)") from exc
            delay = backoff_delay(attempt, base_delay)
            on_retry(attempt, delay, exc)
            if control.sleep(delay):
                raise StoppedByOperator(f"stopped while waiting to retry: {exc}") from exc
