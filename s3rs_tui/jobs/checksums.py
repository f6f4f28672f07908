"""Comparing a table in MySQL with its backed-up copy, chunk of keys by chunk of keys (verify,
reconcile).

Both sides compute, per chunk of keys, a row count and an order-independent checksum (the sum of
60 bits of each row's MD5 over a canonical text of its values), so only small result sets cross
the network whatever the table's size. Chunks that disagree are compared row by row (key and row
MD5) to name what differs. MySQL only counts rows up to the watermark; a row it changed after is
not a difference but the next sync's work (pending). Integer keys are chunked by ranges
(key DIV n), each read as a range of the key; CHAR/VARCHAR keys by the first hex digits of their
MD5 (a scan, done once for all chunks). Reconcile checksums an integer range per thousandth of it
(its parts) in the same read, so only the rows of the parts that differ cross the network; hash
buckets it checksums per cell (the first digits of the MD5 of the whole key's text's MD5, 256 per
bucket) in the one pass, so a differing bucket's rows are read for its differing cells alone:
1/65,536 of the table each, however few values the leading column takes.

The canonical text (runtime/checksum.py) is spelled by the engine for MySQL and by each warehouse
kind (DuckDB's also for the store's own newest state) for the backup's side.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pymysql

from s3rs_tui.engine.checksum import MYSQL_CHECKSUM
from s3rs_tui.engine.extract import key_value
from s3rs_tui.engine.keyset import Position, up_to_sql
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.engine.typemap import plan_columns
from s3rs_tui.runtime.checksum import ChecksumDialect, value_kind
from s3rs_tui.runtime.errors import TableError
from s3rs_tui.runtime.keys import KeyParts

CHUNK_KEYS = 100_000   # integer keys per chunk
PARTS = 1_000          # reconcile checksums a range of integer keys per 1/1000 of it (its parts), so
                       # only the rows of parts that differ are read (pt-table-sync's narrowing)
_HASH_DIGITS = 15      # hex digits of a row's MD5 summed per chunk: 60 bits, so a bigint holds each
_BUCKET_DIGITS = 2     # CHAR/VARCHAR keys are chunked by the first hex digits of their MD5
_CELLS = 16 ** _BUCKET_DIGITS  # and reconcile checksums a bucket per cell, 256 of them
CELL_ROWS = 200_000    # reconcile reads the differing cells of consecutive buckets in one scan, up to
                       # about this many rows (both sides)
_SHOWN_KEYS = 5

Sums = dict[int, tuple[int, int]]           # chunk -> (rows, checksum)
Cells = dict[int, Sums]                     # hash bucket -> cell -> (rows, checksum)
MySQLRows = dict[str, tuple[str, bool]]     # key text -> (row MD5, at or before the watermark)
BackupRows = dict[str, str]                 # key text -> row MD5
ChunkRows = tuple[MySQLRows, BackupRows]


@dataclass
class RangeDiff:
    """One chunk of keys where the two sides disagree."""

    label: str
    missing: list[str] = field(default_factory=list)  # in MySQL, not in the backup
    extra: list[str] = field(default_factory=list)    # in the backup, not in MySQL (deleted there?)
    changed: list[str] = field(default_factory=list)  # both, with different values

    def describe(self) -> str:
        parts = [f"{len(keys)} {what} ({', '.join(keys[:_SHOWN_KEYS])}"
                 f"{', ...' if len(keys) > _SHOWN_KEYS else ''})"
                 for what, keys in (("changed", self.changed), ("missing in the warehouse", self.missing),
                                    ("only in the warehouse", self.extra)) if keys]
        return f"{self.label}: " + ", ".join(parts)

    @property
    def keys(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


@dataclass(frozen=True)
class Backup:
    """The backed-up side: a warehouse table, or the store's newest state in DuckDB."""

    label: str
    table: str                              # quoted, as its SQL names it
    columns: dict[str, tuple[str, str]]     # lower-case name -> (its spelling, its type)
    dialect: ChecksumDialect
    param: str                              # its driver's placeholder
    run: Callable[[str, list], list[tuple]]


class _Side:
    """The SQL of one side (MySQL or the backup) for the columns compared. A row is named by its
    key's text (a composite key: its parts' canonical texts joined); chunks follow the key's
    leading column (`keys`: name -> value kind, in key order): ranges of an integer, else the
    first digits of its text's MD5."""

    def __init__(self, dialect: ChecksumDialect, table: str, keys: dict[str, str], kinds: dict[str, str],
                 chunk_keys: int, param: str):
        self.dialect, self.table, self.param = dialect, table, param
        row = dialect.row_text([dialect.text[kind].format(c=dialect.quote(name))
                                for name, kind in kinds.items()])
        self.row_md5 = dialect.md5.format(t=row)
        self.row_hash = dialect.hash_int.format(h=self.row_md5, n=_HASH_DIGITS, bits=4 * _HASH_DIGITS)
        (lead, lead_kind), = list(keys.items())[:1]
        self.key = dialect.quote(lead)
        texts = [dialect.text[kind].format(c=dialect.quote(name)) for name, kind in keys.items()]
        self.joined_key = not (len(keys) == 1 and lead_kind in ("number", "text"))  # as row_text joins
        if not self.joined_key:
            self.key_text = lead_text = dialect.key_text.format(c=self.key)
        else:
            self.key_text, lead_text = dialect.row_text(texts), texts[0]
        self.integer_key, self.chunk_keys = lead_kind == "number", chunk_keys
        if self.integer_key:
            self.chunk = dialect.int_chunk.format(k=self.key, n=chunk_keys)
        else:
            self.chunk = dialect.hash_int.format(h=dialect.md5.format(t=lead_text), n=_BUCKET_DIGITS,
                                                 bits=4 * _BUCKET_DIGITS)
        # a hash bucket's cells: independent of the bucket's digits, and spread over the whole key
        self.cell = dialect.hash_int.format(h=dialect.md5.format(t=dialect.md5.format(t=self.key_text)),
                                            n=_BUCKET_DIGITS, bits=4 * _BUCKET_DIGITS)

    def key_range(self, first: int, last: int) -> str:
        """Integer keys of chunks first..last: a range of the key's leading column (integers, not input)."""
        low, high = int(first) * self.chunk_keys, (int(last) + 1) * self.chunk_keys
        return f"{self.key} >= {low} AND {self.key} < {high}"

    def chunks_sql(self, where: str = "", only: str = "", cells: bool = False) -> str:
        """Rows and checksum per chunk (and per cell of it: `cells`) of the rows matching `where`;
        `only` filters in the sums rather than in WHERE, so a key range alone picks the index
        (MySQL's rows up to the watermark: a condition on the cursor would make it scan the
        cursor's index instead)."""
        sum_type = self.dialect.sum_type
        total = f"CAST({self.row_hash} AS {sum_type})" if sum_type else self.row_hash
        count = "COUNT(*)"
        if only:
            count = f"SUM(CASE WHEN {only} THEN 1 ELSE 0 END)"
            total = f"CASE WHEN {only} THEN {total} ELSE 0 END"
        cell, by_cell = (f", {self.cell} AS s3rs_cell", ", s3rs_cell") if cells else ("", "")
        return (f"SELECT {self.chunk} AS s3rs_chunk{cell}, {count}, SUM({total}) FROM {self.table}"
                + (f" WHERE {where}" if where else "") + f" GROUP BY s3rs_chunk{by_cell}")

    def rows_sql(self, chunk: int, flag: str = "") -> str:
        """Key and row MD5 (and `flag`) of every row in one chunk (the chunk is the last parameter)."""
        where = f"{self.chunk} = {self.param}"
        if self.integer_key:
            where = f"{self.key_range(chunk, chunk)} AND {where}"
        return self.rows_where_sql(where, flag)

    def cells_rows_sql(self, cells: dict[int, list[int]], flag: str = "") -> str:
        """Hash bucket, key and row MD5 (and `flag`) of every row in these cells (bucket -> cells)."""
        ids = ", ".join(str(int(chunk) * _CELLS + int(cell)) for chunk, some in cells.items()
                        for cell in some)
        return self.rows_where_sql(f"{self.chunk} * {_CELLS} + {self.cell} IN ({ids})", flag,
                                   lead=f"{self.chunk}, ")

    def parts_rows_sql(self, parts: list[int], flag: str = "") -> str:
        """Key and row MD5 (and `flag`) of every row in these chunks (integer keys)."""
        listed = ", ".join(str(int(part)) for part in parts)
        return self.rows_where_sql(f"{self.key_range(min(parts), max(parts))} AND {self.chunk} IN ({listed})",
                                   flag)

    def rows_where_sql(self, where: str, flag: str = "", lead: str = "") -> str:
        return (f"SELECT {lead}{self.key_text}, {self.row_md5}{f', {flag}' if flag else ''} "
                f"FROM {self.table} WHERE {where}")

    def bounds_sql(self) -> str:
        return f"SELECT MIN({self.key}), MAX({self.key}) FROM {self.table}"


class Comparison:
    """MySQL against one backup, up to the watermark `position`."""

    def __init__(self, info: TableInfo, backup: Backup, position: Position, chunk_keys: int = CHUNK_KEYS):
        self.info, self.backup, self.chunk_keys = info, backup, chunk_keys
        self.kinds: dict[str, str] = {}
        self.skipped: list[str] = []
        for plan in plan_columns(info.columns):
            kind = value_kind(plan.arrow_type)
            if kind == "float" or plan.column.name.lower() not in backup.columns:
                self.skipped.append(plan.column.name)
            else:
                self.kinds[plan.column.name] = kind
        if info.keyless:
            raise TableError(f"{info.name} has no unique key: rows are compared by key, so this table "
                             "cannot be (README: Tables without a unique key)")
        self.key_kinds = key_kinds = {column.name: value_kind(plan.arrow_type) for column in info.keys
                                      for plan in plan_columns([column])}
        spelled = {backup.columns[name.lower()][0]: kind for name, kind in self.kinds.items()}
        backup_keys = {backup.columns[name.lower()][0]: kind for name, kind in key_kinds.items()}

        def sides(keys: int) -> tuple[_Side, _Side]:
            return (_Side(MYSQL_CHECKSUM, info.quoted, key_kinds, self.kinds, keys, "%s"),
                    _Side(backup.dialect, backup.table, backup_keys, spelled, keys, backup.param))

        self.mysql, self.remote = sides(chunk_keys)
        self.part_keys = max(1, chunk_keys // PARTS)
        self.mysql_parts, self.remote_parts = sides(self.part_keys)
        self.covered, self.params = up_to_sql(info, position)
        if backup.dialect.utc:
            backup.run(backup.dialect.utc, [])

    def chunk_span(self, conn: pymysql.Connection) -> tuple[int, int] | None:
        """First and last chunk holding a key on either side (integer keys), None when both are empty."""
        with conn.cursor() as cur:
            cur.execute(self.mysql.bounds_sql())
            ends = [int(end) for end in cur.fetchone() if end is not None]  # text, Decimal or int
        ends += [int(end) for end in self.backup.run(self.remote.bounds_sql(), [])[0] if end is not None]
        if not ends:
            return None
        return min(ends) // self.chunk_keys, max(ends) // self.chunk_keys

    def sums(self, conn: pymysql.Connection, first: int | None = None,
             last: int | None = None) -> tuple[Sums, Sums]:
        """Rows and checksum per chunk on both sides: of chunks first..last (integer keys, read
        as a range of the key), or all (one pass over each table)."""
        if first is None or last is None:
            mine_sql, params = self.mysql.chunks_sql(self.covered), self.params
            theirs_sql = self.remote.chunks_sql()
        else:
            mine_sql = self.mysql.chunks_sql(self.mysql.key_range(first, last), only=self.covered)
            params = self.params * 2
            theirs_sql = self.remote.chunks_sql(self.remote.key_range(first, last))
        with conn.cursor() as cur:
            cur.execute(mine_sql, params)
            mine = {int(c): (int(n), int(h)) for c, n, h in cur.fetchall() if int(n)}
        theirs = {int(c): (int(n), int(h)) for c, n, h in self.backup.run(theirs_sql, [])}
        return mine, theirs

    def cell_sums(self, conn: pymysql.Connection) -> tuple[Cells, Cells]:
        """Rows and checksum per cell of every hash bucket on both sides, one pass over each table
        (reconcile on CHAR/VARCHAR leading keys: at most 65,536 small result rows a side)."""
        with conn.cursor() as cur:
            cur.execute(self.mysql.chunks_sql(self.covered, cells=True), self.params)
            mine = _cells(cur.fetchall())
        return mine, _cells(self.backup.run(self.remote.chunks_sql(cells=True), []))

    def part_sums(self, conn: pymysql.Connection, chunk: int) -> tuple[Sums, Sums]:
        """Rows and checksum per part of one chunk (integer keys) on both sides: one range read
        of the key each, and a thousand small result rows."""
        mine_sql = self.mysql_parts.chunks_sql(self.mysql.key_range(chunk, chunk), only=self.covered)
        with conn.cursor() as cur:
            cur.execute(mine_sql, self.params * 2)
            mine = {int(c): (int(n), int(h)) for c, n, h in cur.fetchall() if int(n)}
        found = self.backup.run(self.remote_parts.chunks_sql(self.remote.key_range(chunk, chunk)), [])
        return mine, {int(c): (int(n), int(h)) for c, n, h in found}

    def part_rows(self, conn: pymysql.Connection, parts: list[int]) -> tuple[MySQLRows, BackupRows]:
        """The rows of these parts (of one chunk), as rows() gives a chunk's."""
        with conn.cursor() as cur:
            cur.execute(self.mysql_parts.parts_rows_sql(parts, self.covered), self.params)
            mine = {key: (digest, bool(int(flag or 0))) for key, digest, flag in cur.fetchall()}
        return mine, dict(self.backup.run(self.remote_parts.parts_rows_sql(parts), []))

    def rows(self, conn: pymysql.Connection, chunk: int) -> tuple[MySQLRows, BackupRows]:
        """One chunk's rows: MySQL's {key text: (row MD5, at or before the watermark)}, the backup's
        {key text: row MD5}."""
        with conn.cursor() as cur:
            cur.execute(self.mysql.rows_sql(chunk, self.covered), [*self.params, chunk])
            mine = {key: (digest, bool(int(flag or 0))) for key, digest, flag in cur.fetchall()}
        theirs = dict(self.backup.run(self.remote.rows_sql(chunk), [chunk]))
        return mine, theirs

    def cells_rows(self, conn: pymysql.Connection, cells: dict[int, list[int]]) -> dict[int, ChunkRows]:
        """The rows of these cells (hash bucket -> its cells) in one scan of each side, by bucket,
        as rows() gives a chunk's."""
        found: dict[int, ChunkRows] = {chunk: ({}, {}) for chunk in cells}
        if not any(cells.values()):
            return found
        with conn.cursor() as cur:
            cur.execute(self.mysql.cells_rows_sql(cells, self.covered), self.params)
            for chunk, key, digest, flag in cur.fetchall():
                found[int(chunk)][0][key] = (digest, bool(int(flag or 0)))
        for chunk, key, digest in self.backup.run(self.remote.cells_rows_sql(cells), []):
            found[int(chunk)][1][key] = digest
        return found

    def diff(self, chunk: int, mine: MySQLRows, theirs: BackupRows,
             name: Callable[[str], str] | None = None) -> tuple[RangeDiff, int]:
        """What differs in one chunk, and how many backed-up rows MySQL changed after the watermark.
        Keys are named as people read them (`shown`), or by `name` (reconcile: their texts as compared)."""
        diff, pending = RangeDiff(self.label(chunk)), 0
        name = name or self.shown
        for key in sorted(set(mine) | set(theirs), key=lambda k: (len(k), k)):
            digest, is_covered = mine.get(key, (None, True))
            if not is_covered:  # changed in MySQL after the watermark
                pending += key in theirs
            elif key not in theirs:
                diff.missing.append(name(key))
            elif digest is None:
                diff.extra.append(name(key))
            elif digest != theirs[key]:
                diff.changed.append(name(key))
        return diff, pending

    def shown(self, key_text: str) -> str:
        """A key as people read it: a composite key's text (`v10001|v1986-06-26`, as
        ChecksumDialect.row_text joins it) as `(10001, 1986-06-26)`."""
        if not self.mysql.joined_key:
            return key_text
        values = [str(value) for value in self.key_value(key_text)]
        return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"

    def key_value(self, text: str) -> KeyParts:
        """A key as compared (its text) back to its columns' values (reconcile's keys). Key columns
        are NOT NULL, so a composite key's text is `v<t1>|v<t2>...`; only CHAR/VARCHAR parts can
        hold a '|': with one such column its text takes whatever the other parts leave, with
        several a '|' inside one of them cannot be told from the separator (refused)."""
        keys = self.info.keys
        if not self.mysql.joined_key:
            return (key_value(keys[0], text),)
        parts = text.split("|")
        texts = [i for i, column in enumerate(keys) if self.key_kinds[column.name] == "text"]
        extra = len(parts) - len(keys)
        if extra and len(texts) != 1:
            raise TableError(f"{self.info.name}: key {text!r} has a '|' in a text key column, and with "
                             "several text key columns its parts cannot be told apart")
        if extra:
            at = texts[0]
            parts = [*parts[:at], "|".join(parts[at:at + extra + 1]), *parts[at + extra + 1:]]
        return tuple(key_value(column, part[1:]) for column, part in zip(keys, parts, strict=True))

    def label(self, chunk: int) -> str:
        lead = self.info.keys[0].name
        if self.mysql.integer_key:
            return f"{lead} {chunk * self.chunk_keys}..{(chunk + 1) * self.chunk_keys - 1}"
        return f"{lead} with MD5 starting {chunk:0{_BUCKET_DIGITS}x}"


def _cells(found: list[tuple]) -> Cells:
    cells: Cells = {}
    for chunk, cell, rows, total in found:
        if int(rows):  # MySQL counts rows after the watermark as 0
            cells.setdefault(int(chunk), {})[int(cell)] = (int(rows), int(total))
    return cells
