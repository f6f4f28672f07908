"""`s3rs verify`: do MySQL and the warehouse hold the same rows, up to the watermark?

Both sides compute, per chunk of keys, a row count and an order-independent checksum (the sum of
60 bits of each row's MD5 over a canonical text of its values), so only two small result sets
cross the network whatever the table's size. Chunks that disagree are compared row by row (key
and row MD5) to name what differs. Both sides only count rows up to the watermark; a row MySQL
changed after it is not a difference but the next sync's work, and is reported as pending.

The canonical text is the same on both sides: numbers as decimal text (DECIMAL with its scale),
BIT(1) as 0/1, dates YYYY-MM-DD, timestamps YYYY-MM-DD HH:MM:SS.ffffff (TIMESTAMP in UTC),
binary as lower-case hex, text as UTF-8, zero dates NULL (as stored). FLOAT and DOUBLE columns are
left out of the checksum, because the databases print floating point numbers differently.
"""

from dataclasses import asdict, dataclass, field

import pyarrow as pa

from s3rs_tui.config import Settings
from s3rs_tui.engine.events import EventSink, Notice
from s3rs_tui.engine.mysql import classify, close_quietly, connect
from s3rs_tui.engine.parquet import table_prefix
from s3rs_tui.engine.table import INTEGER_TYPES, TableInfo, describe_table
from s3rs_tui.engine.typemap import plan_columns
from s3rs_tui.errors import S3rsError
from s3rs_tui.parsing import quote_identifier
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import Watermark, WatermarkStore
from s3rs_tui.warehouse import open_warehouse, require_warehouse
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.datafiles import plan_load
from s3rs_tui.warehouse.loader import target_for
from s3rs_tui.warehouse.merge import Target, quote

CHUNK_KEYS = 100_000   # integer keys per chunk
_HASH_DIGITS = 15      # hex digits of a row's MD5 summed per chunk: 60 bits, so a bigint holds each
_BUCKET_DIGITS = 2     # CHAR/VARCHAR keys are chunked by the first hex digits of their MD5
_SHOWN_KEYS = 5


@dataclass(frozen=True)
class Dialect:
    """How one database spells the canonical text and the hashing."""

    text: dict[str, str]  # value kind -> SQL with {c} for the column
    hash_int: str         # SQL with {h} (hex text) and {n} (digits): the leading digits as an integer
    int_chunk: str        # SQL with {k} (key) and {n} (chunk size): chunk number of an integer key
    md5: str = "md5({t})"
    key_text: str = "CAST({c} AS VARCHAR)"
    utc: str = ""         # statement that makes TIMESTAMP WITH TIME ZONE print in UTC
    sum_type: str = "DECIMAL(38,0)"  # what the hashes are summed as (a bigint sum would overflow)
    mysql: bool = False

    def quote(self, name: str) -> str:
        return quote_identifier(name) if self.mysql else quote(name)

    def row_text(self, parts: list[str]) -> str:
        """The values joined with '|', each 'v<text>' or 'n' for NULL (so NULL differs from '')."""
        if self.mysql:
            return "CONCAT_WS('|', " + ", ".join(f"COALESCE(CONCAT('v', {p}), 'n')" for p in parts) + ")"
        return " || '|' || ".join(f"COALESCE('v' || {p}, 'n')" for p in parts)


_FORMATTED = {"bool": "CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END", "number": "CAST({c} AS VARCHAR)",
              "text": "CAST({c} AS VARCHAR)", "date": "to_char({c}, 'YYYY-MM-DD')",
              "timestamp": "to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')"}
DIALECTS = {
    "postgres": Dialect({**_FORMATTED, "binary": "encode({c}, 'hex')"},
                        "CAST(CAST('x' || substr({h}, 1, {n}) AS bit({bits})) AS bigint)", "div({k}, {n})",
                        utc="SET TIME ZONE 'UTC'"),
    "redshift": Dialect({**_FORMATTED, "binary": "LOWER(TO_HEX({c}))"},
                        "STRTOL(SUBSTRING({h}, 1, {n}), 16)", "TRUNC({k} / {n})", utc="SET TIME ZONE 'UTC'"),
    "duckdb": Dialect({**_FORMATTED, "binary": "lower(hex({c}))", "date": "strftime({c}, '%Y-%m-%d')",
                       "timestamp": "strftime({c}, '%Y-%m-%d %H:%M:%S.%f')"},
                      "CAST('0x' || substr({h}, 1, {n}) AS BIGINT)", "CAST({k} AS HUGEINT) // {n}",
                      utc="SET TimeZone = 'UTC'"),
}
MYSQL = Dialect(
    {"bool": "({c} + 0)", "number": "({c} + 0)", "text": "CONVERT({c} USING utf8mb4)",
     # NULL for zero and impossible dates; %% because pymysql fills in %s parameters
     "date": "DATE_FORMAT({c} + INTERVAL 0 DAY, '%%Y-%%m-%%d')",
     "timestamp": "DATE_FORMAT({c} + INTERVAL 0 SECOND, '%%Y-%%m-%%d %%H:%%i:%%s.%%f')",
     "binary": "LOWER(HEX({c}))"},
    "CAST(CONV(SUBSTRING({h}, 1, {n}), 16, 10) AS UNSIGNED)", "{k} DIV {n}", md5="MD5({t})",
    key_text="CONVERT({c} USING utf8mb4)", sum_type="", mysql=True)


def value_kind(arrow_type: pa.DataType) -> str:
    """How a column is compared: by the Arrow type its values are stored as."""
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return "binary" if pa.types.is_binary(arrow_type) else "text"


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
    """The SQL of one side (MySQL or the warehouse) for the columns compared."""

    def __init__(self, dialect: Dialect, table: str, key: str, kinds: dict[str, str], integer_key: bool,
                 chunk_keys: int, param: str):
        self.dialect, self.table, self.param = dialect, table, param
        self.key = dialect.quote(key)
        row = dialect.row_text([dialect.text[kind].format(c=dialect.quote(name))
                                for name, kind in kinds.items()])
        self.row_md5 = dialect.md5.format(t=row)
        self.row_hash = dialect.hash_int.format(h=self.row_md5, n=_HASH_DIGITS, bits=4 * _HASH_DIGITS)
        self.key_text = dialect.key_text.format(c=self.key)
        if integer_key:
            self.chunk = dialect.int_chunk.format(k=self.key, n=chunk_keys)
        else:
            self.chunk = dialect.hash_int.format(h=dialect.md5.format(t=self.key_text), n=_BUCKET_DIGITS,
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


def _covered(cursor: str, key: str, position: tuple) -> tuple[str, list]:
    """MySQL rows at or before the watermark (every warehouse row is: it came from committed files)."""
    timestamp, last_key = position
    c, k = quote_identifier(cursor), quote_identifier(key)
    if last_key is None:
        return f"{c} < %s", [timestamp]
    return f"({c} < %s OR ({c} = %s AND {k} <= %s))", [timestamp, timestamp, last_key]


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


def _check_loaded(warehouse: Warehouse, target: Target, store, watermark: Watermark, name: str) -> None:
    """Comparing before every committed file is loaded would only list what is still to load."""
    if warehouse.describe(target.table) is None:
        raise S3rsError(f"{name}: {target.label} is not in the warehouse: run `s3rs sync -t {name}` first")
    plan = plan_load(list(store.list(table_prefix(name))), warehouse.loaded_files(target), watermark)
    if plan.todo:
        raise S3rsError(f"{name}: {len(plan.todo)} stored files are not loaded into {target.label} yet: run "
                        f"`s3rs sync -t {name} --load-only` first, then verify")


def _compare(conn, info: TableInfo, warehouse: Warehouse, target: Target, watermark: Watermark,
             sink: EventSink, chunk_keys: int) -> Verification:
    columns = warehouse.describe(target.table) or {}
    kinds, skipped = {}, []
    for plan in plan_columns(info.columns):
        kind = value_kind(plan.arrow_type)
        if kind == "float" or plan.column.name.lower() not in columns:
            skipped.append(plan.column.name)
        else:
            kinds[plan.column.name] = kind
    position = (watermark.last_mysql_data_timestamp, watermark.last_mysql_data_id)
    result = Verification(info.name, warehouse.label, f"({position[0]}, {position[1]})",
                          skipped_columns=skipped)
    if skipped:
        sink(Notice(info.name, f"not compared: {', '.join(skipped)} (floating point, or not in the "
                               "warehouse)", "info"))
    key, integer_key = info.keys[0], info.keys[0].data_type in INTEGER_TYPES
    mysql = _Side(MYSQL, info.quoted, key.name, kinds, integer_key, chunk_keys, "%s")
    dialect = DIALECTS[warehouse.kind]
    spelled = {columns[name.lower()][0]: kind for name, kind in kinds.items()}
    remote = _Side(dialect, target.quoted, columns[key.name.lower()][0], spelled, integer_key,
                   chunk_keys, warehouse.param)
    if dialect.utc:
        warehouse.run(dialect.utc)
    covered, params = _covered(info.cursor.name, key.name, position)
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
        diff = _diff_chunk(_label(info, chunk, chunk_keys), mysql_rows, remote_rows, result)
        if diff:
            result.ranges.append(diff)
    return result


def _diff_chunk(label: str, mysql_rows: dict, remote_rows: dict, result: Verification) -> RangeDiff | None:
    diff = RangeDiff(label)
    for key in sorted(set(mysql_rows) | set(remote_rows), key=lambda k: (len(k), k)):
        digest, covered = mysql_rows.get(key, (None, True))
        if not covered:  # changed in MySQL after the watermark
            result.pending += key in remote_rows
        elif key not in remote_rows:
            diff.missing.append(key)
        elif digest is None:
            diff.extra.append(key)
        elif digest != remote_rows[key]:
            diff.changed.append(key)
    return diff if diff.missing or diff.extra or diff.changed else None


def _label(info: TableInfo, chunk: int, chunk_keys: int) -> str:
    key = info.keys[0]
    if key.data_type in INTEGER_TYPES:
        return f"{key.name} {chunk * chunk_keys}..{(chunk + 1) * chunk_keys - 1}"
    return f"{key.name} with MD5 starting {chunk:0{_BUCKET_DIGITS}x}"
