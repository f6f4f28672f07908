"""`s3rs verify`: do MySQL and the warehouse hold the same rows, up to the watermark?

The comparison itself (chunk checksums on both sides, then the rows of chunks that disagree) is
jobs/checksums.py, shared with reconcile.
"""

from dataclasses import asdict, dataclass, field

from s3rs_tui.engine.checksum import MYSQL_CHECKSUM
from s3rs_tui.engine.extract import typed_key
from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.mysql import classify, close_quietly, connect
from s3rs_tui.engine.table import TableInfo, describe_table
from s3rs_tui.jobs.checksums import CHUNK_KEYS, Backup, Comparison, RangeDiff
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.events import EventSink, Notice
from s3rs_tui.runtime.parsing import quote_identifier
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import Watermark, WatermarkStore
from s3rs_tui.warehouse import open_warehouse, require_warehouse
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.datafiles import plan_load
from s3rs_tui.warehouse.loader import target_for
from s3rs_tui.warehouse.merge import Target

__all__ = ["CHUNK_KEYS", "RangeDiff", "Verification", "verify_against", "verify_table", "warehouse_backup"]

@dataclass
class Verification:
    table: str
    target: str
    up_to: str              # the watermark position both sides are compared up to
    mysql_rows: int = 0
    warehouse_rows: int = 0
    chunks: int = 0
    pending: int = 0        # rows MySQL changed after the watermark (the next sync loads them)
    ranges: list[RangeDiff] = field(default_factory=list)
    skipped_columns: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.ranges

    def summary(self) -> str:
        if self.agrees:
            return (f"{self.table}: MySQL and {self.target} agree: {self.mysql_rows:,} rows in {self.chunks} "
                    f"chunks up to {self.up_to}")
        return (f"{self.table}: {len(self.ranges)} key ranges differ between MySQL "
                f"({self.mysql_rows:,} rows) and {self.target} ({self.warehouse_rows:,} rows) "
                f"up to {self.up_to}: "
                + "; ".join(r.describe() for r in self.ranges[:3])
                + (f"; and {len(self.ranges) - 3} more" if len(self.ranges) > 3 else "")
                + ": re-sync those rows (touch their cursor column in MySQL, or `s3rs watermark set` "
                  "before them)")

    def as_dict(self) -> dict:
        return {**asdict(self), "agrees": self.agrees}


def verify_table(settings: Settings, table_name: str, sink: EventSink,
                 chunk_keys: int = CHUNK_KEYS) -> Verification:
    """Compare the table in MySQL and in the warehouse; raise S3rsError when it cannot be compared."""
    require_warehouse(settings)
    database, table, spec = settings.table(table_name)
    name = f"{database}.{table}"
    store = open_store(settings)
    with TableLock(store, name, purpose="verify", stale_seconds=settings.backup.lock_stale_seconds):
        watermark = WatermarkStore(store).get(name)
        if watermark is not None:
            watermark.refuse_open_ranges("verify")
        if watermark is None or not watermark.has_position:
            raise S3rsError(f"{name}: nothing is backed up yet: run `s3rs sync -t {name}` first")
        target = target_for(settings, name, watermark)
        conn = None
        with open_warehouse(settings, store) as warehouse:
            check_loaded(warehouse, target, store, watermark, name)
            try:
                conn = connect(settings)
                info = describe_table(conn, database, table, spec)
                return _compare(conn, info, warehouse_backup(warehouse, target), watermark, sink, chunk_keys)
            except S3rsError:
                raise
            except Exception as exc:  # broad: driver errors become one line
                raise classify(exc, f"verifying {name}") from exc
            finally:
                close_quietly(conn)


def check_loaded(warehouse: Warehouse, target: Target, store, watermark: Watermark, name: str) -> None:
    """Comparing before every committed file is loaded would only list what is still to load."""
    if warehouse.describe(target.table) is None:
        raise S3rsError(f"{name}: {target.label} is not in the warehouse: run `s3rs sync -t {name}` first")
    plan = plan_load(list(store.list(table_prefix(name))), warehouse.loaded_files(target), watermark)
    if plan.todo:
        raise S3rsError(f"{name}: {len(plan.todo)} stored files are not loaded into {target.label} yet: run "
                        f"`s3rs sync -t {name} --load-only` first, then verify")


def warehouse_backup(warehouse: Warehouse, target: Target) -> Backup:
    """The warehouse's target table as the backed-up side of a comparison."""
    return Backup(warehouse.label, target.quoted, warehouse.describe(target.table) or {}, warehouse.checksum,
                  warehouse.param, warehouse.run)


def mysql_backup(conn, database: str, table: str) -> Backup:
    """A MySQL table in the warehouse's place (`verify --against`): a restored copy compared with
    its source, on the same server, with the same checksum SQL on both sides."""
    def run(sql: str, params: list) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(sql, list(params))  # a list even when empty: '%%' in the SQL becomes '%'
            return list(cur.fetchall())

    label = f"MySQL {database}.{table}"
    columns = {name.lower(): (name, kind) for name, kind in run(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
        "TABLE_NAME = %s", [database, table])}
    if not columns:
        raise S3rsError(f"{label} does not exist (or the MySQL user cannot see it)")
    return Backup(label, f"{quote_identifier(database)}.{quote_identifier(table)}", columns, MYSQL_CHECKSUM,
                  "%s", run)


def verify_against(settings: Settings, table_name: str, against: str, sink: EventSink,
                   chunk_keys: int = CHUNK_KEYS) -> Verification:
    """Compare the table in MySQL with another MySQL table (a restored copy), its rows up to the
    watermark: when nothing changed since the backup they must be equal."""
    database, table, spec = settings.table(table_name)
    other_database, other_table, _ = settings.table(against)
    name = f"{database}.{table}"
    watermark = WatermarkStore(open_store(settings)).get(name)
    if watermark is None or not watermark.has_position:
        raise S3rsError(f"{name}: nothing is backed up yet: run `s3rs sync -t {name}` first")
    conn = None
    try:
        conn = connect(settings)
        info = describe_table(conn, database, table, spec)
        backup = mysql_backup(conn, other_database, other_table)
        return _compare(conn, info, backup, watermark, sink, chunk_keys)
    except S3rsError:
        raise
    except Exception as exc:  # broad: driver errors become one line
        raise classify(exc, f"verifying {name} against {against}") from exc
    finally:
        close_quietly(conn)


def _compare(conn, info: TableInfo, backup: Backup, watermark: Watermark, sink: EventSink,
             chunk_keys: int) -> Verification:
    key = watermark.position_key
    position = Position(watermark.last_mysql_data_timestamp, None if key is None else typed_key(info, key))
    comparison = Comparison(info, backup, position, chunk_keys)
    result = Verification(info.name, backup.label, position.label(), skipped_columns=comparison.skipped)
    if comparison.skipped:
        sink(
            Notice(
                table=info.name,
                message=f"not compared: {', '.join(comparison.skipped)} "
                        "(floating point, or not in the warehouse)",
                level="info",
            )
        )
    mine, theirs = comparison.sums(conn)
    result.mysql_rows = sum(n for n, _ in mine.values())
    result.warehouse_rows = sum(n for n, _ in theirs.values())
    result.chunks = len(set(mine) | set(theirs))
    for chunk in sorted(c for c in set(mine) | set(theirs) if mine.get(c) != theirs.get(c)):
        diff, pending = comparison.diff(chunk, *comparison.rows(conn, chunk))
        result.pending += pending
        if diff.keys:
            result.ranges.append(diff)
    return result
