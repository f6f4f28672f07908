"""`s3rs reconcile`: find what a cursor cannot see, and make the backup exact again.

A cursor on `update_at` misses rows deleted in MySQL, rows changed without their cursor moving,
and rows written behind the watermark. Reconcile compares MySQL with the newest backed-up state
(the warehouse's table, else the store's files: jobs/store_state.py) key range by key range by
checksums over all columns (jobs/checksums.py, as verify), narrows each differing range to keys,
and stores what it found (store/history.py): MySQL's current rows of changed and missing keys as
a fix file, keys gone from MySQL as a deletion file. With a warehouse both are loaded through the
ledger right away (the loader applies them in position order, exactly once).

The run holds the table's lock. Its found_at and watermark are saved first in
`_state/reconcile/<db>.<table>.json` with the next range to compare, after each range's files are
stored (and loaded): a rerun after any interruption goes on from there under the same names, and
compares the interrupted range again against a state that already includes what it stored.
Memory holds one range's keys and one row group whatever the table's size.
"""

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime

import pyarrow as pa
import pymysql

from s3rs_tui.engine.extract import typed_key
from s3rs_tui.engine.keyset import Position, sortable_key
from s3rs_tui.engine.memory import MemoryBudget, rss_mb
from s3rs_tui.engine.mysql import classify, close_quietly, connect
from s3rs_tui.engine.parquet import ParquetFile, WriterChoices, spelled_by_sort_order, start_text
from s3rs_tui.engine.refetch import rows_by_key
from s3rs_tui.engine.table import TableInfo, describe_table
from s3rs_tui.engine.typemap import arrow_schema, cast_text, plan_columns
from s3rs_tui.jobs.checksums import CELL_ROWS, CHUNK_KEYS, Backup, Cells, ChunkRows, Comparison, RangeDiff
from s3rs_tui.jobs.store_state import StoreState
from s3rs_tui.jobs.verify import check_loaded, warehouse_backup
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator, TableError
from s3rs_tui.runtime.events import EventSink, Level, Notice, RangeReconciled, ReconcileStarted
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import KeyParts
from s3rs_tui.store import ObjectStore, open_store
from s3rs_tui.store.history import DELETION, FIX, Mark, history_key, run_files, sequence_of, write_deletions
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import STATE_PREFIX, Watermark, WatermarkStore
from s3rs_tui.warehouse import NO_WAREHOUSE, open_warehouse
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.loader import TableLoader, target_for

_SHOWN_KEYS = 5


@dataclass
class ReconcileOptions:
    dry_run: bool = False      # compare and report; store nothing
    chunk_keys: int = CHUNK_KEYS
    break_lock: bool = False


@dataclass(kw_only=True)
class Counts:
    """What a run compared and found: kept in its saved state, so a resumed run reports its whole."""

    ranges: int = 0
    differing_ranges: int = 0
    rows_checked: int = 0
    fixed: int = 0
    deleted: int = 0
    pending: int = 0


@dataclass
class Reconciliation(Counts):
    """What a run found and stored (over all its attempts, when it was resumed)."""

    table: str
    against: str = ""
    up_to: str = ""
    dry_run: bool = False
    resumed: bool = False
    files: list[str] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)  # a few keys found, for the operator
    seconds: float = 0.0
    skipped_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        found = (f"{self.fixed:,} keys {'to re-read' if self.dry_run else 're-read'} from MySQL, "
                 f"{self.deleted:,} keys gone from MySQL")
        more = ", ..." if self.fixed + self.deleted > len(self.sample) else ""
        shown = f" ({', '.join(self.sample)}{more})"
        return (f"{self.table}: {self.ranges:,} ranges, {self.rows_checked:,} rows compared with "
                f"{self.against} up to {self.up_to} in {self.seconds:.1f}s: "
                + (found + (shown if self.sample else "") if self.fixed or self.deleted else "no differences")
                + (" (dry run: nothing stored)" if self.dry_run else ""))

    def as_dict(self) -> dict:
        return {"table": self.table, **asdict(self)}  # the table first, as people read it


def state_key(name: str) -> str:
    return f"{STATE_PREFIX}reconcile/{name}.json"


@dataclass
class _RunState(Counts):
    """What survives an interruption: saved before anything is stored, and after each range."""

    found_at: str
    watermark: list       # [cursor value, key]: a composite key as a list of its values
    chunk_keys: int
    next_chunk: int | None = None  # the first range not done; None: not started
    sequence: int = 0

    @property
    def mark(self) -> Mark:
        return Mark(datetime.fromisoformat(self.found_at), self.watermark[0], self.watermark[1])


def _load_state(store: ObjectStore, name: str) -> _RunState | None:
    found = store.get_bytes(state_key(name))
    if found is None:
        return None
    try:
        return _RunState(**json.loads(found[0]))
    except (ValueError, TypeError):
        return None  # unreadable: start over (what was stored stays valid: files are whole)


def _save_state(store: ObjectStore, name: str, state: _RunState) -> None:
    store.put_bytes(state_key(name), json.dumps(asdict(state)).encode())


class TableReconcile:
    """Reconciles one table; run() returns what it found."""

    def __init__(self, settings: Settings, table_name: str, sink: EventSink, control: RunControl,
                 options: ReconcileOptions | None = None):
        self.settings, self.sink, self.control = settings, sink, control
        self.options = options or ReconcileOptions()
        database, table, self.spec = settings.table(table_name)
        self.name = f"{database}.{table}"
        self.store = open_store(settings)
        self.warehoused = settings.warehouse.kind != NO_WAREHOUSE
        self.started = 0.0

    def _notice(self, message: str, level: Level = "info") -> None:
        self.sink(Notice(table=self.name, message=message, level=level))

    def run(self) -> Reconciliation:
        self.started = time.monotonic()
        conn = None
        with TableLock(self.store, self.name, purpose="reconcile", break_lock=self.options.break_lock,
                       stale_seconds=self.settings.backup.lock_stale_seconds) as lock:
            watermarks = WatermarkStore(self.store)
            watermark = watermarks.get(self.name)
            if watermark is not None:
                watermark.refuse_open_ranges("reconcile")
            if watermark is None or not watermark.has_position:
                raise S3rsError(f"{self.name}: nothing is backed up yet: "
                                f"run `s3rs sync -t {self.name}` first")
            try:
                conn = connect(self.settings)
                database, table = self.name.split(".")
                info = describe_table(conn, database, table, self.spec)
                if info.keyless:
                    raise TableError(f"{self.name} has no unique key: reconcile finds deleted and changed "
                                     "rows by key, and this table has none to compare them by (README: "
                                     "Tables without a unique key)")
                if not self.warehoused:
                    with StoreState(self.store, self.name, watermark, info.key_names) as state:
                        return self._reconcile(conn, info, watermark, state.backup(), lock, None)
                with open_warehouse(self.settings, self.store) as warehouse:
                    target = target_for(self.settings, self.name, watermark)
                    if self.options.dry_run:
                        check_loaded(warehouse, target, self.store, watermark, self.name)
                    else:  # compare with everything stored: load what is not loaded yet
                        self._load(warehouse, watermarks, lock)
                    return self._reconcile(conn, info, watermark, warehouse_backup(warehouse, target), lock,
                                           warehouse)
            except (S3rsError, OSError):
                raise
            except Exception as exc:  # broad: driver errors become one line
                raise classify(exc, f"reconciling {self.name}") from exc
            finally:
                close_quietly(conn)

    def _load(self, warehouse: Warehouse, watermarks: WatermarkStore, lock: TableLock) -> None:
        loader = TableLoader(self.settings, self.name, self.sink, self.control)
        watermark = watermarks.get(self.name)
        assert watermark is not None  # the lock is held: nobody removed it
        loader.load_pending(warehouse, watermark, lock)

    def _start(self, watermark: Watermark) -> tuple[_RunState, bool]:
        """The interrupted run to go on with (same watermark, same chunk size), or a new one."""
        key = watermark.position_key  # a one-column key as its value (as marks always had it)
        position = [watermark.last_mysql_data_timestamp,
                    None if key is None else key[0] if len(key) == 1 else list(key)]
        saved = None if self.options.dry_run else _load_state(self.store, self.name)
        if saved is not None and saved.watermark == position and saved.chunk_keys == self.options.chunk_keys:
            stored = run_files(list(self.store.list(table_prefix(self.name))), saved.mark)
            # files the interrupted range stored before its state was saved keep their names
            saved.sequence = max([saved.sequence, *(sequence_of(info.key) + 1 for info in stored)])
            self._notice(f"going on with the reconcile interrupted at range {saved.next_chunk} "
                         f"(found_at {saved.found_at})")
            return saved, True
        if saved is not None:
            self._notice("the interrupted reconcile's watermark or chunk size is not today's: starting over "
                         "(what it stored stays valid)")
        state = _RunState(datetime.now(UTC).isoformat(), position, self.options.chunk_keys)
        if not self.options.dry_run:
            _save_state(self.store, self.name, state)
        return state, False

    def _reconcile(self, conn: pymysql.Connection, info: TableInfo, watermark: Watermark, backup: Backup,
                   lock: TableLock, warehouse: Warehouse | None) -> Reconciliation:
        state, resumed = self._start(watermark)
        timestamp, last_key = state.watermark
        parts = None if last_key is None else tuple(last_key) if isinstance(last_key, list) else (last_key,)
        position = Position(timestamp, None if parts is None else typed_key(info, parts))
        comparison = Comparison(info, backup, position, self.options.chunk_keys)
        result = Reconciliation(self.name, backup.label, position.label(),
                                self.options.dry_run, resumed, skipped_columns=comparison.skipped)
        if comparison.skipped:
            self._notice(f"not compared: {', '.join(comparison.skipped)} (floating point, or not in "
                         f"{backup.label}): a change in them alone is not found")
        key = position.key
        sortable = sortable_key(conn, info, key) if key and spelled_by_sort_order(info, position) else ""
        mark = replace(state.mark, spelled=start_text(info, position, sortable))
        writer = _Writer(self, conn, info, mark, comparison)
        if comparison.mysql.integer_key:
            span = comparison.chunk_span(conn)
            chunks = [] if span is None else list(range(span[0], span[1] + 1))
            sums: tuple[Cells, Cells] | None = None
        else:  # hash buckets: one pass over each side for all of them, per cell
            sums = comparison.cell_sums(conn)
            chunks = sorted(set(sums[0]) | set(sums[1]))
        todo = [c for c in chunks if state.next_chunk is None or c >= state.next_chunk]
        self.sink(ReconcileStarted(table=self.name, against=backup.label, ranges=len(todo), resumed=resumed))
        read: dict[int, ChunkRows] = {}  # hash buckets: the rows of their differing cells
        for done, chunk in enumerate(todo, start=1):
            self._check(lock)
            if sums is not None and chunk not in read:
                read = comparison.cells_rows(conn, _differing_cells(sums, todo[done - 1:]))
            checked, compared = self._compare(conn, comparison, chunk, sums, read.pop(chunk, ({}, {})))
            state.rows_checked += checked
            if compared is not None:
                diff, pending = compared
                state.pending += pending
                if diff.keys:
                    self._record(diff, state, result, writer, lock, warehouse)
            state.ranges += 1
            state.next_chunk = chunk + 1
            if not self.options.dry_run:
                _save_state(self.store, self.name, state)
            self._progress(state, comparison.label(chunk), done, len(todo))
        if not self.options.dry_run:
            self.store.delete(state_key(self.name))
        for counter in fields(Counts):
            setattr(result, counter.name, getattr(state, counter.name))
        result.seconds = time.monotonic() - self.started
        return result

    def _record(self, diff: RangeDiff, state: _RunState, result: Reconciliation, writer: "_Writer",
                lock: TableLock, warehouse: Warehouse | None) -> None:
        """Count what a range holds that differs; store it (and load it) unless this is a dry run."""
        comparison = writer.comparison
        fix = [comparison.key_value(k) for k in diff.missing + diff.changed]
        gone = [comparison.key_value(k) for k in diff.extra]
        named = diff.changed + diff.missing + diff.extra
        result.sample.extend(comparison.shown(k) for k in named[:_SHOWN_KEYS - len(result.sample)])
        state.differing_ranges += 1
        state.fixed += len(fix)
        state.deleted += len(gone)
        if self.options.dry_run:
            return
        result.files += writer.store(state, fix, gone)
        failpoint("reconcile-stored")  # stored, not loaded, the range not saved as done
        if warehouse is not None:
            self._load(warehouse, WatermarkStore(self.store), lock)

    @staticmethod
    def _compare(conn: pymysql.Connection, comparison: Comparison, chunk: int,
                 sums: tuple[Cells, Cells] | None, read: ChunkRows
                 ) -> tuple[int, tuple[RangeDiff, int] | None]:
        """MySQL rows compared in one range, and (what differs, rows pending) when it differs.
        Integer keys: the range's parts are checksummed and only differing parts' rows read;
        hash buckets: `sums` holds every bucket's checksums per cell, `read` the rows of this
        bucket's differing cells (none: no cell differs)."""
        if sums is None:
            mine, theirs = comparison.part_sums(conn, chunk)
            parts = sorted(p for p in set(mine) | set(theirs) if mine.get(p) != theirs.get(p))
            checked = sum(n for n, _ in mine.values())
            if parts:
                return checked, comparison.diff(chunk, *comparison.part_rows(conn, parts), name=str)
            return checked, None
        checked = sum(n for n, _ in sums[0].get(chunk, {}).values())
        return checked, comparison.diff(chunk, *read, name=str) if read[0] or read[1] else None

    def _check(self, lock: TableLock) -> None:
        if self.control.stop_requested:
            raise StoppedByOperator(f"{self.name}: reconcile stopped by {self.control.reason}; what it "
                                    "stored is kept: rerun to go on")
        if lock.lost.is_set():
            raise S3rsError(f"{self.name}: {lock.lost.reason}; reconcile stopped: rerun to go on")

    def _progress(self, state: _RunState, label: str, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        self.sink(RangeReconciled(table=self.name, label=label, ranges_done=done, ranges_total=total,
                                  rows_checked=state.rows_checked, fixed=state.fixed, deleted=state.deleted,
                                  rows_per_minute=state.rows_checked * 60 / elapsed if elapsed > 0 else 0.0,
                                  rss_mb=rss_mb(), elapsed_seconds=elapsed))


class _Writer:
    """Stores one range's findings: a fix file (MySQL's current rows) and a deletion file."""

    def __init__(self, job: TableReconcile, conn: pymysql.Connection, info: TableInfo, mark: Mark,
                 comparison: Comparison):
        self.job, self.conn, self.info, self.mark, self.comparison = job, conn, info, mark, comparison
        self.plans = plan_columns(info.columns)
        self.schema = arrow_schema(self.plans)

    def store(self, state: _RunState, fix: list[KeyParts], gone: list[KeyParts]) -> list[str]:
        stored = []
        if fix and (key := self._fix_file(state.sequence, fix)):
            stored.append(key)
            state.sequence += 1
        if gone:
            stored.append(self._deletion_file(state.sequence, gone))
            state.sequence += 1
        return stored

    def _fix_file(self, sequence: int, keys: list[KeyParts]) -> str | None:
        store = self.job.store
        budget = MemoryBudget(batch_size=self.job.settings.backup.batch_size)
        file = ParquetFile(store.scratch_dir() / f"fix-{uuid.uuid4().hex}.parquet", self.schema, budget,
                           WriterChoices((self.info.keys[0].name, self.info.cursor.name)))
        try:
            for batch in rows_by_key(self.conn, self.info, self.plans, keys, self.comparison.covered,
                                     self.comparison.params, budget.chunk_rows):
                file.add(batch)
        except BaseException:
            file.abandon()
            raise
        if file.rows == 0:  # changed again since compared (past the watermark now): the next sync's
            file.abandon()
            return None
        file.close(self.mark.footer())
        key = history_key(self.job.name, FIX, self.mark, sequence)
        store.put_file(key, file.path)
        return key

    def _deletion_file(self, sequence: int, keys: list[KeyParts]) -> str:
        """The keys, each column typed as the data files type it (from its canonical text)."""
        store = self.job.store
        fields = [self.schema.field(name) for name in self.info.key_names]
        values = [cast_text(pa.array([str(k[at]) for k in keys], pa.string()), key_field.type)
                  for at, key_field in enumerate(fields)]
        path = store.scratch_dir() / f"del-{uuid.uuid4().hex}.parquet"
        write_deletions(path, pa.Table.from_arrays(values, schema=pa.schema(fields)), self.mark)
        key = history_key(self.job.name, DELETION, self.mark, sequence)
        store.put_file(key, path)
        return key


def _differing_cells(sums: tuple[Cells, Cells], chunks: list[int]) -> dict[int, list[int]]:
    """The differing cells (maybe none) of the first hash buckets of `chunks` whose rows (both
    sides, from the checksums) add up to about CELL_ROWS, at least the first bucket: read in one
    scan of each side."""
    mine, theirs = sums
    found: dict[int, list[int]] = {}
    rows = 0
    for chunk in chunks:
        ours, others = mine.get(chunk, {}), theirs.get(chunk, {})
        cells = sorted(c for c in set(ours) | set(others) if ours.get(c) != others.get(c))
        more = sum(ours.get(c, (0, 0))[0] + others.get(c, (0, 0))[0] for c in cells)
        if found and rows + more > CELL_ROWS:
            break
        found[chunk] = cells
        rows += more
    return found
