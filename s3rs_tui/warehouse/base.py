"""What every warehouse does the same way: target tables, the ledger, staging, de-dup and merge.

A warehouse differs from another only in how it connects, how it spells types, and how files get
into the staging table (Redshift: COPY from S3 with a manifest; PostgreSQL: COPY FROM STDIN;
DuckDB: Arrow batches). Each group of files is loaded, merged and recorded in the ledger in one
transaction: a crash at any point leaves either all of it or none of it.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import ClassVar

from s3rs_tui.runtime.checksum import ChecksumDialect
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import S3rsError, TableError
from s3rs_tui.runtime.failpoints import failpoint
from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.runtime.tunnel import Notify
from s3rs_tui.store import ObjectStore
from s3rs_tui.store.history import DELETION, FIX
from s3rs_tui.warehouse import ledger, merge
from s3rs_tui.warehouse.datafiles import DataFile
from s3rs_tui.warehouse.ledger import LedgerEntry
from s3rs_tui.warehouse.merge import Target
from s3rs_tui.warehouse.typemap import Column, same_type


def first_line(exc: BaseException) -> str:
    """A driver's message, first line only (PostgreSQL's carry a DETAIL and a caret below it)."""
    text = (getattr(exc, "pgerror", None) or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def all_lines(exc: BaseException) -> str:
    """A driver's whole message on one line: Redshift puts the cause (file, column, reason) in the
    DETAIL and context lines, in a box of dashes."""
    lines = [" ".join(line.split()) for line in (getattr(exc, "pgerror", None) or str(exc)).splitlines()]
    kept = [line for line in lines if line.strip("-") and line != "DETAIL:"]
    return "; ".join(kept) or type(exc).__name__


class Warehouse(ABC):
    """One open connection to a warehouse; use as a context manager."""

    kind = ""
    param = "%s"  # the driver's placeholder
    file_column_type = "VARCHAR(1024)"  # merge.FILE_COLUMN: a store key
    declares_primary_key = True  # the target's key as PRIMARY KEY (the merge itself relies on none)

    def __init__(self, settings: Settings, store: ObjectStore, notify: Notify | None = None):
        """Connect; `notify` hears about a tunnel rebuilt on the way (kinds that use one)."""
        self.schema, self.store = settings.warehouse.schema, store  # checked when the settings were read

    # -- what each warehouse provides -----------------------------------------------------------

    label = ""  # for people: "postgres at host:5432/db"
    driver_error: type[Exception] | tuple[type[Exception], ...] = ()  # what its driver raises
    checksum: ClassVar[ChecksumDialect]  # how verify's checksum SQL is spelled here

    @classmethod  # noqa: B027 - a hook most kinds leave empty
    def check_config(cls, settings: Settings) -> None:
        """Refuse settings this kind can never work with (ConfigError), when the config is read."""

    @classmethod  # noqa: B027 - a hook most kinds leave empty
    def check_store(cls, settings: Settings, store: ObjectStore) -> None:
        """Refuse a store or settings no load can work with (ConfigError), before anything is done."""

    @abstractmethod
    def execute(self, sql: str, params: list) -> list[tuple]:
        """Run one statement with the driver; its rows, if any."""

    @abstractmethod
    def begin(self) -> None:
        ...

    @abstractmethod
    def commit(self) -> None:
        ...

    @abstractmethod
    def rollback(self) -> None:
        """Roll back, quietly when the connection is gone (the server rolls back by itself)."""

    @abstractmethod
    def close(self) -> None:
        ...

    @classmethod
    @abstractmethod
    def column_type(cls, column: Column) -> str:
        """The column's type as this kind's catalog spells it."""
        ...

    @abstractmethod
    def describe_sql(self) -> str:
        """SELECT (column name, type) of the table named by two parameters (schema, table), in order."""

    def fill_stage(self, files: list[DataFile]) -> None:
        """Put every row of `files` into the staging table (inside the load's transaction); the
        kinds that stage otherwise (DuckDB: a view) have no staging table to fill."""
        raise NotImplementedError

    def stage(self, files: list[DataFile]) -> None:
        """Make merge.STAGE hold every row of `files` (all with the same columns)."""
        self.run(merge.create_stage_sql([(c.name, self.column_type(c)) for c in files[0].columns]))
        self.fill_stage(files)

    def drop_stage_sql(self) -> str:
        return f"DROP TABLE {merge.STAGE}"

    def table_options(self, target: Target) -> str:
        """Text after CREATE TABLE's column list (distribution and sort keys)."""
        return ""

    def notes(self, target: Target) -> list[str]:
        """What the operator should hear about the loads since the last call (values changed to fit)."""
        return []

    def catalog_name(self, name: str) -> str:
        """How the catalog spells a quoted identifier (Redshift folds it to lower case)."""
        return name

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- shared ---------------------------------------------------------------------------------

    def error_text(self, exc: Exception) -> str:
        """What of a driver's message the operator sees."""
        return first_line(exc)

    def translate(self, exc: Exception, sql: str) -> S3rsError:
        """A driver error as one line naming the statement's first words."""
        return S3rsError(f"warehouse error ({self.label}) in {' '.join(sql.split()[:3])}...: "
                         f"{self.error_text(exc)}")

    @contextmanager
    def errors(self, sql: str) -> Iterator[None]:
        try:
            yield
        except self.driver_error as exc:
            raise self.translate(exc, sql) from None

    def run(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Execute one statement (autocommit outside `transaction()`); its rows, if any."""
        with self.errors(sql):
            return self.execute(sql, list(params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything run inside commits together or not at all."""
        self.begin()
        try:
            yield
            with self.errors("COMMIT"):
                self.commit()
        except BaseException:
            self.rollback()
            raise

    def describe(self, table: str) -> dict[str, tuple[str, str]] | None:
        """lower-case column name -> (its spelling, its type); None when the table is missing."""
        rows = self.run(self.describe_sql(), (self.catalog_name(self.schema), self.catalog_name(table)))
        return {name.lower(): (name, kind) for name, kind in rows} or None

    def prepare(self) -> None:
        """The schema and the ledger table exist."""
        self.run(f"CREATE SCHEMA IF NOT EXISTS {quote_standard(self.schema)}")
        self.run(ledger.create_sql(self.schema))

    def loaded_files(self, target: Target) -> dict[str, LedgerEntry]:
        rows = self.run(ledger.select_sql(self.schema, self.param), (target.label,))
        return {key: LedgerEntry(key, int(size), modified, int(count)) for key, size, modified, count in rows}

    def forget(self, target: Target) -> None:
        """Drop a target's ledger rows (the table they describe is gone)."""
        self.run(ledger.forget_sql(self.schema, self.param), (target.label,))

    def prepare_target(self, target: Target, columns: tuple[Column, ...]) -> list[str]:
        """Create the target, or add the columns it lacks; a column whose type changed stops the load.
        Returns what changed, for the operator."""
        names = {column.name.lower() for column in columns}
        for needed in (*target.keys, target.cursor):
            if needed.lower() not in names:
                raise TableError(f"the data files of {target.source} have no column {needed!r} (the "
                                 "watermark's key or cursor column): cannot merge into the warehouse")
        if not target.keys and merge.FILE_COLUMN in names:
            raise TableError(f"{target.source} has a column {merge.FILE_COLUMN}, the name the warehouse "
                             "copy of a table without a unique key uses for each row's data file")
        existing = self.describe(target.table)
        if existing is None:
            definition = ", ".join(f"{quote_standard(c.name)} {self.column_type(c)}" for c in columns)
            if not target.keys:
                definition += f", {quote_standard(merge.FILE_COLUMN)} {self.file_column_type}"
            elif self.declares_primary_key:
                definition += f", PRIMARY KEY ({', '.join(quote_standard(key) for key in target.keys)})"
            options = self.table_options(target)
            self.run(f"CREATE TABLE {target.quoted} ({definition}){options}")
            return [f"created {target.label} ({len(columns)} columns)"]
        notes = []
        for column in columns:
            wanted = self.column_type(column)
            found = existing.get(column.name.lower())
            if found is None:
                self.run(f"ALTER TABLE {target.quoted} ADD COLUMN {quote_standard(column.name)} {wanted}")
                notes.append(f"added column {column.name} {wanted} to {target.label}")
            elif not same_type(found[1], wanted):
                raise TableError(
                    f"column {column.name} of {target.label} is {found[1]} but the data files now hold "
                    f"{wanted} (MySQL {column.mysql_type}): change the warehouse column to {wanted} "
                    f"(or drop the table to reload it), then rerun")
        return notes

    def load(self, target: Target, files: list[DataFile], run_id: str) -> int:
        """Stage, de-duplicate, merge and record `files` (all with the same columns, and of one
        kind) in one transaction; returns the rows they hold. Reconcile's fix files replace their
        keys' rows; a deletion file deletes them (store/history.py)."""
        columns = files[0].columns
        names = [column.name for column in columns]
        existing = self.describe(target.table) or {}
        spelled = {lower: name for lower, (name, _) in existing.items()}
        kind = files[0].kind
        now = datetime.now(UTC).isoformat()
        record = [value for f in files for value in (
            target.label, f.info.key, f.info.size, ledger.version(f.info), f.rows, target.source, run_id,
            now)]
        with self.transaction():
            if existing or kind != DELETION:  # no table yet: nothing to delete
                self.stage(files)
                failpoint("after-copy")
                if kind == DELETION:
                    bound, value = self._cursor_bound(existing, target, files[0])
                    self.run(merge.delete_sql(target, spelled, bound), [value])
                else:
                    self._merge(target, names, spelled, files, replace=kind == FIX)
                self.run(self.drop_stage_sql())
            keys = [f.info.key for f in files]
            self.run(ledger.forget_sql(self.schema, self.param, len(keys)), (target.label, *keys))
            self.run(ledger.record_sql(self.schema, self.param, len(files)), record)
            failpoint("after-merge")  # merged and recorded, not committed
        return 0 if kind == DELETION else sum(f.rows for f in files)

    def _merge(self, target: Target, names: list[str], spelled: dict[str, str], files: list[DataFile],
               replace: bool) -> None:
        """The staged rows into the target: appended file by file without a key; else de-duplicated
        when a key is staged twice, then merged (a plain insert into an empty target)."""
        if not target.keys:  # one file at a time (the loader groups keyless files so)
            for statement in merge.append_sql(target, names, spelled, self.param):
                self.run(statement, (files[0].info.key,))
            return
        unique = bool(self.run(merge.unique_keys_sql(target.keys))[0][0])
        if not unique:
            self.run(merge.dedup_sql(names, target.keys, target.cursor))
        empty = not self.run(merge.has_rows_sql(target))
        source = merge.STAGE if unique else merge.NEWEST
        for statement in merge.merge_sql(target, names, spelled, source, target_empty=empty, replace=replace):
            self.run(statement)
        if not unique:
            self.run(f"DROP TABLE {merge.NEWEST}")

    def _cursor_bound(self, existing: dict[str, tuple[str, str]], target: Target,
                      deletions: DataFile) -> tuple[str, str]:
        """SQL for the deletion's watermark cursor value in the target's cursor type, and its parameter."""
        assert deletions.mark is not None  # read_footer reads it for every deletion file
        kind = existing[target.cursor.lower()][1]
        zone = "+00" if "with time zone" in kind.lower() else ""  # TIMESTAMP cursors are read in UTC
        return f"CAST({self.param} AS {kind})", deletions.mark.timestamp + zone
