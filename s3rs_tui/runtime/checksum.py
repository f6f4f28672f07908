"""The canonical text of a row and its hashing, spelled in each database's SQL.

`s3rs verify` (and reconcile) compare MySQL with a warehouse by summing a hash of each row's
canonical text per chunk of keys on both sides, so both sides must spell that text exactly alike:
numbers as decimal text (DECIMAL with its scale), BIT(1) as 0/1, dates YYYY-MM-DD, timestamps
YYYY-MM-DD HH:MM:SS.ffffff (TIMESTAMP in UTC), binary as lower-case hex, text as UTF-8, zero dates
NULL (as stored). FLOAT and DOUBLE are left out: databases print floating point differently. Each
side (the engine for MySQL, each warehouse kind) declares its `ChecksumDialect`.
"""

from dataclasses import dataclass

import pyarrow as pa

from s3rs_tui.runtime.parsing import quote_identifier, quote_standard


@dataclass(frozen=True)
class ChecksumDialect:
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
        return quote_identifier(name) if self.mysql else quote_standard(name)

    def row_text(self, parts: list[str]) -> str:
        """The values joined with '|', each 'v<text>' or 'n' for NULL (so NULL differs from '')."""
        if self.mysql:
            return "CONCAT_WS('|', " + ", ".join(f"COALESCE(CONCAT('v', {p}), 'n')" for p in parts) + ")"
        return " || '|' || ".join(f"COALESCE('v' || {p}, 'n')" for p in parts)


# The canonical text in standard SQL (PostgreSQL, Redshift, DuckDB), binary left to each kind.
STANDARD_TEXT = {"bool": "CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END", "number": "CAST({c} AS VARCHAR)",
                 "text": "CAST({c} AS VARCHAR)", "date": "to_char({c}, 'YYYY-MM-DD')",
                 "timestamp": "to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')"}


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
