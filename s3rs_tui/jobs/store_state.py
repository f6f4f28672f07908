"""The newest backed-up state of a table, from the store alone (reconcile without a warehouse).

Every committed part file and reconcile's fix files are read into DuckDB; for each key the version
of the file that applies last (store/history.py's position order) is kept, unless a deletion file
applying after it removed the key. That is exactly what loading all those files into a warehouse
would leave. Files are copied into a private temporary folder through the store API (no DuckDB
extension, so no download), and DuckDB runs with a memory limit and that folder for its database
and spilling. The newest version is picked by a window over one slice of the keys (by hash) at a
time: a window over the whole table holds its rows in memory (measured: out of memory at 192 MB on
2M wide rows), one over a slice of SLICE_ROWS stays bounded whatever the table's size.
"""

from pathlib import Path

import duckdb

from s3rs_tui.jobs.checksums import Backup
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.runtime.workdir import OwnedFolder
from s3rs_tui.store import ObjectStore
from s3rs_tui.store.history import DELETION, PART, kind_of, position_order, read_mark
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.warehouse.datafiles import plan_load
from s3rs_tui.warehouse.kinds.duckdb import DuckDBWarehouse

TABLE = "s3rs_newest"
MEMORY_LIMIT_MB = 128  # DuckDB spills past this (its readers and Python come on top)
SLICE_ROWS = 250_000   # stored row versions per window (a window over the whole table would not spill)


class StoreState:
    """A context manager: the table's newest stored state as a DuckDB table (`backup()`)."""

    def __init__(self, store: ObjectStore, name: str, watermark: Watermark, key: str,
                 memory_mb: int = MEMORY_LIMIT_MB, slice_rows: int = SLICE_ROWS):
        self.store, self.name, self.watermark = store, name, watermark
        self.key, self.memory_mb, self.slice_rows = key, memory_mb, slice_rows
        self.owned = OwnedFolder("s3rs-reconcile-", store.scratch_dir())  # a killed run's is removed here
        self.folder = self.owned.path
        self.conn: duckdb.DuckDBPyConnection | None = None
        self.files = 0

    def __enter__(self) -> "StoreState":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.owned.remove()

    def _build(self) -> None:
        rows, gone = self._download()
        self.conn = duckdb.connect(str(self.folder / "state.duckdb"),
                                   config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
        spill = self.folder / "spill"
        for statement in (f"SET memory_limit = '{int(self.memory_mb)}MB'", f"SET temp_directory = '{spill}'",
                          "SET preserve_insertion_order = false", "SET threads = 1"):
            self.conn.execute(statement)
        self._newest(rows, gone)

    def _download(self) -> tuple[Path, Path]:
        """Every committed file into rows/ (part, fix) or gone/ (deletions), named by the order
        they apply in."""
        stored = list(self.store.list(table_prefix(self.name)))
        committed = plan_load(stored, {}, self.watermark).todo  # every committed file (an empty ledger)
        marks = {info.key: read_mark(self.store, info.key) for info in committed
                 if kind_of(info.key) != PART}
        rows, gone = self.folder / "rows", self.folder / "gone"
        rows.mkdir()
        gone.mkdir()
        for order, info in enumerate(position_order(committed, marks)):
            folder = gone if kind_of(info.key) == DELETION else rows
            self.store.download(info.key, folder / f"{order:08d}.parquet")
            self.files += 1
        if not any(rows.iterdir()):
            raise S3rsError(f"{self.name}: the store holds no committed data file: run `s3rs sync` first")
        return rows, gone

    def _newest(self, rows: Path, gone: Path) -> None:
        assert self.conn is not None
        key = quote_standard(self.key)
        order = "CAST(regexp_extract(s3rs_file, '(\\d+)\\.parquet$', 1) AS INTEGER)"  # the file's

        def files(folder: Path) -> str:
            return f"read_parquet('{folder}/*.parquet', filename = 's3rs_file', union_by_name = true)"

        self.conn.execute(f"CREATE TABLE s3rs_rows AS SELECT * EXCLUDE (s3rs_file), {order} AS s3rs_order "
                          f"FROM {files(rows)}")
        gone_later = ""
        if any(gone.iterdir()):  # a deletion applying after the key's version removes it
            self.conn.execute(f"CREATE TABLE s3rs_gone AS SELECT {key} AS s3rs_key, {order} AS s3rs_gone "
                              f"FROM {files(gone)}")
            gone_later = (f" AND NOT EXISTS (SELECT 1 FROM s3rs_gone d WHERE d.s3rs_key = n.{key} "
                          "AND d.s3rs_gone > n.s3rs_order)")
        self.conn.execute(f"CREATE TABLE {TABLE} AS SELECT * EXCLUDE (s3rs_order) FROM s3rs_rows WHERE false")
        slices = max(1, -(-self.run("SELECT COUNT(*) FROM s3rs_rows", [])[0][0] // self.slice_rows))
        for part in range(slices):  # a window over a slice of the keys at a time: memory stays bounded
            self.conn.execute(
                f"INSERT INTO {TABLE} SELECT * EXCLUDE (s3rs_order, s3rs_rank) FROM (SELECT *, ROW_NUMBER() "
                f"OVER (PARTITION BY {key} ORDER BY s3rs_order DESC) AS s3rs_rank FROM s3rs_rows "
                f"WHERE hash({key}) % {slices} = {part}) n WHERE s3rs_rank = 1{gone_later}")
        self.conn.execute("DROP TABLE s3rs_rows")

    def run(self, sql: str, params: list) -> list[tuple]:
        assert self.conn is not None  # only between __enter__ and close
        return self.conn.execute(sql, params).fetchall()

    def backup(self) -> Backup:
        columns = {name.lower(): (name, kind) for name, kind in self.run(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [TABLE])}
        return Backup(f"the store ({self.files} files)", TABLE, columns, DuckDBWarehouse.checksum,
                      DuckDBWarehouse.param, self.run)
