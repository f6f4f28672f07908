"""Exponential backoff with full jitter for transient failures (MySQL lost, S3 5xx or timeout)."""

import random
import time
from collections.abc import Callable
from typing import TypeVar

from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import StoppedByOperator, TransientError
from s3rs_tui.runtime.events import EventSink, Notice, Retrying

T = TypeVar("T")


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Attempt 1 waits up to `base` seconds, doubling up to `cap` (full jitter: AWS's advice)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def with_retries(action: Callable[[], T], *, attempts: int, control: RunControl,
                 on_retry: Callable[[int, float, TransientError], None],
                 recover: Callable[[], None] = lambda: None, base_delay: float = 1.0,
                 on_recovered: Callable[[int, float], None] = lambda retries, seconds: None,
                 rerun: str = "a rerun resumes from the last stored file",
                 progress: Callable[[], object] = lambda: None) -> T:
    """Run `action`; on TransientError call `recover` (reconnect) and try again, `attempts` times.
    After a success that needed retries, `on_recovered(retries, seconds since the first failure)`:
    the operator learns how long the outage lasted. An action that goes on for hours (a load)
    gives `progress`: a failure after the value changed starts a new count of attempts."""
    attempt, failed_at, seen = 0, 0.0, progress()
    while True:
        try:
            if attempt:
                recover()
            result = action()
            if attempt:
                on_recovered(attempt, time.monotonic() - failed_at)
            return result
        except TransientError as exc:
            if progress() != seen:  # it got somewhere since the last failure: a new outage
                attempt, failed_at, seen = 0, 0.0, progress()
            attempt += 1
            failed_at = failed_at or time.monotonic()
            if attempt > attempts:
                raise TransientError(f"{exc} (gave up after {attempts} retries over "
                                     f"{time.monotonic() - failed_at:.0f}s; {rerun})") from exc
            delay = backoff_delay(attempt, base_delay)
            on_retry(attempt, delay, exc)
            if control.sleep(delay):
                raise StoppedByOperator(f"stopped while waiting to retry: {exc}") from exc


def reported_retries(action: Callable[[], T], *, sink: EventSink, table: str, attempts: int,
                     control: RunControl, what: str, recover: Callable[[], None] = lambda: None,
                     rerun: str = "a rerun resumes from the last stored file",
                     progress: Callable[[], object] = lambda: None) -> T:
    """`with_retries` that tells the run's log: each retry as a Retrying event, and once `what` works
    again, how long it was down."""
    def recovered(retries: int, seconds: float) -> None:
        sink(
            Notice(
                table=table,
                message=f"{what} is back after {seconds:.1f}s down ({retries} retries); going on from "
                "the last saved position",
                level="info",
            )
        )

    def retrying(attempt: int, delay: float, error: BaseException) -> None:
        sink(
            Retrying(
                table=table, attempt=attempt, max_attempts=attempts, delay_seconds=delay, error=str(error)
            )
        )

    return with_retries(
        action,
        attempts=attempts,
        control=control,
        recover=recover,
        rerun=rerun,
        progress=progress,
        on_retry=retrying,
        on_recovered=recovered,
    )
