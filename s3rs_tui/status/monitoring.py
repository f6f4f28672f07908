"""The sinks for monitoring that nobody watches: Prometheus metrics and notifications, as the config
asks for them, running for as long as a command (or a dashboard) does."""

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.events import EventSink
from s3rs_tui.status.metrics import Metrics
from s3rs_tui.status.notify import Notifier

AWS_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # the credential chain's, not in the config


@contextmanager
def monitoring(settings: Settings, report: Callable[[str], None]) -> Iterator[list[EventSink]]:
    """The metrics and notify sinks `[metrics]` and `[notify]` ask for ([] when neither is set);
    `report` gets their one-line problems (a port in use, a notifier that failed)."""
    with ExitStack() as stack:
        sinks: list[EventSink] = []
        if settings.metrics.port or settings.metrics.textfile:
            sinks.append(stack.enter_context(
                Metrics(settings.metrics, settings.backup.safety_lag_seconds, report)))
        if settings.notify.command or settings.notify.webhook_url:
            secrets = settings.secret_values() + [os.environ[name] for name in AWS_SECRETS
                                                  if os.environ.get(name)]
            sinks.append(stack.enter_context(Notifier(settings.notify, secrets, report)))
        yield sinks
