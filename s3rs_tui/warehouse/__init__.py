"""Loading the stored Parquet files into a warehouse, and the registry of warehouse kinds.

Each kind is a module of `s3rs_tui.warehouse.kinds` named as `[warehouse] kind` names it, exporting
its `Warehouse` subclass as ADAPTER. A kind's module (and its driver) is imported only when that
kind is configured.
"""

import importlib
import pkgutil

from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.tunnel import Notify
from s3rs_tui.store import ObjectStore
from s3rs_tui.warehouse import kinds
from s3rs_tui.warehouse.base import Warehouse

NO_WAREHOUSE = "none"


def known_kinds() -> list[str]:
    """The kinds there are a module for, without importing any of them."""
    return sorted(module.name for module in pkgutil.iter_modules(kinds.__path__))


def adapter_class(kind: str) -> type[Warehouse]:
    """The Warehouse subclass of `kind` (ConfigError naming the known kinds when there is none)."""
    if kind not in known_kinds():
        raise ConfigError(f"config: warehouse.kind {kind!r} is not a warehouse kind: one of "
                          f"{', '.join([NO_WAREHOUSE, *known_kinds()])}")
    return importlib.import_module(f"{kinds.__name__}.{kind}").ADAPTER


def check_config(settings: Settings) -> None:
    """The configured kind exists and accepts the settings (ConfigError, exit 2), when they are read."""
    if settings.warehouse.kind != NO_WAREHOUSE:
        adapter_class(settings.warehouse.kind).check_config(settings)


def require_warehouse(settings: Settings) -> type[Warehouse]:
    if settings.warehouse.kind == NO_WAREHOUSE:
        raise ConfigError("no warehouse configured: set [warehouse] kind to one of "
                          + ", ".join(known_kinds()))
    return adapter_class(settings.warehouse.kind)


def check_warehouse(settings: Settings, store: ObjectStore) -> None:
    """Refuse settings no load can work with before anything is done (ConfigError, exit 2)."""
    adapter = require_warehouse(settings)
    adapter.check_config(settings)
    adapter.check_store(settings, store)


def open_warehouse(settings: Settings, store: ObjectStore, notify: Notify | None = None) -> Warehouse:
    """Connect to the configured warehouse; `notify` hears about a tunnel rebuilt on the way."""
    return require_warehouse(settings)(settings, store, notify=notify)
