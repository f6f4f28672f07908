"""Reading given rows again by key: reconcile's fix files hold MySQL's current rows, typed and
encoded exactly as sync's part files (same column plans, same reader, same Arrow types)."""

from collections.abc import Iterator

import pyarrow as pa
import pymysql

from s3rs_tui.engine import rowparse
from s3rs_tui.engine.mysql import unbuffered_cursor
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.engine.typemap import ColumnPlan, columns_to_batch
from s3rs_tui.runtime.keys import KeyParts
from s3rs_tui.runtime.parsing import quote_identifier

KEYS_PER_QUERY = 1_000  # an IN list the server takes as a handful of index lookups


def rows_by_key(conn: pymysql.Connection, info: TableInfo, plans: list[ColumnPlan], keys: list[KeyParts],
                where: str = "", params: list | None = None,
                chunk_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
    """The rows of `keys` (whole keys, one value per key column) that also match `where`, in key
    order, as batches of arrow_schema(plans). A one-column key is looked up with IN, a composite
    one with an OR of whole-key equalities (each a lookup of the key's unique index)."""
    names = [quote_identifier(name) for name in info.key_names]
    select = ", ".join(plan.select_sql for plan in plans)
    one = "(" + " AND ".join(f"{name} = %s" for name in names) + ")"
    for start in range(0, len(keys), KEYS_PER_QUERY):
        some = sorted(keys[start:start + KEYS_PER_QUERY])
        if len(names) == 1:
            match = f"{names[0]} IN ({', '.join(['%s'] * len(some))})"
        else:
            match = "(" + " OR ".join([one] * len(some)) + ")"
        sql = (f"SELECT {select} FROM {info.quoted} WHERE {match}" + (f" AND {where}" if where else "")
               + f" ORDER BY {', '.join(names)}")
        with unbuffered_cursor(conn) as cur:
            cur.execute(sql, [*(value for key in some for value in key), *(params or [])])
            while fields := rowparse.fetch(conn, chunk_rows, len(plans)):
                yield columns_to_batch(plans, fields, {})
