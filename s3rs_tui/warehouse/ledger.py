"""The ledger: a table in the warehouse naming every data file merged into each target table.

Rows are written in the same transaction as the merge they describe, so the warehouse can never
hold a file's rows without its ledger row or the other way round, whatever crashes when. A file is
identified by its key and the version the store reports (size and modification time): a file
rewritten under the same key (after `watermark reset`) no longer matches and is loaded again.
"""

from dataclasses import dataclass

from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.store import ObjectInfo

TABLE = "s3rs_loaded_files"


@dataclass(frozen=True)
class LedgerEntry:
    file_key: str
    size: int
    modified: str  # ISO 8601 UTC, as the store lists it
    rows: int

    def matches(self, info: ObjectInfo) -> bool:
        """Is `info` the very version of the file that was loaded?"""
        return self.size == info.size and self.modified == version(info)


def version(info: ObjectInfo) -> str:
    return info.modified.isoformat()


def _table(schema: str) -> str:
    return f"{quote_standard(schema)}.{quote_standard(TABLE)}"


def create_sql(schema: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {_table(schema)} (target_table VARCHAR(300) NOT NULL, "
            "file_key VARCHAR(1024) NOT NULL, file_size BIGINT NOT NULL, file_modified VARCHAR(40) NOT NULL, "
            "row_count BIGINT NOT NULL, source_table VARCHAR(200) NOT NULL, run_id VARCHAR(32) NOT NULL, "
            "loaded_at VARCHAR(40) NOT NULL, PRIMARY KEY (target_table, file_key))")


def select_sql(schema: str, param: str) -> str:
    return (f"SELECT file_key, file_size, file_modified, row_count FROM {_table(schema)} "
            f"WHERE target_table = {param}")


def forget_sql(schema: str, param: str, keys: int | None = None) -> str:
    """Delete a target's rows: all of them, or those of `keys` many file keys."""
    sql = f"DELETE FROM {_table(schema)} WHERE target_table = {param}"
    return sql if keys is None else sql + f" AND file_key IN ({', '.join([param] * keys)})"


def record_sql(schema: str, param: str, files: int) -> str:
    row = "(" + ", ".join([param] * 8) + ")"
    return (f"INSERT INTO {_table(schema)} (target_table, file_key, file_size, file_modified, row_count, "
            f"source_table, run_id, loaded_at) VALUES {', '.join([row] * files)}")
