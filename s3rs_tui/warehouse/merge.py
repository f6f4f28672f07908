"""The SQL that merges a staging table into its target: newest version of each key wins.

Plain SQL that PostgreSQL, Redshift and DuckDB all run the same way: staging is de-duplicated by
key, on all its columns (the same key can sit in several files), then target rows that are not
newer than the staged version are deleted and the staged rows inserted, all inside the caller's
transaction. Delete-then-insert rather than MERGE, because Redshift's MERGE cannot say "only when
not older" and it is what Redshift itself runs MERGE as. A NULL cursor (a zero date) counts as the
oldest.

A table without a unique key is loaded append-only, one file at a time: each row carries the
data file it came from (FILE_COLUMN), and loading a file first deletes that file's rows, so a
file loaded again (rewritten after a watermark reset) replaces its rows instead of adding them.

Two steps are skipped when they cannot change the result, which is most of a first load: the
de-duplication when no key is staged twice (the staged rows are then the newest versions), and the
delete and the not-in-target check when the target holds no rows yet (a plain insert).
"""

from dataclasses import dataclass

from s3rs_tui.runtime.parsing import quote_standard

STAGE = "s3rs_stage"    # the files as loaded (temporary table)
FILE_COLUMN = "s3rs_file"  # a keyless target's extra column: the data file a row came from
NEWEST = "s3rs_newest"  # one row per key: its newest version in the staged files (temporary table)


@dataclass(frozen=True)
class Target:
    """A warehouse table and the columns the merge relies on."""

    schema: str
    table: str
    keys: tuple[str, ...]  # () = no unique key: appended, file by file
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


def dedup_sql(columns: list[str], keys: tuple[str, ...], cursor: str) -> str:
    names = ", ".join(quote_standard(name) for name in columns)
    partition = ", ".join(quote_standard(key) for key in keys)
    return (f"CREATE TEMP TABLE {NEWEST} AS SELECT {names} FROM (SELECT {names}, ROW_NUMBER() OVER "
            f"(PARTITION BY {partition} ORDER BY {quote_standard(cursor)} DESC NULLS LAST) "
            "AS s3rs_rank "
            f"FROM {STAGE}) ranked WHERE s3rs_rank = 1")


def unique_keys_sql(keys: tuple[str, ...]) -> str:
    """One row, one boolean: no key is staged twice."""
    names = ", ".join(quote_standard(key) for key in keys)
    return (f"SELECT (SELECT COUNT(*) FROM {STAGE}) = "
            f"(SELECT COUNT(*) FROM (SELECT DISTINCT {names} FROM {STAGE}) staged_keys)")


def has_rows_sql(target: Target) -> str:
    return f"SELECT 1 FROM {target.quoted} LIMIT 1"


def merge_sql(target: Target, columns: list[str], spelled: dict[str, str], source: str = NEWEST,
              target_empty: bool = False, replace: bool = False) -> list[str]:
    """Delete the target rows the staged versions replace, then insert the staged rows whose key
    is not in the target any more; into an empty target, just the insert. `source` holds one row
    per key (NEWEST, or STAGE when its keys are unique); `spelled` maps lower-case names to the
    target's own spelling. `replace`: the staged rows replace their key's row whatever its cursor
    (reconcile's fix files hold MySQL's current rows, changed without their cursor moving)."""
    t = target.quoted
    names = ", ".join(quote_standard(spelled[c.lower()]) for c in columns)
    values = ", ".join(f"{source}.{quote_standard(c)}" for c in columns)
    if target_empty:
        return [f"INSERT INTO {t} ({names}) SELECT {values} FROM {source}"]
    same_key = " AND ".join(f"{t}.{quote_standard(spelled[key.lower()])} = {source}.{quote_standard(key)}"
                            for key in target.keys)
    t_first_key = f"{t}.{quote_standard(spelled[target.keys[0].lower()])}"
    t_cursor = f"{t}.{quote_standard(spelled[target.cursor.lower()])}"
    n_cursor = f"{source}.{quote_standard(target.cursor)}"
    delete = f"DELETE FROM {t} USING {source} WHERE {same_key}"
    if not replace:
        delete += f" AND ({t_cursor} IS NULL OR ({n_cursor} IS NOT NULL AND {t_cursor} <= {n_cursor}))"
    insert = (f"INSERT INTO {t} ({names}) SELECT {values} FROM {source} "
              f"LEFT JOIN {t} ON {same_key} WHERE {t_first_key} IS NULL")
    return [delete, insert]


def append_sql(target: Target, columns: list[str], spelled: dict[str, str], param: str) -> list[str]:
    """A keyless target: replace the rows of the one staged file (its key is both parameters)."""
    t, file_column = target.quoted, quote_standard(spelled.get(FILE_COLUMN, FILE_COLUMN))
    names = ", ".join(quote_standard(spelled[c.lower()]) for c in columns)
    return [f"DELETE FROM {t} WHERE {file_column} = {param}",
            f"INSERT INTO {t} ({names}, {file_column}) "
            f"SELECT {', '.join(quote_standard(c) for c in columns)}, {param} FROM {STAGE}"]


def delete_sql(target: Target, spelled: dict[str, str], bound: str) -> str:
    """Delete the target rows whose key is staged (a reconcile deletion file) and whose cursor is
    not after the deletion's watermark (`bound`: SQL for that cursor value): a row a later sync
    brought back stays."""
    t = target.quoted
    same_key = " AND ".join(f"{t}.{quote_standard(spelled[key.lower()])} = {STAGE}.{quote_standard(key)}"
                            for key in target.keys)
    t_cursor = f"{t}.{quote_standard(spelled[target.cursor.lower()])}"
    return f"DELETE FROM {t} USING {STAGE} WHERE {same_key} AND ({t_cursor} IS NULL OR {t_cursor} <= {bound})"
