"""Composite keys and tables with no unique key, against the real MariaDB and stores.

Composite-key tables tie on the cursor across key parts (25 rows a cursor value, differing in
every key column), so page ends fall inside a tie and between the parts of a key. Exactness is
exact_rows' all-columns check, keyed on every key column. A keyless table is checked as a
multiset: every MySQL row (all its columns) stored exactly once.
"""

import itertools
import json
import threading
import time
from collections import Counter

import pymysql
import pytest
from cli_helpers import run_cli
from conftest import write_config
from exact_rows import (
    assert_store_matches_mysql,
    assert_warehouse_matches_mysql,
    assert_watermark_matches_files,
    digest,
    mysql_columns,
    stored_rows,
)
from test_engine import run_sync
from test_faults import duckdb_rows, kill_at_failpoint

from s3rs_tui.engine import keyset
from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.table import describe_table
from s3rs_tui.engine.typemap import plan_columns
from s3rs_tui.runtime.config import TableSettings
from s3rs_tui.status.model import TableStatus
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.tui import panel_rows

# name -> (DDL, INSERT ... SELECT over seq_1_to_{n} with {start}, key columns, a key in the middle)
TABLES = {
    "salaries": (  # INT + DATE, the employees sample's shape; the key is the primary key
        "CREATE TABLE salaries (emp_no INT NOT NULL, from_date DATE NOT NULL, salary INT NOT NULL, "
        "note VARCHAR(40), update_at DATETIME(6) NOT NULL, PRIMARY KEY (emp_no, from_date), "
        "KEY idx_update_at (update_at))",
        "INSERT INTO salaries SELECT 10000 + (seq - 1) DIV 5 + {first}, "
        "'1990-01-01' + INTERVAL (seq - 1) % 5 YEAR, "
        "seq * 3, IF(seq % 9 = 0, NULL, CONCAT('s ', seq)), "
        "'{start}' + INTERVAL ((seq * 7919) % {n}) DIV 25 SECOND FROM seq_1_to_{n}",
        ("emp_no", "from_date"), (10100, "1992-01-01")),
    "readings": (  # VARCHAR + INT, key named in the config (a unique index, no primary key)
        "CREATE TABLE readings (device VARCHAR(20) NOT NULL, n INT NOT NULL, value DOUBLE, "
        "update_at DATETIME NOT NULL, UNIQUE KEY device_n (device, n), "
        "KEY idx_update_at_key (update_at, device, n))",
        "INSERT INTO readings SELECT CONCAT('dev', seq % 7), seq + {first}, seq / 4, "
        "'{start}' + INTERVAL ((seq * 7919) % {n}) DIV 25 SECOND FROM seq_1_to_{n}",
        ("device", "n"), ("dev3", 500)),
    "order_lines": (  # three columns: VARCHAR + INT + DATE
        "CREATE TABLE order_lines (shop VARCHAR(16) NOT NULL, order_no INT NOT NULL, day DATE NOT NULL, "
        "qty INT, update_at DATETIME(3) NOT NULL, PRIMARY KEY (shop, order_no, day), "
        "KEY idx_update_at (update_at))",
        "INSERT INTO order_lines SELECT CONCAT('shop', seq % 3), (seq + {first}) DIV 7, "
        "'2024-01-01' + INTERVAL seq % 7 DAY, "
        "seq, '{start}' + INTERVAL ((seq * 7919) % {n}) DIV 25 SECOND FROM seq_1_to_{n}",
        ("shop", "order_no", "day"), ("shop2", 200, "2024-01-04")),
}
CONFIGURED = {"readings": 'key_columns = ["device", "n"]\n'}


def create(db, table: str, rows: int, first: int = 0, start: str = "2024-01-01") -> None:
    ddl, insert, _, _ = TABLES[table]
    if first == 0:
        db.execute(ddl)
    db.execute(insert.format(n=rows, first=first, start=start))


def table_config(db, table: str) -> str:
    return f'\n[tables."{db.name}.{table}"]\ncursor_column = "update_at"\n{CONFIGURED.get(table, "")}'


def with_tables(config, db, *tables: str):
    with open(config, "a") as handle:
        for table in tables:
            handle.write(table_config(db, table))
    return config


def assert_exact(db, settings, table: str, history: bool = False) -> dict:
    key = TABLES[table][2]
    files = assert_store_matches_mysql(db, settings, f"{db.name}.{table}", table, key=key, history=history)
    assert_watermark_matches_files(settings, f"{db.name}.{table}", files, key=key)
    return files


@pytest.mark.parametrize("table", list(TABLES))
@pytest.mark.parametrize("reader", ["select_sql", "cx_sql"])
def test_a_composite_key_page_is_an_index_range_without_filesort(db, local_config, settings_for, table,
                                                                 reader):
    """The nested-OR form with a leading cursor bound: a range on the cursor index in index order
    (the row-constructor form (c, k1, k2) > (...) scans and sorts on MariaDB 10.11)."""
    create(db, table, 20000)
    db.execute(f"ANALYZE TABLE {table}")
    spec = settings_for(with_tables(local_config, db, table)).table(f"{db.name}.{table}")[2]
    with pymysql.connect(**db.server.connect_args(db.name)) as conn:
        info = describe_table(conn, db.name, table, spec)
        sql, params = keyset.page_query(info, [getattr(p, reader) for p in plan_columns(info.columns)],
                                        Position("2024-01-01 00:05:00", TABLES[table][3]), "2030-01-01", 500)
        with conn.cursor() as cur:
            cur.execute("EXPLAIN FORMAT=JSON " + sql, params)
            plan = json.loads(cur.fetchone()[0])
            cur.execute("EXPLAIN " + sql, params)
            row = dict(zip([d[0] for d in cur.description], cur.fetchone(), strict=True))
    assert info.key_names == TABLES[table][2] and info.has_keyset_index
    assert row["key"].startswith("idx_update_at") and row["type"] == "range", row
    assert "filesort" not in (row["Extra"] or "").lower()
    assert "filesort" not in json.dumps(plan).lower()
    assert int(row["rows"]) < 20000  # a range, not the table


@pytest.mark.parametrize("table", list(TABLES))
@pytest.mark.parametrize("reader", ["pymysql", "connectorx"])
def test_composite_key_ties_split_across_pages_are_taken_exactly_once(db, local_config, settings_for, table,
                                                                      reader):
    create(db, table, 3000)
    settings = settings_for(with_tables(local_config, db, table))
    settings.override("backup.batch_size", 70)  # pages end inside ties of 25, between key parts
    settings.override("backup.reader", reader)
    finished, _ = run_sync(settings, f"{db.name}.{table}")
    assert finished.rows == 3000 and finished.caught_up and finished.files > 40
    assert_exact(db, settings, table)
    watermark = WatermarkStore(open_store(settings)).get(f"{db.name}.{table}")
    assert watermark.key_column == ",".join(TABLES[table][2])
    assert len(watermark.last_mysql_data_key) == len(TABLES[table][2])
    assert watermark.last_mysql_data_id is None
    again, _ = run_sync(settings, f"{db.name}.{table}")
    assert (again.rows, again.files) == (0, 0)
    # New rows and updated ones (moved later, every key part kept) come in the next run.
    create(db, table, 500, first=100000, start="2024-02-01")
    db.execute(f"UPDATE {table} SET update_at = '2024-03-01' + INTERVAL "
               "TIMESTAMPDIFF(SECOND, '2024-01-01', update_at) SECOND "
               "WHERE update_at < '2024-01-01 00:00:10'")
    more, _ = run_sync(settings, f"{db.name}.{table}")
    assert more.rows == 500 + 250
    assert_exact(db, settings, table, history=True)


def test_file_names_are_deterministic_for_a_composite_key(db, local_config, settings_for):
    """A rerun from the same watermark writes the same file name (so a redone file replaces itself)."""
    create(db, "salaries", 1000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 100)
    name = f"{db.name}.salaries"
    run_sync(settings, name)
    first = sorted(info.key for info in open_store(settings).list(f"data/{db.name}/salaries/"))
    run_cli("watermark", "reset", "-t", name, "--yes", config=local_config)
    for info in open_store(settings).list(f"data/{db.name}/salaries/"):
        open_store(settings).delete(info.key)
    run_sync(settings, name)
    assert sorted(info.key for info in open_store(settings).list(f"data/{db.name}/salaries/")) == first
    assert len(first) == 10 and all("-k" in key for key in first[1:])


@pytest.mark.parametrize("point", ["mid-page:3", "after-upload:2", "after-watermark:4"])
def test_sigkill_then_rerun_on_a_three_column_key(db, tmp_path, settings_for, point):
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store")
    with_tables(config, db, "order_lines")
    create(db, "order_lines", 6000)
    name = f"{db.name}.order_lines"
    kill_at_failpoint(config, point, tmp_path, "-t", name, "--batch-size", "330")
    create(db, "order_lines", 800, first=100000, start="2024-02-01")
    db.execute("UPDATE order_lines SET qty = -qty, update_at = '2024-03-01' WHERE order_no % 5 = 0")
    rerun = run_cli("sync", "-t", name, "--batch-size", "330", config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_exact(db, settings_for(config), "order_lines", history=True)


def sync_while_writing(db, settings, name: str, after_sync=lambda: None) -> dict:
    """Inserts and updates land (ties at the current microsecond, every key part new or kept) while
    four runs go, each followed by `after_sync()` (a load); after the writers stop, a last run (and
    load) leaves the newest version of every row stored, none twice. Returns the stored files."""
    settings.override("backup.batch_size", 90)
    settings.override("backup.safety_lag_seconds", 1)  # writes commit within a second of their NOW(6)
    stop = threading.Event()

    def write() -> None:
        n = 0
        with db.connect() as conn, conn.cursor() as cur:
            while not stop.is_set():
                n += 1
                cur.execute("INSERT INTO salaries VALUES (%s, '2000-01-01', %s, 'new', NOW(6))",
                            (50000 + n, n))
                cur.execute("UPDATE salaries SET salary = salary + 1, update_at = NOW(6) "
                            "WHERE emp_no = %s", (10000 + n % 400,))
                time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(4):
            finished, _ = run_sync(settings, name)
            assert finished.status == "success"
            after_sync()
    finally:
        stop.set()
        writer.join()
    time.sleep(1.5)
    run_sync(settings, name)
    after_sync()
    return assert_exact(db, settings, "salaries", history=True)


def test_concurrent_writers_on_a_composite_key(db, local_config, settings_for):
    create(db, "salaries", 2000)
    sync_while_writing(db, settings_for(local_config), f"{db.name}.salaries")


def test_watermark_set_takes_the_key_tuple(db, local_config, settings_for):
    create(db, "salaries", 1000)
    settings = settings_for(local_config)
    name = f"{db.name}.salaries"
    run_sync(settings, name, limit=10)
    rows = db.execute("SELECT update_at, emp_no, from_date FROM salaries "
                      "ORDER BY update_at, emp_no, from_date")
    at, emp, day = rows[599]
    done = run_cli("watermark", "set", "-t", name, "--timestamp", str(at), "--id", str(emp), "--id", str(day),
                   "--yes", config=local_config)
    assert done.returncode == 0, done.stderr
    assert f"after ({at}, {emp}, {day})" in done.stdout
    shown = run_cli("watermark", "list", config=local_config)
    assert f"{emp}, {day}" in shown.stdout
    wrong = run_cli("watermark", "set", "-t", name, "--timestamp", str(at), "--id", "1", "--yes",
                    config=local_config)
    assert wrong.returncode == 2 and "give 2 --id values" in wrong.stderr and "Traceback" not in wrong.stderr
    finished, _ = run_sync(settings, name)
    assert finished.rows == 400  # exactly the rows after the 600th in keyset order


# -- no unique key --------------------------------------------------------------------------------

LOG_DDL = ("CREATE TABLE log (update_at DATETIME NOT NULL, level VARCHAR(8), message VARCHAR(200), "
           "n INT, KEY idx_update_at (update_at))")


def fill_log(db, rows: int, values: int, start: str = "2024-01-01", offset: int = 0) -> None:
    """`rows` rows sharing `values` cursor values (rows / values each), some of them identical."""
    db.execute(f"INSERT INTO log SELECT '{start}' + INTERVAL ((seq * 7919) % {rows}) % {values} MINUTE, "
               f"ELT(seq % 3 + 1, 'info', 'warn', 'error'), CONCAT('event ', (seq + {offset}) % 9000), "
               f"IF(seq % 4 = 0, NULL, (seq + {offset}) % 50) FROM seq_1_to_{rows}")


def assert_log_exact(db, settings, name: str) -> None:
    """Every MySQL row stored exactly once: the stored rows are MySQL's, as a multiset."""
    columns = mysql_columns(db, "log")
    source = Counter(digest(row) for row in db.execute(f"SELECT {', '.join(columns)} FROM log"))
    stored = Counter(d for rows in stored_rows(settings, name, columns, key="n").values()
                     for _, _, d in rows)
    assert stored == source, (f"{sum((source - stored).values())} rows missing, "
                              f"{sum((stored - source).values())} too many")


def test_a_keyless_table_is_read_by_whole_cursor_values(db, local_config, settings_for):
    db.execute(LOG_DDL)
    fill_log(db, 5000, 50)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 130)  # each value holds 100 rows: pages end mid-value
    name = f"{db.name}.log"
    finished, events = run_sync(settings, name)
    assert finished.rows == 5000 and finished.caught_up
    assert_log_exact(db, settings, name)
    notices = " ".join(e.message for e in events if type(e).__name__ == "Notice")
    assert "no unique key" in notices and "append-only" in notices
    files = stored_rows(settings, name, ["update_at"], key="update_at")
    cursors = [{c for _, c, _ in rows} for rows in files.values()]
    assert all(not (a & b) for i, a in enumerate(cursors) for b in cursors[i + 1:])  # no value split
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.key_column == "" and watermark.last_mysql_data_key == []
    assert watermark.last_mysql_data_timestamp.startswith("2024-01-01 00:49:00")
    fill_log(db, 700, 7, start="2024-02-01", offset=5000)
    more, _ = run_sync(settings, name)
    assert more.rows == 700
    assert_log_exact(db, settings, name)


@pytest.mark.parametrize("reader", ["pymysql", "connectorx"])
def test_a_keyless_table_of_50000_rows_on_100_values_across_kills(db, tmp_path, settings_for, reader):
    db.execute(LOG_DDL)
    fill_log(db, 50000, 100)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'reader = "{reader}"\n')
    name = f"{db.name}.log"
    for point in ("mid-page:2", "after-upload:3", "mid-file:5", "after-watermark:2"):
        kill_at_failpoint(config, point, tmp_path, "-t", name, "--batch-size", "1234")
    rerun = run_cli("sync", "-t", name, "--batch-size", "1234", config=config, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_log_exact(db, settings_for(config), name)


def test_one_cursor_value_bigger_than_memory_allows_is_refused(db, local_config):
    db.execute(LOG_DDL)
    db.execute("INSERT INTO log SELECT '2024-01-01', 'info', REPEAT('x', 200), seq FROM seq_1_to_20000")
    with open(local_config, "a") as handle:
        handle.write("memory_limit_mb = 4\n")
    result = run_cli("sync", "--no-ui", "-t", f"{db.name}.log", config=local_config)
    assert result.returncode == 2, result.stderr
    assert "no unique key" in result.stderr and "memory_limit_mb" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_table_with_a_unique_index_but_no_primary_key_must_name_it(db, local_config):
    create(db, "readings", 100)
    result = run_cli("sync", "--no-ui", "-t", f"{db.name}.readings", config=local_config)
    assert result.returncode == 2
    assert 'set key_columns = ["device", "n"]' in result.stderr


# -- config ---------------------------------------------------------------------------------------

def test_no_config_file_is_said_at_once(tmp_path):
    started = time.monotonic()
    result = run_cli("sync", "-t", "x.y", cwd=tmp_path, env={"S3RS_CONFIG": ""})
    assert result.returncode == 2 and time.monotonic() - started < 15
    assert "no config file" in result.stderr and str(tmp_path) in result.stderr
    assert "config.example.toml" in result.stderr and "Traceback" not in result.stderr
    for args in (["config"], ["--help"], ["sync", "--help"]):
        assert run_cli(*args, cwd=tmp_path, env={"S3RS_CONFIG": ""}).returncode == 0, args


def test_an_unknown_config_key_suggests_the_closest(tmp_path):
    config = tmp_path / "s3rs.toml"
    config.write_text("[backup]\nbatch_sise = 10\n")
    result = run_cli("config", config=config)
    assert result.returncode == 2
    assert "unknown key backup.batch_sise (did you mean batch_size?)" in result.stderr
    config.write_text('[tables."a.b"]\nkey_colums = ["x"]\n')
    assert "did you mean key_columns?" in run_cli("config", config=config).stderr


def test_key_column_and_key_columns_together_are_refused(tmp_path):
    config = tmp_path / "s3rs.toml"
    config.write_text('[tables."a.b"]\nkey_column = "x"\nkey_columns = ["x", "y"]\n')
    result = run_cli("config", config=config)
    assert result.returncode == 2 and "not both" in result.stderr


def test_settings_key_names():
    assert TableSettings(key_column="id").key_names == ("id",)
    assert TableSettings(key_columns=("a", "b")).key_names == ("a", "b")
    assert TableSettings().key_names == ()


def test_file_names_sort_in_mysql_key_order(db):
    """The loader takes files named up to the watermark's last file as committed, so a composite
    start key is spelled in MySQL's order: case and accents by the collation, negative numbers."""
    db.execute("CREATE TABLE t (name VARCHAR(20) NOT NULL, n INT NOT NULL, day DATE NOT NULL, "
               "update_at DATETIME NOT NULL, PRIMARY KEY (name, n, day))")
    names = ["a", "B", "b ", "é", "e", "Z", "ab", "A", "bb", "Éa", "zz"]
    days = ("2023-12-31", "2024-01-02")
    db.executemany("INSERT IGNORE INTO t VALUES (%s, %s, %s, '2024-01-01')",
                   [(name, n, day) for name in names for n in (-5, 3, 12) for day in days])
    with pymysql.connect(**db.server.connect_args(db.name)) as conn:
        info = describe_table(conn, db.name, "t", TableSettings())
        with conn.cursor() as cur:
            cur.execute("SELECT name, n, CAST(day AS CHAR) FROM t ORDER BY name, n, day")
            ordered = [tuple(row) for row in cur.fetchall()]
        spelled = [keyset.sortable_key(conn, info, key) for key in ordered]
    assert len(ordered) > 30
    assert all(a < b for a, b in itertools.pairwise(spelled))


def test_the_dashboard_shows_a_composite_key(db, local_config, settings_for):
    """The run's events and the stored watermark, as the dashboard's panels and table list show them."""
    create(db, "salaries", 1000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 300)
    name = f"{db.name}.salaries"
    _, events = run_sync(settings, name)
    status = TableStatus(name)
    for event in events:
        status.apply(event)
    stored = WatermarkStore(open_store(settings)).get(name)
    emp, day = stored.last_mysql_data_key
    assert status.watermark_id == f"{emp}, {day}"
    assert panel_rows.position(status.watermark_timestamp, status.watermark_id).endswith(f" / {emp}, {day}")
    rows = dict(panel_rows.watermark(status, stored))
    assert rows["ids"] == f"{emp}, {day}" and rows["key"] == "emp_no,from_date" and rows["id"] == "-"
    shown = run_cli("watermark", "get", "-t", name, config=local_config).stdout
    assert "last_mysql_data_key" in shown and "emp_no,from_date" in shown


def test_files_of_a_text_key_sort_in_key_order_and_every_one_is_loaded(db, tmp_path, settings_for):
    """Files starting at one cursor value sort by their start key in MySQL's collation, so the
    loader, which takes the files named up to the watermark's last one as committed, loads them all
    (spelled by a hash, those sorting after the last one were never loaded)."""
    db.execute("CREATE TABLE codes (code VARCHAR(20) NOT NULL PRIMARY KEY, n INT NOT NULL, "
               "update_at DATETIME NOT NULL, KEY idx_update_at (update_at))")
    db.execute("INSERT INTO codes SELECT CONCAT(IF(seq % 2, 'a', 'B'), seq * 7919 % 2000), seq, "
               "'2024-01-01' + INTERVAL seq % 3 SECOND FROM seq_1_to_2000")
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{tmp_path / "w.duckdb"}"\n')
    with open(config, "a") as handle:
        handle.write(f'\n[tables."{db.name}.codes"]\ncursor_column = "update_at"\n')
    settings = settings_for(config)
    settings.override("backup.batch_size", 100)
    name = f"{db.name}.codes"
    _, events = run_sync(settings, name)
    written = [event.key for event in events if type(event).__name__ == "FileStored"]
    loaded = run_cli("sync", "-t", name, config=config, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    files = assert_store_matches_mysql(db, settings, name, "codes", key="code")
    connection, query = duckdb_rows(tmp_path / "w.duckdb")
    try:
        assert_warehouse_matches_mysql(query, db, files, "codes", key="code")
    finally:
        connection.close()
    assert len(written) == 20 and sorted(written) == written
