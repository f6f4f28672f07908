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
_KEY_TYPES = (*INTEGER_TYPES, "char", "varchar", *CURSOR_TYPES)


@dataclass(frozen=True)
class TableInfo:
    database: str
    table: str
    columns: list[MySQLColumn]
    cursor: MySQLColumn
    keys: tuple[MySQLColumn, ...]  # the unique key, in order; () = none: read by whole cursor values
    has_keyset_index: bool
    estimated_rows: int

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def quoted(self) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(self.table)}"

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.keys)

    @property
    def keyless(self) -> bool:
        return not self.keys

    @property
    def integer_key(self) -> bool:
        """One integer column: file names spell it as digits; any other key by its sort order."""
        return len(self.keys) == 1 and self.keys[0].data_type in INTEGER_TYPES

    @property
    def order_names(self) -> tuple[str, ...]:
        """The keyset order: the cursor, then the key."""
        return (self.cursor.name, *self.key_names)

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
    indexes = table_indexes(conn, database, table)
    keys = _key_columns(name, spec, by_name, indexes)
    return TableInfo(database, table, columns, cursor, keys,
                     _has_keyset_index(indexes, [cursor.name, *(key.name for key in keys)]), estimated_rows)


def show_create_table(conn: pymysql.Connection, info: TableInfo) -> str:
    """The table's own definition, as a restore recreates it (kept in the store per change)."""
    return str(_query(conn, f"SHOW CREATE TABLE {info.quoted}", ())[0][1])


def _query(conn: pymysql.Connection, sql: str, params: tuple) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def table_columns(conn: pymysql.Connection, database: str, table: str) -> list[MySQLColumn]:
    rows = _query(conn, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, "
                        "DATETIME_PRECISION, CHARACTER_SET_NAME, IS_NULLABLE, COLLATION_NAME "
                        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
                        "ORDER BY ORDINAL_POSITION", (database, table))

    def number(value):
        return None if value is None else int(value)

    return [MySQLColumn(name=r[0], data_type=r[1].lower(), column_type=r[2].lower(),
                        numeric_precision=number(r[3]), numeric_scale=number(r[4]),
                        datetime_precision=number(r[5]), character_set_name=r[6],
                        is_nullable=r[7] == "YES", collation_name=r[8]) for r in rows]


def table_indexes(conn: pymysql.Connection, database: str, table: str) -> dict[str, tuple[bool, list[str]]]:
    """index name -> (unique, [columns in order])."""
    rows = _query(conn, "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
                        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                  (database, table))
    indexes: dict[str, tuple[bool, list[str]]] = {}
    for index_name, non_unique, column in rows:
        indexes.setdefault(index_name, (str(non_unique) == "0", []))[1].append(column.lower())
    return indexes


def _key_columns(name: str, spec: TableSettings, by_name: dict[str, MySQLColumn],
                 indexes: dict[str, tuple[bool, list[str]]]) -> tuple[MySQLColumn, ...]:
    """The configured key, else the primary key, else () when the table has no unique key at all
    (a table with a unique index but no primary key must name it: it is the operator's choice)."""
    where = f'[tables."{name}"]'
    if spec.key_names:
        missing = [column for column in spec.key_names if column.lower() not in by_name]
        if missing:
            raise TableError(f"table {name} has no key column {missing[0]!r}")
        keys = tuple(by_name[column.lower()] for column in spec.key_names)
        wanted = sorted(key.name.lower() for key in keys)
        if not any(unique and sorted(cols) == wanted for unique, cols in indexes.values()) or \
                any(key.is_nullable for key in keys):
            what = "key column" if len(keys) == 1 else "key columns"
            raise TableError(f"{what} {name}.({', '.join(spec.key_names)}) must be NOT NULL and unique "
                             "together, exactly (a primary key or a unique index on just those columns)")
    elif primary := indexes.get("PRIMARY", (True, []))[1]:
        keys = tuple(by_name[column] for column in primary)
    else:
        unique = [cols for unique, cols in indexes.values()
                  if unique and not any(by_name[column].is_nullable for column in cols)]
        if unique:
            shown = ", ".join(f'"{by_name[column].name}"' for column in unique[0])
            raise TableError(f"table {name} has no primary key but a unique index: set key_columns = "
                             f"[{shown}] in {where}")
        return ()
    for key in keys:
        if key.data_type not in _KEY_TYPES:
            raise TableError(f"key column {name}.{key.name} is {key.column_type}; integer, CHAR/VARCHAR "
                             "and DATE/DATETIME/TIMESTAMP key columns are supported")
    return keys


def _has_keyset_index(indexes: dict[str, tuple[bool, list[str]]], order: list[str]) -> bool:
    """An index starting (cursor, key...); InnoDB appends the primary key to every secondary index,
    so an index on (cursor) alone serves too when the key is the primary key."""
    order = [column.lower() for column in order]
    primary = indexes.get("PRIMARY", (True, []))[1]
    for _, columns in indexes.values():
        with_primary = columns + [column for column in primary if column not in columns]
        if columns[:len(order)] == order or with_primary[:len(order)] == order:
            return True
    return False
