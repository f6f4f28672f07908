"""`s3rs demo`: the main job end to end on embedded defaults, on a fresh machine.

Starts a throwaway MariaDB in the demo folder, fills a realistic settlement table (reused when it
already holds the asked number of rows), syncs it to the local folder store with the same engine
and log as `s3rs sync` (with the fast reader, connectorx, when it is installed: the set-up installs
it), loads it into the embedded DuckDB warehouse (a file in the demo folder), verifies that MySQL
and DuckDB agree, and says where everything is and how fast each step went.
"""

import importlib.util
from pathlib import Path

import pymysql

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.jobs.verify import verify_table
from s3rs_tui.runtime.config import TableSettings, load_settings
from s3rs_tui.runtime.control import RunControl, stop_on_signals
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.events import Notice, RunFinished
from s3rs_tui.sandbox.mariadb import PASSWORD, USER, start_mariadb
from s3rs_tui.sandbox.sample_data import TABLE, create_settlement_table
from s3rs_tui.status.headless import NORMAL, HeadlessLog
from s3rs_tui.store.layout import table_prefix
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse.loader import TableLoader

DATABASE = "settlement"
NAME = f"{DATABASE}.{TABLE}"


def demo_reader() -> str:
    """The fast reader when its extra is installed, else the default one."""
    return "connectorx" if importlib.util.find_spec("connectorx") else "pymysql"


def _config_text(port: int, store: Path, warehouse: Path, batch_size: int, reader: str) -> str:
    return (f'[mysql]\nhost = "127.0.0.1"\nport = {port}\nuser = "{USER}"\ndatabase = "{DATABASE}"\n'
            f'# password: export S3RS_MYSQL_PASSWORD={PASSWORD}\n\n'
            f'[s3]\nlocal_path = "{store}"\n\n[warehouse]\nkind = "duckdb"\npath = "{warehouse}"\n\n'
            f'[backup]\nbatch_size = {batch_size}\nreader = "{reader}"\n\n'
            f'[tables."{NAME}"]\ncursor_column = "update_at"\nkey_column = "id"\n')


def _fill(server, rows: int, log: HeadlessLog) -> None:
    with pymysql.connect(**server.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        cur.execute("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_NAME = %s", (DATABASE, TABLE))
        found = cur.fetchone()
        if found:
            cur.execute(f"SELECT COUNT(*) FROM `{DATABASE}`.`{TABLE}`")
            if int(cur.fetchone()[0]) == rows:
                log(Notice(table=NAME, message=f"reusing the demo table ({rows:,} rows)", level="info"))
                return
        log(Notice(table=NAME, message=f"generating {rows:,} rows...", level="info"))
        create_settlement_table(conn, DATABASE, TABLE, rows, progress=lambda done, total: log(
            Notice(table=NAME, message=f"generated {done:,} of {total:,} rows", level="info")))


def run_demo(folder: Path, rows: int, batch_size: int, keep_server: bool) -> RunFinished:
    folder = folder.resolve()
    log = HeadlessLog(NORMAL)
    log(Notice(table=NAME, message=f"starting a throwaway MariaDB in {folder / 'mariadb'}", level="info"))
    server = start_mariadb(folder / "mariadb")
    try:
        _fill(server, rows, log)
        config = folder / "s3rs.toml"
        reader = demo_reader()
        config.write_text(_config_text(server.port, folder / "store", folder / "warehouse.duckdb",
                                       batch_size, reader))
        settings = load_settings(str(config), environ={"S3RS_MYSQL_PASSWORD": PASSWORD})
        settings.tables[NAME] = TableSettings(cursor_column="update_at", key_column="id")
        control = RunControl()
        with stop_on_signals(control, lambda message: log(Notice(table="-", message=message))):
            finished = TableSync(settings, NAME, log, control).run()
            loaded = TableLoader(settings, NAME, log, control).run()
            check = verify_table(settings, NAME, log)
        store_folder = Path(settings.s3.local_path) / settings.s3.prefix
        load_rate = loaded.rows * 60 / loaded.elapsed_seconds if loaded.elapsed_seconds > 0 else 0.0
        print(f"\nDone: {finished.rows:,} rows in {finished.files} Parquet files "
              f"({finished.rows_per_minute:,.0f} rows/min, reader {reader}); {loaded.rows:,} rows loaded "
              f"into DuckDB in {loaded.elapsed_seconds:.1f}s ({load_rate:,.0f} rows/min).")
        print(f"  verify:    {check.summary()}")
        print(f"  files:     {store_folder / table_prefix(NAME)}")
        print(f"  watermark: {store_folder / WatermarkStore.key(NAME)}")
        print(f"  warehouse: {settings.warehouse.path}  (table {settings.warehouse.schema}.{TABLE})")
        print(f"  config:    {config}  (run the demo again: it resumes and finds nothing new)")
        if keep_server:
            print(f"  MariaDB still running on 127.0.0.1:{server.port} (pid {server.pid}); try:\n"
                  f"    S3RS_MYSQL_PASSWORD={PASSWORD} s3rs --config {config} watermark get -t {NAME}\n"
                  f"    S3RS_MYSQL_PASSWORD={PASSWORD} s3rs --config {config} verify -t {NAME}")
        if not check.agrees:
            raise S3rsError(check.summary())
        return finished
    finally:
        if not keep_server:
            server.stop()
