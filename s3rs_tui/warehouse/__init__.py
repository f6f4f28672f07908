"""Loading the stored Parquet files into a warehouse: Redshift, PostgreSQL or an embedded DuckDB."""

from s3rs_tui.config import Settings
from s3rs_tui.engine.tunnel import Notify
from s3rs_tui.errors import ConfigError
from s3rs_tui.store import ObjectStore
from s3rs_tui.warehouse.base import Warehouse


def require_warehouse(settings: Settings) -> None:
    if settings.warehouse.kind == "none":
        raise ConfigError("no warehouse configured: set [warehouse] kind to redshift, postgres or duckdb")


def check_warehouse(settings: Settings, store: ObjectStore) -> None:
    """Refuse settings no load can work with before anything is done (ConfigError, exit 2)."""
    require_warehouse(settings)
    if settings.warehouse.kind == "redshift":
        from s3rs_tui.warehouse.redshift import iam_role_clause
        iam_role_clause(settings, store.url)
    if settings.warehouse.kind == "duckdb":
        from s3rs_tui.warehouse.duckdb import warehouse_path
        warehouse_path(settings)


def open_warehouse(settings: Settings, store: ObjectStore, notify: Notify | None = None) -> Warehouse:
    """Connect to the configured warehouse (each driver is imported only when it is used); `notify`
    hears about a tunnel rebuilt on the way."""
    require_warehouse(settings)
    kind = settings.warehouse.kind
    if kind == "postgres":
        from s3rs_tui.warehouse.postgres import PostgresWarehouse
        return PostgresWarehouse(settings, store, notify=notify)
    if kind == "redshift":
        from s3rs_tui.warehouse.redshift import RedshiftWarehouse
        return RedshiftWarehouse(settings, store, notify=notify)
    from s3rs_tui.warehouse.duckdb import DuckDBWarehouse
    return DuckDBWarehouse(settings, store)
