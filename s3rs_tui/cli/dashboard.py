"""`s3rs ui` (also plain `s3rs` on a terminal) and `s3rs watch`: the Textual dashboard.

Textual is imported only when a dashboard opens, so the headless commands start fast.
"""

import typer

from s3rs_tui.cli.common import on_terminal, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.runtime.errors import ConfigError

TABLES = typer.Option([], "--table", "-t", help="db.table (or table in [mysql] database); repeatable",
                      autocompletion=table_names)


def _need_terminal(what: str) -> None:
    if not on_terminal():
        raise ConfigError(f"{what} needs a terminal (stdin, stdout and stderr); without one use "
                          "`s3rs sync --no-ui` for log lines")


def ui(ctx: typer.Context, tables: list[str] = TABLES) -> None:
    """Open the dashboard on the tables of the config (and -t tables): start, pause, stop runs,
    change watermarks, clean up files."""
    _need_terminal("the dashboard")
    from s3rs_tui.tui.launch import run_dashboard  # noqa: PLC0415 - Textual loads only for a dashboard

    failure = run_dashboard(settings_from(ctx), tables)
    if failure is not None:
        raise failure


def watch(ctx: typer.Context, tables: list[str] = TABLES) -> None:
    """Follow runs going on in other processes (read-only), from the status snapshots they write."""
    _need_terminal("s3rs watch")
    from s3rs_tui.tui.launch import run_watch  # noqa: PLC0415 - Textual loads only for a dashboard

    run_watch(settings_from(ctx), tables)
