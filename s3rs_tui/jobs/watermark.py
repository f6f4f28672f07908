"""Watermark changes by hand: set, reset (with a backup), force-reset; and how many rows a position
leaves to back up.

Every change takes the table's lock for the moment of the write, so it is refused (exit 3,
TableLockedError) while a run holds the table, and it can never race a run's own commit.
"""

from datetime import datetime

from s3rs_tui.engine.extract import typed_key
from s3rs_tui.engine.keyset import Position, count_range, database_now, upper_bound
from s3rs_tui.engine.mysql import classify, close_quietly, connect
from s3rs_tui.engine.table import describe_table
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError, WatermarkError
from s3rs_tui.runtime.keys import KeyParts
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import Watermark, WatermarkStore


class TableState:
    """A table's watermark store and lock, addressed by the name the operator typed."""

    def __init__(self, settings: Settings, table: str):
        database, name, self.spec = settings.table(table)
        self.settings, self.name = settings, f"{database}.{name}"
        self.store = open_store(settings)
        self.watermarks = WatermarkStore(self.store)

    def lock(self, purpose: str) -> TableLock:
        return TableLock(self.store, self.name, purpose=purpose,
                         stale_seconds=self.settings.backup.lock_stale_seconds)


def parse_key(parts: list[str] | None) -> KeyParts | None:
    """`--id` values, one per key column: integers stay integers (the engine compares them as
    such), other values stay text; the run types each as its column is. None or [] = no key."""
    if not parts:
        return None
    key = []
    for text in parts:
        stripped = text.strip()
        if not stripped:
            raise ConfigError("--id: must not be empty")
        # An integer only when that is its exact spelling: "007" may be a VARCHAR key's value.
        number = int(stripped) if stripped.lstrip("-").isdigit() else None
        key.append(number if number is not None and str(number) == stripped else stripped)
    return tuple(key)


def describe_start(timestamp: str, key: KeyParts | None) -> str:
    """Where the next sync starts, in words."""
    if key is None:
        return f"at {timestamp} (inclusive)"
    return f"after ({timestamp}, {', '.join(str(value) for value in key)})"


def set_position(state: TableState, timestamp: str, key: KeyParts | None) -> None:
    """The next sync starts after (timestamp, key), or at timestamp when key is None. A corrupt
    watermark is backed up first, then replaced. A key of the wrong length for the key the
    watermark was made with is refused."""
    with state.lock("watermark set"):
        try:
            watermark = state.watermarks.get_or_new(state.name)
        except WatermarkError:
            state.watermarks.backup(state.name)
            watermark = Watermark(table_name=state.name)
        watermark.refuse_open_ranges("watermark set")
        names = watermark.key_names
        if key is not None and names is not None and len(key) != len(names):
            raise ConfigError(f"--id: {state.name} has the key ({', '.join(names) or 'none'}): give "
                              f"{len(names)} --id values, one per key column, in that order")
        watermark.move_to(timestamp, key)
        watermark.mysql_status = "pending"
        state.watermarks.save(watermark)


def reset(state: TableState) -> str | None:
    """Back to the beginning, keeping a copy of the old watermark; returns the backup's key.
    A corrupt watermark is refused (WatermarkError): force_reset is the way for those."""
    state.watermarks.get(state.name)
    with state.lock("watermark reset"):
        backup = state.watermarks.backup(state.name)
        state.watermarks.save(Watermark(table_name=state.name))
    return backup


def force_reset(state: TableState) -> None:
    """Overwrite the watermark (even a corrupt one) with a fresh one; no backup."""
    with state.lock("watermark force-reset"):
        state.watermarks.save(Watermark(table_name=state.name))


def rows_after(state: TableState, timestamp: str, key: KeyParts | None) -> int:
    """MySQL's estimate (EXPLAIN, instant even on 100M rows) of the rows a sync starting at this
    position would read now."""
    settings = state.settings
    conn = connect(settings, settings.mysql.connect_timeout)
    try:
        database, table = state.name.split(".")
        info = describe_table(conn, database, table, state.spec)
        now = database_now(conn, info, state.spec.cursor_timezone)
        bound = upper_bound(now, info, settings.backup.safety_lag_seconds)
        start = Position(timestamp, None if key is None else typed_key(info, key))
        return count_range(conn, info, start, bound)
    except ValueError as exc:
        raise ConfigError(f"--id: {exc}") from None
    except Exception as exc:  # broad: driver errors become one-line S3rsErrors
        raise classify(exc, f"estimating the rows of {state.name}") from exc
    finally:
        close_quietly(conn)


def watermark_lags(settings: Settings, tables: list[str]) -> dict[str, dict]:
    """Each table's watermark and how far its cursor time is behind now, as the cursor column sees
    time (its zone, the server's clock): `lag_seconds`, None before the first stored file; a table
    that cannot be read gets `error` instead."""
    store = WatermarkStore(open_store(settings))
    conn = connect(settings, settings.mysql.connect_timeout)
    found: dict[str, dict] = {}
    try:
        for name in tables:
            database, table, spec = settings.table(name)
            entry: dict = found.setdefault(f"{database}.{table}", {})
            try:
                watermark = store.get(f"{database}.{table}")
                position = watermark.last_mysql_data_timestamp if watermark else None
                entry.update(watermark_timestamp=position, lag_seconds=None,
                             watermark_id=watermark.last_mysql_data_id if watermark else None)
                if position:
                    info = describe_table(conn, database, table, spec)
                    now = database_now(conn, info, spec.cursor_timezone)
                    lag = datetime.fromisoformat(now) - datetime.fromisoformat(position)
                    entry["lag_seconds"] = round(lag.total_seconds(), 3)
            except Exception as exc:  # noqa: BLE001 - one table's problem is its line, not the report's end
                entry["error"] = str(classify(exc, f"reading the watermark lag of {database}.{table}"))
    finally:
        close_quietly(conn)
    return found
