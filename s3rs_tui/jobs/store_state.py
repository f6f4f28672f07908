"""The newest backed-up state of a table, from the store alone (reconcile without a warehouse).

Every committed part file and reconcile's fix and deletion files are copied into a private
temporary folder through the store API (no DuckDB extension, so no download) and the newest
version of each whole key is picked by restore's own rule (jobs/restore_state.py `winners`, with
no "as of"): the version that applies last in position order, unless it is a deletion. That is
exactly what loading all those files into a warehouse would leave. The pick runs over the key
columns alone (narrow rows: DuckDB spills them past its memory limit); the winning rows are then
copied, one file at a time, into a DuckDB table the comparison reads. DuckDB keeps that table in
the folder (a database file) and spills there too.
"""

from collections.abc import Sequence

import duckdb

from s3rs_tui.jobs.checksums import Backup
from s3rs_tui.jobs.restore_state import WINNER_FILE, LocalFile, StateQuery, winners
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.workdir import OwnedFolder
from s3rs_tui.store import ObjectStore
from s3rs_tui.store.history import DELETION, PART, kind_of, position_order, read_mark
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.warehouse.datafiles import plan_load
from s3rs_tui.warehouse.kinds.duckdb import DuckDBWarehouse

TABLE = "s3rs_newest"
MEMORY_LIMIT_MB = 128  # DuckDB spills past this (its readers and Python come on top)
# The comparison's range queries need little working memory: what DuckDB holds past this is the
# table's blocks it cached, which it reads again from its file (2M rows: 266 MB peak RSS in the
# comparison instead of 328, a few percent slower; measured).
COMPARE_MEMORY_MB = 64


class StoreState:
    """A context manager: the table's newest stored state as a DuckDB table (`backup()`)."""

    def __init__(self, store: ObjectStore, name: str, watermark: Watermark, keys: Sequence[str],
                 memory_mb: int = MEMORY_LIMIT_MB):
        self.store, self.name, self.watermark = store, name, watermark
        self.keys, self.memory_mb = list(keys), memory_mb
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
        files = self._download()
        self.conn = duckdb.connect(str(self.folder / "state.duckdb"),
                                   config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
        spill = self.folder / "spill"
        for statement in (f"SET memory_limit = '{int(self.memory_mb)}MB'", f"SET temp_directory = '{spill}'",
                          "SET preserve_insertion_order = false", "SET threads = 1"):
            self.conn.execute(statement)
        self._newest(files)
        self.conn.execute(f"SET memory_limit = '{min(COMPARE_MEMORY_MB, int(self.memory_mb))}MB'")

    def _download(self) -> list[LocalFile]:
        """Every committed file, in the order they apply (position order)."""
        stored = list(self.store.list(table_prefix(self.name)))
        committed = plan_load(stored, {}, self.watermark).todo  # every committed file (an empty ledger)
        marks = {info.key: read_mark(self.store, info.key) for info in committed
                 if kind_of(info.key) != PART}
        files = []
        for order, info in enumerate(position_order(committed, marks)):
            path = self.folder / f"{order:08d}.parquet"
            self.store.download(info.key, path)
            files.append(LocalFile(path, str(kind_of(info.key))))
        self.files = len(files)
        if all(file.kind == DELETION for file in files):
            raise S3rsError(f"{self.name}: the store holds no committed data file: run `s3rs sync` first")
        return files

    def _newest(self, files: list[LocalFile]) -> None:
        """The winners' rows of each file into TABLE (columns by name: files may predate a column).
        DuckDB reads each file's row numbers from `winners`' output itself (sorted by file, so row
        groups of other files are skipped): handing them over as Arrow arrays cost 100 MB more
        peak RSS on 10M rows (pyarrow's pool, which keeps what it frees; measured)."""
        assert self.conn is not None
        out = self.folder / "winners.parquet"
        winners(self.conn, files, StateQuery(self.keys, str(self.watermark.cursor_column)), out)
        rows = [str(file.path) for file in files if file.kind != DELETION]
        self.conn.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM read_parquet($rows, union_by_name = true) "
                          "LIMIT 0", {"rows": rows})
        for index, file in enumerate(files):
            if file.kind == DELETION:
                continue
            self.conn.execute(f"INSERT INTO {TABLE} BY NAME SELECT * EXCLUDE (file_row_number) FROM "
                              "read_parquet($path, file_row_number = true) WHERE file_row_number IN "
                              f"(SELECT s3rs_row FROM read_parquet($winners) WHERE {WINNER_FILE} = $index)",
                              {"path": str(file.path), "winners": str(out), "index": index})

    def run(self, sql: str, params: list) -> list[tuple]:
        assert self.conn is not None  # only between __enter__ and close
        return self.conn.execute(sql, params).fetchall()

    def backup(self) -> Backup:
        columns = {name.lower(): (name, kind) for name, kind in self.run(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [TABLE])}
        return Backup(f"the store ({self.files} files)", TABLE, columns, DuckDBWarehouse.checksum,
                      DuckDBWarehouse.param, self.run)
