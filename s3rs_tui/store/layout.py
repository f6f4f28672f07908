"""Where a table's data files live in the store, and what their footers say: the contract between
the engine that writes the files and the warehouse and jobs that read them."""

import pyarrow as pa

DATA_PREFIX = "data/"
# Footer key: {column: its longest value in bytes} for string and binary columns, so a warehouse
# with length limits (Redshift) learns from the footer alone whether a file fits its columns.
LONGEST_KEY = "s3rs.longest_bytes"


def variable_width(data_type: pa.DataType) -> bool:
    """String and binary types: the ones whose values have a length in bytes."""
    types = pa.types
    return types.is_string(data_type) or types.is_large_string(data_type) or types.is_binary(data_type)


def table_prefix(table_name: str) -> str:
    """Where a table's data files live in the store: data/<db>/<table>/."""
    database, table = table_name.split(".")
    return f"{DATA_PREFIX}{database}/{table}/"
