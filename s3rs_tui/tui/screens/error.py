"""Errors as a dialog: the one-line message and what to do next, never a traceback (that goes to
the log file, whose path the dialog names)."""

import traceback
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.tui.logfile import RunLog


def describe(error: BaseException, log: RunLog) -> tuple[str, str]:
    """(message, next step) for any exception: the step is the error kind's own advice (a verify
    that found differences is not "safe to retry"); unexpected ones leave their traceback in the log."""
    if isinstance(error, S3rsError):
        return str(error), error.advice
    log.detail("".join(traceback.format_exception(error)))
    return (f"internal error: {type(error).__name__}: {error}",
            "This is a bug: the traceback is in the log file; please report it.")


class ErrorModal(ModalScreen[None]):
    # Any answer closes it: there is no choice to make.
    BINDINGS: ClassVar[list[BindingType]] = [("escape,y,n", "close", "Close")]

    def __init__(self, title: str, message: str, next_step: str, log_path: Path):
        super().__init__(classes="dialog")
        self.title_text, self.message, self.next_step, self.log_path = title, message, next_step, log_path

    def compose(self) -> ComposeResult:
        with Vertical(classes="box failure"):
            yield Static(self.title_text, classes="title")
            yield Static(self.message, classes="message")
            yield Static(f"Next: {self.next_step}", classes="next")
            yield Static(f"Log file: {self.log_path}", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("OK (enter)", variant="primary", id="ok")

    def on_mount(self) -> None:
        self.query_one("#ok").focus()

    def on_button_pressed(self, _event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


def error_modal(title: str, error: BaseException, log: RunLog) -> ErrorModal:
    """The dialog for `error`, with the line also written to the log."""
    message, next_step = describe(error, log)
    log.write(f"{title}: {message}")
    return ErrorModal(title, message, next_step, log.path)
