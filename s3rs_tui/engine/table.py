"""What the engine needs to know about a source table, read from information_schema.

Every name the operator gives is checked twice: against a plain-identifier pattern (parsing.py),
then against information_schema here; only names found there are quoted into SQL.
"""

from dataclasses import dataclass

import pymysql

from s3rs_tui.engine.typemap import MySQLColumn
from s3rs_tui.runtime.config import TableSettings
from s3rs_tui.runtime.errors import TableError
from s3rs_tui.runtime.parsing import quote_identifier

CURSOR_TYPES = ("datetime", "timestamp", "date")
INTEGER_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")
_STRING_KEY_TYPES = ("char", "varchar")


@dataclass(frozen=True)
class TableInfo:
    database: str
    table: str
    columns: list[MySQLColumn]
    cursor: MySQLColumn
    key: MySQLColumn
    has_keyset_index: bool
    estimated_rows: int

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def quoted(self) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(self.table)}"

    @property
    def key_is_integer(self) -> bool:
        return self.key.data_type in INTEGER_TYPES

    @property
    def cursor_precision(self) -> int:
        return self.cursor.datetime_precision or 0


def describe_table(conn: pymysql.Connection, database: str, table: str, spec: TableSettings) -> TableInfo:
    """Introspect and validate; raises TableError with the way forward when the table won't do."""
    name = f"{database}.{table}"
    rows = _query(conn, "SELECT TABLE_ROWS, TABLE_TYPE FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (database, table))
    if not rows:
        raise TableError(f"table {name} does not exist (or the MySQL user cannot see it)")
    estimated_rows = int(rows[0][0] or 0)
    columns = table_columns(conn, database, table)
    by_name = {column.name.lower(): column for column in columns}
    cursor = by_name.get(spec.cursor_column.lower())
    if cursor is None:
        raise TableError(f"table {name} has no cursor column {spec.cursor_column!r}: set cursor_column "
                         f"in [tables.\"{name}\"] to its last-modified DATETIME or TIMESTAMP column")
    if cursor.data_type not in CURSOR_TYPES:
        raise TableError(f"cursor column {name}.{cursor.name} is {cursor.column_type}; it must be "
                         "DATETIME, TIMESTAMP or DATE")
    indexes = _indexes(conn, database, table)
    key = _key_column(name, spec, by_name, indexes)
    return TableInfo(database, table, columns, cursor, key,
                     _has_keyset_index(indexes, cursor.name, key.name), estimated_rows)


def show_create_table(conn: pymysql.Connection, info: TableInfo) -> str:
    """The table's own definition, as a restore recreates it (kept in the store per change)."""
    return str(_query(conn, f"SHOW CREATE TABLE {info.quoted}", ())[0][1])


def _query(conn: pymysql.Connection, sql: str, params: tuple) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def table_columns(conn: pymysql.Connection, database: str, table: str) -> list[MySQLColumn]:
    rows = _query(conn, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, "
                        "DATETIME_PRECISION, CHARACTER_SET_NAME, IS_NULLABLE "
                        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                        "ORDER BY ORDINAL_POSITION", (database, table))

    def number(value):
        return None if value is None else int(value)

    return [MySQLColumn(name=r[0], data_type=r[1].lower(), column_type=r[2].lower(),
                        numeric_precision=number(r[3]), numeric_scale=number(r[4]),
                        datetime_precision=number(r[5]), character_set_name=r[6],
                        is_nullable=r[7] == "YES") for r in rows]


def _indexes(conn: pymysql.Connection, database: str, table: str) -> dict[str, tuple[bool, list[str]]]:
    """index name -> (unique, [columns in order])."""
    rows = _query(conn, "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
                        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                  (database, table))
    indexes: dict[str, tuple[bool, list[str]]] = {}
    for index_name, non_unique, column in rows:
        indexes.setdefault(index_name, (str(non_unique) == "0", []))[1].append(column.lower())
    return indexes


def _key_column(name: str, spec: TableSettings, by_name: dict[str, MySQLColumn],
                indexes: dict[str, tuple[bool, list[str]]]) -> MySQLColumn:
    single_unique = {cols[0] for unique, cols in indexes.values() if unique and len(cols) == 1}
    if spec.key_column:
        key = by_name.get(spec.key_column.lower())
        if key is None:
            raise TableError(f"table {name} has no key column {spec.key_column!r}")
        if key.name.lower() not in single_unique or key.is_nullable:
            raise TableError(f"key column {name}.{key.name} must be NOT NULL and unique on its own "
                             "(a primary key or a single-column unique index)")
    else:
        primary = indexes.get("PRIMARY", (True, []))[1]
        if len(primary) != 1:
            what = "a composite primary key" if primary else "no primary key"
            raise TableError(f"table {name} has {what}; set key_column in [tables.\"{name}\"] to a "
                             "NOT NULL column with a single-column unique index")
        key = by_name[primary[0]]
    if key.data_type not in INTEGER_TYPES + _STRING_KEY_TYPES:
        raise TableError(f"key column {name}.{key.name} is {key.column_type}; integer or "
                         "CHAR/VARCHAR keys are supported")
    return key


def _has_keyset_index(indexes: dict[str, tuple[bool, list[str]]], cursor: str, key: str) -> bool:
    """An index starting (cursor, key); InnoDB appends the primary key to every secondary index,
    so an index on (cursor) alone serves too when the key is the primary key."""
    cursor, key = cursor.lower(), key.lower()
    primary = indexes.get("PRIMARY", (True, []))[1]
    for _, columns in indexes.values():
        if columns[:2] == [cursor, key] or (columns == [cursor] and primary == [key]):
            return True
    return False
