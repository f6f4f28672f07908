"""`s3rs verify`: do MySQL and the warehouse hold the same rows, up to the watermark?

Both sides compute, per chunk of keys, a row count and an order-independent checksum (the sum of
60 bits of each row's MD5 over a canonical text of its values), so only two small result sets
cross the network whatever the table's size. Chunks that disagree are compared row by row (key
and row MD5) to name what differs. Both sides only count rows up to the watermark; a row MySQL
changed after it is not a difference but the next sync's work, and is reported as pending.

The canonical text (runtime/checksum.py) is spelled by the engine for MySQL and by each warehouse
kind for its side.
"""

from dataclasses import asdict, dataclass, field

from s3rs_tui.engine.checksum import MYSQL_CHECKSUM
from s3rs_tui.engine.extract import typed_key
from s3rs_tui.engine.keyset import Position, up_to_sql
from s3rs_tui.engine.mysql import classify, close_quietly, connect
from s3rs_tui.engine.table import INTEGER_TYPES, TableInfo, describe_table
from s3rs_tui.engine.typemap import plan_columns
from s3rs_tui.runtime.checksum import ChecksumDialect, value_kind
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import S3rsError, TableError
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

CHUNK_KEYS = 100_000   # integer keys per chunk
_HASH_DIGITS = 15      # hex digits of a row's MD5 summed per chunk: 60 bits, so a bigint holds each
_BUCKET_DIGITS = 2     # CHAR/VARCHAR keys are chunked by the first hex digits of their MD5
_SHOWN_KEYS = 5


@dataclass
class RangeDiff:
    """One chunk of keys where the two sides disagree."""

    label: str
    missing: list[str] = field(default_factory=list)  # in MySQL, not in the warehouse
    extra: list[str] = field(default_factory=list)    # in the warehouse, not in MySQL (deleted there?)
    changed: list[str] = field(default_factory=list)  # both, with different values

    def describe(self) -> str:
        parts = [f"{len(keys)} {what} ({', '.join(keys[:_SHOWN_KEYS])}"
                 f"{', ...' if len(keys) > _SHOWN_KEYS else ''})"
                 for what, keys in (("changed", self.changed), ("missing in the warehouse", self.missing),
                                    ("only in the warehouse", self.extra)) if keys]
        return f"{self.label}: " + ", ".join(parts)


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


class _Side:
    """The SQL of one side (MySQL or the warehouse) for the columns compared. A row is named by its
    key's text (a composite key: its parts' canonical texts joined); chunks follow the key's
    leading column: ranges of an integer, else the first digits of its text's MD5."""

    def __init__(self, dialect: ChecksumDialect, table: str, keys: dict[str, str], kinds: dict[str, str],
                 chunk_keys: int, param: str):
        self.dialect, self.table, self.param = dialect, table, param
        row = dialect.row_text([dialect.text[kind].format(c=dialect.quote(name))
                                for name, kind in kinds.items()])
        self.row_md5 = dialect.md5.format(t=row)
        self.row_hash = dialect.hash_int.format(h=self.row_md5, n=_HASH_DIGITS, bits=4 * _HASH_DIGITS)
        texts = [dialect.text[kind].format(c=dialect.quote(name)) for name, kind in keys.items()]
        (lead, lead_kind), = list(keys.items())[:1]
        if len(keys) == 1 and lead_kind in ("number", "text"):
            self.key_text = lead_text = dialect.key_text.format(c=dialect.quote(lead))
        else:
            self.key_text, lead_text = dialect.row_text(texts), texts[0]
        if lead_kind == "number":
            self.chunk = dialect.int_chunk.format(k=dialect.quote(lead), n=chunk_keys)
        else:
            self.chunk = dialect.hash_int.format(h=dialect.md5.format(t=lead_text), n=_BUCKET_DIGITS,
                                                 bits=4 * _BUCKET_DIGITS)

    def chunks_sql(self, where: str = "") -> str:
        sum_type = self.dialect.sum_type
        total = f"CAST({self.row_hash} AS {sum_type})" if sum_type else self.row_hash
        return (f"SELECT {self.chunk} AS s3rs_chunk, COUNT(*), SUM({total}) FROM {self.table}"
                + (f" WHERE {where}" if where else "") + " GROUP BY s3rs_chunk")

    def rows_sql(self, flag: str = "") -> str:
        """Key and row MD5 (and `flag`) of every row in one chunk (the chunk is the last parameter)."""
        return (f"SELECT {self.key_text}, {self.row_md5}{f', {flag}' if flag else ''} FROM {self.table} "
                f"WHERE {self.chunk} = {self.param}")


def verify_table(settings: Settings, table_name: str, sink: EventSink,
                 chunk_keys: int = CHUNK_KEYS) -> Verification:
    """Compare the table in MySQL and in the warehouse; raise S3rsError when it cannot be compared."""
    require_warehouse(settings)
    database, table, spec = settings.table(table_name)
    name = f"{database}.{table}"
    store = open_store(settings)
    with TableLock(store, name, purpose="verify", stale_seconds=settings.backup.lock_stale_seconds):
        watermark = WatermarkStore(store).get(name)
        if watermark is None or not watermark.has_position:
            raise S3rsError(f"{name}: nothing is backed up yet: run `s3rs sync -t {name}` first")
        target = target_for(settings, name, watermark)
        conn = None
        with open_warehouse(settings, store) as warehouse:
            _check_loaded(warehouse, target, store, watermark, name)
            try:
                conn = connect(settings)
                info = describe_table(conn, database, table, spec)
                return _compare(conn, info, warehouse, target, watermark, sink, chunk_keys)
            except S3rsError:
                raise
            except Exception as exc:  # broad: driver errors become one line
                raise classify(exc, f"verifying {name}") from exc
            finally:
                close_quietly(conn)


@dataclass(frozen=True)
class _MySQLTarget:
    table: str
    quoted: str


class _MySQLSide:
    """A MySQL table in the warehouse's place (`verify --against`): a restored copy compared with
    its source, on the same server, with the same checksum SQL on both sides."""

    checksum = MYSQL_CHECKSUM
    param = "%s"

    def __init__(self, conn, database: str, table: str):
        self.conn, self.database = conn, database
        self.label = f"MySQL {database}.{table}"

    def describe(self, table: str) -> dict[str, tuple[str, str]] | None:
        rows = self.run("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (self.database, table))
        return {name.lower(): (name, kind) for name, kind in rows} or None

    def run(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())


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
        side = _MySQLSide(conn, other_database, other_table)
        if side.describe(other_table) is None:
            raise S3rsError(f"{side.label} does not exist (or the MySQL user cannot see it)")
        quoted = f"{quote_identifier(other_database)}.{quote_identifier(other_table)}"
        target = _MySQLTarget(other_table, quoted)
        return _compare(conn, info, side, target, watermark, sink, chunk_keys)
    except S3rsError:
        raise
    except Exception as exc:  # broad: driver errors become one line
        raise classify(exc, f"verifying {name} against {against}") from exc
    finally:
        close_quietly(conn)


def _check_loaded(warehouse: Warehouse, target: Target, store, watermark: Watermark, name: str) -> None:
    """Comparing before every committed file is loaded would only list what is still to load."""
    if warehouse.describe(target.table) is None:
        raise S3rsError(f"{name}: {target.label} is not in the warehouse: run `s3rs sync -t {name}` first")
    plan = plan_load(list(store.list(table_prefix(name))), warehouse.loaded_files(target), watermark)
    if plan.todo:
        raise S3rsError(f"{name}: {len(plan.todo)} stored files are not loaded into {target.label} yet: run "
                        f"`s3rs sync -t {name} --load-only` first, then verify")


def _compare(conn, info: TableInfo, warehouse: Warehouse | _MySQLSide, target: Target | _MySQLTarget,
             watermark: Watermark, sink: EventSink, chunk_keys: int) -> Verification:
    columns = warehouse.describe(target.table) or {}
    kinds, skipped = {}, []
    for plan in plan_columns(info.columns):
        kind = value_kind(plan.arrow_type)
        if kind == "float" or plan.column.name.lower() not in columns:
            skipped.append(plan.column.name)
        else:
            kinds[plan.column.name] = kind
    if info.keyless:
        raise TableError(f"{info.name} has no unique key: verify compares rows by key, so it cannot "
                         "compare this table (README: Tables without a unique key)")
    key = watermark.position_key
    position = Position(watermark.last_mysql_data_timestamp, None if key is None else typed_key(info, key))
    result = Verification(info.name, warehouse.label, position.label(), skipped_columns=skipped)
    if skipped:
        sink(
            Notice(
                table=info.name,
                message=f"not compared: {', '.join(skipped)} (floating point, or not in the warehouse)",
                level="info",
            )
        )
    key_kinds = {column.name: value_kind(plan.arrow_type) for column in info.keys
                 for plan in plan_columns([column])}
    mysql = _Side(MYSQL_CHECKSUM, info.quoted, key_kinds, kinds, chunk_keys, "%s")
    dialect = warehouse.checksum
    spelled = {columns[name.lower()][0]: kind for name, kind in kinds.items()}
    remote_keys = {columns[name.lower()][0]: kind for name, kind in key_kinds.items()}
    remote = _Side(dialect, target.quoted, remote_keys, spelled, chunk_keys, warehouse.param)
    if dialect.utc:
        warehouse.run(dialect.utc)
    covered, params = up_to_sql(info, position)
    with conn.cursor() as cur:
        cur.execute(mysql.chunks_sql(covered), params)
        mine = {int(c): (int(n), int(h)) for c, n, h in cur.fetchall()}
    theirs = {int(c): (int(n), int(h)) for c, n, h in warehouse.run(remote.chunks_sql())}
    result.mysql_rows = sum(n for n, _ in mine.values())
    result.warehouse_rows = sum(n for n, _ in theirs.values())
    result.chunks = len(set(mine) | set(theirs))
    for chunk in sorted(c for c in set(mine) | set(theirs) if mine.get(c) != theirs.get(c)):
        with conn.cursor() as cur:
            cur.execute(mysql.rows_sql(covered), [*params, chunk])
            mysql_rows = {key: (digest, bool(int(flag or 0))) for key, digest, flag in cur.fetchall()}
        remote_rows = dict(warehouse.run(remote.rows_sql(), [chunk]))
        diff = _diff_chunk(_label(info, chunk, chunk_keys), mysql_rows, remote_rows, result,
                           composite=len(info.keys) > 1)
        if diff:
            result.ranges.append(diff)
    return result


def _diff_chunk(label: str, mysql_rows: dict, remote_rows: dict, result: Verification,
                composite: bool) -> RangeDiff | None:
    diff = RangeDiff(label)
    for key in sorted(set(mysql_rows) | set(remote_rows), key=lambda k: (len(k), k)):
        digest, covered = mysql_rows.get(key, (None, True))
        shown = _shown(key) if composite else key
        if not covered:  # changed in MySQL after the watermark
            result.pending += key in remote_rows
        elif key not in remote_rows:
            diff.missing.append(shown)
        elif digest is None:
            diff.extra.append(shown)
        elif digest != remote_rows[key]:
            diff.changed.append(shown)
    return diff if diff.missing or diff.extra or diff.changed else None


def _shown(key_text: str) -> str:
    """A composite key's text (`v10001|v1986-06-26`: ChecksumDialect.row_text) as `(10001, 1986-06-26)`."""
    return "(" + ", ".join(part[1:] for part in key_text.split("|")) + ")"


def _label(info: TableInfo, chunk: int, chunk_keys: int) -> str:
    key = info.keys[0]
    if key.data_type in INTEGER_TYPES:
        return f"{key.name} {chunk * chunk_keys}..{(chunk + 1) * chunk_keys - 1}"
    return f"{key.name} with MD5 starting {chunk:0{_BUCKET_DIGITS}x}"
