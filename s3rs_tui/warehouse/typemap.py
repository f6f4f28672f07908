"""Columns of the data files, and what every warehouse kind needs to spell their types.

A target table is made from the Parquet files themselves: every field has its Arrow type and the
MySQL type it came from (field metadata `mysql_type`), so loading needs no MySQL connection. Types
are spelled (by each kind, in its module) the way its own catalog reports them back, so a column
whose MySQL type changed since the table was made is found by comparing two strings.
"""

import re
from dataclasses import dataclass

import pyarrow as pa

_MYSQL_TYPE = re.compile(r"^\s*([a-z]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?")


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


def fixed_type(column: Column, types: dict[pa.DataType, str], decimal: str) -> str | None:
    """The type of a column whose Arrow type alone decides it (`types`, or `decimal` formatted with
    precision and scale), or None."""
    if pa.types.is_decimal(column.arrow_type):
        return decimal.format(column.arrow_type.precision, column.arrow_type.scale)
    return types.get(column.arrow_type)


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
