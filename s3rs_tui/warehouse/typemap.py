"""Columns of the data files -> column types in each warehouse.

A target table is made from the Parquet files themselves: every field has its Arrow type and the
MySQL type it came from (field metadata `mysql_type`), so loading needs no MySQL connection. Types
are spelled the way each warehouse's own catalog reports them back, so a column whose MySQL type
changed since the table was made is found by comparing two strings.
"""

import re
from dataclasses import dataclass

import pyarrow as pa

_MYSQL_TYPE = re.compile(r"^\s*([a-z]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?")
REDSHIFT_MAX_VARCHAR = 65535  # bytes
REDSHIFT_MAX_VARBYTE = 1024000
_REDSHIFT_BLOB_BYTES = {"tinyblob": 255, "blob": 65535}


@dataclass(frozen=True)
class Column:
    """One column of a data file."""

    name: str
    arrow_type: pa.DataType
    mysql_type: str  # as information_schema spells it: "varchar(64)", "bigint(20) unsigned"...

    @property
    def mysql_base(self) -> tuple[str, int | None, int | None]:
        """('varchar', 64, None), ('decimal', 65, 30), ('text', None, None)..."""
        match = _MYSQL_TYPE.match(self.mysql_type.lower())
        if not match:
            return "", None, None
        name, first, second = match.groups()
        return name, int(first) if first else None, int(second) if second else None


def file_columns(schema: pa.Schema) -> tuple[Column, ...]:
    return tuple(Column(field.name, field.type, (field.metadata or {}).get(b"mysql_type", b"").decode())
                 for field in schema)


# Arrow types with one obvious column type per warehouse: (PostgreSQL, Redshift, DuckDB).
_FIXED = {
    pa.int8(): ("smallint", "smallint", "TINYINT"),
    pa.int16(): ("smallint", "smallint", "SMALLINT"),
    pa.int32(): ("integer", "integer", "INTEGER"),
    pa.int64(): ("bigint", "bigint", "BIGINT"),
    pa.bool_(): ("boolean", "boolean", "BOOLEAN"),
    pa.float32(): ("real", "real", "FLOAT"),
    pa.float64(): ("double precision", "double precision", "DOUBLE"),
    pa.date32(): ("date", "date", "DATE"),
    pa.timestamp("us"): ("timestamp without time zone", "timestamp without time zone", "TIMESTAMP"),
    # Redshift's Parquet COPY goes through Spectrum, which has no timestamptz: the UTC wall time
    # goes into a plain TIMESTAMP there.
    pa.timestamp("us", tz="UTC"): ("timestamp with time zone", "timestamp without time zone",
                                   "TIMESTAMP WITH TIME ZONE"),
}


def _fixed(column: Column, warehouse: int, decimal: str) -> str | None:
    """The type of a column whose Arrow type alone decides it, or None."""
    if pa.types.is_decimal(column.arrow_type):
        return decimal.format(column.arrow_type.precision, column.arrow_type.scale)
    fixed = _FIXED.get(column.arrow_type)
    return fixed[warehouse] if fixed else None


def postgres_type(column: Column) -> str:
    base, length, scale = column.mysql_base
    if pa.types.is_binary(column.arrow_type):
        return "bytea"
    if base in ("varchar", "char") and length and pa.types.is_string(column.arrow_type):
        return f"character varying({length})"  # PostgreSQL counts characters, as MySQL does
    if base == "decimal" and length and pa.types.is_string(column.arrow_type):
        return f"numeric({length},{scale or 0})"  # wider than 38 digits: PostgreSQL's numeric holds it
    return _fixed(column, 0, "numeric({},{})") or "text"


def redshift_type(column: Column) -> str:
    base, length, _ = column.mysql_base
    if pa.types.is_binary(column.arrow_type):
        size = length if base in ("binary", "varbinary") and length else _REDSHIFT_BLOB_BYTES.get(
            base, REDSHIFT_MAX_VARBYTE)
        return f"varbyte({size})"
    if base in ("varchar", "char") and length and pa.types.is_string(column.arrow_type):
        # Redshift VARCHAR lengths are bytes; utf8mb4 takes up to 4 per character.
        return f"character varying({min(4 * length, REDSHIFT_MAX_VARCHAR)})"
    if base == "decimal" and length and pa.types.is_string(column.arrow_type):
        return f"character varying({length + 2})"  # the exact text: sign, digits and the point
    # TEXT, JSON, ENUM, SET, TIME...
    return _fixed(column, 1, "numeric({},{})") or f"character varying({REDSHIFT_MAX_VARCHAR})"


def redshift_byte_limit(column: Column) -> int | None:
    """The most bytes a value of this column may have in Redshift (VARCHAR and VARBYTE lengths are
    bytes), or None for types without a length."""
    match = re.match(r"^(?:character varying|varbyte)\((\d+)\)$", redshift_type(column))
    return int(match.group(1)) if match else None


def duckdb_type(column: Column) -> str:
    if pa.types.is_binary(column.arrow_type):
        return "BLOB"
    return _fixed(column, 2, "DECIMAL({},{})") or "VARCHAR"


# Other spellings a catalog may use for the same type.
_ALIASES = {"binary varying": "varbyte", "varbinary": "varbyte"}


def same_type(catalog: str, wanted: str) -> bool:
    """Does the type a warehouse reports for a column equal the type we would give it?"""
    def normal(text: str) -> str:
        text = re.sub(r"\s+", " ", text.strip().lower()).replace(", ", ",")
        for alias, name in _ALIASES.items():
            text = text.replace(alias, name)
        return text

    return normal(catalog) == normal(wanted)
