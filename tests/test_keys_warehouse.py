"""Composite-key and keyless tables in the warehouses: PostgreSQL and DuckDB through the real
`s3rs sync` (SIGKILLed in the sync and in the load, rows changed, rerun); the Redshift stand-in is
in test_redshift.py. A composite key merges on all its columns: one row per key, the newest, every
column equal to MySQL's. A keyless table is appended, each row once, whatever is loaded again.
"""

from collections import Counter

import pytest
from cli_helpers import run_cli
from conftest import write_config
from exact_rows import assert_store_matches_mysql, assert_warehouse_matches_mysql, digest, mysql_columns
from test_faults import duckdb_rows, kill_at_failpoint
from test_keys import LOG_DDL, TABLES, create, fill_log, sync_while_writing, with_tables

from s3rs_tui.jobs import verify
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.warehouse import loader


def change(db, table: str, first: int = 100000, month: int = 2) -> None:
    """New rows (keys from `first` on, stamped in `month`), and old rows with every non-key value
    changed, moved to the month after (ties kept)."""
    create(db, table, 400, first=first, start=f"2024-{month:02d}-01")
    value = {"salaries": "salary = salary + 7, note = 'raised'", "order_lines": "qty = -qty"}[table]
    db.execute(f"UPDATE {table} SET {value}, update_at = '2024-{month + 1:02d}-01' + INTERVAL "
               "TIMESTAMPDIFF(SECOND, '2024-01-01', update_at) DIV 3 SECOND "
               "WHERE update_at < '2024-01-01 00:00:30'")


def warehouse_config(tmp_path, db, kind: str, pg, table: str):
    extra = pg.config() if kind == "postgres" else \
        f'\n[warehouse]\nkind = "duckdb"\npath = "{tmp_path / "warehouse.duckdb"}"\n'
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=extra)
    return with_tables(config, db, table)


def warehouse_query(kind: str, pg, tmp_path):
    if kind == "postgres":
        return pg.execute, lambda: None
    connection, query = duckdb_rows(tmp_path / "warehouse.duckdb")
    return query, connection.close


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
@pytest.mark.parametrize("table, point", [("salaries", "mid-page:3"), ("salaries", "after-copy:1"),
                                          ("order_lines", "after-merge:1"),
                                          ("order_lines", "after-upload:4")])
def test_composite_keys_killed_and_rerun_into_the_warehouse(db, tmp_path, settings_for, pg, kind, table,
                                                            point):
    config = warehouse_config(tmp_path, db, kind, pg, table)
    settings = settings_for(config)
    name = f"{db.name}.{table}"
    create(db, table, 5000)
    first = run_cli("sync", "-t", name, "--batch-size", "400", config=config, timeout=300)
    assert first.returncode == 0, first.stderr
    change(db, table)
    kill_at_failpoint(config, point, tmp_path, "-t", name, "--batch-size", "170")
    change(db, table, first=200000, month=4)
    rerun = run_cli("sync", "-t", name, "--batch-size", "170", config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    key = TABLES[table][2]
    files = assert_store_matches_mysql(db, settings, name, table, key=key, history=True)
    query, close = warehouse_query(kind, pg, tmp_path)
    try:
        assert_warehouse_matches_mysql(query, db, files, table, key=key)
    finally:
        close()


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_concurrent_writers_on_a_composite_key_into_the_warehouse(db, tmp_path, settings_for, pg, kind):
    create(db, "salaries", 2000)
    settings = settings_for(warehouse_config(tmp_path, db, kind, pg, "salaries"))
    name = f"{db.name}.salaries"
    files = sync_while_writing(
        db, settings, name, lambda: loader.TableLoader(settings, name, lambda e: None, RunControl()).run())
    query, close = warehouse_query(kind, pg, tmp_path)
    try:
        assert_warehouse_matches_mysql(query, db, files, "salaries", key=TABLES["salaries"][2])
    finally:
        close()


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_verify_finds_a_changed_row_in_a_composite_key_table(db, tmp_path, settings_for, pg, kind):
    config = warehouse_config(tmp_path, db, kind, pg, "salaries")
    settings = settings_for(config)
    name = f"{db.name}.salaries"
    create(db, "salaries", 3000)
    assert run_cli("sync", "-t", name, config=config).returncode == 0
    agreed = verify.verify_table(settings, name, lambda e: None, chunk_keys=100)
    assert agreed.agrees and agreed.mysql_rows == agreed.warehouse_rows == 3000 and agreed.chunks == 6
    # Same emp_no, another from_date: only the whole key tells these rows apart.
    db.execute("UPDATE salaries SET salary = 1 WHERE emp_no = 10123 AND from_date = '1993-01-01'")
    db.execute("UPDATE salaries SET update_at = '2023-12-31' "
               "WHERE emp_no = 10124 AND from_date = '1990-01-01'")
    if kind == "postgres":
        pg.execute("DELETE FROM public.salaries WHERE emp_no = 10200 AND from_date = '1994-01-01'")
    found = verify.verify_table(settings, name, lambda e: None, chunk_keys=100)
    changed = [key for r in found.ranges for key in r.changed]
    missing = [key for r in found.ranges for key in r.missing]
    assert changed == ["(10123, 1993-01-01)", "(10124, 1990-01-01)"]
    assert missing == (["(10200, 1994-01-01)"] if kind == "postgres" else [])
    result = run_cli("verify", "-t", name, config=config)
    assert result.returncode == 1 and "(10123, 1993-01-01)" in result.stdout + result.stderr


# -- no unique key ---------------------------------------------------------------------------------

def assert_log_in_warehouse(db, query, schema: str = "public") -> None:
    columns = mysql_columns(db, "log")
    names = ", ".join(f'"{c}"' for c in columns)
    source = Counter(digest(row) for row in db.execute(f"SELECT {', '.join(columns)} FROM log"))
    loaded = Counter(digest(row) for row in query(f"SELECT {names} FROM {schema}.log"))
    assert loaded == source, (f"{sum((source - loaded).values())} rows missing, "
                              f"{sum((loaded - source).values())} too many")


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_a_keyless_table_is_appended_once_across_kills_and_a_reset(db, tmp_path, settings_for, pg, kind):
    db.execute(LOG_DDL)
    fill_log(db, 20000, 100)
    config = warehouse_config(tmp_path, db, kind, pg, "log")
    name = f"{db.name}.log"
    kill_at_failpoint(config, "after-copy:3", tmp_path, "-t", name, "--batch-size", "900")
    fill_log(db, 3000, 10, start="2024-02-01", offset=20000)
    kill_at_failpoint(config, "mid-page:2", tmp_path, "-t", name, "--batch-size", "900")
    rerun = run_cli("sync", "-t", name, "--batch-size", "900", config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    query, close = warehouse_query(kind, pg, tmp_path)
    try:
        assert_log_in_warehouse(db, query)
    finally:
        close()
    # A reset rewrites every file under its old name: loaded again, each file's rows are replaced.
    assert run_cli("watermark", "reset", "-t", name, "--yes", config=config).returncode == 0
    again = run_cli("sync", "-t", name, "--batch-size", "900", config=config, timeout=300)
    assert again.returncode == 0, again.stderr
    query, close = warehouse_query(kind, pg, tmp_path)
    try:
        assert_log_in_warehouse(db, query)
    finally:
        close()
