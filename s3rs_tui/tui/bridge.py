"""The sink a dashboard run gives the engine: each event becomes a log line (the headless log's
wording, shared) and an EngineUpdate message. It runs in the engine's thread and never waits for
the UI: post_message only queues."""

from collections.abc import Callable

from textual.message_pump import MessagePump

from s3rs_tui.runtime.events import Event
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.messages import EngineUpdate


class EngineBridge:
    def __init__(self, target: MessagePump, log: RunLog, formatter: Callable[[Event], str | None]):
        self.target, self.log, self.formatter = target, log, formatter

    def __call__(self, event: Event) -> None:
        line = self.formatter(event)
        if line:
            self.log.write(line)
        self.target.post_message(EngineUpdate(event))
