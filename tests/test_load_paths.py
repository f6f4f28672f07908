"""The load's shortcuts (warehouse/merge.py) keep it exact, in DuckDB and PostgreSQL.

A first load into an empty target with unique keys is a plain insert (no de-duplication, no
delete, no not-in-target check); an empty target with a key staged twice is de-duplicated first;
any load into a target holding rows is the full merge. Each case ends with every column of every
row compared with MySQL, and the statements run show which path the load took.
"""

import duckdb
import pytest
from cli_helpers import make_table
from conftest import write_config
from exact_rows import assert_warehouse_matches_mysql

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.loader import TableLoader
from s3rs_tui.warehouse.merge import NEWEST

ROWS = 2000
UPDATE = "UPDATE orders SET amount = amount + 1, update_at = update_at + INTERVAL 1 DAY WHERE id % 7 = 0"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path, db):
    """(settings, query): a table of ROWS rows in MariaDB, a local folder store, and a warehouse."""
    if request.param == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        extra = f'\n[warehouse]\nkind = "duckdb"\npath = "{path}"\n'

        def query(sql):
            with duckdb.connect(str(path), read_only=True) as conn:
                return conn.execute(sql).fetchall()
    else:
        pg = request.getfixturevalue("pg")
        extra, query = pg.config(), pg.execute
    make_table(db, rows=ROWS)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=extra)
    return request.getfixturevalue("settings_for")(config), query


@pytest.fixture
def statements(monkeypatch):
    """Every SQL statement the warehouses run."""
    ran: list[str] = []
    real_run = Warehouse.run

    def run(self, sql, params=()):
        ran.append(sql)
        return real_run(self, sql, params)

    monkeypatch.setattr(Warehouse, "run", run)
    return ran


def sync(settings, name, batch=500) -> None:
    settings.override("backup.batch_size", batch)
    settings.override("backup.file_size_mb", 0)  # a file per page: several files per load
    TableSync(settings, name, lambda event: None, RunControl()).run()


def load(settings, name) -> int:
    return TableLoader(settings, name, lambda event: None, RunControl()).run().rows


def stored(settings, name) -> list[str]:
    return [info.key for info in open_store(settings).list(table_prefix(name))]


def deletes_from_target(statements) -> list[str]:
    return [sql for sql in statements if sql.startswith('DELETE FROM "public"."orders"')]


def test_first_load_is_a_plain_insert_then_updates_merge_and_a_rerun_changes_nothing(db, warehouse,
                                                                                   statements):
    settings, query = warehouse
    name = f"{db.name}.orders"
    sync(settings, name)
    assert len(stored(settings, name)) == ROWS // 500
    assert load(settings, name) == ROWS
    assert not deletes_from_target(statements) and not [sql for sql in statements if NEWEST in sql]
    assert_warehouse_matches_mysql(query, db, stored(settings, name))

    statements.clear()
    db.execute(UPDATE)
    sync(settings, name)
    assert load(settings, name) == ROWS // 7
    assert deletes_from_target(statements), "a load into a target holding rows must merge"
    assert_warehouse_matches_mysql(query, db, stored(settings, name))

    assert load(settings, name) == 0
    assert_warehouse_matches_mysql(query, db, stored(settings, name))


def test_a_key_in_two_files_of_a_first_load_keeps_its_newest_version(db, warehouse, statements):
    settings, query = warehouse
    name = f"{db.name}.orders"
    sync(settings, name)
    db.execute(UPDATE)
    sync(settings, name)  # the updated rows are stored twice: old version, then new
    assert load(settings, name) == ROWS + ROWS // 7
    assert [sql for sql in statements if sql.startswith(f"CREATE TEMP TABLE {NEWEST}")]
    assert not deletes_from_target(statements)
    assert_warehouse_matches_mysql(query, db, stored(settings, name))
