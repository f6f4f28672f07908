"""Helpers for tests that drive the real `s3rs` command line and check what it stored.

- `run_cli(...)`: run `python -m s3rs_tui ...` in a subprocess, exactly as an operator would;
  `s3rs_command(...)` is that command line, for tests that start it in a terminal themselves.
- `wait_until(condition, ...)`: poll until something a subprocess does has happened.
- `require_tool(name)`: fail (never skip) a test whose terminal tool is not installed.
- `make_table(db, ...)`: a source table with deterministic rows, several per cursor second, whose
  id order differs from the cursor order (so a (timestamp, id) watermark is really exercised).
- `parquet_files(folder)` / `parquet_ids(folder)`: the Parquet files under a local folder store and
  the ids they hold.
- `table_ids(db, ...)`: the ids in the source table, optionally only those after a position, in
  the order a sync reads them; compare with `parquet_ids`.

They depend only on the `db` fixture of conftest.py (anything with `.execute` / `.executemany`).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

BASE_TIME = datetime(2024, 1, 1, 0, 0, 0)


def s3rs_command(*args, config=None) -> list[str]:
    """`python -m s3rs_tui [--config CONFIG] ARGS...` as an argument list."""
    return [sys.executable, "-m", "s3rs_tui", *(["--config", str(config)] if config else []),
            *[str(arg) for arg in args]]


def require_tool(name: str) -> None:
    """A test that needs `name` (tmux, screen) fails without it: a skip would let CI pass untested."""
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed: scripts/bootstrap.sh installs it", pytrace=False)


def wait_until(condition, timeout=60, what="condition", detail=lambda: "") -> None:
    """Poll `condition` until it holds; past `timeout` seconds fail, naming `what` and `detail()`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{detail()}")
        time.sleep(0.2)


def run_cli(*args, config=None, env=None, input=None, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    """Run `python -m s3rs_tui [--config CONFIG] ARGS...`; returns the CompletedProcess with text
    stdout/stderr. `env` is added to os.environ (conftest already put the AWS test keys there).
    stdin is `input` when given, else empty (never a terminal), so confirmations insist on --yes."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run(s3rs_command(*args, config=config), capture_output=True, text=True, env=environment,
                          timeout=timeout, input=input if input is not None else "", cwd=cwd)


def cursor_time(index: int, rows: int, per_second: int = 4, start: datetime = BASE_TIME) -> datetime:
    """The update_at `make_table` gives the row with id `index` (1-based)."""
    seconds = max(1, rows // per_second)
    return start + timedelta(seconds=index % seconds)


def make_table(db, name: str = "orders", rows: int = 1000, *, per_second: int = 4,
               start: datetime = BASE_TIME, primary_key: bool = True, cursor_column: str = "update_at",
               keyset_index: bool = True) -> str:
    """Create `name` in the test database and fill it with `rows` deterministic rows; returns `name`.

    Columns: id BIGINT UNSIGNED (primary key, AUTO_INCREMENT), <cursor_column> DATETIME NOT NULL,
    amount DECIMAL(18,4), note VARCHAR(64) (NULL for every 10th row), and an index
    (cursor_column, id). Row i (1..rows) is stamped `cursor_time(i, rows, per_second, start)`:
    `rows // per_second` distinct seconds, `per_second` rows each, ids interleaved across seconds.
    `primary_key=False` leaves id a plain NOT NULL column (for the "no primary key" error path);
    `cursor_column` renames the timestamp column (for the "no cursor column" error path).
    """
    key = "PRIMARY KEY AUTO_INCREMENT" if primary_key else "NOT NULL"
    index = f", KEY idx_{cursor_column}_id (`{cursor_column}`, id)" if keyset_index else ""
    db.execute(f"CREATE TABLE `{name}` (id BIGINT UNSIGNED {key}, `{cursor_column}` DATETIME NOT NULL, "
               f"amount DECIMAL(18,4), note VARCHAR(64){index})")
    data = [(i, cursor_time(i, rows, per_second, start).strftime("%Y-%m-%d %H:%M:%S"),
             Decimal(i) * Decimal("1.2500"), None if i % 10 == 0 else f"note {i}")
            for i in range(1, rows + 1)]
    if data:
        db.executemany(f"INSERT INTO `{name}` (id, `{cursor_column}`, amount, note) VALUES (%s, %s, %s, %s)",
                       data)
    return name


def table_ids(db, name: str = "orders", after: tuple | None = None,
              at_or_after: str | None = None) -> list[int]:
    """Ids in the source table in sync order (update_at, id): all of them, or only those after the
    position `after=(timestamp, id)`, or only those with update_at >= `at_or_after`."""
    sql, params = f"SELECT id FROM `{name}`", None
    if after is not None:
        sql += " WHERE update_at > %s OR (update_at = %s AND id > %s)"
        params = (after[0], after[0], after[1])
    elif at_or_after is not None:
        sql += " WHERE update_at >= %s"
        params = (at_or_after,)
    return [int(row[0]) for row in db.execute(sql + " ORDER BY update_at, id", params=params)]


def parquet_files(folder) -> list[Path]:
    """Every .parquet file under `folder` (recursively), in path order; [] if the folder is absent."""
    folder = Path(folder)
    return sorted(folder.rglob("*.parquet")) if folder.exists() else []


def parquet_ids(folder, column: str = "id") -> list[int]:
    """The `column` values of every Parquet file under `folder`, file by file in path order (for
    data files that is cursor order, so the list is in sync order)."""
    ids: list[int] = []
    for path in parquet_files(folder):
        ids.extend(int(value) for value in pq.read_table(path, columns=[column]).column(column).to_pylist())
    return ids


def killed_at_failpoint(config, point: str, tmp_path, *args) -> None:
    """`s3rs ARGS` run until it stops at fail point `point`, then SIGKILLed there: no `finally`,
    rollback or lock release runs, as when a machine dies."""
    marker, log = tmp_path / f"reached-{point}", tmp_path / f"killed-{point}.log"
    env = {**os.environ, "S3RS_FAILPOINT": point, "S3RS_FAILPOINT_FILE": str(marker)}
    with open(log, "w") as stderr:
        process = subprocess.Popen(s3rs_command(*args, config=config), env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_until(lambda: marker.exists() or process.poll() is not None, 120, f"fail point {point}")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert marker.exists(), f"the run ended (exit {process.returncode}) before {point}:\n{log.read_text()}"
