"""The SQL that merges a staging table into its target: newest version of each key wins.

Plain SQL that PostgreSQL, Redshift and DuckDB all run the same way: staging is de-duplicated by
key (the same key can sit in several files), then target rows that are not newer than the staged
version are deleted and the staged rows inserted, all inside the caller's transaction.
Delete-then-insert rather than MERGE, because Redshift's MERGE cannot say "only when not older"
and it is what Redshift itself runs MERGE as. A NULL cursor (a zero date) counts as the oldest.
"""

from dataclasses import dataclass

from s3rs_tui.runtime.parsing import quote_standard

STAGE = "s3rs_stage"    # the files as loaded (temporary table)
NEWEST = "s3rs_newest"  # one row per key: its newest version in the staged files (temporary table)


@dataclass(frozen=True)
class Target:
    """A warehouse table and the two columns the merge relies on."""

    schema: str
    table: str
    key: str
    cursor: str
    source: str  # the MySQL table, db.table

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def quoted(self) -> str:
        return f"{quote_standard(self.schema)}.{quote_standard(self.table)}"


def create_stage_sql(columns: list[tuple[str, str]]) -> str:
    """Staging columns are the file's, in the file's order (Redshift's Parquet COPY maps by position)."""
    return f"CREATE TEMP TABLE {STAGE} ({', '.join(f'{quote_standard(n)} {t}' for n, t in columns)})"


def dedup_sql(columns: list[str], key: str, cursor: str) -> str:
    names = ", ".join(quote_standard(name) for name in columns)
    return (f"CREATE TEMP TABLE {NEWEST} AS SELECT {names} FROM (SELECT {names}, ROW_NUMBER() OVER "
            f"(PARTITION BY {quote_standard(key)} ORDER BY {quote_standard(cursor)} DESC NULLS LAST) "
            "AS s3rs_rank "
            f"FROM {STAGE}) ranked WHERE s3rs_rank = 1")


def merge_sql(target: Target, columns: list[str], spelled: dict[str, str],
              replace: bool = False) -> list[str]:
    """Delete the target rows the staged versions replace, then insert the staged rows whose key
    is not in the target any more. `spelled` maps lower-case names to the target's own spelling.
    `replace`: the staged rows replace their key's row whatever its cursor (reconcile's fix files
    hold MySQL's current rows, changed without their cursor moving)."""
    t = target.quoted
    key, cursor = target.key, target.cursor
    t_key = f"{t}.{quote_standard(spelled[key.lower()])}"
    t_cursor = f"{t}.{quote_standard(spelled[cursor.lower()])}"
    n_key, n_cursor = f"{NEWEST}.{quote_standard(key)}", f"{NEWEST}.{quote_standard(cursor)}"
    delete = f"DELETE FROM {t} USING {NEWEST} WHERE {t_key} = {n_key}"
    if not replace:
        delete += f" AND ({t_cursor} IS NULL OR ({n_cursor} IS NOT NULL AND {t_cursor} <= {n_cursor}))"
    insert = (f"INSERT INTO {t} ({', '.join(quote_standard(spelled[c.lower()]) for c in columns)}) "
              f"SELECT {', '.join(f'{NEWEST}.{quote_standard(c)}' for c in columns)} FROM {NEWEST} "
              f"LEFT JOIN {t} ON {t_key} = {n_key} WHERE {t_key} IS NULL")
    return [delete, insert]


def delete_sql(target: Target, spelled: dict[str, str], bound: str) -> str:
    """Delete the target rows whose key is staged (a reconcile deletion file) and whose cursor is
    not after the deletion's watermark (`bound`: SQL for that cursor value): a row a later sync
    brought back stays."""
    t = target.quoted
    t_key = f"{t}.{quote_standard(spelled[target.key.lower()])}"
    t_cursor = f"{t}.{quote_standard(spelled[target.cursor.lower()])}"
    return (f"DELETE FROM {t} USING {STAGE} WHERE {t_key} = {STAGE}.{quote_standard(target.key)} "
            f"AND ({t_cursor} IS NULL OR {t_cursor} <= {bound})")


def drop_temp_sql(merged: bool = True) -> list[str]:
    """The temporary tables of a load (`merged`: a merge made NEWEST, a deletion does not)."""
    return [f"DROP TABLE {NEWEST}", f"DROP TABLE {STAGE}"] if merged else [f"DROP TABLE {STAGE}"]
