"""Tab completion of table names: the `[tables."db.table"]` sections of the config in force.

It runs on every Tab press, so it only reads the settings file (never MySQL, the store or the
warehouse) and stays silent: a missing or broken config completes nothing rather than print an
error into the operator's command line.
"""

from pathlib import Path

import typer

from s3rs_tui.runtime.config import load_settings


def table_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The config's tables whose `db.table` starts with what is typed, or whose bare `table` does
    when it is in `[mysql] database` (the only place a bare name is valid input; Typer keeps only
    candidates that start with the typed word anyway)."""
    config = ctx.find_root().params.get("config")
    try:
        settings = load_settings(str(Path(config).expanduser()) if config else None)
    except Exception:  # noqa: BLE001 - a Tab press must never print an error or a traceback
        return []
    matches = []
    for name in settings.tables:
        database, _, table = name.partition(".")
        if name.startswith(incomplete):
            matches.append(name)
        elif database == settings.mysql.database and table.startswith(incomplete):
            matches.append(table)
    return matches
