"""Writing restored rows into MySQL: the target's definition, and batches of Arrow rows as
LOAD DATA LOCAL INFILE text (or, where the server or client refuses it, multi-row INSERTs).

Each value goes back as the text MySQL itself prints for it, built column-wise in Arrow (no
Python per value on the fast path): integers and DECIMALs as their digits, FLOAT through its
exact double, DOUBLE as the shortest text that reads back the same, dates and times as
'YYYY-MM-DD HH:MM:SS.ffffff' (the session is in UTC, so TIMESTAMP values land where they were),
strings and bytes escaped, BIT through CAST(... AS UNSIGNED), YEAR with four digits (so 0 stays
0000). A zero date the backup stored as NULL comes back NULL, or as 0000-00-00 in a NOT NULL
column (the only value MySQL lets it be).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from s3rs_tui.engine.typemap import MySQLColumn
from s3rs_tui.runtime.parsing import quote_identifier

# The session's own rules, whatever the server's default: strict (a value that does not fit
# fails the batch instead of being cut), 0 stays 0 in an AUTO_INCREMENT key, zero dates allowed.
SESSION_SQL = ("SET time_zone = '+00:00', "
               "sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
               "foreign_key_checks = 0, unique_checks = 0")
_DATES = ("date", "datetime", "timestamp")
_ZERO = {"date": "0000-00-00", "datetime": "0000-00-00 00:00:00", "timestamp": "0000-00-00 00:00:00"}
_CREATE = re.compile(r"^CREATE TABLE `(?:[^`]|``)+`", re.IGNORECASE)
_FOREIGN_KEY = re.compile(r"^\s*CONSTRAINT .* FOREIGN KEY .*$", re.IGNORECASE)
_PLAIN_KEY = re.compile(r"^\s*KEY `((?:[^`]|``)+)`", re.IGNORECASE)  # a non-unique secondary index
_INSERT_BYTES = 4 * 1024**2  # one INSERT statement: well under every max_allowed_packet default
# Rows turned into text at once (LOAD DATA's lines, INSERT's values): a few MB for wide rows, where
# a whole batch's text and the copies that build it took about 90 MB for 50,000 rows (measured).
_TEXT_ROWS = 5_000
# Errors that say LOAD DATA LOCAL is off on the server (MySQL 1148, 3948; MariaDB 4166) or refused
# by the client (2068).
LOCAL_INFILE_REFUSED = (1148, 3948, 4166, 2068)


@dataclass(frozen=True)
class TargetDefinition:
    create: str                 # CREATE TABLE of the target, without what is listed below
    foreign_keys: list[str]     # left out for good: they would point at the source's neighbours
    deferred_keys: list[str]    # plain secondary indexes, added once the rows are in


def target_definition(sql: str, target: str) -> TargetDefinition:
    """The source's CREATE TABLE renamed to `target` (quoted db.table), without its foreign keys
    (they would point at the source's neighbours and clash by name) and without its non-unique
    secondary indexes: InnoDB builds one from the sorted rows, once they are all in, faster than it
    maintains it row by row (measured on the benchmark table: 32.0 s to load 2M rows with its
    cursor index, 25.7 s without it plus 3.2 s to add it). Primary and unique keys stay: they
    decide what REPLACE replaces on a resumed run."""
    if not _CREATE.match(sql):
        raise ValueError("the stored definition does not start with CREATE TABLE")
    lines = _CREATE.sub(f"CREATE TABLE {target}", sql, count=1).splitlines()
    foreign: list[str] = []
    deferred: list[str] = []
    kept: list[str] = []
    for line in lines:
        left_out = foreign if _FOREIGN_KEY.match(line) else deferred if _PLAIN_KEY.match(line) else None
        if left_out is None:
            kept.append(line)
        else:
            left_out.append(line.strip().rstrip(","))
    closing = next(i for i in range(len(kept) - 1, -1, -1) if kept[i].startswith(")"))
    kept[closing - 1] = kept[closing - 1].rstrip().rstrip(",")  # the line before ")" ends the list
    return TargetDefinition("\n".join(kept), foreign, deferred)


def index_name(key_line: str) -> str:
    """KEY `a``b` (...) -> a`b: the index's name, as SHOW CREATE TABLE quoted it."""
    found = _PLAIN_KEY.match(key_line)
    if found is None:
        raise ValueError(f"not a secondary index: {key_line}")
    return found.group(1).replace("``", "`")


def fallback_definition(schema: pa.Schema, key_columns: list[str], target: str) -> str:
    """A CREATE TABLE from the files alone (no definition was captured: backups older than
    restore): each column's stored MySQL type, NULL allowed, the key as the primary key."""
    columns = [f"  {quote_identifier(field.name)} "
               f"{(field.metadata or {}).get(b'mysql_type', b'longtext').decode()} NULL" for field in schema]
    key = ", ".join(quote_identifier(name) for name in key_columns)
    return f"CREATE TABLE {target} (\n" + ",\n".join([*columns, f"  PRIMARY KEY ({key})"]) + \
        "\n) DEFAULT CHARSET=utf8mb4"


def _text(array: pa.Array, column: MySQLColumn) -> pa.Array:
    """A column as MySQL's own text (binary; NULL stays NULL)."""
    kind = array.type
    if pa.types.is_boolean(kind):
        array = array.cast(pa.int8())
    elif pa.types.is_float32(kind):
        array = array.cast(pa.float64())  # exact; the server rounds it back to the same FLOAT
    elif pa.types.is_timestamp(kind) and kind.tz:
        array = array.cast(pa.timestamp(kind.unit))  # UTC wall time, as the session reads it
    if not (pa.types.is_string(array.type) or pa.types.is_binary(array.type)):
        array = array.cast(pa.string())
    if column.data_type == "year":
        array = pc.utf8_lpad(array, 4, "0")
    if column.data_type in _DATES and not column.is_nullable:
        array = pc.fill_null(array, _ZERO[column.data_type])
    return array.cast(pa.binary())


def _escaped(array: pa.Array, pairs: tuple[tuple[bytes, bytes], ...]) -> pa.Array:
    for plain, escaped in pairs:
        array = pc.replace_substring(array, plain, escaped)
    return array


def _is_text(array: pa.Array) -> bool:
    kind = array.type
    return pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind) \
        or pa.types.is_large_binary(kind)


def _values(values: pa.Array) -> memoryview:
    """The values of a binary array back to back, straight from its data buffer (no copy)."""
    values = values.cast(pa.large_binary())
    offsets = memoryview(values.buffers()[1]).cast("q")
    start, end = offsets[values.offset], offsets[values.offset + len(values)]
    return memoryview(values.buffers()[2])[start:end]


_TSV_ESCAPES = ((b"\\", b"\\\\"), (b"\t", b"\\t"), (b"\n", b"\\n"))
_SQL_ESCAPES = ((b"\\", b"\\\\"), (b"'", b"\\'"), (b"\x00", b"\\0"))


class MySQLWriter:
    """Appends batches to the target table: one statement (a transaction of its own) per batch."""

    def __init__(self, conn, target: str, columns: list[MySQLColumn], scratch: Path, load_data: bool):
        self.conn, self.target, self.scratch, self.load_data = conn, target, scratch, load_data
        self.columns = {column.name.lower(): column for column in columns}
        self._files = 0

    def present(self, schema: pa.Schema) -> list[str]:
        """The data's columns the target has (others are left out)."""
        return [name for name in schema.names if name.lower() in self.columns]

    def write(self, table: pa.Table, replace: bool = False) -> None:
        """Insert the rows; `replace`: rows whose key is already there are replaced (the first
        batch of a resumed run, which may have been committed before its progress was saved)."""
        self.prepare(table, replace)()

    def prepare(self, table: pa.Table, replace: bool = False) -> Callable[[], None]:
        """Build the batch's statement (text file or INSERTs) now; the returned call runs it, so the
        next batch can be built while the server loads this one."""
        names = self.present(table.schema)
        if table.num_rows == 0:
            return lambda: None
        if self.load_data:
            return self._load_data(table, names, replace)
        return self._inserts(table, names, replace)

    def _load_data(self, table: pa.Table, names: list[str], replace: bool) -> Callable[[], None]:
        fields: list[str] = []
        sets: list[str] = []
        for name in names:
            column = self.columns[name.lower()]
            if column.data_type == "bit":
                variable = f"@s3rs_{len(sets)}"
                fields.append(variable)
                sets.append(f"{quote_identifier(column.name)} = CAST({variable} AS UNSIGNED)")
            else:
                fields.append(quote_identifier(column.name))
        self._files += 1
        path = self.scratch / f"restore-batch-{self._files}.tsv"
        with open(path, "wb") as out:
            for first in range(0, table.num_rows, _TEXT_ROWS):
                out.write(_values(self._lines(table.slice(first, _TEXT_ROWS), names)))
        sql = (f"LOAD DATA LOCAL INFILE %s {'REPLACE ' if replace else ''}INTO TABLE {self.target} "
               f"CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
               f"LINES TERMINATED BY '\\n' ({', '.join(fields)})"
               + (f" SET {', '.join(sets)}" if sets else ""))

        def load() -> None:
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql, [str(path)])
            finally:
                path.unlink(missing_ok=True)

        return load

    def _lines(self, table: pa.Table, names: list[str]) -> pa.Array:
        """The rows as LOAD DATA's text lines (tab-separated, escaped, \\N for NULL)."""
        texts = []
        for name in names:
            text = _text(table.column(name).combine_chunks(), self.columns[name.lower()])
            texts.append(_escaped(text, _TSV_ESCAPES) if _is_text(table.column(name)) else text)
        lines = pc.binary_join_element_wise(*texts, b"\t", null_handling="replace",
                                            null_replacement=b"\\N")
        return pc.binary_join_element_wise(lines, pa.scalar(b"", pa.binary()), b"\n")

    def _inserts(self, table: pa.Table, names: list[str], replace: bool) -> Callable[[], None]:
        """The statements are built as they are sent, _TEXT_ROWS rows at a time: a batch's whole
        text held at once (and the next one's, built meanwhile) cost tens of MB (measured)."""
        listed = ", ".join(quote_identifier(self.columns[name.lower()].name) for name in names)
        head = f"{'REPLACE' if replace else 'INSERT'} INTO {self.target} ({listed}) VALUES ".encode()

        def load() -> None:
            for first in range(0, table.num_rows, _TEXT_ROWS):
                for statement in self._statements(head, table.slice(first, _TEXT_ROWS), names):
                    self.conn.query(statement)

        return load

    def _statements(self, head: bytes, table: pa.Table, names: list[str]) -> Iterator[bytes]:
        """INSERTs of the rows, each under _INSERT_BYTES (unless one row alone is longer)."""
        literals = [_literal(table.column(name).combine_chunks(), self.columns[name.lower()])
                    for name in names]
        rows = pc.binary_join_element_wise(pa.scalar(b"(", pa.binary()),
                                           pc.binary_join_element_wise(*literals, b","),
                                           pa.scalar(b")", pa.binary()), b"")
        start, size = 0, 0
        for index, length in enumerate(pc.binary_length(rows).to_pylist()):
            if size and size + length > _INSERT_BYTES:
                yield _statement(head, rows.slice(start, index - start))
                start, size = index, 0
            size += length + 1
        yield _statement(head, rows.slice(start))


def _statement(head: bytes, rows: pa.Array) -> bytes:
    joined = pc.binary_join_element_wise(rows, pa.scalar(b"", pa.binary()), b",")
    return b"".join((head, _values(joined)[:-1]))


def _literal(array: pa.Array, column: MySQLColumn) -> pa.Array:
    """A column as SQL literals (binary): numbers bare, text quoted and escaped, bytes in hex."""
    if pa.types.is_binary(array.type):
        hexed = pa.array([None if value is None else f"X'{value.hex()}'" for value in array.to_pylist()],
                         pa.string())
        return pc.fill_null(hexed, "NULL").cast(pa.binary())
    text = _text(array, column)
    quoted = pa.types.is_string(array.type) or column.data_type in (*_DATES, "time", "year") \
        or pa.types.is_date(array.type) or pa.types.is_timestamp(array.type)
    if quoted:
        text = pc.binary_join_element_wise(pa.scalar(b"'", pa.binary()), _escaped(text, _SQL_ESCAPES),
                                           pa.scalar(b"'", pa.binary()), b"")
    return pc.fill_null(text, b"NULL")
