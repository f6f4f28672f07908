"""Both readers write the same Parquet schema and the same values, value by value, on the
edge-value table of test_typemap.py (every MySQL type, extremes, zero dates, emoji, bytes)."""

import io

import pyarrow.parquet as pq
import pytest
from test_typemap import edge_table  # noqa: F401 - the fixture

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.store import open_store
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore


def stored_table(settings, name):
    store = open_store(settings)
    tables = [pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))
              for info in store.list(table_prefix(name))]
    assert tables
    return tables


@pytest.fixture(params=["DATETIME", "DATETIME(3)", "TIMESTAMP(6)", "DATE"])
def edge_with_cursor(edge_table, request):  # noqa: F811 - pytest fixture chaining
    edge_table.execute(f"ALTER TABLE t ADD COLUMN update_at {request.param} NOT NULL "
                       "DEFAULT '2024-01-01 00:00:00', ADD KEY idx_update_at_id (update_at, id)",
                       "UPDATE t SET update_at = '2024-01-01 00:00:00.123456' + INTERVAL id * 1000 MINUTE")
    return edge_table


def test_connectorx_and_pymysql_write_the_same_files(edge_with_cursor, tmp_path, settings_for):
    from conftest import write_config

    db = edge_with_cursor
    results, positions = {}, {}
    for reader in ("pymysql", "connectorx"):
        config = write_config(tmp_path / f"{reader}.toml", db, store=tmp_path / reader,
                              extra=f'reader = "{reader}"\nbatch_size = 3\n')
        settings = settings_for(config)
        finished = TableSync(settings, f"{db.name}.t", lambda e: None, RunControl()).run()
        watermark = WatermarkStore(open_store(settings)).get(f"{db.name}.t")
        results[reader] = (stored_table(settings, f"{db.name}.t"), finished)
        positions[reader] = (watermark.last_mysql_data_timestamp, watermark.last_mysql_data_id)
    (py_tables, py_run), (cx_tables, cx_run) = results["pymysql"], results["connectorx"]
    assert py_run.rows == cx_run.rows > 0 and py_run.files == cx_run.files > 1
    assert py_run.invalid_dates == cx_run.invalid_dates and py_run.invalid_dates
    assert positions["pymysql"] == positions["connectorx"]  # the same watermark, spelled the same
    for py_table, cx_table in zip(py_tables, cx_tables, strict=True):
        assert py_table.schema.equals(cx_table.schema, check_metadata=True)
        for name in py_table.column_names:
            assert py_table[name].to_pylist() == cx_table[name].to_pylist(), name
