"""Loading one table's stored files into the warehouse, each exactly once.

The run holds the table's lock (purpose "load"), so no sync moves the watermark meanwhile. It
loads the committed files the warehouse's ledger does not hold (in key order, which is cursor
order, a group of files per load), and after each group mirrors the ledger into the watermark
(`processed_s3_files`, `redshift_rows_loaded`, `redshift_status`) for operators and `s3clean`.
The ledger, not the watermark, decides what is loaded: it is written in the group's own
transaction, so a crash between the merge and the watermark costs nothing but the mirror, which
the next run repairs.
"""

import time
from contextlib import suppress
from functools import partial

from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator, TableError
from s3rs_tui.runtime.events import (
    EventSink,
    FilesLoaded,
    Level,
    LoadFinished,
    LoadStarted,
    Notice,
    RunOutcome,
    StateChanged,
)
from s3rs_tui.runtime.retry import reported_retries
from s3rs_tui.store import open_store
from s3rs_tui.store.history import DELETION, PART
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import Watermark, WatermarkStore
from s3rs_tui.warehouse import open_warehouse
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.datafiles import DataFile, apply_order, loaded_mirror, plan_load, read_footer
from s3rs_tui.warehouse.ledger import LedgerEntry, version
from s3rs_tui.warehouse.merge import Target

FILES_PER_LOAD = 16  # files per COPY and merge: large loads are what warehouses are fast at


def target_for(settings: Settings, table_name: str, watermark: Watermark) -> Target:
    """The warehouse table a MySQL table loads into, with the watermark's key and cursor."""
    database, table, spec = settings.table(table_name)
    keys = watermark.key_names
    if keys is None or not watermark.cursor_column:
        raise TableError(f"the watermark of {database}.{table} names no key or cursor column: "
                         "run a sync first")
    return Target(settings.warehouse.schema, spec.target or table, keys, watermark.cursor_column,
                  f"{database}.{table}")


def _groups(files: list[DataFile], size: int) -> list[list[DataFile]]:
    """Consecutive part files with the same columns, at most `size` at a time (0: no limit, as few
    COPY statements as the layouts allow; one COPY needs one layout). Reconcile's fix and deletion
    files go one at a time: each applies at its own watermark position."""
    groups: list[list[DataFile]] = []
    for data_file in files:
        room = size == 0 or (groups and len(groups[-1]) < size)
        same = groups and groups[-1][0].columns == data_file.columns and groups[-1][0].kind == data_file.kind
        if same and room and data_file.kind == PART:
            groups[-1].append(data_file)
        else:
            groups.append([data_file])
    return groups


class TableLoader:
    """Loads one table; `run()` returns the LoadFinished event it also sends to the sink."""

    def __init__(self, settings: Settings, table_name: str, sink: EventSink, control: RunControl, *,
                 break_lock: bool = False, files_per_load: int = FILES_PER_LOAD):
        self.settings, self.sink, self.control = settings, sink, control
        self.break_lock, self.files_per_load = break_lock, files_per_load
        database, table, _ = settings.table(table_name)
        self.name = f"{database}.{table}"
        self.store = open_store(settings)
        self.watermarks = WatermarkStore(self.store)
        self.files = self.rows = 0

    def _notice(self, message: str, level: Level = "warning") -> None:
        self.sink(Notice(table=self.name, message=message, level=level))

    def run(self) -> LoadFinished:
        started = time.monotonic()
        with TableLock(self.store, self.name, purpose="load", break_lock=self.break_lock,
                       stale_seconds=self.settings.backup.lock_stale_seconds) as lock:
            watermark = None
            retries = partial(reported_retries, sink=self.sink, table=self.name,
                              attempts=self.settings.backup.retry_attempts, control=self.control,
                              rerun="a rerun loads the files not loaded yet")
            try:
                watermark = retries(lambda: self.watermarks.get(self.name), what="the store")
                if watermark is None or not watermark.has_files:
                    self._notice("nothing is stored yet: nothing to load", "info")
                else:
                    retries(lambda: self._connect_and_load(watermark, lock), what="the warehouse",
                            progress=lambda: self.files)
            except S3rsError as exc:
                status: RunOutcome = "interrupted" if isinstance(exc, StoppedByOperator) else "failed"
                self._mark(watermark, status)
                self.sink(
                    LoadFinished(
                        table=self.name,
                        status=status,
                        files=self.files,
                        rows=self.rows,
                        elapsed_seconds=time.monotonic() - started,
                        error=str(exc),
                    )
                )
                raise
        finished = LoadFinished(
            table=self.name,
            status="success",
            files=self.files,
            rows=self.rows,
            elapsed_seconds=time.monotonic() - started,
        )
        self.sink(finished)
        return finished

    def _connect_and_load(self, watermark: Watermark, lock: TableLock) -> None:
        """One attempt on a fresh connection. After a lost connection the next attempt starts over
        from the ledger: a group whose COMMIT got through is not loaded twice, one that did not
        was rolled back by the server."""
        with open_warehouse(self.settings, self.store, notify=self._notice) as warehouse:
            self.load_pending(warehouse, watermark, lock)

    def load_pending(self, warehouse: Warehouse, watermark: Watermark, lock: TableLock) -> None:
        """Load every committed file not loaded yet, with `lock` held (by run(), or by reconcile)."""
        target = target_for(self.settings, self.name, watermark)
        warehouse.prepare()
        ledger = warehouse.loaded_files(target)
        if ledger and warehouse.describe(target.table) is None:
            self._notice(
                f"{target.label} is not in the warehouse any more: its {len(ledger)} ledger rows "
                "are dropped and every stored file is loaded again"
            )
            warehouse.forget(target)
            ledger = {}
        stored = list(self.store.list(table_prefix(self.name)))
        plan = plan_load(stored, ledger, watermark)
        for message in plan.notices(target.label):
            self._notice(message)
        files = apply_order([read_footer(self.store, info) for info in plan.todo])
        self.sink(LoadStarted(table=self.name, files=len(files), warehouse=warehouse.label))
        watermark.redshift_status = "in_progress"
        started = time.monotonic()
        for group in _groups(files, self.files_per_load if target.keys else 1):
            self._pause_point()
            if self.control.stop_requested:
                raise StoppedByOperator(
                    f"{self.name}: load stopped by {self.control.reason} after "
                    f"{self.files} files; every loaded file is recorded; rerun to go on"
                )
            if lock.lost.is_set():
                raise S3rsError(f"{self.name}: {lock.lost.reason}; load stopped")
            if group[0].kind != DELETION:  # a deletion file holds keys only
                for message in warehouse.prepare_target(target, group[0].columns):
                    self._notice(message, "info")
            rows = warehouse.load(target, group, lock.run_id)
            for message in warehouse.notes(target):
                self._notice(message)
            ledger.update(
                {f.info.key: LedgerEntry(f.info.key, f.info.size, version(f.info), f.rows) for f in group}
            )
            self.files += len(group)
            self.rows += rows
            watermark.redshift_rows_loaded += rows
            watermark.processed_s3_files = loaded_mirror(stored, ledger)
            self.watermarks.save(watermark)
            self.sink(
                FilesLoaded(
                    table=self.name,
                    files=tuple(f.info.key for f in group),
                    rows=rows,
                    run_files=self.files,
                    run_rows=self.rows,
                    elapsed_seconds=time.monotonic() - started,
                )
            )
        watermark.processed_s3_files = loaded_mirror(stored, ledger)
        watermark.redshift_status = "success"
        self.watermarks.save(watermark)

    def _pause_point(self) -> None:
        """Between groups is the only place a load pauses: everything loaded is recorded there."""
        if self.control.paused:
            self.sink(StateChanged(table=self.name, state="paused"))
            self.control.wait_while_paused()
            self.sink(
                StateChanged(table=self.name, state="stopping" if self.control.stop_requested else "running")
            )

    def _mark(self, watermark: Watermark | None, status: str) -> None:
        """Record how the load ended (best effort: the ledger already holds what was loaded)."""
        if watermark is None or not watermark.has_files:
            return
        watermark.redshift_status = status
        with suppress(Exception):  # broad: the store may be what failed
            self.watermarks.save(watermark)
