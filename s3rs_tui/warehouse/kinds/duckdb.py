"""DuckDB: the embedded warehouse (one file, nothing to run), for the demo and for local use.

A group's files are copied to the store's scratch folder and staged as a view over DuckDB's own
(built-in, multi-threaded) Parquet reader, so local and S3 stores both work without DuckDB
extensions, which would need a download, and a first load reads each file once, straight into the
target (merge.py: no copy into a staging table, no de-duplication when the keys are unique).
"""

import contextlib
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from s3rs_tui.runtime.checksum import STANDARD_TEXT, ChecksumDialect
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError, S3rsError
from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.runtime.tunnel import Notify
from s3rs_tui.store import ObjectStore
from s3rs_tui.warehouse.base import Warehouse, first_line
from s3rs_tui.warehouse.datafiles import DataFile
from s3rs_tui.warehouse.merge import STAGE, Target
from s3rs_tui.warehouse.typemap import Column, fixed_type

FIXED_TYPES = {
    pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN", pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP", pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
}


def duckdb_type(column: Column) -> str:
    if pa.types.is_binary(column.arrow_type):
        return "BLOB"
    return fixed_type(column, FIXED_TYPES, "DECIMAL({},{})") or "VARCHAR"


def warehouse_path(settings: Settings) -> Path:
    """The DuckDB file; its folder must exist: a mistyped folder would otherwise be made, with a
    new empty warehouse in it that a load then fills from the first file (ConfigError, exit 2)."""
    path = Path(settings.warehouse.path).expanduser()
    if not path.parent.is_dir():
        raise ConfigError(f"[warehouse] path {path}: the folder {path.parent} does not exist "
                          "(create it, or fix the path)")
    return path


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"
    param = "?"
    # A PRIMARY KEY is an ART index DuckDB builds and checks on every insert: 1M rows of the demo
    # table took 7.1 CPU-s to load with it, 4.8 without (measured); the merge joins by hash anyway,
    # and `verify` counts rows per key range. Tables made before this keep theirs.
    declares_primary_key = False
    driver_error = duckdb.Error
    checksum = ChecksumDialect(
        {**STANDARD_TEXT, "binary": "lower(hex({c}))", "date": "strftime({c}, '%Y-%m-%d')",
         "timestamp": "strftime({c}, '%Y-%m-%d %H:%M:%S.%f')"},
        "CAST('0x' || substr({h}, 1, {n}) AS BIGINT)", "CAST({k} AS HUGEINT) // {n}",
        utc="SET TimeZone = 'UTC'")

    @classmethod
    def check_store(cls, settings: Settings, store: ObjectStore) -> None:
        warehouse_path(settings)

    def __init__(self, settings: Settings, store: ObjectStore, notify: Notify | None = None):
        super().__init__(settings, store)
        path = warehouse_path(settings)
        self.label = f"duckdb {path}"
        try:
            # Never download an extension: this has to work offline.
            self.conn = duckdb.connect(str(path), config={"autoinstall_known_extensions": False,
                                                          "autoload_known_extensions": False})
        except (duckdb.Error, OSError) as exc:
            raise S3rsError(f"cannot open the DuckDB file {path} (is another process using it?): "
                            f"{first_line(exc)}") from None
        # DuckDB takes 80% of the machine's memory by default: half the run's budget, spilling past it.
        spill = str(store.scratch_dir() / "duckdb-spill").replace("'", "''")
        self.conn.execute(f"SET memory_limit = '{settings.backup.memory_limit_mb // 2}MB'")
        self.conn.execute(f"SET temp_directory = '{spill}'")
        # Nothing here reads rows in insertion order; without it DuckDB inserts from several
        # threads at once and holds less (1M demo rows: 4.3 CPU-s and 3.9 s against 4.7 and 4.8).
        self.conn.execute("SET preserve_insertion_order = false")
        self._copies: list[Path] = []  # the files of the group being loaded

    def execute(self, sql: str, params: list) -> list[tuple]:
        cursor = self.conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def begin(self) -> None:
        self.conn.begin()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()

    @classmethod
    def column_type(cls, column: Column) -> str:
        return duckdb_type(column)

    def describe_sql(self) -> str:
        return ("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = "
                "current_database() AND table_schema = ? AND table_name = ? ORDER BY ordinal_position")

    def load(self, target: Target, files: list[DataFile], run_id: str) -> int:
        try:
            return super().load(target, files, run_id)
        finally:
            for path in self._copies:
                path.unlink(missing_ok=True)
            self._copies = []

    def stage(self, files: list[DataFile]) -> None:
        """STAGE as a view over local copies of the files (removed after the load)."""
        for data_file in files:
            path = self.store.scratch_dir() / f"load-{uuid.uuid4().hex}.parquet"
            self._copies.append(path)
            self.store.download(data_file.info.key, path)
        names = ", ".join(quote_standard(column.name) for column in files[0].columns)
        paths = ", ".join("'" + str(path).replace("'", "''") + "'" for path in self._copies)
        self.run(f"CREATE TEMP VIEW {STAGE} AS SELECT {names} FROM read_parquet([{paths}])")

    def drop_stage_sql(self) -> str:
        return f"DROP VIEW {STAGE}"

ADAPTER = DuckDBWarehouse
