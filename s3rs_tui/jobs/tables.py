"""Table jobs: extract, then load and verify as asked; and many tables at once.

Each table runs in its own thread with its own connection, lock and watermark; one failing table
does not stop the others. With several tables, a table locked by another run (another host
sharing the bucket, say) is skipped rather than failed, so `sync --all` on two machines shares the
work: each takes whichever tables it locks first.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from s3rs_tui.engine.sync import SyncOptions, TableSync
from s3rs_tui.jobs.reconcile import ReconcileOptions, Reconciliation, TableReconcile
from s3rs_tui.jobs.verify import Verification, verify_table
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import (
    LoadError,
    S3rsError,
    StoppedByOperator,
    TableLockedError,
    TransientError,
    VerifyDiffers,
)
from s3rs_tui.runtime.events import (
    EventSink,
    JobFinished,
    JobOutcome,
    JobStarted,
    LoadFinished,
    Notice,
    RunFinished,
    Step,
    VerifyFinished,
    VerifyStarted,
)
from s3rs_tui.warehouse.loader import FILES_PER_LOAD, TableLoader


@dataclass(frozen=True)
class Steps:
    extract: bool = True
    load: bool = False
    verify: bool = False
    reconcile: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name in ("extract", "load", "verify", "reconcile") if getattr(self, name))


def verdict(verification) -> str:
    """A verify's outcome in a few words, the verdict first (it must fit next to the table)."""
    if verification.agrees:
        return f"agrees: {verification.mysql_rows:,} rows"
    keys = sum(len(r.missing) + len(r.extra) + len(r.changed) for r in verification.ranges)
    return f"differs: {len(verification.ranges)} ranges, {keys} keys"


@dataclass
class TableOutcome:
    table: str
    status: JobOutcome | Literal["pending"] = "pending"
    extracted: RunFinished | None = None
    loaded: LoadFinished | None = None
    verification: "Verification | None" = None
    reconciliation: Reconciliation | None = None
    error: S3rsError | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.extracted.rows if self.extracted else 0

    @property
    def files(self) -> int:
        return self.extracted.files if self.extracted else 0


@dataclass
class TableJobs:
    settings: Settings
    sink: EventSink
    control: RunControl
    options: SyncOptions = field(default_factory=SyncOptions)
    steps: Steps = field(default_factory=Steps)
    reconcile: ReconcileOptions = field(default_factory=ReconcileOptions)

    def run_one(self, name: str, skip_if_locked: bool = False) -> TableOutcome:
        """Extract, load, verify one table; errors end up in the outcome (StoppedByOperator too).
        JobStarted and JobFinished frame the steps, so the status knows what is still to come and
        which phase failed."""
        outcome, started = TableOutcome(name), time.monotonic()
        phase: Step = ""
        status: JobOutcome
        extracted: list[RunFinished] = []  # also when the run raises after saying how it ended

        def sink(event) -> None:
            if isinstance(event, RunFinished):
                extracted.append(event)
            self.sink(event)

        self.sink(JobStarted(table=name, steps=self.steps.names))
        try:
            if self.steps.extract:
                phase = "extract"
                extract = TableSync(self.settings, name, sink, self.control, self.options)
                outcome.extracted = extract.run()
            if self.steps.load:
                phase = "load"
                outcome.loaded = self._load(name)
            if self.steps.verify:
                phase = "verify"
                outcome.verification = self._verify(name)
            if self.steps.reconcile:
                phase = "reconcile"
                outcome.reconciliation = self._reconcile(name)
            status = "success"
        except TableLockedError as exc:
            status, outcome.error = ("skipped" if skip_if_locked else "failed"), exc
            self.sink(Notice(table=name, message=f"skipped: {exc}" if skip_if_locked else str(exc),
                             level="info" if skip_if_locked else "error"))
        except StoppedByOperator as exc:
            status, outcome.error = "interrupted", exc
        except VerifyDiffers as exc:
            status, outcome.error = "differs", exc
            self.sink(Notice(table=name, message=str(exc), level="error"))
        except S3rsError as exc:
            status, outcome.error = "failed", exc
            self.sink(Notice(table=name, message=str(exc), level="error"))
        outcome.status, outcome.seconds = status, time.monotonic() - started
        self.sink(JobFinished(table=name, outcome=status, rows=extracted[-1].rows if extracted else 0,
                              seconds=outcome.seconds,
                              failed_phase=phase if status == "failed" else "",
                              error=str(outcome.error or "")))
        return outcome

    def _load(self, name: str) -> LoadFinished:
        # --load-only is the staged way for huge tables: all stored files in as few COPY
        # statements as possible; after an extraction, groups commit as they go
        loader = TableLoader(self.settings, name, self.sink, self.control, break_lock=self.options.break_lock,
                             files_per_load=FILES_PER_LOAD if self.steps.extract else 0)
        try:
            return loader.run()
        except S3rsError as exc:
            if type(exc) in (S3rsError, TransientError):  # a plain failure: say it was the load's
                raise LoadError(str(exc)) from exc
            raise

    def _verify(self, name: str):
        """Compare MySQL and the warehouse; differences raise VerifyDiffers (not "safe to retry")."""
        self.sink(VerifyStarted(table=name))
        verification = verify_table(self.settings, name, self.sink)
        self.sink(VerifyFinished(table=name, agrees=verification.agrees, summary=verdict(verification)))
        if not verification.agrees:
            raise VerifyDiffers(verification.summary())
        return verification

    def _reconcile(self, name: str) -> Reconciliation:
        """Compare MySQL with the newest backed-up state and store (and load) what differs."""
        reconciliation = TableReconcile(self.settings, name, self.sink, self.control, self.reconcile).run()
        self.sink(Notice(table=name, message=reconciliation.summary(), level="info"))
        return reconciliation

    def run_many(self, names: list[str], workers: int) -> list[TableOutcome]:
        """Up to `workers` tables at once; results in the order given."""
        several = len(names) > 1
        if workers <= 1 or not several:
            outcomes = []
            for name in names:
                if self.control.stop_requested:
                    break
                outcomes.append(self.run_one(name, skip_if_locked=several))
            return outcomes
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3rs-table") as pool:
            futures = [pool.submit(self._run_unless_stopped, name) for name in names]
            return [future.result() for future in futures]

    def _run_unless_stopped(self, name: str) -> TableOutcome:
        if self.control.stop_requested:
            return TableOutcome(name, "interrupted", error=StoppedByOperator("not started: stop requested"))
        return self.run_one(name, skip_if_locked=True)
