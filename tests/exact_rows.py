"""Exactness on every column: a per-row digest of all columns, computed the same way on MySQL, on
the stored Parquet files and in the warehouse, so a rerun that wrote a wrong `amount` or `name`
fails, not only one that lost or doubled an (id, update_at).

A value's canonical text: NULL is `\\N`; a DECIMAL its digits without trailing zeros (`1.5`, not
`1.5000`, so DECIMAL(18,4), NUMERIC(18,4) and Parquet decimal128 agree); a DATETIME always with
six fraction digits, in UTC when it carries a zone; bytes (BLOB, bytea) in hex; everything else
`str`. A row's digest is the md5 of its columns' texts in MySQL's column order.
"""

import hashlib
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow.parquet as pq

from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore


def canonical(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def digest(values) -> str:
    return hashlib.md5("\x1f".join(canonical(v) for v in values).encode()).hexdigest()


def mysql_columns(db, table: str = "orders") -> list[str]:
    return [name for (name,) in db.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "ORDER BY ORDINAL_POSITION", params=(db.name, table))]


Key = str | tuple[str, ...]  # a key column, or the columns of a composite key


def _key_at(columns: list[str], key: Key):
    """row -> the row's key: canonical text of one column, or a tuple of them."""
    if isinstance(key, str):
        at = columns.index(key)
        return lambda row: canonical(row[at])
    ats = [columns.index(name) for name in key]
    return lambda row: tuple(canonical(row[at]) for at in ats)


def _versions(rows, columns: list[str], key: Key, cursor: str) -> list[tuple]:
    """(key, cursor, digest of all columns) for each row (a tuple in `columns` order)."""
    key_of, at_cursor = _key_at(columns, key), columns.index(cursor)
    return [(key_of(row), canonical(row[at_cursor]), digest(row)) for row in rows]


def _sortable(key) -> tuple:
    """A key's canonical text in the key's order (integers compare as numbers)."""
    parts = key if isinstance(key, tuple) else (key,)
    return tuple((0, int(p), "") if p.lstrip("-").isdigit() else (1, 0, p) for p in parts)


def mysql_rows(db, table: str = "orders", key: Key = "id", cursor: str = "update_at") -> dict:
    """key -> (cursor, digest) of every row in MySQL now."""
    columns = mysql_columns(db, table)
    rows = db.execute(f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}`")
    return {k: (c, d) for k, c, d in _versions(rows, columns, key, cursor)}


def stored_rows(settings, name: str, columns: list[str], key: Key = "id",
                cursor: str = "update_at") -> dict[str, list[tuple]]:
    """file key -> [(key, cursor, digest of `columns`)] of every data file of the table, read
    through the store."""
    store = open_store(settings)
    files = {}
    for info in store.list(table_prefix(name)):
        data = pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]), columns=columns)
        rows = zip(*(data[c].to_pylist() for c in columns), strict=True)
        files[info.key] = _versions(rows, columns, key, cursor)
    return files


def _differences(found: dict, wanted: dict, limit: int = 5) -> str:
    missing = sorted(set(wanted) - set(found))
    extra = sorted(set(found) - set(wanted))
    wrong = sorted(k for k in set(found) & set(wanted) if found[k] != wanted[k])
    return (f"{len(missing)} keys missing {missing[:limit]}, {len(extra)} not in MySQL {extra[:limit]}, "
            f"{len(wrong)} with other values {[(k, found[k], wanted[k]) for k in wrong[:limit]]}")


def assert_store_matches_mysql(db, settings, name: str, table: str = "orders", *, history: bool = False,
                               key: Key = "id", cursor: str = "update_at") -> dict[str, list[tuple]]:
    """Every row of MySQL is stored exactly once with every column equal, and no version is stored
    twice. Without `history` nothing else is stored; with it (rows were updated between runs),
    older versions of a row may be in earlier files. Returns what stored_rows read."""
    files = stored_rows(settings, name, mysql_columns(db, table), key, cursor)
    stored = [row for rows in files.values() for row in rows]
    versions = [(k, c) for k, c, _ in stored]
    assert len(versions) == len(set(versions)), "a row version is stored twice"
    source = mysql_rows(db, table, key, cursor)
    if history:
        newest: dict[str, tuple] = {}
        for k, c, d in stored:
            if k not in newest or c > newest[k][0]:
                newest[k] = (c, d)
        assert newest == source, ("the newest stored versions differ from MySQL: "
                                  + _differences(newest, source))
    else:
        found = {k: (c, d) for k, c, d in stored}
        assert found == source, "the stored rows differ from MySQL: " + _differences(found, source)
    return files


def assert_watermark_matches_files(settings, name: str, files: dict[str, list[tuple]] | None = None,
                                   key: Key = "id", cursor: str = "update_at") -> None:
    """The watermark counts exactly the stored files and rows, and ends at the last row stored.
    `files`: what assert_store_matches_mysql returned, else read here (no MySQL needed)."""
    names = [key] if isinstance(key, str) else list(key)
    files = files if files is not None else stored_rows(settings, name, [*names, cursor], key, cursor)
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.s3_file_count == len(files)
    assert watermark.mysql_rows_extracted == sum(len(rows) for rows in files.values())
    assert watermark.last_s3_file == max(files)
    last = max((c, _sortable(k)) for rows in files.values() for k, c, _ in rows)
    at = canonical(datetime.fromisoformat(watermark.last_mysql_data_timestamp))
    stored_key = tuple(str(v) for v in watermark.position_key)
    assert (at, _sortable(stored_key)) == last


def assert_warehouse_matches_mysql(query, db, stored_keys, table: str = "orders", schema: str = "public",
                                   key: Key = "id", cursor: str = "update_at") -> None:
    """`query(sql)` runs in the warehouse: one row per key, every column equal to MySQL's row, and
    a ledger naming exactly the stored files (`stored_keys`)."""
    columns = mysql_columns(db, table)
    rows = query(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)} FROM {schema}.{table}")
    loaded = _versions(rows, columns, key, cursor)
    assert len(loaded) == len({k for k, _, _ in loaded}), "a key is in the warehouse twice"
    found, source = {k: (c, d) for k, c, d in loaded}, mysql_rows(db, table, key, cursor)
    assert found == source, "the warehouse differs from MySQL: " + _differences(found, source)
    recorded = sorted(k for (k,) in query(f"SELECT file_key FROM {schema}.s3rs_loaded_files"))
    assert recorded == sorted(stored_keys), "the ledger does not name the stored files"
