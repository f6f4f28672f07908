"""`s3rs progressive TABLE`: a 10M-100M+ row table in bounded chunks, left to run for days.

Replaces the older system's flexible_progressive_backup.py and its shell loops. On a terminal it
opens the dashboard, which shows the chunk count; headless, every line also goes to
progressive_<table>_<time>.log in the current folder, and a status line comes every
--monitor-interval seconds.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import typer

from s3rs_tui.cli.common import on_terminal, print_json, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.engine.memory import rss_mb
from s3rs_tui.jobs.progressive import ProgressiveOptions, ProgressiveRun
from s3rs_tui.jobs.ranges import MAX_RANGES
from s3rs_tui.runtime.control import RunControl, stop_on_signals
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.events import ChunkProgress, Event, FileStored, Notice, PageRead, tee
from s3rs_tui.runtime.parsing import parse_timestamp
from s3rs_tui.runtime.private import open_private
from s3rs_tui.status.control_file import ControlFileWatcher
from s3rs_tui.status.headless import DEBUG, NORMAL, QUIET, HeadlessLog
from s3rs_tui.status.monitoring import monitoring
from s3rs_tui.status.snapshot import SnapshotWriter
from s3rs_tui.store import open_store
from s3rs_tui.warehouse import check_warehouse

MODES = ("backup-only", "full")
ESTIMATES = ("fast", "exact")


class Monitor:
    """Keeps the latest progress from the events and prints a status line every `interval` s."""

    def __init__(self, write: Callable[[str], None], interval: float):
        self.write, self.interval = write, interval
        self.chunk: ChunkProgress | None = None
        self.run_rows = self.files = 0
        self._done = threading.Event()

    def __call__(self, event: Event) -> None:
        if isinstance(event, ChunkProgress):
            self.chunk, self.run_rows = event, 0
        elif isinstance(event, PageRead):  # rows read inside the file: the status line moves with them
            self.run_rows = event.run_rows
        elif isinstance(event, FileStored):
            self.run_rows, self.files = event.run_rows, self.files + 1

    def line(self) -> str:
        chunk = self.chunk
        if chunk is None:
            return "progressive: starting"
        rows = chunk.rows_done + (self.run_rows if chunk.status == "started" else 0)
        of = f" of {chunk.max_chunks}" if chunk.max_chunks else ""
        eta = "-"
        if chunk.rows_per_minute > 0 and chunk.estimated_rows > rows:
            seconds_to_go = (chunk.estimated_rows - rows) / chunk.rows_per_minute * 60
            eta = time.strftime("%H:%M:%S", time.gmtime(seconds_to_go))
        return (f"{chunk.table} chunk {chunk.chunk}{of}: {rows:,} of ~{chunk.estimated_rows:,} rows, "
                f"{chunk.rows_per_minute:,.0f} rows/min, ETA {eta}, RSS {rss_mb():.0f} MB, "
                f"{self.files} files")

    def start(self) -> None:
        def loop():
            while not self._done.wait(self.interval):
                self.write(self.line())

        threading.Thread(target=loop, name="s3rs-monitor", daemon=True).start()

    def stop(self) -> None:
        self._done.set()


def progressive(
    ctx: typer.Context,
    table: str = typer.Argument(..., help="db.table (or table in [mysql] database)",
                                autocompletion=table_names),
    chunk_size: int = typer.Option(250_000, "--chunk-size", min=1, help="rows per chunk (never more)"),
    max_chunks: int | None = typer.Option(None, "--max-chunks", min=1, help="stop after N chunks"),
    timeout_minutes: float | None = typer.Option(None, "--timeout-minutes", min=0.01,
                                                    help="per chunk; then it stops at a file boundary "
                                                         "and is retried"),
    mode: str = typer.Option("backup-only", "--mode", help="backup-only, or full (also load)"),
    load_at_end: bool = typer.Option(False, "--load-at-end", help="with --mode full: load once at the end"),
    monitor_interval: float = typer.Option(60, "--monitor-interval", min=0.1,
                                           help="seconds between status lines"),
    start_timestamp: str | None = typer.Option(None, "--start-timestamp",
                                                  help="start here when the table has no watermark yet"),
    restart: bool = typer.Option(False, "--restart", help="let --start-timestamp replace existing progress"),
    pause_seconds: float = typer.Option(0, "--pause-seconds", min=0, help="pause between chunks"),
    parallel: int | None = typer.Option(None, "--parallel",
                                        help="split a first backfill into N ranges (1-64), each read by a "
                                             "process of its own; default [backup] parallel_ranges"),
    estimate: str = typer.Option("fast", "--estimate",
                                 help="rows to go for the ETA: fast (EXPLAIN) or exact"),
    no_ui: bool = typer.Option(False, "--no-ui", help="log lines instead of the dashboard"),
    debug: bool = typer.Option(False, "--debug", help="more detail in the log"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings, status lines and the end"),
    json_out: bool = typer.Option(False, "--json", help="print a final JSON summary on stdout"),
) -> None:
    """Back up a huge table in chunks until it is caught up; rerun the same command to resume."""
    settings = settings_from(ctx)
    if mode not in MODES or estimate not in ESTIMATES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}; "
                          f"--estimate one of {', '.join(ESTIMATES)}")
    if load_at_end and mode != "full":
        raise ConfigError("--load-at-end goes with --mode full")
    if parallel is not None and not 1 <= parallel <= MAX_RANGES:
        raise ConfigError(f"--parallel must be between 1 and {MAX_RANGES}, not {parallel}")
    try:
        start = parse_timestamp(start_timestamp) if start_timestamp else None
    except ValueError as exc:
        raise ConfigError(f"--start-timestamp: {exc}") from None
    database, name, _ = settings.table(table)
    full_name = f"{database}.{name}"
    if mode == "full":
        if settings.warehouse.kind == "none":
            raise ConfigError("--mode full needs a warehouse: "
                              "set [warehouse] kind (redshift, postgres or duckdb)")
        check_warehouse(settings, open_store(settings))
    verbosity = DEBUG if debug else QUIET if quiet else NORMAL
    options = ProgressiveOptions(chunk_size, max_chunks, timeout_minutes, pause_seconds, start, restart,
                                 estimate == "exact", mode=mode, load_at_end=load_at_end,
                                 parallel=parallel or settings.backup.parallel_ranges)
    if not no_ui and not json_out and on_terminal():
        from s3rs_tui.tui.launch import run_dashboard  # noqa: PLC0415 - Textual loads only for a dashboard

        failure = run_dashboard(settings, [full_name], start_workers=1, progressive=options,
                                verbosity=verbosity)
        if failure is not None:
            raise failure
        return
    log_path = Path(f"progressive_{full_name}_{time.strftime('%Y%m%d_%H%M%S')}.log")
    with open_private(log_path, "a", encoding="utf-8") as log_file:
        log, file_log = HeadlessLog(verbosity), HeadlessLog(max(verbosity, NORMAL), log_file)

        def to_both(line: str) -> None:
            log.write(line)
            file_log.write(line)

        monitor = Monitor(to_both, monitor_interval)
        control = RunControl()
        file_log.write(f"s3rs progressive {full_name}: log file {log_path.resolve()}")
        monitor.start()
        try:
            with monitoring(settings, to_both) as monitors:  # [metrics] and [notify]
                sink = tee(log, file_log, monitor, SnapshotWriter(formatter=log.format), *monitors)
                with stop_on_signals(control, lambda text: sink(Notice(table=full_name, message=text))), \
                        ControlFileWatcher(control, [full_name]):  # `s3rs watch` may pause or stop it
                    result = ProgressiveRun(settings, full_name, sink, control, options).run()
        finally:
            monitor.stop()
    if json_out:
        print_json({**asdict(result), "table": full_name, "log_file": str(log_path.resolve())})
