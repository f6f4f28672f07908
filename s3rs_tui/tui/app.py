"""The dashboard app: the tables list, the selected table's panels, the log pane, and the keys
that start, pause and stop runs and open the watermark, cleanup, config and help screens.

Runs go on in thread workers; the engine reports through EngineBridge (events -> coalescing
messages), the UI folds them into TableStatus and repaints at most REPAINT_HZ times a second, so
a fast engine is never slowed by drawing.
"""

import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar

from s3rs_tui.engine.sync import SyncOptions
from s3rs_tui.jobs.progressive import ProgressiveOptions, ProgressiveRun
from s3rs_tui.jobs.reconcile import ReconcileOptions
from s3rs_tui.jobs.restore import Restore, RestoreOptions
from s3rs_tui.jobs.tables import Steps, TableJobs, verdict
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator, TableLockedError
from s3rs_tui.runtime.events import EventSink, Notice, tee
from s3rs_tui.status.control_file import ControlFileWatcher
from s3rs_tui.status.headless import NORMAL, HeadlessLog
from s3rs_tui.status.model import PHASE_STATES, State, TableStatus
from s3rs_tui.status.snapshot import SnapshotWriter, previous_runs
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.tui import panel_rows
from s3rs_tui.tui.bridge import EngineBridge
from s3rs_tui.tui.hangup import HangupGuard
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.messages import EngineUpdate, RunEnded
from s3rs_tui.tui.runs import Run, Runs
from s3rs_tui.tui.screens.cleanup import CleanupScreen
from s3rs_tui.tui.screens.config_view import ConfigScreen
from s3rs_tui.tui.screens.confirm import ConfirmModal, if_yes
from s3rs_tui.tui.screens.error import error_modal
from s3rs_tui.tui.screens.help import HelpScreen
from s3rs_tui.tui.screens.main import BINDINGS as MAIN_KEYS, MainScreen
from s3rs_tui.tui.screens.restore import RestoreModal, RestoreRequest
from s3rs_tui.tui.screens.watermark import WatermarkScreen
from s3rs_tui.tui.store_info import STORE_REFRESH_SECONDS, StoreInfo
from s3rs_tui.tui.widgets.log_pane import LogPane
from s3rs_tui.tui.widgets.panel import Panel
from s3rs_tui.tui.widgets.tables_list import TablesList
from s3rs_tui.tui.widgets.trend import Trend

REPAINT_HZ = 4
PHASE_WORDS = {"extract": "the backup", "load": "the warehouse load", "verify": "the verify",
               "reconcile": "the reconcile", "restore": "the restore"}


def failure_title(status: TableStatus) -> str:
    """The error dialog's title: which step went wrong (a verify's differences are not a crash)."""
    if status.state == "differs":
        return f"{status.table}: verify found differences"
    return f"{status.table}: {PHASE_WORDS.get(status.failed_phase, 'the run')} failed"


def latest_failure(latest: dict[str, BaseException | None]) -> S3rsError | None:
    """What quitting exits with: the error of the table whose latest run ended last in failure;
    an older run's stop or failure, since followed by a success, does not count."""
    for error in reversed(list(latest.values())):
        if error is not None:
            return error if isinstance(error, S3rsError) else S3rsError(str(error))
    return None


COMMANDS = ("start_sync", "start_progressive", "verify", "reconcile", "restore", "pause_resume", "stop_run",
            "watermark", "cleanup")
ON_A_RUN = ("pause_resume", "stop_run")  # the commands that need the table running; the others need it idle


class DashboardApp(StoreInfo, App):
    CSS_PATH = "dashboard.tcss"
    TITLE = "s3rs"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),  # not a priority: a text field takes the letter
        Binding("ctrl+q,ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(self, settings: Settings, tables: Iterable[str], log: RunLog, *,
                 autostart: list[list[str]] | None = None, options: SyncOptions | None = None,
                 steps: Steps | None = None, verbosity: int = NORMAL, read_only: bool = False,
                 progressive: ProgressiveOptions | None = None, monitors: Sequence[EventSink] = (),
                 reconcile: ReconcileOptions | None = None):
        super().__init__()
        self.settings, self.log_file, self.read_only = settings, log, read_only
        self.monitors = monitors  # [metrics] and [notify]: see status/monitoring.py
        self.options = options or SyncOptions()
        self.steps = steps or Steps(load=settings.warehouse.kind != "none")  # what `s` runs, as `s3rs sync`
        self.reconcile = reconcile or ReconcileOptions()  # what `r` runs
        # what `g` runs (and autostart, if given)
        self.progressive = progressive or ProgressiveOptions(parallel=settings.backup.parallel_ranges)
        self.autostart_progressive = progressive is not None
        self.formatter = HeadlessLog(verbosity)
        self.statuses = {name: TableStatus(name, last_runs=previous_runs(name)) for name in tables}
        self.watermarks: dict[str, Watermark | None] = {}
        self.clock: Callable[[], float] = time.time  # "now" for the time panels (pictures freeze it)
        self.autostart = autostart or []  # groups of tables to run at once, each group in turn
        self.runs = Runs()
        self.failure: S3rsError | None = None  # what quitting exits with: see on_run_ended
        self.latest: dict[str, BaseException | None] = {}  # each table's latest run's error, by end time
        self.quitting = False
        self.dirty = True
        self.keys_for: tuple = ()
        self.hangup = HangupGuard(self.runs, log, self.exit_after_signal)

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield TablesList(id="tables")
        with Grid(id="panels"):
            yield Panel("Throughput", id="throughput", extra=Trend("rows/min", id="rate-trend"))
            bar = ProgressBar(total=100, show_eta=False, show_percentage=False, id="bar")
            yield Panel("Progress", id="progress", extra=bar)
            yield Panel("Memory", id="memory", extra=Trend("MB", floor=64, id="rss-trend"))
            yield Panel("S3", id="storage")
            yield Panel("Watermark", id="watermark")
            yield Panel("Warehouse", id="warehouse")
            yield Panel("Runs", id="runs")
        yield LogPane(self.log_file.path, id="log")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p: in the help

    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def on_mount(self) -> None:
        self.sub_title = "watch (read-only)" if self.read_only else str(self.settings.config_path or "")
        self.set_interval(1 / REPAINT_HZ, self.repaint)
        self.set_interval(1, self.tick)
        if not self.read_only:
            self.hangup.install()
            self.refresh_store()
            self.set_interval(STORE_REFRESH_SECONDS, self.refresh_store)
        self.repaint()
        for group in self.autostart:  # after the first frame, so drawing it does not slow the run
            self.call_after_refresh(self.start, group, None, self.autostart_progressive)
        tables = self.query_one(TablesList)
        if self.read_only:  # said here too: the header goes under 30 rows
            tables.border_title = f"{tables.border_title} · {self.sub_title}"
        tables.focus()

    def on_unmount(self) -> None:
        self.hangup.uninstall()

    @property
    def selected(self) -> str | None:
        """The table under the cursor; None also before the main screen is mounted (a worker's
        message, such as watch's first snapshot read, can arrive that early)."""
        tables = self.query(TablesList)
        return tables.first().selected if tables else None

    @property
    def chosen(self) -> str:
        """The selected table, for the commands refusal() lets run only when one is selected."""
        table = self.selected
        if table is None:
            raise RuntimeError("no table selected")  # refusal() keeps these keys from firing
        return table

    # -- repainting --------------------------------------------------------------------------------

    def repaint(self) -> None:
        """Push the model into the widgets, when something changed since the last repaint."""
        if not self.is_running:  # shutting down: the widgets are going, a last tick must not fail
            return
        if self.quitting and not self.runs.active():
            self.exit(self.failure)
            return
        lines = self.log_file.drain()
        if lines:
            self.query_one(LogPane).add(lines)
        if not self.dirty:
            return
        self.dirty = False
        self.query_one(TablesList).show(self.statuses)
        status = self.statuses.get(self.selected or "") or TableStatus("-")
        self.query_one("#throughput", Panel).show(panel_rows.throughput(status, self.clock()))
        self.query_one("#rate-trend", Trend).show(status.rate_history)
        self.query_one("#progress", Panel).show(panel_rows.progress(status))
        self.query_one("#bar", ProgressBar).update(progress=round((status.progress or 0) * 100))
        self.query_one("#memory", Panel).show(panel_rows.memory(status, self.settings.backup.memory_limit_mb))
        self.query_one("#rss-trend", Trend).show(status.rss_history)
        self.query_one("#storage", Panel).show(panel_rows.storage(status))
        self.query_one("#watermark", Panel).show(
            panel_rows.watermark(status, self.watermarks.get(status.table)))
        self.query_one("#warehouse", Panel).show(panel_rows.warehouse(status, self.settings.warehouse.kind))
        self.query_one("#runs", Panel).show(panel_rows.history(status))
        keys = (self.selected, frozenset(table for run in self.runs.active() for table in run.tables))
        if keys != self.keys_for:  # the footer's keys depend on the selection and on what runs
            self.keys_for = keys
            self.refresh_bindings()

    def on_data_table_row_highlighted(self) -> None:
        self.dirty = True
        self.repaint()

    def on_engine_update(self, message: EngineUpdate) -> None:
        self.statuses.setdefault(message.event.table, TableStatus(message.event.table)).apply(message.event)
        self.dirty = True

    def tick(self) -> None:
        """Once a second while a run goes: its time and "last progress" move even between events."""
        if any(status.active for status in self.statuses.values()):
            self.dirty = True

    # -- runs ------------------------------------------------------------------------------------

    def start(self, tables: list[str], steps: Steps | None = None, progressive: bool = False) -> None:
        if self.hangup.fired or self.quitting:  # a deferred autostart after the end was asked for
            return
        for table in tables:
            self.statuses[table].state = State.STARTING
        self.run_tables(self.runs.start(tables), steps or self.steps, progressive)
        self.dirty = True

    @work(thread=True, exit_on_error=False, group="runs", description="engine run")
    def run_tables(self, run: Run, steps: Steps, progressive: bool = False) -> None:
        """The engine, in this worker's thread: the tables one after another, each extracted, loaded
        and verified as `steps` say (TableJobs, exactly as `s3rs sync` runs them), or in chunks
        (`s3rs progressive`). `s3rs watch` in another terminal may pause or stop it too."""
        with ControlFileWatcher(run.control, run.tables):
            self._run(run, steps, progressive)

    def _sink(self) -> EventSink:
        """A run's events: the log pane and file, the status snapshot, the monitors."""
        return tee(EngineBridge(self, self.log_file, self.formatter.format),
                   SnapshotWriter(formatter=self.formatter.format), *self.monitors)

    def _run(self, run: Run, steps: Steps, progressive: bool) -> None:
        sink = self._sink()
        jobs = TableJobs(self.settings, sink, run.control, self.options, steps, self.reconcile)
        try:
            for table in run.tables:
                if run.control.stop_requested:
                    break
                try:
                    if progressive:
                        error = self._run_progressive(table, sink, run)
                    else:
                        outcome = jobs.run_one(table)
                        error = outcome.error
                        if outcome.verification is not None:  # the verdict first: it must fit the pane
                            self.log_file.write(f"{table} verify {verdict(outcome.verification)}: "
                                                f"{outcome.verification.summary()}")
                except Exception as exc:  # noqa: BLE001 - a bug: its dialog sends the traceback to the log
                    error = exc
                self.post_message(RunEnded(table, error))
                if isinstance(error, StoppedByOperator):
                    break
        finally:
            self.runs.finish(run)

    def _run_progressive(self, table: str, sink, run: Run) -> BaseException | None:
        try:
            ProgressiveRun(self.settings, table, sink, run.control, self.progressive).run()
        except S3rsError as exc:
            return exc
        return None

    def start_restore(self, table: str, request: RestoreRequest) -> None:
        if self.hangup.fired or self.quitting:
            return
        self.statuses[table].state = State.STARTING
        self.statuses[table].phase = "restore"
        self.run_restore(self.runs.start([table]), RestoreOptions(
            table=table, into=request.target, as_of=request.as_of, replace=request.replace))
        self.dirty = True

    @work(thread=True, exit_on_error=False, group="runs", description="restore")
    def run_restore(self, run: Run, options: RestoreOptions) -> None:
        """`s3rs restore` of one table in this worker's thread, paused and stopped between batches
        by the same RunControl as a sync (and by `s3rs watch`)."""
        table = run.tables[0]
        error: BaseException | None = None
        try:
            with ControlFileWatcher(run.control, run.tables):
                sink = self._sink()
                job = Restore(self.settings, options, sink, run.control)
                plan = job.plan()
                for message in plan.notices:
                    sink(Notice(table=table, message=message))
                job.run(plan)
        except Exception as exc:  # noqa: BLE001 - an S3rsError, or a bug: its dialog sends the traceback to the log
            error = exc
        finally:
            self.post_message(RunEnded(table, error))
            self.runs.finish(run)

    def on_run_ended(self, message: RunEnded) -> None:
        status = self.statuses[message.table]
        self.dirty = True
        self.refresh_store()
        if isinstance(message.error, TableLockedError):
            status.state = State.LOCKED
        elif message.error is not None and status.active:  # it failed before the engine could say so
            status.state, status.failed_phase = State.FAILED, status.failed_phase or status.phase
        self.latest.pop(message.table, None)
        self.latest[message.table] = message.error
        self.failure = latest_failure(self.latest)
        if message.error is not None and not isinstance(message.error, StoppedByOperator):
            self.show_error(failure_title(status), message.error)

    def show_error(self, title: str, error: BaseException) -> None:
        self.push_screen(error_modal(title, error, self.log_file))

    # -- keys ------------------------------------------------------------------------------------

    def refusal(self, action: str) -> str | None:
        """Why a dashboard command cannot run now (said when its key is pressed), or None."""
        if action not in COMMANDS:
            return None
        if self.read_only:  # watch: it starts nothing, and steers only a run going on now
            return ("watch starts nothing and changes no watermark" if action not in ON_A_RUN
                    else "no live run selected (it ended, or its process is gone)")
        table = self.selected
        if table is None:
            return "no table selected"
        if action == "verify" and self.settings.warehouse.kind == "none":
            return "no warehouse configured: verify compares MySQL with the warehouse ([warehouse] kind)"
        running = self.runs.for_table(table) is not None
        if action in ON_A_RUN and not running:
            return f"{table} is not running"
        if action not in ON_A_RUN and running:
            return f"{table} is running: stop it first (x)"
        return None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Refused commands leave the footer (MainScreen says why when their key is pressed)."""
        return action not in COMMANDS or not self.refusal(action)

    def action_maximize_log(self) -> None:
        """Give the log pane the whole screen, or put it back."""
        if self.screen.maximized is not None:
            self.screen.minimize()
        else:
            self.screen.maximize(self.query_one(LogPane), container=False)

    def action_filter_log(self) -> None:
        shown = self.query_one(LogPane).cycle(self.selected)
        self.notify(f"log: {shown}", timeout=2)

    def action_start_sync(self) -> None:
        self.start([self.chosen])

    def action_start_progressive(self) -> None:
        """`s3rs progressive` on the selected table (the command's options, or its defaults)."""
        self.start([self.chosen], progressive=True)

    def action_verify(self) -> None:
        """Compare MySQL and the warehouse (`s3rs verify`); the result goes to the log."""
        self.start([self.chosen], Steps(extract=False, verify=True))

    def action_reconcile(self) -> None:
        """Find and repair what the cursor missed (`s3rs reconcile`); progress in the Progress panel."""
        self.start([self.chosen], Steps(extract=False, reconcile=True))

    def action_restore(self) -> None:
        """`s3rs restore` of the selected table into a new MySQL table (asks where, as of when, and
        confirms); progress in the Progress panel."""
        table = self.chosen

        def asked(request: RestoreRequest | None) -> None:
            if request is None:
                return
            made = (f"{request.target} is dropped first if it exists and holds rows, then created again"
                    if request.replace else "The table is created there")
            self.push_screen(ConfirmModal(
                f"Restore {table} as of {request.as_of or 'the last backup'} into {request.target}? {made} "
                "(a rerun after a stop goes on where it stopped).",
                yes="Restore", no="Cancel"), if_yes(lambda: self.start_restore(table, request)))

        self.push_screen(RestoreModal(table), asked)

    def action_pause_resume(self) -> None:
        table = self.chosen
        run = self.runs.for_table(table)
        if run is None:  # refusal() said so already
            return
        status = self.statuses[table]
        if run.control.paused:
            run.control.resume()
            if status.state == "pausing":  # resumed before it paused: back to what it was doing
                status.state = PHASE_STATES.get(status.phase, State.EXTRACTING)
            self.log_file.write(f"{table}: resume requested")
        else:
            run.control.pause()
            status.state = State.PAUSING
            self.log_file.write(f"{table}: pause requested: the run pauses after the file in flight")
        self.dirty = True

    def action_stop_run(self) -> None:
        table = self.chosen
        run = self.runs.for_table(table)
        if run is None:  # refusal() said so already
            return
        run.control.request_stop("the operator (dashboard)")
        self.statuses[table].state = State.STOPPING
        self.log_file.write(f"{table}: stop requested: finishing the file in flight, saving the watermark")
        self.dirty = True

    def action_watermark(self) -> None:
        table = self.chosen
        self.push_screen(WatermarkScreen(self.settings, table, self.log_file,
                                         table_running=lambda: self.runs.for_table(table) is not None))

    def action_cleanup(self) -> None:
        self.push_screen(CleanupScreen(self.settings, self.chosen, self.log_file))

    def action_config(self) -> None:
        self.push_screen(ConfigScreen(self.settings))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.log_file.path))

    async def action_quit(self) -> None:
        if not self.runs.active():
            self.exit(self.failure)
            return

        def answered(stop: bool | None) -> None:
            if stop:
                self.quitting = True
                self.runs.stop_all("quit")
                for status in self.statuses.values():
                    status.state = State.STOPPING if status.active else status.state
                self.log_file.write("quit: finishing the files in flight and saving the watermarks")
                self.dirty = True

        self.push_screen(ConfirmModal("A run is going. Stop it gracefully (finish the file in flight, "
                                      "save the watermark) and quit?", yes="Stop gracefully and quit",
                                      no="Cancel"), answered)

    def exit_after_signal(self) -> None:
        """Called from the hangup guard's thread once the runs have stopped."""
        self.call_from_thread(self.exit, self.failure or StoppedByOperator("stopped by a signal"))

    def _handle_exception(self, error: Exception) -> None:
        """A bug in the dashboard: the traceback goes to the log file, one line to the operator."""
        self.log_file.detail("".join(traceback.format_exception(error)))
        self.failure = S3rsError(f"internal error in the dashboard: {type(error).__name__}: {error} "
                                 f"(traceback in {self.log_file.path})")
        if self._exception is None:  # run_test re-raises it, so tests see the bug
            self._exception = error
            self._exception_event.set()
        self.exit(self.failure, return_code=1)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, MainScreen):
            return
        for binding in MAIN_KEYS:
            action = binding.action.removeprefix("app.")
            if self.check_action(action, ()):
                key = f"key {binding.key_display or binding.key}"
                help_text = f"{key}: {binding.tooltip}" if binding.tooltip else key
                yield SystemCommand(binding.description, help_text, getattr(self, f"action_{action}"))
