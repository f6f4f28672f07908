"""The edge-value table of test_typemap.py, all the way from MariaDB into PostgreSQL and DuckDB:
every value must arrive exact, and `verify` must find both sides equal (its canonical text is the
same for every type on MySQL and on each warehouse)."""

import duckdb
import pytest
from conftest import write_config
from test_typemap import (
    COLUMNS,
    IMPOSSIBLE_DATES,
    PARTLY_ZERO_DATES,
    ROWS,
    ZERO_DATES,
    edge_table,  # noqa: F401 - the fixture
    expected,
)

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.jobs.verify import verify_table
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.warehouse.loader import TableLoader

FLOATS = ("f", "dbl")


def expected_rows() -> list[dict]:
    rows = sorted([*ROWS, ZERO_DATES, PARTLY_ZERO_DATES, IMPOSSIBLE_DATES], key=lambda r: r["id"])
    return [{name: expected(row.get(name)) for name, _, _ in COLUMNS} for row in rows]


def normal(value, name: str, warehouse: str):
    """What the driver hands back, in the form the expected values use."""
    if isinstance(value, memoryview):
        return bytes(value)
    if name == "d65" and warehouse == "postgres" and value is not None:
        return f"{value:f}"  # numeric(65,30) there; the exact text is what MySQL has
    return value


@pytest.fixture
def edge_source(edge_table):  # noqa: F811 - the imported fixture, by name
    edge_table.execute("ALTER TABLE t ADD COLUMN update_at DATETIME NOT NULL DEFAULT '2024-01-01 00:00:00', "
                       "ADD KEY (update_at, id)")
    return edge_table


def sync_and_load(settings, name):
    TableSync(settings, name, lambda e: None, RunControl()).run()
    return TableLoader(settings, name, lambda e: None, RunControl()).run()


def check(rows: list[tuple], warehouse: str) -> None:
    names = [name for name, _, _ in COLUMNS]
    got = [{name: normal(value, name, warehouse) for name, value in zip(names, row, strict=True)}
           for row in rows]
    want = expected_rows()
    assert len(got) == len(want)
    for actual, wanted in zip(got, want, strict=True):
        for name in names:
            if name in FLOATS and wanted[name] is not None:
                assert actual[name] == pytest.approx(wanted[name], rel=1e-6), (actual["id"], name)
            else:
                assert actual[name] == wanted[name], (actual["id"], name, actual[name])


def test_edge_values_round_trip_into_postgresql(edge_source, tmp_path, pg, settings_for):
    settings = settings_for(write_config(tmp_path / "s3rs.toml", edge_source, extra=pg.config()))
    name = f"{edge_source.name}.t"
    assert sync_and_load(settings, name).rows == 8
    columns = ", ".join(n for n, _, _ in COLUMNS)
    check(pg.execute(f"SELECT {columns} FROM public.t ORDER BY id"), "postgres")
    types = dict(pg.execute("SELECT column_name, format_type(atttypid, atttypmod) "
                            "FROM information_schema.columns "
                            "JOIN pg_attribute ON attname = column_name AND attrelid = 'public.t'::regclass "
                            "WHERE table_name = 't'"))
    assert (types["biu"], types["d65"], types["ts"], types["vc"], types["bl"], types["flag"]) == (
        "numeric(20,0)", "numeric(65,30)", "timestamp with time zone", "character varying(100)", "bytea",
        "smallint")
    result = verify_table(settings, name, lambda e: None)
    assert result.agrees, result.summary()
    assert result.mysql_rows == result.warehouse_rows == 8 and result.skipped_columns == list(FLOATS)


def test_edge_values_round_trip_into_duckdb(edge_source, tmp_path, settings_for):
    path = tmp_path / "warehouse.duckdb"
    settings = settings_for(write_config(tmp_path / "s3rs.toml", edge_source,
                                         extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{path}"\n'))
    name = f"{edge_source.name}.t"
    assert sync_and_load(settings, name).rows == 8
    result = verify_table(settings, name, lambda e: None)
    assert result.agrees, result.summary()
    columns = ", ".join(n for n, _, _ in COLUMNS)
    with duckdb.connect(str(path), read_only=True) as conn:
        check(conn.execute(f"SELECT {columns} FROM public.t ORDER BY id").fetchall(), "duckdb")
        types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 't'").fetchall())
    assert (types["biu"], types["d65"], types["ts"], types["flag"], types["bl"]) == (
        "DECIMAL(20,0)", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "TINYINT", "BLOB")
