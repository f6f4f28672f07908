"""Alerts for runs nobody watches: a command and/or a webhook told when a run fails, stalls or ends.

The message is JSON: what happened (`failed`, `stalled`, `finished`), the table, its state, the
watermark, the error's first line, and a `text` line for chat webhooks. Every string in it is
scrubbed of the configured secrets, credentials in URLs, AWS access key ids and `password=...`.

The backup never waits for a notifier: the sink only queues messages, a background thread sends
them, each command or call is cut off after `timeout_seconds` (a hanging command is killed with its
process group), and a failure is reported as a log line. When the command ends, queued messages get
at most two timeouts more to go out; then they are given up (and said so).
"""

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from s3rs_tui.runtime.config import REDACTED, NotifySettings
from s3rs_tui.runtime.events import (
    Event,
    FilesLoaded,
    FileStored,
    JobFinished,
    JobStarted,
    LoadFinished,
    LoadStarted,
    RunFinished,
    RunStarted,
    StateChanged,
)
from s3rs_tui.runtime.keys import Key
from s3rs_tui.status.model import ENDED

QUEUED = 100  # messages waiting at most; more are dropped (and said so) rather than held in memory
CREDENTIAL_PATTERNS = (
    (re.compile(r"(?<=://)[^\s/@]+@"), REDACTED + "@"),                     # user:password@ in a URL
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),                # AWS access key ids
    (re.compile(r"(?i)\b(password|passwd|pwd|secret[a-z_]*|token|passphrase)(\"?\s*[=:]\s*\"?)"
                r"[^\s\"',;&]+"), rf"\1\2{REDACTED}"),                       # password=..., "secret": "..."
)


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without the given secrets and without anything that looks like a credential."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrubbed(value: object, secrets: list[str]) -> object:
    """`value` with every string in it (in dicts too) scrubbed."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {name: scrubbed(item, secrets) for name, item in value.items()}
    return value


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a command this notifier started, with the children in its session."""
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(process.pid, signal.SIGKILL)


@dataclass
class TableWatch:
    watermark_timestamp: str | None = None
    watermark_id: Key = None
    watched_since: float | None = None  # extracting or loading, not paused: a stall is measured from here
    stalled: bool = False


class Notifier:
    """Event sink that decides what to tell, and the threads that tell it and watch for stalls."""

    def __init__(self, settings: NotifySettings, secrets: list[str], report: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic):
        self.settings, self.secrets, self.clock = settings, secrets, clock
        self.report = lambda line: report(scrub(line, secrets))
        self.host = socket.gethostname()
        self.tables: dict[str, TableWatch] = {}
        self.lock = threading.Lock()
        self.outbox: queue.Queue[dict | None] = queue.Queue(QUEUED)
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dropped = 0
        self._command: subprocess.Popen | None = None  # the command being run, killed if given up on

    # -- the sink --------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self.lock:
            watch = self.tables.setdefault(event.table, TableWatch())
            message = self._apply(watch, event)
        if message is not None:
            self.send(message)

    def _apply(self, watch: TableWatch, event: Event) -> dict | None:
        now = self.clock()
        if isinstance(event, RunStarted):
            watch.watermark_timestamp, watch.watermark_id = event.start_timestamp, event.start_id
            watch.watched_since, watch.stalled = now, False
        elif isinstance(event, FileStored):
            watch.watermark_timestamp, watch.watermark_id = event.watermark_timestamp, event.watermark_id
            watch.watched_since, watch.stalled = now, False
        elif isinstance(event, (LoadStarted, FilesLoaded)):
            watch.watched_since, watch.stalled = now, False
        elif isinstance(event, StateChanged):
            watch.watched_since = None if event.state == "paused" else now
        elif isinstance(event, (RunFinished, LoadFinished, JobStarted)):
            watch.watched_since = None
        elif isinstance(event, JobFinished):
            watch.watched_since = None
            return self._job_finished(watch, event)
        return None

    def _job_finished(self, watch: TableWatch, event: JobFinished) -> dict | None:
        failed = event.outcome in ("failed", "differs")
        if not (self.settings.on_failure if failed else self.settings.on_finish):
            return None
        state = str(ENDED.get(event.outcome, event.outcome))
        if event.failed_phase:
            state += f": {event.failed_phase}"
        return self.message("failed" if failed else "finished", event.table, state, watch,
                            error=event.error, rows=event.rows, seconds=round(event.seconds, 1))

    def message(self, kind: str, table: str, state: str, watch: TableWatch, error: str = "",
                **extra: object) -> dict:
        error = error.strip().splitlines()[0] if error.strip() else ""
        watermark = ("none yet" if watch.watermark_timestamp is None
                     else f"{watch.watermark_timestamp} / {watch.watermark_id}")
        text = f"s3rs {table} {state} on {self.host}" + (f": {error}" if error else "") + \
            f" (watermark {watermark})"
        document = {"event": kind, "table": table, "state": state, "host": self.host,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "watermark": {"timestamp": watch.watermark_timestamp,
                                  "id": None if watch.watermark_id is None else str(watch.watermark_id)},
                    "error": error, **extra, "text": text}
        return {name: scrubbed(value, self.secrets) for name, value in document.items()}

    # -- stalls ----------------------------------------------------------------------------------

    def check_stalls(self) -> None:
        limit = self.settings.stall_seconds
        with self.lock:
            due = [(table, watch) for table, watch in self.tables.items()
                   if watch.watched_since is not None and not watch.stalled
                   and self.clock() - watch.watched_since >= limit]
            messages = []
            for table, watch in due:
                watch.stalled = True  # said once; the next stored file arms it again
                messages.append(self.message("stalled", table, "stalled", watch,
                                             error=f"no file stored or loaded for {limit}s"))
        for message in messages:
            self.send(message)

    def _watch_stalls(self) -> None:
        tick = min(5.0, self.settings.stall_seconds / 4)
        while not self._done.wait(tick):
            self.check_stalls()

    # -- sending ---------------------------------------------------------------------------------

    def send(self, message: dict) -> None:
        try:
            self.outbox.put_nowait(message)
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1:
                self.report(f"notify: {QUEUED} messages wait already: dropping {message['event']} of "
                            f"{message['table']} (the notifier is too slow)")

    def _send_loop(self) -> None:
        while (message := self.outbox.get()) is not None:
            for deliver in (self._run_command, self._post):
                try:
                    deliver(message)
                except Exception as exc:  # noqa: BLE001 - whatever a notifier does, the backup goes on
                    self.report(f"notify: {message['event']} of {message['table']} not delivered: "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def _run_command(self, message: dict) -> None:
        if not self.settings.command:
            return
        secret_values = set(self.secrets)
        env = {name: value for name, value in os.environ.items() if value not in secret_values}
        env.update(S3RS_NOTIFY_EVENT=message["event"], S3RS_NOTIFY_TABLE=message["table"],
                   S3RS_NOTIFY_TEXT=message["text"])
        process = self._command = subprocess.Popen(
            shlex.split(self.settings.command), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, start_new_session=True)  # its own group: kill its children too
        try:
            _, stderr = process.communicate(json.dumps(message).encode(),
                                            timeout=self.settings.timeout_seconds)
        except subprocess.TimeoutExpired:
            kill_group(process)
            process.wait()
            raise TimeoutError(f"the command took longer than {self.settings.timeout_seconds}s: killed") \
                from None
        finally:
            self._command = None
        if process.returncode:
            said = stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"the command exited with {process.returncode}"
                               + (f": {said[-1]}" if said else ""))

    def _post(self, message: dict) -> None:
        if not self.settings.webhook_url:
            return
        request = urllib.request.Request(self.settings.webhook_url, data=json.dumps(message).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as answer:
            answer.read()

    # -- lifetime --------------------------------------------------------------------------------

    def __enter__(self) -> "Notifier":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        targets = [self._send_loop] + ([self._watch_stalls] if self.settings.stall_seconds else [])
        self._threads = [threading.Thread(target=target, name=f"s3rs-notify-{i}", daemon=True)
                         for i, target in enumerate(targets)]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop watching; give the queued messages two timeouts to go out, then give them up."""
        self._done.set()
        if not self._threads:
            return
        with contextlib.suppress(queue.Full):  # full: the sender gives up with the join below
            self.outbox.put(None, timeout=1)
        sender = self._threads[0]
        sender.join(2 * self.settings.timeout_seconds + 1)
        if sender.is_alive():
            command = self._command
            if command is not None:
                kill_group(command)  # not left behind when this process ends
            self.report("notify: gave up on the messages still queued: the notifier hangs")
