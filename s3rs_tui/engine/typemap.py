"""MySQL column types -> Arrow types, and fetched rows -> one Arrow RecordBatch.

Rows come from pymysql with no decoders (engine/mysql.py): every non-NULL value is the server's
text (`str`), or `bytes` for binary-charset columns. Converting that text column-wise with
pyarrow.compute casts is what keeps 100M-row tables fast, and parsing the server's own text keeps values exact
(DECIMAL and unsigned BIGINT never pass through a float).
"""

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from s3rs_tui.runtime.parsing import quote_identifier

# (signed, unsigned): each unsigned type widens so its maximum still fits; BIGINT UNSIGNED
# needs 20 digits, which only a decimal holds exactly.
_UINT64 = pa.decimal128(20, 0)
_INTEGERS = {
    "tinyint": (pa.int8(), pa.int16()),
    "smallint": (pa.int16(), pa.int32()),
    "mediumint": (pa.int32(), pa.int32()),
    "int": (pa.int32(), pa.int64()),
    "bigint": (pa.int64(), _UINT64),
}
_FIXED = {
    "float": pa.float32(),
    "double": pa.float64(),
    "year": pa.int16(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    # The engine fixes the session time zone to UTC, so TIMESTAMP text is UTC wall time.
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_DATES = {"date", "datetime", "timestamp"}
# Text types connectorx reads natively as strings; other text-mapped types go through CAST AS CHAR.
# connectorx parses DECIMAL through a 96-bit mantissa: beyond 28 digits it fails, so those go as text.
_CX_DECIMAL_DIGITS = 28
_CX_NATIVE_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
# Binary-charset columns arrive as bytes; spatial values are WKB with an SRID prefix.
_SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
            "geometrycollection"}
_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"} | _SPATIAL
_MAX_DECIMAL128_PRECISION = 38
# Zero parts MariaDB may store ('0000-00-00', '2024-02-00', '2024-00-10') that no calendar has.
_ZERO_DATE_PART = r"^(0000-|\d{4}-00-|\d{4}-\d{2}-00)"


@dataclass(frozen=True)
class MySQLColumn:
    """One row of information_schema.COLUMNS."""

    name: str
    data_type: str
    column_type: str
    numeric_precision: int | None
    numeric_scale: int | None
    datetime_precision: int | None
    character_set_name: str | None
    is_nullable: bool
    collation_name: str | None = None


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is selected by each reader and which Arrow type it becomes."""

    column: MySQLColumn
    arrow_type: pa.DataType
    select_sql: str  # for pymysql: every value arrives as the server's text
    cx_sql: str      # for connectorx: native where it is exact, else a form it carries exactly
    is_date: bool


def plan_columns(columns: list[MySQLColumn]) -> list[ColumnPlan]:
    """One plan per column, in the same order (the SELECT list follows it)."""
    return [_plan(column) for column in columns]


def _plan(column: MySQLColumn) -> ColumnPlan:
    quoted = quote_identifier(column.name)
    data_type = column.data_type.lower()
    value_sql = quoted
    if data_type == "bit":
        # BIT arrives as raw big-endian bytes; the server turns it into a number for us.
        value_sql = f"CAST({quoted} AS UNSIGNED)"
        width = column.numeric_precision or 1
        arrow_type = pa.bool_() if width == 1 else pa.int64() if width < 64 else _UINT64
    elif data_type in _INTEGERS:
        arrow_type = _INTEGERS[data_type]["unsigned" in column.column_type.lower()]
    elif data_type == "decimal" and (column.numeric_precision or 0) <= _MAX_DECIMAL128_PRECISION:
        arrow_type = pa.decimal128(column.numeric_precision or 10, column.numeric_scale or 0)
    elif data_type in _BINARY:
        arrow_type = pa.binary()
    else:
        # Floats, YEAR and dates have one fixed type. Everything else keeps the server's exact
        # text: text, ENUM, SET, JSON, TIME (beyond time64's range), DECIMAL over 38 digits, unknowns.
        arrow_type = _FIXED.get(data_type, pa.string())
    if data_type == "float":
        # FLOAT's text has 6 significant digits; as DOUBLE it prints the exact stored value.
        value_sql = f"CAST({quoted} AS DOUBLE)"
    select_sql = quoted if value_sql == quoted else f"{value_sql} AS {quoted}"
    return ColumnPlan(column, arrow_type, select_sql, _cx_sql(column, quoted, arrow_type),
                      data_type in _DATES)


def _cx_sql(column: MySQLColumn, quoted: str, arrow_type: pa.DataType) -> str:
    """connectorx panics on zero dates and knows no spatial types: dates travel as numbers
    (YYYYMMDDhhmmss[.ffffff], as cheap as native), spatial values as their stored bytes; types
    it widens (DECIMAL, unsigned) are cast back exactly in Arrow; the rest travels as text."""
    data_type = column.data_type
    if data_type in _DATES or data_type == "year":
        return f"{quoted} + 0 AS {quoted}"
    if data_type == "bit":
        return f"CAST({quoted} AS UNSIGNED) AS {quoted}"
    if data_type in _SPATIAL:
        return f"CAST({quoted} AS BINARY) AS {quoted}"
    if data_type == "decimal" and (column.numeric_precision or 0) > _CX_DECIMAL_DIGITS:
        return f"CAST({quoted} AS CHAR) AS {quoted}"
    if arrow_type != pa.string() or data_type in _CX_NATIVE_TEXT:
        return quoted
    return f"CAST({quoted} AS CHAR) AS {quoted}"


def arrow_schema(plans: list[ColumnPlan]) -> pa.Schema:
    """All fields nullable: zero dates become NULL even in NOT NULL columns."""
    return pa.schema([
        pa.field(plan.column.name, plan.arrow_type, nullable=True,
                 metadata={b"mysql_type": plan.column.column_type.encode()})
        for plan in plans
    ])


def columns_to_batch(plans: list[ColumnPlan], raw: list[pa.Array],
                     invalid_dates: dict[str, int]) -> pa.RecordBatch:
    """Columns as a reader delivers them (the server's text as binary or string arrays; or, from
    connectorx, numbers) in plan order -> a typed batch."""
    arrays = []
    for plan, values in zip(plans, raw, strict=True):
        if plan.is_date:
            array, nulled = _dates(values, plan)
            if nulled:
                name = plan.column.name
                invalid_dates[name] = invalid_dates.get(name, 0) + nulled
        elif plan.arrow_type == pa.binary():
            array = values.cast(pa.binary())
        elif _is_text(values.type):
            text = values.cast(pa.string())  # validates UTF-8 in C
            array = text if plan.arrow_type == pa.string() else pc.cast(text, plan.arrow_type)
        else:
            array = pc.cast(values, plan.arrow_type)  # a safe cast: refuses to lose anything
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(plans))


def _is_text(data_type: pa.DataType) -> bool:
    return (pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type)
            or pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _dates(values: pa.Array, plan: ColumnPlan) -> tuple[pa.Array, int]:
    """Dates as text or as numbers -> the date type; zero and impossible dates become NULL.
    Returns (array, how many non-NULL values became NULL)."""
    if _is_text(values.type):
        array = _dates_from_text(values.cast(pa.string()), plan.arrow_type)
    else:
        array = _dates_from_number(values, plan.arrow_type, plan.column.data_type == "date")
    return array, array.null_count - values.null_count


def _dates_from_number(values: pa.Array, arrow_type: pa.DataType, is_date: bool) -> pa.Array:
    """`col + 0` numbers (YYYYMMDD, or YYYYMMDDhhmmss with microseconds as a decimal fraction) ->
    dates, by integer arithmetic on whole columns (ten times faster than parsing text)."""
    whole = pc.cast(values, pa.int64(), safe=False)  # drops the fraction (values are >= 0)
    ymd, hms = (whole, None) if is_date else (_div(whole, 10**6), _mod(whole, 10**6))
    year, month, day = _div(ymd, 10**4), _mod(_div(ymd, 100), 100), _mod(ymd, 100)
    valid = pc.and_(pc.and_(pc.greater_equal(year, 1), _between(month, 1, 12)), _between(day, 1, 31))
    micros = pc.multiply(_days_from_civil(year, month, day), 86_400 * 10**6)
    if hms is not None:
        hours, minutes, seconds = _div(hms, 10**4), _mod(_div(hms, 100), 100), _mod(hms, 100)
        in_range = pc.and_(pc.less(hours, 24), pc.and_(pc.less(minutes, 60), pc.less(seconds, 60)))
        valid = pc.and_(valid, in_range)
        clock = pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds)
        micros = pc.add(micros, pc.multiply(clock, 10**6))
    if pa.types.is_decimal(values.type):
        exact = pc.cast(values, pa.decimal128(26, 6))  # narrow first: arithmetic widens precision
        fraction = pc.subtract(exact, pc.cast(whole, exact.type))
        micros = pc.add(micros, pc.cast(pc.multiply(fraction, pa.scalar(10**6, pa.decimal128(7, 0))),
                                        pa.int64(), safe=False))
    moment = pc.cast(micros, pa.timestamp("us"))
    # Feb 30 computes as Mar 1: a day that changed was not a real date.
    valid = pc.and_(valid, pc.equal(pc.day(moment), day))
    return cast_text(pc.if_else(valid, moment, pa.scalar(None, moment.type)), arrow_type)


def _div(values: pa.Array, by: int) -> pa.Array:
    return pc.divide(values, by)  # integer division (values are >= 0, so it is floor division)


def _mod(values: pa.Array, by: int) -> pa.Array:
    return pc.subtract(values, pc.multiply(pc.divide(values, by), by))


def _between(values: pa.Array, low: int, high: int) -> pa.Array:
    return pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high))


def _days_from_civil(year: pa.Array, month: pa.Array, day: pa.Array) -> pa.Array:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    year = pc.subtract(year, pc.cast(pc.less_equal(month, 2), pa.int64()))
    era = _div(year, 400)
    year_of_era = pc.subtract(year, pc.multiply(era, 400))
    shifted_month = _mod(pc.add(month, 9), 12)  # March = 0
    day_of_year = pc.add(_div(pc.add(pc.multiply(shifted_month, 153), 2), 5), pc.subtract(day, 1))
    day_of_era = pc.add(pc.subtract(pc.add(pc.multiply(year_of_era, 365), _div(year_of_era, 4)),
                                    _div(year_of_era, 100)), day_of_year)
    return pc.subtract(pc.add(pc.multiply(era, 146_097), day_of_era), 719_468)


def _dates_from_text(text: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """Parse date text, turning zero and impossible dates into NULL."""
    zero = pc.match_substring_regex(text, _ZERO_DATE_PART)
    valid = pc.if_else(zero, pa.scalar(None, pa.string()), text)
    try:
        array = cast_text(valid, arrow_type)
    except pa.ArrowInvalid:
        # Rare (ALLOW_INVALID_DATES, e.g. Feb 30): check this column value by value.
        valid = pa.array([value if _is_real_date(value) else None for value in valid.to_pylist()],
                         pa.string())
        array = cast_text(valid, arrow_type)
    return array


def cast_text(text: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    """Values as text (MySQL's, or a key's canonical text) or naive timestamps to `arrow_type`.
    Arrow parses zone-less text only as a naive timestamp; a UTC type is then just a relabel."""
    if pa.types.is_timestamp(arrow_type):
        return pc.cast(pc.cast(text, pa.timestamp(arrow_type.unit)), arrow_type)
    return pc.cast(text, arrow_type)


def _is_real_date(value: str | None) -> bool:
    if value is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
