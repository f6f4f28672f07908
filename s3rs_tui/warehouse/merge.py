"""The SQL that merges a staging table into its target: newest version of each key wins.

Plain SQL that PostgreSQL, Redshift and DuckDB all run the same way: staging is de-duplicated by
key (the same key can sit in several files), then target rows that are not newer than the staged
version are deleted and the staged rows inserted, all inside the caller's transaction.
Delete-then-insert rather than MERGE, because Redshift's MERGE cannot say "only when not older"
and it is what Redshift itself runs MERGE as. A NULL cursor (a zero date) counts as the oldest.

Two steps are skipped when they cannot change the result, which is most of a first load: the
de-duplication when no key is staged twice (the staged rows are then the newest versions), and the
delete and the not-in-target check when the target holds no rows yet (a plain insert).
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


def unique_keys_sql(key: str) -> str:
    """One row, one boolean: no key is staged twice (NULL keys count as repeated)."""
    return f"SELECT COUNT(*) = COUNT(DISTINCT {quote_standard(key)}) FROM {STAGE}"


def has_rows_sql(target: Target) -> str:
    return f"SELECT 1 FROM {target.quoted} LIMIT 1"


def merge_sql(target: Target, columns: list[str], spelled: dict[str, str], source: str = NEWEST,
              target_empty: bool = False) -> list[str]:
    """Delete the target rows the staged versions replace, then insert the staged rows whose key
    is not in the target any more; into an empty target, just the insert. `source` holds one row
    per key (NEWEST, or STAGE when its keys are unique); `spelled` maps lower-case names to the
    target's own spelling."""
    t = target.quoted
    names = ", ".join(quote_standard(spelled[c.lower()]) for c in columns)
    values = ", ".join(f"{source}.{quote_standard(c)}" for c in columns)
    if target_empty:
        return [f"INSERT INTO {t} ({names}) SELECT {values} FROM {source}"]
    key, cursor = target.key, target.cursor
    t_key = f"{t}.{quote_standard(spelled[key.lower()])}"
    t_cursor = f"{t}.{quote_standard(spelled[cursor.lower()])}"
    n_key, n_cursor = f"{source}.{quote_standard(key)}", f"{source}.{quote_standard(cursor)}"
    delete = (f"DELETE FROM {t} USING {source} WHERE {t_key} = {n_key} AND ({t_cursor} IS NULL OR "
              f"({n_cursor} IS NOT NULL AND {t_cursor} <= {n_cursor}))")
    insert = (f"INSERT INTO {t} ({names}) SELECT {values} FROM {source} "
              f"LEFT JOIN {t} ON {t_key} = {n_key} WHERE {t_key} IS NULL")
    return [delete, insert]
