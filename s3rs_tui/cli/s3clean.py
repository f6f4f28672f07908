"""`s3rs s3clean list|clean`: see and delete a table's data files in the store.

Files not yet loaded into the warehouse are the backup itself: `clean` keeps them unless --force.
"""

import sys
from datetime import datetime, timezone
from typing import Optional

import typer

from s3rs_tui.cli.common import confirm, human_bytes, print_json, settings_from
from s3rs_tui.errors import ConfigError
from s3rs_tui.engine.parquet import table_prefix
from s3rs_tui.parsing import parse_duration
from s3rs_tui.store import ObjectInfo, open_store
from s3rs_tui.store.watermark import WatermarkStore

app = typer.Typer(help="List and delete a table's data files in the store.", no_args_is_help=True)

TABLE = typer.Option(..., "--table", "-t", help="db.table (or table in [mysql] database)")
OLDER_THAN = typer.Option(None, "--older-than", help="only files modified before this long ago: 30m, 12h, 7d")


def _files(ctx: typer.Context, table: str, older_than: str | None):
    """(store, table name, [(file, loaded)]) for the table's files older than the cut-off."""
    settings = settings_from(ctx)
    database, name, _ = settings.table(table)
    full_name = f"{database}.{name}"
    cutoff = None
    if older_than is not None:
        try:
            cutoff = datetime.now(timezone.utc) - parse_duration(older_than)
        except ValueError as exc:
            raise ConfigError(f"--older-than: {exc}") from None
    store = open_store(settings)
    watermark = WatermarkStore(store).get(full_name)
    loaded = set(watermark.processed_s3_files) if watermark else set()
    files = [(info, info.key in loaded) for info in store.list(table_prefix(full_name))
             if cutoff is None or info.modified < cutoff]
    return store, full_name, files


def _row(info: ObjectInfo, loaded: bool) -> dict:
    return {"key": info.key, "size": info.size, "modified": info.modified.isoformat(), "loaded": loaded}


@app.command("list")
def list_(ctx: typer.Context, table: str = TABLE, older_than: Optional[str] = OLDER_THAN,
          json_out: bool = typer.Option(False, "--json", help="print the files as JSON")) -> None:
    """The table's data files: key, size, modified, loaded into the warehouse or not."""
    store, name, files = _files(ctx, table, older_than)
    if json_out:
        print_json([_row(info, loaded) for info, loaded in files])
        return
    for info, loaded in files:
        typer.echo(f"{info.key}  {human_bytes(info.size):>10}  {info.modified:%Y-%m-%d %H:%M:%S}  "
                   f"{'loaded' if loaded else 'not loaded'}")
    total = sum(info.size for info, _ in files)
    typer.echo(f"{name}: {len(files)} files, {human_bytes(total)} in {store.url}", err=True)


@app.command()
def clean(ctx: typer.Context, table: str = TABLE, older_than: Optional[str] = OLDER_THAN,
          dry_run: bool = typer.Option(False, "--dry-run", help="show what would go, delete nothing"),
          force: bool = typer.Option(False, "--force", help="also delete files not loaded yet"),
          yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
    """Delete the table's files (older than --older-than); unloaded files only with --force."""
    store, name, files = _files(ctx, table, older_than)
    doomed = [info for info, loaded in files if loaded or force]
    kept = len(files) - len(doomed)
    size = sum(info.size for info in doomed)
    summary = f"{name}: {len(doomed)} files ({human_bytes(size)}) to delete"
    if kept:
        summary += f", {kept} not yet loaded into the warehouse kept (use --force to delete them too)"
    typer.echo(summary)
    if dry_run or not doomed:
        for info in doomed:
            typer.echo(f"would delete {info.key}")
        return
    confirm(f"Delete {len(doomed)} files ({human_bytes(size)}) of {name} from {store.url}?", yes)
    with typer.progressbar(doomed, label="deleting", file=sys.stderr) as progress:
        for info in progress:
            store.delete(info.key)
    typer.echo(f"{name}: deleted {len(doomed)} files ({human_bytes(size)})")
