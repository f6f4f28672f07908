"""Prometheus metrics of the runs in this process, for the monitoring a team already has.

An event sink folds the engine's events per table; a collector turns them into metrics when they
are read, so the watermark's lag keeps growing between files (a stalled run shows). They are served
on `[metrics] port` (Prometheus scrapes it) and/or written to `[metrics] textfile` every
`interval_seconds` and when the command ends (node-exporter's textfile collector). Neither may stop
the backup: a port in use or an unwritable file is reported once and the run goes on.

The lag is "now" minus the watermark's cursor time, both as the cursor column sees time: each run
reads the database's clock for its upper bound (`now - safety_lag_seconds`), and "now" goes on
from there with this machine's clock, so no time zone is guessed.
"""

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from s3rs_tui.engine.memory import rss_mb
from s3rs_tui.runtime.config import MetricsSettings
from s3rs_tui.runtime.events import (
    Event,
    FileStored,
    JobFinished,
    JobStarted,
    PageRead,
    Retrying,
    RunStarted,
)
from s3rs_tui.status.snapshot import previous_runs

SUCCEEDED = ("done", "verified")  # outcomes in a snapshot's last runs that count as a success


def cursor_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:  # a zero date or an odd value: no lag rather than a wrong one
        return None


@dataclass
class TableMetrics:
    rows: int = 0            # stored in files by this process (every run and chunk)
    files: int = 0
    bytes: int = 0
    rows_per_minute: float = 0.0
    retries: int = 0
    outages: int = 0         # retry sequences: the first retry after things worked
    running: bool = False
    failed: bool = False     # the last job failed (or its verify found differences)
    last_success: float | None = None
    last_progress: float | None = None  # the job started, or stored a file
    watermark: datetime | None = None
    database_now: datetime | None = None  # the database's clock as the cursor sees it...
    read_at: float = 0.0                  # ... read at this time.time()

    def lag_seconds(self, now: float) -> float | None:
        if self.watermark is None or self.database_now is None:
            return None
        return max(0.0, (self.database_now - self.watermark).total_seconds() + now - self.read_at)


def last_success(table: str) -> float | None:
    """When the table's last successful job ended, from its status snapshot (a textfile written by
    a failed run still says when things last worked)."""
    for run in previous_runs(table):
        if run.get("outcome") in SUCCEEDED:
            try:
                return time.mktime(time.strptime(str(run.get("ended_at")), "%Y-%m-%d %H:%M:%S"))
            except ValueError:
                return None
    return None


Value = Callable[[TableMetrics, float], float | None]
Family = type[CounterMetricFamily] | type[GaugeMetricFamily]
PER_TABLE: list[tuple[Family, str, str, Value]] = [  # (kind, name, help, value at time `now`)
    (CounterMetricFamily, "s3rs_rows_stored", "rows stored in files by this process", lambda t, now: t.rows),
    (CounterMetricFamily, "s3rs_files_stored", "files stored by this process", lambda t, now: t.files),
    (CounterMetricFamily, "s3rs_bytes_stored", "bytes of Parquet stored by this process",
     lambda t, now: t.bytes),
    (GaugeMetricFamily, "s3rs_rows_per_minute", "the run's average rate, paused time left out",
     lambda t, now: t.rows_per_minute),
    (GaugeMetricFamily, "s3rs_watermark_lag_seconds", "how far the watermark's cursor time is behind now",
     TableMetrics.lag_seconds),
    (CounterMetricFamily, "s3rs_retries", "reads, uploads or loads retried", lambda t, now: t.retries),
    (CounterMetricFamily, "s3rs_outages", "times MySQL, the store or the warehouse went away (a first retry)",
     lambda t, now: t.outages),
    (GaugeMetricFamily, "s3rs_running", "1 while the table's job goes on", lambda t, now: float(t.running)),
    (GaugeMetricFamily, "s3rs_last_run_failed", "1 when the table's last job failed",
     lambda t, now: float(t.failed)),
    (GaugeMetricFamily, "s3rs_last_success_timestamp_seconds", "when the table's last job succeeded (unix)",
     lambda t, now: t.last_success),
    (GaugeMetricFamily, "s3rs_last_progress_timestamp_seconds",
     "when the table's job started or last stored a file (unix time)", lambda t, now: t.last_progress),
]


class Metrics:
    """Event sink and Prometheus collector; `start()` opens the endpoint and the textfile writer."""

    def __init__(self, settings: MetricsSettings, safety_lag_seconds: int,
                 report: Callable[[str], None], clock: Callable[[], float] = time.time):
        self.settings, self.safety_lag, self.report, self.clock = settings, safety_lag_seconds, report, clock
        self.tables: dict[str, TableMetrics] = {}
        self.lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.server: WSGIServer | None = None
        self.port = 0  # the endpoint's port once it listens
        self._done = threading.Event()
        self._writer: threading.Thread | None = None
        self._textfile_failed = False

    # -- the sink --------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        with self.lock:
            table = self.tables.get(event.table)
            if table is None:
                table = self.tables[event.table] = TableMetrics(last_success=last_success(event.table))
            self._apply(table, event)

    def _apply(self, table: TableMetrics, event: Event) -> None:
        now = self.clock()
        if isinstance(event, FileStored):
            table.rows, table.files, table.bytes = (table.rows + event.rows, table.files + 1,
                                                    table.bytes + event.bytes)
            table.rows_per_minute, table.last_progress = event.rows_per_minute, now
            table.watermark = cursor_time(event.watermark_timestamp) or table.watermark
        elif isinstance(event, PageRead):
            table.rows_per_minute = event.rows_per_minute
        elif isinstance(event, RunStarted):
            bound = cursor_time(event.upper_bound)
            if bound is not None:
                table.database_now, table.read_at = bound + timedelta(seconds=self.safety_lag), now
            table.watermark = cursor_time(event.start_timestamp) or table.watermark
        elif isinstance(event, Retrying):
            table.retries += 1
            if event.attempt == 1:
                table.outages += 1
        elif isinstance(event, JobStarted):
            table.running, table.last_progress = True, now
        elif isinstance(event, JobFinished):
            table.running, table.failed = False, event.outcome in ("failed", "differs")
            if event.outcome == "success":
                table.last_success = now

    # -- the collector ---------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        yield GaugeMetricFamily("s3rs_rss_bytes", "resident memory of this s3rs process",
                                value=rss_mb() * 1024 * 1024)
        with self.lock:
            tables = sorted(self.tables.items())
            families = [(kind(name, text, labels=["table"]), value_of)
                        for kind, name, text, value_of in PER_TABLE]
            for family, value_of in families:
                for table, values in tables:
                    value = value_of(values, now)
                    if value is not None:
                        family.add_metric([table], value)
        yield from (family for family, _ in families)

    # -- serving ---------------------------------------------------------------------------------

    def __enter__(self) -> "Metrics":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        if self.settings.port:
            try:
                self.server, _ = start_http_server(self.settings.port, self.settings.address, self.registry)
                self.port = self.settings.port
            except OSError as exc:
                self.report(f"metrics: cannot listen on {self.settings.address}:{self.settings.port} "
                            f"({exc.strerror or exc}); the run goes on without the endpoint")
        if self.settings.textfile:
            self._writer = threading.Thread(target=self._write_loop, name="s3rs-metrics-file", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        while not self._done.wait(self.settings.interval_seconds):
            self.write_textfile()

    def write_textfile(self) -> None:
        try:
            write_to_textfile(self.settings.textfile, self.registry)
            self._textfile_failed = False
        except OSError as exc:
            if not self._textfile_failed:  # said once, not every interval
                self.report(f"metrics: cannot write {self.settings.textfile} ({exc.strerror or exc}); "
                            "the run goes on")
            self._textfile_failed = True

    def close(self) -> None:
        self._done.set()
        if self._writer is not None:
            self._writer.join()
            self.write_textfile()  # the end of the run: what a timer's next run finds until then
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
