"""MySQL -> Arrow conversion against a real MariaDB: edge values of every type, read the way the
engine reads them (pymysql, conv={}, UTC session), must come back exact and survive Parquet."""

import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest

from s3rs_tui.engine.typemap import MySQLColumn, arrow_schema, columns_to_batch, plan_columns


@dataclass(frozen=True)
class V:
    """A value inserted as `stored` that must read back as `expected`."""

    stored: object
    expected: object


def invalid(text: str) -> V:
    """A zero or impossible date: stored as text, read back as NULL."""
    return V(text, None)


# Text, not arithmetic: Decimal negation would round to the default 28-digit context.
D65_MAX = "9" * 35 + "." + "9" * 30
D38_MAX = "9" * 28 + "." + "9" * 10
UTC = UTC
EVERY_BYTE = bytes(range(256))
# MariaDB's internal geometry format: 4-byte SRID, then WKB of POINT(1 2).
POINT_1_2 = struct.pack("<IBIdd", 0, 1, 1, 1.0, 2.0)

# (name, DDL, expected Arrow type)
COLUMNS = [
    ("id", "int NOT NULL PRIMARY KEY", pa.int32()),
    ("ti", "tinyint", pa.int8()),
    ("tiu", "tinyint unsigned", pa.int16()),
    ("flag", "tinyint(1)", pa.int8()),
    ("si", "smallint", pa.int16()),
    ("siu", "smallint unsigned", pa.int32()),
    ("mi", "mediumint", pa.int32()),
    ("miu", "mediumint unsigned", pa.int32()),
    ("i", "int", pa.int32()),
    ("iu", "int unsigned", pa.int64()),
    ("bi", "bigint", pa.int64()),
    ("biu", "bigint unsigned", pa.decimal128(20, 0)),
    ("b1", "bit(1)", pa.bool_()),
    ("b8", "bit(8)", pa.int64()),
    ("b64", "bit(64)", pa.decimal128(20, 0)),
    ("d18", "decimal(18,4)", pa.decimal128(18, 4)),
    ("d38", "decimal(38,10)", pa.decimal128(38, 10)),
    ("d65", "decimal(65,30)", pa.string()),
    ("f", "float", pa.float32()),
    ("dbl", "double", pa.float64()),
    ("dt", "date", pa.date32()),
    ("dz", "date NOT NULL", pa.date32()),
    ("dtm", "datetime(6)", pa.timestamp("us")),
    ("ts", "timestamp(6) NULL", pa.timestamp("us", tz="UTC")),
    ("tm", "time", pa.string()),
    ("yr", "year", pa.int16()),
    ("vc", "varchar(100)", pa.string()),
    ("tx", "text", pa.string()),
    ("en", "enum('a','b','c d')", pa.string()),
    ("st", "set('x','y','z')", pa.string()),
    ("js", "json", pa.string()),
    ("bn", "binary(4)", pa.binary()),
    ("vb", "varbinary(300)", pa.binary()),
    ("bl", "blob", pa.binary()),
    ("g", "geometry", pa.binary()),
]

MINIMUM = {
    "id": 1, "ti": -128, "tiu": 0, "flag": -128, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
    "i": -2147483648, "iu": 0, "bi": -9223372036854775808, "biu": Decimal(0),
    "b1": V(0, False), "b8": 0, "b64": Decimal(0),
    "d18": Decimal("-99999999999999.9999"), "d38": Decimal("-" + D38_MAX),
    "d65": V(Decimal("-" + D65_MAX), "-" + D65_MAX),
    "f": V(-3.40282e38, pytest.approx(-3.40282e38, rel=1e-6)), "dbl": -1.7976931348623157e308,
    "dt": date(1000, 1, 1), "dz": date(1000, 1, 1), "dtm": datetime(1000, 1, 1),
    "ts": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "tm": "-838:59:59", "yr": 1901,
    "vc": "", "tx": "", "en": "a", "st": "", "js": "{}",
    "bn": b"\x00\x00\x00\x00", "vb": b"", "bl": b"", "g": POINT_1_2,
}
MAXIMUM = {
    "id": 2, "ti": 127, "tiu": 255, "flag": 127, "si": 32767, "siu": 65535, "mi": 8388607,
    "miu": 16777215, "i": 2147483647, "iu": 4294967295, "bi": 9223372036854775807,
    "biu": Decimal(18446744073709551615), "b1": V(1, True), "b8": 255,
    "b64": Decimal(18446744073709551615),
    "d18": Decimal("99999999999999.9999"), "d38": Decimal(D38_MAX), "d65": V(Decimal(D65_MAX), D65_MAX),
    "f": V(3.40282e38, pytest.approx(3.40282e38, rel=1e-6)), "dbl": 1.7976931348623157e308,
    "dt": date(9999, 12, 31), "dz": date(9999, 12, 31),
    "dtm": datetime(9999, 12, 31, 23, 59, 59, 999999),
    "ts": datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC), "tm": "838:59:59", "yr": 2155,
    "vc": "héllo 😀 漢字 🇯🇵", "tx": "👩‍👩‍👧 " * 1000, "en": "c d", "st": "x,z",
    "js": '{"k": "ü😀", "n": [1, 2.5, null]}',
    "bn": b"\x00\x01\xfe\xff", "vb": EVERY_BYTE, "bl": EVERY_BYTE * 100, "g": POINT_1_2,
}
ORDINARY = {
    "id": 3, "flag": 0, "b1": V(1, True), "b8": 170, "b64": Decimal(2**63),
    "d18": Decimal("1.5000"), "d38": Decimal("-0.0000000001"),
    "d65": V(Decimal("1.5"), "1.500000000000000000000000000000"), "f": 1.5, "dbl": 0.1,
    "dt": date(2024, 2, 29), "dz": date(2024, 2, 29), "dtm": datetime(2024, 2, 29, 12, 30, 45, 123456),
    "ts": datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC), "tm": "-00:00:01", "yr": V(0, 0),
}
ZERO_DATES = {
    "id": 6, "flag": 2, "dt": invalid("0000-00-00"), "dz": invalid("0000-00-00"),
    "dtm": invalid("0000-00-00 00:00:00"), "ts": invalid("0000-00-00 00:00:00"),
}
PARTLY_ZERO_DATES = {
    "id": 7, "dt": invalid("2024-02-00"), "dz": invalid("0000-01-01"),
    "dtm": invalid("2024-00-10 10:00:00"),
}
IMPOSSIBLE_DATES = {  # stored with sql_mode=ALLOW_INVALID_DATES
    "id": 8, "dt": invalid("2024-02-30"), "dz": invalid("2023-02-29"),
    "dtm": invalid("2024-04-31 12:00:00"),
}
ALL_NULL = {"id": 9, "dz": date(2024, 6, 1)}
FLAG_ONE = {"id": 4, "flag": 1, "dz": date(2000, 1, 1)}
ROWS = [MINIMUM, MAXIMUM, ORDINARY, FLAG_ONE, ALL_NULL]
INVALID_DATE_COUNTS = {"dt": 3, "dz": 3, "dtm": 3, "ts": 1}


def stored(value):
    return value.stored if isinstance(value, V) else value


def expected(value):
    return value.expected if isinstance(value, V) else value


def information_schema_columns(db, table: str) -> list[MySQLColumn]:
    rows = db.execute(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE,"
        " DATETIME_PRECISION, CHARACTER_SET_NAME, IS_NULLABLE FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        params=(db.name, table))
    return [MySQLColumn(name, data_type.lower(), column_type, precision, scale, dt_precision, charset,
                        nullable == "YES")
            for name, data_type, column_type, precision, scale, dt_precision, charset, nullable in rows]


def insert(cursor, row: dict) -> None:
    names = [name for name, _, _ in COLUMNS]
    cursor.execute(f"INSERT INTO t ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",
                   [stored(row.get(name)) for name in names])


@pytest.fixture
def edge_table(db):
    """Table t holding every row above (rows 6-8 need lax sql_modes to exist at all)."""
    ddl = ", ".join(f"{name} {definition}" for name, definition, _ in COLUMNS)
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"CREATE TABLE t ({ddl}) DEFAULT CHARSET=utf8mb4")
        for row in ROWS:
            insert(cur, row)
        cur.execute("SET SESSION sql_mode = ''")
        insert(cur, ZERO_DATES)
        insert(cur, PARTLY_ZERO_DATES)
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        insert(cur, IMPOSSIBLE_DATES)
    return db


def fetch_like_the_engine(db, select_list: str) -> list[tuple]:
    # pymysql splits `conv` into encoders (type keys) and decoders (int keys): encoders only means
    # no decoding at all. A literal conv={} cannot even connect (it must escape autocommit).
    text_only = dict(pymysql.converters.encoders)
    with (pymysql.connect(**db.server.connect_args(db.name), conv=text_only, charset="utf8mb4") as conn,
          conn.cursor() as cur):
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"SELECT {select_list} FROM t ORDER BY id")
        return list(cur.fetchall())



def rows_to_batch(plans, rows: list[tuple], invalid_dates: dict[str, int]) -> pa.RecordBatch:
    """Fetched rows (each field bytes, str or None) through the readers' typing, column by column."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(plans)
    return columns_to_batch(plans, [pa.array(values, pa.binary()) for values in columns], invalid_dates)

def test_edge_values_convert_exactly_and_survive_parquet(edge_table, tmp_path):
    plans = plan_columns(information_schema_columns(edge_table, "t"))
    schema = arrow_schema(plans)
    assert [(field.name, field.type) for field in schema] == [(name, type_) for name, _, type_ in COLUMNS]
    assert all(field.nullable for field in schema)
    assert schema.field("biu").metadata == {b"mysql_type": b"bigint(20) unsigned"}

    rows = fetch_like_the_engine(edge_table, ", ".join(plan.select_sql for plan in plans))
    assert isinstance(rows[1][[p.column.name for p in plans].index("b64")], str)  # the CAST worked
    invalid_dates: dict[str, int] = {}
    batch = rows_to_batch(plans, rows, invalid_dates)

    assert batch.schema.equals(schema, check_metadata=True)
    assert invalid_dates == INVALID_DATE_COUNTS
    expected_rows = sorted([*ROWS, ZERO_DATES, PARTLY_ZERO_DATES, IMPOSSIBLE_DATES], key=lambda r: r["id"])
    actual_rows = batch.to_pylist()
    assert len(actual_rows) == len(expected_rows)
    for want, got in zip(expected_rows, actual_rows, strict=True):
        for name, _, _ in COLUMNS:
            assert got[name] == expected(want.get(name)), f"row {want['id']} column {name}: {got[name]!r}"

    path = tmp_path / "edge.parquet"
    table = pa.Table.from_batches([batch])
    pq.write_table(table, path, compression="zstd", coerce_timestamps="us")
    assert pq.read_table(path).equals(table, check_metadata=True)


def test_fetched_values_have_the_engine_types(edge_table):
    """Guards the premise: with conv={} numbers and dates are str, binary columns are bytes."""
    row = fetch_like_the_engine(edge_table, "ti, biu, d18, dtm, vc, vb, g")[1]
    assert [type(value) for value in row] == [str, str, str, str, str, bytes, bytes]


def test_invalid_dates_accumulate_and_empty_batches_keep_the_schema():
    column = MySQLColumn("d", "date", "date", None, None, None, None, False)
    plans = plan_columns([column])
    counts = {"d": 5}
    batch = rows_to_batch(plans, [("2024-02-30",), ("0000-00-00",), ("2024-01-31",), (None,)], counts)
    assert counts == {"d": 7}
    assert batch.column(0).to_pylist() == [None, None, date(2024, 1, 31), None]
    empty = rows_to_batch(plans, [], counts)
    assert empty.num_rows == 0 and empty.schema.equals(arrow_schema(plans), check_metadata=True)
    assert counts == {"d": 7}


def test_bit_is_selected_as_unsigned_and_names_are_quoted():
    bit = MySQLColumn("flags", "bit", "bit(3)", 3, None, None, None, True)
    text = MySQLColumn("note", "varchar", "varchar(10)", None, None, None, "utf8mb4", True)
    assert [plan.select_sql for plan in plan_columns([bit, text])] == [
        "CAST(`flags` AS UNSIGNED) AS `flags`", "`note`"]
    with pytest.raises(ValueError):
        plan_columns([MySQLColumn("x`; DROP TABLE t; --", "int", "int(11)", 10, 0, None, None, True)])
