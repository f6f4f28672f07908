"""The S3 cleanup screen: the table's files (key, size, modified, loaded or not), a filter by age
(`7d`, `12h`, checked as you type), the totals of what would go (the dry-run preview: every row
says delete or keep), and delete with confirmation and a progress bar. Files not yet loaded into
the warehouse are kept unless "force" is on. The logic is s3rs_tui.jobs.cleanup, as `s3rs s3clean`."""

import asyncio
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar, Static, Switch
from textual.worker import get_current_worker

from s3rs_tui.jobs.cleanup import (
    CleanupPlan,
    TableFiles,
    cutoff,
    delete_files,
    older,
    plan_cleanup,
    table_files,
)
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.status.text import human_bytes
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.messages import DeleteProgress
from s3rs_tui.tui.screens.confirm import ConfirmModal, if_yes
from s3rs_tui.tui.screens.error import error_modal


class CleanupScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "close", "Close")]

    def __init__(self, settings: Settings, table: str, log: RunLog):
        super().__init__()
        self.settings, self.table, self.log_file = settings, table, log
        self.found: TableFiles | None = None
        self.plan = CleanupPlan([], [])

    def compose(self) -> ComposeResult:
        with Vertical(id="cleanup-screen"):
            yield Static(f"S3 cleanup of {self.table}", classes="title")
            with Horizontal(classes="inputs"):
                yield Label("older than")
                yield Input(placeholder="e.g. 7d, 12h (empty: every file)", id="older-than")
                yield Label("force")
                yield Switch(False, id="force")
                yield Label("off", id="force-state")  # the switch alone does not say which way is on
            yield Static("reading the files...", id="totals")
            yield DataTable(cursor_type="row", id="files")
            yield ProgressBar(total=1, show_eta=False, id="deleting")
            with Horizontal(classes="buttons"):
                yield Button("Delete...", variant="error", id="delete", disabled=True)
                yield Button("Close", id="close")
        yield Footer()

    def on_mount(self) -> None:
        # the file name last: at 80 columns it is the one cut, never what happens to the file
        self.query_one("#files", DataTable).add_columns("action", "loaded", "size", "modified (UTC)", "file")
        self.query_one("#deleting").display = False
        self.query_one("#older-than").focus()
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        try:
            self.found = await asyncio.to_thread(table_files, self.settings, self.table)
        except Exception as exc:  # noqa: BLE001 - every failure ends in the error dialog
            self.fail("cannot list the files", exc)
            return
        self.refilter()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.refilter()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self.query_one("#force-state", Label).update("ON" if event.value else "off")
        self.refilter()

    def refilter(self) -> None:
        """Recompute what would go, and show it: the dry-run preview."""
        if self.found is None:
            return
        totals = self.query_one("#totals", Static)
        try:
            before = cutoff(self.query_one("#older-than", Input).value)
        except ConfigError as exc:
            totals.update(str(exc).replace("--older-than: ", ""))
            totals.add_class("error")
            self.query_one("#delete", Button).disabled = True
            return
        totals.remove_class("error")
        self.plan = plan_cleanup(older(self.found.files, before), self.query_one("#force", Switch).value)
        doomed = {f.info.key for f in self.plan.doomed}
        table = self.query_one("#files", DataTable)
        table.clear()
        for f in older(self.found.files, before):
            table.add_row("delete" if f.info.key in doomed else "keep", "yes" if f.loaded else "no",
                          human_bytes(f.info.size), f"{f.info.modified:%Y-%m-%d %H:%M}",
                          f.info.key.rsplit("/", 1)[-1])
        text = (f"{len(self.plan.doomed)} of {len(self.found.files)} files would go "
                f"({human_bytes(self.plan.size)})")
        if self.plan.kept:
            text += (f"; {len(self.plan.kept)} not loaded into the warehouse are kept "
                     "(switch on force to delete them)")
        totals.update(text)
        self.query_one("#delete", Button).disabled = not self.plan.doomed

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "close":
            self.action_close()
        elif event.button.id == "delete" and self.found:
            question = (f"Delete {len(self.plan.doomed)} files ({human_bytes(self.plan.size)}) "
                        f"of {self.table} from {self.found.store.url}?")
            if any(not f.loaded for f in self.plan.doomed):
                question += " Some are NOT loaded into the warehouse: they are the only backup of their rows."
            self.app.push_screen(ConfirmModal(question, yes="Delete"), if_yes(self.start_delete))

    def start_delete(self) -> None:
        bar = self.query_one("#deleting", ProgressBar)
        bar.update(total=len(self.plan.doomed), progress=0)
        bar.display = True
        self.query_one("#delete", Button).disabled = True
        self.log_file.write(f"{self.table}: deleting {len(self.plan.doomed)} files "
                            f"({human_bytes(self.plan.size)})")
        self.delete(self.found, self.plan)

    @work(thread=True, exclusive=True, group="delete", exit_on_error=False)
    def delete(self, found: TableFiles, plan: CleanupPlan) -> None:
        worker = get_current_worker()
        try:
            done = delete_files(found.store, plan.doomed,
                                lambda d, t: self.post_message(DeleteProgress(d, t)),
                                stop=lambda: worker.is_cancelled)
        except Exception as exc:  # noqa: BLE001 - every failure ends in the error dialog
            self.app.call_from_thread(self.fail, "deleting stopped", exc)
            return
        self.log_file.write(f"{self.table}: deleted {done} files")
        self.app.call_from_thread(self.notify, f"deleted {done} files", title=self.table)
        self.app.call_from_thread(self.load)

    def on_delete_progress(self, message: DeleteProgress) -> None:
        self.query_one("#deleting", ProgressBar).update(total=message.total, progress=message.done)

    def fail(self, what: str, exc: BaseException) -> None:
        self.app.push_screen(error_modal(f"{self.table}: {what}", exc, self.log_file))

    def action_close(self) -> None:
        self.dismiss(None)
