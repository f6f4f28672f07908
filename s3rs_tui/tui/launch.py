"""Opening the dashboard from the command line, and the promise made on the way out: whatever ends
the app (quit, a lost terminal, a bug), every run it started is stopped gracefully, watermark saved,
before the command returns."""

from pathlib import Path

from s3rs_tui.engine.sync import SyncOptions
from s3rs_tui.jobs.progressive import ProgressiveOptions
from s3rs_tui.jobs.reconcile import ReconcileOptions
from s3rs_tui.jobs.tables import Steps
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator
from s3rs_tui.status.headless import NORMAL
from s3rs_tui.status.monitoring import monitoring
from s3rs_tui.tui.app import DashboardApp
from s3rs_tui.tui.logfile import RunLog, new_log_path
from s3rs_tui.tui.watch import WatchApp


def full_names(settings: Settings, tables: list[str]) -> list[str]:
    """`orders` -> `db.orders` (bad names stop here with a one-line error, before the screen opens)."""
    names = [f"{db}.{table}" for db, table, _ in (settings.table(name) for name in tables)]
    return list(dict.fromkeys(names))


def run_dashboard(settings: Settings, tables: list[str], *, start_workers: int = 0,
                  options: SyncOptions | None = None, steps: Steps | None = None, verbosity: int = NORMAL,
                  log_path: Path | None = None,
                  progressive: ProgressiveOptions | None = None,
                  reconcile: ReconcileOptions | None = None) -> S3rsError | None:
    """Open the dashboard; with start_workers > 0 the tables start at once, that many at a time (as
    `s3rs sync` would run them, or in chunks with `progressive`). Returns the first failure
    (StoppedByOperator when runs stopped)."""
    names = full_names(settings, tables or list(settings.tables))
    log = RunLog(log_path or new_log_path())
    log.write(f"dashboard started; this log file: {log.path}")
    groups = [names[i::start_workers] for i in range(min(start_workers, len(names)))]
    try:
        with monitoring(settings, log.write) as monitors:  # [metrics] and [notify], while the app runs
            app = DashboardApp(settings, names, log, autostart=groups, options=options, steps=steps,
                               verbosity=verbosity, progressive=progressive, monitors=monitors,
                               reconcile=reconcile)
            try:
                app.run()
            finally:
                _stop_runs(app, log)
    finally:
        log.write("dashboard closed")
        log.close()
    return app.failure


def _stop_runs(app: DashboardApp, log: RunLog) -> None:
    """Whatever ended the app, its runs stop gracefully, watermarks saved, before the command returns."""
    app.hangup.disarm()
    if app.runs.active():
        log.write("the dashboard closed while runs were going: stopping them gracefully")
        app.runs.stop_all("the dashboard closed")
        app.runs.wait_all()
        app.failure = app.failure or StoppedByOperator("the dashboard closed: runs stopped with their "
                                                       "watermarks saved; rerun to resume")


def run_watch(settings: Settings, tables: list[str], folder: Path | None = None) -> None:
    log = RunLog(new_log_path())
    try:
        WatchApp(settings, full_names(settings, tables), log, folder).run()
    finally:
        log.close()
