"""`s3rs restore`: a table back into MySQL (or into Parquet files) from its stored history, as of
any moment.

The plan reads the watermark and lists the committed part files (a part file starting after the
moment holds only later rows and is skipped) and reconcile's fix and deletion files, in position
order; the definition in force (SHOW CREATE TABLE, captured by the backups) names the target's
columns, types and indexes. The run copies those files to a work folder, lets DuckDB pick each
key's winning version (restore_state.py) and streams the winning rows, file by file, into the
target in batches. After each committed batch the progress object in the store records where it
ended (a file and a row number in it), so a run killed at any moment is rerun with the same
command: it reads the same files, goes on from there, and loads its first batch with REPLACE (it
may have been committed just before the kill), which leaves each key exactly once.
"""

import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql

from s3rs_tui.engine.keyset import cursor_clock, unknown_zone
from s3rs_tui.engine.memory import peak_rss_mb, release_free_memory, rss_mb, use_compact_allocators
from s3rs_tui.engine.mysql import classify, close_quietly, connect
from s3rs_tui.engine.table import table_columns, table_indexes
from s3rs_tui.jobs.restore_mysql import (
    LOCAL_INFILE_REFUSED,
    SESSION_SQL,
    MySQLWriter,
    fallback_definition,
    index_name,
    target_definition,
)
from s3rs_tui.jobs.restore_state import (
    KeyBound,
    LocalFile,
    StateQuery,
    aligned,
    connect_duckdb,
    taken_rows,
    winners,
    winners_by_file,
)
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import ConfigError, S3rsError, StoppedByOperator
from s3rs_tui.runtime.events import (
    EventSink,
    Notice,
    RestoreFinished,
    RestoreStarted,
    RowsRestored,
    StateChanged,
)
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.keys import KeyValue, shown_key
from s3rs_tui.runtime.parsing import parse_timestamp, quote_identifier, split_table_name
from s3rs_tui.runtime.workdir import OwnedFolder
from s3rs_tui.store import ObjectInfo, ObjectStore, open_store
from s3rs_tui.store.history import DELETION, FIX, PART, Mark, kind_of, position_order, read_mark
from s3rs_tui.store.layout import start_timestamp, table_prefix, timestamp_digits
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.restores import DONE, IN_PROGRESS, RestoreProgress, read_progress, save_progress
from s3rs_tui.store.schemas import Definition, definition_at
from s3rs_tui.store.watermark import Watermark, WatermarkStore

_FILE_ROWS = 1_000_000  # rows per Parquet file of --to-parquet
_TAIL_BYTES = 64 * 1024  # one ranged read holds almost every footer


# The winners pass's memory_limit: at 10M rows 128 MB (spilling) took 3.9 s against 3.1 s at 256 and
# peaked at 298 MB RSS against 398 (measured), so the pass no longer sets the run's peak.
DUCKDB_MEMORY_MB = 128


@dataclass
class RestoreOptions:
    table: str                          # the source, db.table (or table in [mysql] database)
    into: str | None = None             # the MySQL target, db.table
    to_parquet: Path | None = None      # or a folder for Parquet files
    as_of: str | None = None            # 'YYYY-MM-DD HH:MM:SS[.ffffff]' in cursor time; None: all
    key_from: list[str] | None = None   # one value per key column, in the key's order
    key_to: list[str] | None = None
    replace: bool = False
    batch_rows: int = 50_000
    memory_mb: int = DUCKDB_MEMORY_MB    # DuckDB's memory_limit; it spills beyond
    inserts: bool = False               # multi-row INSERTs even where LOAD DATA LOCAL works
    work_dir: Path | None = None        # the files' local copies and DuckDB's spill (default: TMPDIR)


@dataclass
class RestorePlan:
    source: str
    target: str                         # quoted-free db.table, or the folder
    as_of: str | None
    key_columns: list[str]
    cursor: str
    files: list[ObjectInfo]             # in position order
    marks: dict[str, Mark]
    definition: Definition | None
    target_exists: bool = False
    target_rows: int = 0                # 0 or 1: the target is empty or not
    resume: RestoreProgress | None = None
    notices: list[str] = field(default_factory=list)
    schema: pa.Schema = field(default_factory=lambda: pa.schema([]))  # the data's columns, newest types
    key_from: KeyBound | None = None    # the range's bounds, typed as the key columns
    key_to: KeyBound | None = None

    @property
    def bytes(self) -> int:
        return sum(info.size for info in self.files)

    def as_dict(self) -> dict:
        return {"source": self.source, "target": self.target, "as_of": self.as_of,
                "files": len(self.files), "bytes": self.bytes,
                "part_files": sum(kind_of(i.key) == PART for i in self.files),
                "fix_files": sum(kind_of(i.key) == FIX for i in self.files),
                "deletion_files": sum(kind_of(i.key) == DELETION for i in self.files),
                "definition": self.definition.key if self.definition else None,
                "target_exists": self.target_exists, "target_empty": not self.target_rows,
                "resumes_after_rows": self.resume.rows if self.resume else None, "notices": self.notices}


@dataclass
class RestoreResult:
    plan: RestorePlan
    rows: int                # in the target (resumed rows included)
    run_rows: int            # written by this run
    seconds: float
    rows_per_minute: float
    peak_rss_mb: float
    load_data: bool          # LOAD DATA LOCAL INFILE (else INSERTs); False for Parquet

    def as_dict(self) -> dict:
        return {**self.plan.as_dict(), "rows": self.rows, "run_rows": self.run_rows,
                "seconds": round(self.seconds, 3), "rows_per_minute": round(self.rows_per_minute),
                "peak_rss_mb": round(self.peak_rss_mb, 1),
                "method": "parquet" if self.plan.target.startswith("/") else
                "load data" if self.load_data else "insert"}


class Restore:
    def __init__(self, settings: Settings, options: RestoreOptions, sink: EventSink, control: RunControl):
        self.settings, self.options, self.sink, self.control = settings, options, sink, control
        database, table, _ = settings.table(options.table)
        self.source = f"{database}.{table}"
        self.store = open_store(settings)
        self.as_of = self._parse_as_of(options.as_of)
        if (options.into is None) == (options.to_parquet is None):
            raise ConfigError("restore where? give --into db.table (MySQL) or --to-parquet DIR")
        self.target = self._target_name(options)
        self.conn: pymysql.Connection | None = None
        self.total = 0        # rows of the state (known once the winners are picked)
        self.restored = 0     # rows in the target (or the folder) so far, resumed ones included
        self.paused = 0.0     # seconds paused by the operator: not part of rows/min

    @staticmethod
    def _parse_as_of(text: str | None) -> str | None:
        try:
            return parse_timestamp(text) if text is not None else None
        except ValueError as exc:
            raise ConfigError(f"--as-of: {exc}") from None

    def _target_name(self, options: RestoreOptions) -> str:
        if options.to_parquet is not None:
            return str(options.to_parquet.resolve())
        try:
            database, table = split_table_name(str(options.into), self.settings.mysql.database)
        except ValueError as exc:
            raise ConfigError(f"--into: {exc}") from None
        target = f"{database}.{table}"
        if target.lower() == self.source.lower() and not options.replace:
            raise ConfigError(f"--into {target} is the source table itself: restore into another table, or "
                              "add --replace to overwrite the source with its restored state")
        return target

    @property
    def into_mysql(self) -> bool:
        return self.options.to_parquet is None

    @property
    def quoted_target(self) -> str:
        return ".".join(quote_identifier(part) for part in self.target.split("."))

    # -- the plan ------------------------------------------------------------------------------

    def plan(self) -> RestorePlan:
        """What a run would read and write; connects to MySQL for a MySQL target."""
        watermark = WatermarkStore(self.store).get(self.source)
        if watermark is not None:
            watermark.refuse_open_ranges("a restore")
        if watermark is None or not watermark.has_position or not watermark.last_s3_file:
            raise S3rsError(f"{self.source}: nothing is backed up yet (no watermark in {self.store.url})")
        key_columns = list(watermark.key_names or ())
        if not key_columns:
            raise S3rsError(f"{self.source}: backed up without a unique key (the watermark names none): a "
                            "restore needs one to pick each row's newest version")
        cursor = str(watermark.cursor_column or "update_at")
        stored = list(self.store.list(table_prefix(self.source)))
        files, notices = self._pick(stored, watermark)
        moment = datetime.fromisoformat(self.as_of).replace(tzinfo=UTC) if self.as_of else None
        plan = RestorePlan(self.source, self.target, self.as_of, key_columns, cursor, [], {},
                           definition_at(self.store, self.source, moment), notices=notices)
        if self.into_mysql:
            self._check_target(plan)
        else:
            self._check_folder()
        if plan.resume is not None:  # the very files the stopped run read, whatever was stored since
            files = _recorded(stored, plan.resume.files, self.target)
        plan.marks = {info.key: read_mark(self.store, info.key)
                      for info in files if kind_of(info.key) != PART}
        plan.files = position_order(files, plan.marks)
        if not any(kind_of(info.key) in (PART, FIX) for info in plan.files):
            raise S3rsError(f"{self.source}: no stored rows at or before {self.as_of}")
        plan.schema = self._schema(plan)
        if any(name not in plan.schema.names for name in (*key_columns, cursor)):
            raise S3rsError(f"{self.source}: the stored files lack the key or cursor column "
                            f"({', '.join(key_columns)}, {cursor}) the watermark names")
        plan.key_from = _key_bound(self.options.key_from, plan.schema, key_columns, "--where-key-from")
        plan.key_to = _key_bound(self.options.key_to, plan.schema, key_columns, "--where-key-to")
        if plan.definition is None and self.into_mysql:
            plan.notices.append("no table definition is stored (backed up before restore existed): the "
                                "table is created from the files' column types, with the key as primary key "
                                "and no other index, default or NOT NULL")
        return plan

    def _pick(self, stored: list[ObjectInfo], watermark: Watermark) -> tuple[list[ObjectInfo], list[str]]:
        chosen, uncommitted = [], 0
        for info in stored:
            kind = kind_of(info.key)
            if kind == PART and not watermark.commits(info.key):
                uncommitted += 1
            elif kind == PART and self.as_of and start_timestamp(info.key) > timestamp_digits(self.as_of):
                continue  # every row in it is later than the moment
            elif kind is not None:
                chosen.append(info)
        notices = [f"{uncommitted} part files after the watermark's last file are not committed (a run "
                   "stopped before saving its watermark): not read"] if uncommitted else []
        return chosen, notices

    def _connect(self) -> pymysql.Connection:
        if self.conn is None:
            self.conn = connect(self.settings, local_infile=self.into_mysql and not self.options.inserts)
            with self.conn.cursor() as cur:
                cur.execute(SESSION_SQL)
        return self.conn

    def _sql(self, sql: str, params: list | None = None) -> list[tuple]:
        try:
            with self._connect().cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        except S3rsError:
            raise
        except Exception as exc:  # broad: driver errors become one line
            raise classify(exc, f"restoring into {self.target}") from exc

    def _check_target(self, plan: RestorePlan) -> None:
        database, table = self.target.split(".")
        plan.target_exists = bool(self._sql("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                                            "AND TABLE_NAME = %s", [database, table]))
        if plan.target_exists:
            plan.target_rows = len(self._sql(f"SELECT 1 FROM {self.quoted_target} LIMIT 1"))
        progress = read_progress(self.store, self.target)
        wanted = self._progress(plan)
        if progress is not None and progress.status == IN_PROGRESS and progress.created:
            if progress.same_restore(wanted) and plan.target_exists:
                plan.resume = progress
                return
            if not self.options.replace:
                raise ConfigError(f"{self.target} holds a restore of {progress.source} as of "
                                  f"{progress.as_of or 'the last backup'} that stopped midway: rerun that "
                                  "restore to finish it, or add --replace to start over")
        if plan.target_rows and not self.options.replace:
            raise ConfigError(f"{self.target} exists and is not empty: restore into a new table, or add "
                              "--replace to drop it and restore into it")

    def _check_folder(self) -> None:
        folder = Path(self.target)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--to-parquet {folder}: not a folder")
        if folder.is_dir() and any(folder.glob("restore-*.parquet")) and not self.options.replace:
            raise ConfigError(f"--to-parquet {folder} already holds restore-*.parquet files: add --replace "
                              "to write them again")

    def _progress(self, plan: RestorePlan) -> RestoreProgress:
        return RestoreProgress(self.target, self.source, plan.as_of, _recorded_bound(self.options.key_from),
                               _recorded_bound(self.options.key_to), [info.key for info in plan.files])

    # -- the run -------------------------------------------------------------------------------

    def run(self, plan: RestorePlan) -> RestoreResult:
        use_compact_allocators()
        started = time.monotonic()
        folder = OwnedFolder("s3rs-restore-", self.options.work_dir)  # a killed run's is removed here
        work = folder.path
        self.restored = plan.resume.rows if plan.resume else 0
        try:
            if self.into_mysql:
                with TableLock(self.store, self.target, purpose="restore",
                               stale_seconds=self.settings.backup.lock_stale_seconds):
                    result = self._into_mysql(plan, work, started)
            else:
                result = self._into_parquet(plan, work, started)
        except S3rsError as exc:
            self.sink(RestoreFinished(table=self.source, status="interrupted" if isinstance(
                exc, StoppedByOperator) else "failed", target=self.target, rows=self.restored,
                elapsed_seconds=time.monotonic() - started, rows_per_minute=0.0,
                peak_rss_mb=peak_rss_mb(), error=str(exc), paused_seconds=self.paused))
            raise
        finally:
            folder.remove()
            close_quietly(self.conn)
            self.conn = None
        self.sink(RestoreFinished(table=self.source, status="success", target=self.target, rows=result.rows,
                                  elapsed_seconds=result.seconds, rows_per_minute=result.rows_per_minute,
                                  peak_rss_mb=result.peak_rss_mb, paused_seconds=self.paused))
        return result

    def _download(self, plan: RestorePlan, work: Path, offset_seconds: int) -> list[LocalFile]:
        """Local copies named in position order, so DuckDB's file names break ties in that order."""
        files = []
        for number, info in enumerate(plan.files):
            path = work / f"{number:06d}-{info.key.rsplit('/', 1)[1]}"
            self.store.download(info.key, path)
            mark = plan.marks.get(info.key)
            at_us = None
            if mark is not None:
                moment = mark.found_at.astimezone(UTC).replace(tzinfo=None)
                at_us = int((moment - datetime(1970, 1, 1)).total_seconds() * 1e6) + offset_seconds * 10**6
            files.append(LocalFile(path, str(kind_of(info.key)), at_us))
        return files

    def _offset_seconds(self, plan: RestorePlan, schema: pa.Schema | None) -> int:
        """Cursor time minus UTC, for the found_at of fix and deletion files: 0 for a TIMESTAMP
        cursor (stored in UTC), else the zone of cursor_timezone (or the server's) as it is now."""
        if not plan.marks or schema is None:
            return 0
        cursor_type = schema.field(plan.cursor).type if plan.cursor in schema.names else None
        if cursor_type is not None and pa.types.is_timestamp(cursor_type) and cursor_type.tz:
            return 0
        zone = self.settings.table(self.source)[2].cursor_timezone
        expression, params = cursor_clock(False, zone)  # the session is in UTC: not NOW()
        offset = self._sql(f"SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), {expression})", params)[0][0]
        if offset is None:
            raise unknown_zone(zone)
        return int(offset)

    def _schema(self, plan: RestorePlan) -> pa.Schema:
        """The data's columns as the newest file that has each one types them (footers only)."""
        fields: dict[str, pa.Field] = {}
        for info in reversed([i for i in plan.files if kind_of(i.key) in (PART, FIX)]):
            for one in _footer_schema(self.store, info.key):
                fields.setdefault(one.name, one)
        return pa.schema(list(fields.values()))

    def _state(self, plan: RestorePlan, work: Path, schema: pa.Schema,
               start: list[int] | None) -> Iterator[tuple[pa.Table, list[int]]]:
        """The state's rows in batches of about batch_rows, each with the position after it
        ([file index, row number]); from `start` on (a resumed run)."""
        offset = self._offset_seconds(plan, schema)
        files = self._download(plan, work, offset)
        query = StateQuery(plan.key_columns, plan.cursor, plan.as_of, plan.key_from, plan.key_to)
        begin, begin_row = start or [0, 0]
        pending: list[pa.RecordBatch] = []
        rows, position, limit = 0, [0, 0], self.options.batch_rows
        with connect_duckdb(work, self.options.memory_mb) as con:
            winners(con, files, query, work / "winners.parquet")
        self.total = pq.ParquetFile(work / "winners.parquet").metadata.num_rows
        release_free_memory()
        for index, numbers in winners_by_file(work / "winners.parquet"):
            if index < begin:
                continue
            skip = begin_row if index == begin else 0
            for batch, taken in taken_rows(files[index].path, numbers, skip):
                batch = aligned(batch, schema)
                while batch.num_rows:
                    part = min(batch.num_rows, limit - rows)
                    pending.append(batch.slice(0, part))
                    rows, position = rows + part, [index, int(taken[part - 1].as_py()) + 1]
                    batch, taken = batch.slice(part), taken.slice(part)
                    if rows == limit:
                        yield pa.Table.from_batches(pending), position
                        pending, rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending), position

    def _into_mysql(self, plan: RestorePlan, work: Path, started: float) -> RestoreResult:
        progress = plan.resume or self._progress(plan)
        schema = plan.schema
        resumed = plan.resume is not None
        if not resumed:
            progress.created = False
            save_progress(self.store, progress)
            progress.deferred_keys = self._create_target(plan, schema)
            progress.created = True
            save_progress(self.store, progress)
        database, table = self.target.split(".")
        columns = table_columns(self._connect(), database, table)
        writer = MySQLWriter(self._connect(), self.quoted_target, columns, work, not self.options.inserts)
        left_out = [name for name in schema.names if name not in writer.present(schema)]
        if left_out:
            self._notice(f"not in {self.target}, left out: {', '.join(left_out)}")
        self._started(plan, progress.rows if resumed else 0)
        counts = {"run_rows": 0}
        in_flight: tuple[Future, pa.Table, list[int], bool] | None = None
        # One batch is loaded by the server while the next is built; each is committed, and its
        # progress saved, in order. (Two loading at once, on two connections, were no faster on
        # the 2-core machine: 45.6-51.3 s against 40.4-46.0 s for 2M rows, 30 MB more.)
        with ThreadPoolExecutor(1, thread_name_prefix="s3rs-restore-load") as loader:
            for rows, position in self._state(plan, work, schema, progress.position if resumed else None):
                load = writer.prepare(rows, replace=resumed)
                if in_flight is not None:
                    self._committed(writer, progress, plan, started, counts, *in_flight)
                in_flight, resumed = (loader.submit(load), rows, position, resumed), False
            if in_flight is not None:
                self._committed(writer, progress, plan, started, counts, *in_flight)
        self._add_deferred_keys(progress)
        progress.status = DONE
        save_progress(self.store, progress)
        return self._result(plan, progress.rows, counts["run_rows"], started, writer.load_data)

    def _committed(self, writer: MySQLWriter, progress: RestoreProgress, plan: RestorePlan, started: float,
                   counts: dict[str, int], load: Future, rows: pa.Table, position: list[int],
                   replace: bool) -> None:
        """Wait for a batch's load; then (and only then) its progress is saved."""
        try:
            load.result()
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            if code not in LOCAL_INFILE_REFUSED:  # (an INSERT is never refused so)
                raise classify(exc, f"restoring into {self.target}") from exc
            if writer.load_data:  # the next batch, built meanwhile as LOAD DATA, comes here too
                self._notice(f"LOAD DATA LOCAL INFILE is refused ({exc.args[-1]}): going on with multi-row "
                             "INSERTs (slower; enable local_infile on the server for speed)")
                writer.load_data = False
            writer.write(rows, replace=replace)
        failpoint("restore-batch")
        progress.rows += rows.num_rows
        progress.position = position
        save_progress(self.store, progress)
        counts["run_rows"] += rows.num_rows
        self._progress_event(rows.num_rows, counts["run_rows"], progress.rows, started,
                             _last_key(rows, plan.key_columns))
        self._between_batches(f"after {progress.rows:,} rows; rerun the same command to go on")

    def _between_batches(self, stopped: str) -> None:
        """The operator's pause (here, between two committed batches: its time is left out of
        rows/min) and stop (`stopped` says where the run ends and how to go on)."""
        if self.control.paused and not self.control.stop_requested:
            self.sink(StateChanged(table=self.source, state="paused"))
            self.paused += self.control.wait_while_paused()
            self.sink(StateChanged(table=self.source,
                                   state="stopping" if self.control.stop_requested else "running"))
        if self.control.stop_requested:
            raise StoppedByOperator(f"{self.target}: stopped by {self.control.reason} {stopped}")

    def _create_target(self, plan: RestorePlan, schema: pa.Schema) -> list[str]:
        """Make the target; the secondary indexes it is to get once the rows are in."""
        if plan.target_exists and self.options.replace:
            self._sql(f"DROP TABLE {self.quoted_target}")
        elif plan.target_exists:
            return []  # empty: filled as it is
        if plan.definition is None:
            self._sql(fallback_definition(schema, plan.key_columns, self.quoted_target))
            return []
        definition = target_definition(plan.definition.sql, self.quoted_target)
        if definition.foreign_keys:
            self._notice(f"foreign keys not recreated in {self.target}: {'; '.join(definition.foreign_keys)}")
        self._sql(definition.create)
        return definition.deferred_keys

    def _add_deferred_keys(self, progress: RestoreProgress) -> None:
        """The secondary indexes left out of the CREATE TABLE, those not there yet (a rerun after a
        kill may find some built), in one ALTER TABLE: InnoDB sorts the rows once per index."""
        present = table_indexes(self._connect(), *self.target.split("."))
        missing = [line for line in progress.deferred_keys if index_name(line) not in present]
        if not missing:
            return
        self._notice(f"building {len(missing)} secondary index{'es' if len(missing) > 1 else ''} of "
                     f"{self.target} ({', '.join(index_name(line) for line in missing)}), now that its "
                     f"{progress.rows:,} rows are in")
        self._sql(f"ALTER TABLE {self.quoted_target} {', '.join(f'ADD {line}' for line in missing)}")
        failpoint("restore-indexes")

    def _into_parquet(self, plan: RestorePlan, work: Path, started: float) -> RestoreResult:
        folder = Path(self.target)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("restore-*.parquet"):
            old.unlink()
        schema = plan.schema
        self._started(plan, 0)
        rows, number = 0, 0
        writer: pq.ParquetWriter | None = None
        for table, _ in self._state(plan, work, schema, None):
            if writer is None:
                writer = pq.ParquetWriter(folder / ".restore.tmp", schema, compression="zstd",
                                          coerce_timestamps="us")
            writer.write_table(table)
            rows += table.num_rows
            self._progress_event(table.num_rows, rows, rows, started, _last_key(table, plan.key_columns))
            if rows >= (number + 1) * _FILE_ROWS:
                _close_into(writer, folder, number)
                writer, number = None, number + 1
            self._between_batches(f"after {rows:,} rows; restore again with --replace to write the "
                                  "files anew")
        if writer is not None:
            _close_into(writer, folder, number)
        return self._result(plan, rows, rows, started, False)

    def _started(self, plan: RestorePlan, resumed_rows: int) -> None:
        self.sink(RestoreStarted(table=self.source, target=self.target, as_of=plan.as_of,
                                 files=len(plan.files), bytes=plan.bytes, resumed_rows=resumed_rows))

    def _rate(self, run_rows: int, elapsed: float) -> float:
        """Rows a minute while it ran (paused time left out)."""
        working = elapsed - self.paused
        return run_rows * 60 / working if working > 0 else 0.0

    def _progress_event(self, rows: int, run_rows: int, restored: int, started: float,
                        last_key: list) -> None:
        elapsed = time.monotonic() - started
        self.restored = restored
        self.sink(RowsRestored(table=self.source, rows=rows, run_rows=run_rows, restored=restored,
                               total=self.total, rows_per_minute=self._rate(run_rows, elapsed),
                               rss_mb=rss_mb(), peak_rss_mb=peak_rss_mb(), elapsed_seconds=elapsed,
                               paused_seconds=self.paused, last_key=shown_key(tuple(last_key))))

    def _result(self, plan: RestorePlan, rows: int, run_rows: int, started: float,
                load_data: bool) -> RestoreResult:
        seconds = time.monotonic() - started
        return RestoreResult(plan, rows, run_rows, seconds, self._rate(run_rows, seconds), peak_rss_mb(),
                             load_data)

    def _notice(self, message: str) -> None:
        self.sink(Notice(table=self.source, message=message, level="warning"))


def _recorded(stored: list[ObjectInfo], keys: list[str], target: str) -> list[ObjectInfo]:
    """The stored files a stopped restore read, in its order; all must still be there."""
    by_key = {info.key: info for info in stored}
    missing = [key for key in keys if key not in by_key]
    if missing:
        raise S3rsError(f"{len(missing)} files the stopped restore into {target} read are gone from the "
                        f"store ({missing[0]}, s3clean?): restore again with --replace")
    return [by_key[key] for key in keys]


def _last_key(rows: pa.Table, key_columns: list[str]) -> list[KeyValue]:
    """The key of the last row, as JSON keeps it (BIGINT UNSIGNED arrives as a whole Decimal; a
    date or a time as its text)."""
    values = [rows.column(name)[-1].as_py() for name in key_columns]
    return [value if isinstance(value, int) else int(value) if isinstance(value, Decimal) and value % 1 == 0
            else str(value) for value in values]


def _close_into(writer: pq.ParquetWriter, folder: Path, number: int) -> None:
    """Finish the file being written and give it its name (so a name always holds a whole file)."""
    writer.close()
    (folder / ".restore.tmp").rename(folder / f"restore-{number:05d}.parquet")


def _key_bound(texts: list[str] | None, schema: pa.Schema, key_columns: list[str],
               option: str) -> KeyBound | None:
    """A range bound as given, one value per key column (compared as a tuple, in the key's order),
    each typed as its column is stored."""
    if not texts:
        return None
    if len(texts) != len(key_columns):
        columns = f"{len(key_columns)} column{'s' * (len(key_columns) != 1)} ({', '.join(key_columns)})"
        raise ConfigError(f"{option}: {len(texts)} value{'s' * (len(texts) != 1)} for a key of {columns}: "
                          "give it once per key column, in that order")
    return tuple(_key_value(text, name, schema.field(name).type, option)
                 for text, name in zip(texts, key_columns, strict=True))


def _key_value(text: str, name: str, key_type: pa.DataType, option: str) -> object:
    """A key column's value from its text, as the column is stored: an integer (BIGINT UNSIGNED
    is a whole decimal), a Decimal, a float, a date, a datetime; text otherwise."""
    types = pa.types
    parsers: list[tuple[bool, Callable[[str], object], str]] = [
        (types.is_integer(key_type) or (types.is_decimal(key_type) and key_type.scale == 0), int,
         "an integer"),
        (types.is_decimal(key_type), _finite_decimal, "a decimal number"),
        (types.is_floating(key_type), float, "a number"),
        (types.is_date(key_type), lambda value: date.fromisoformat(value.strip()), "a date, YYYY-MM-DD"),
        (types.is_timestamp(key_type), lambda value: datetime.fromisoformat(parse_timestamp(value)),
         "a time, YYYY-MM-DD HH:MM:SS[.ffffff]")]
    for applies, parse, word in parsers:
        if applies:
            try:
                return parse(text)
            except (ValueError, ArithmeticError):
                raise ConfigError(f"{option} {text!r}: not a value of the key column {name} ({word})") \
                    from None
    return text


def _finite_decimal(text: str) -> Decimal:
    value = Decimal(text.strip())
    if not value.is_finite():
        raise ValueError(text)
    return value


def _recorded_bound(texts: list[str] | None) -> str | list[str] | None:
    """A bound as the progress object records it: a one-column key's text alone (as before
    composite keys), several columns' texts as a list."""
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else list(texts)


def _footer_schema(store: ObjectStore, key: str) -> pa.Schema:
    """A stored Parquet file's schema from its footer (one or two ranged reads)."""
    tail = store.get_tail(key, _TAIL_BYTES) or b""
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise S3rsError(f"data file {key} is missing or damaged (not a whole Parquet file)")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 8 > len(tail):
        tail = store.get_tail(key, length + 8) or b""
    return pq.ParquetFile(pa.BufferReader(b"PAR1" + tail[-(length + 8):])).schema_arrow
