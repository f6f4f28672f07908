"""`s3rs watermark get|set|reset|force-reset|list`.

Every change takes the table's lock for the moment of the write, so it is refused (exit 3) while a
run holds the table, and it can never race a run's own watermark commit.
"""

from dataclasses import asdict
from typing import Optional

import typer

from s3rs_tui.cli.common import confirm, print_json, settings_from
from s3rs_tui.errors import ConfigError, WatermarkError
from s3rs_tui.parsing import parse_timestamp
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import Watermark, WatermarkStore

app = typer.Typer(help="Show and change how far each table is backed up.", no_args_is_help=True)

TABLE = typer.Option(..., "--table", "-t", help="db.table (or table in [mysql] database)")
YES = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")


def _open(ctx: typer.Context, table: str):
    settings = settings_from(ctx)
    database, name, _ = settings.table(table)
    store = open_store(settings)
    return settings, f"{database}.{name}", store, WatermarkStore(store)


def _locked(settings, store, table: str, purpose: str) -> TableLock:
    return TableLock(store, table, purpose=purpose, stale_seconds=settings.backup.lock_stale_seconds)


def _show(watermark: Watermark) -> None:
    for field, value in asdict(watermark).items():
        if field == "processed_s3_files":
            value = f"{len(value)} files"
        typer.echo(f"{field:28} {value}")


@app.command()
def get(ctx: typer.Context, table: str = TABLE,
        json_out: bool = typer.Option(False, "--json", help="print the document as JSON")) -> None:
    """Show a table's watermark."""
    _, name, _, watermarks = _open(ctx, table)
    watermark = watermarks.get(name)
    if watermark is None:
        if json_out:
            print_json(None)
        else:
            typer.echo(f"{name}: no watermark yet (the next sync starts from the beginning)")
        return
    if json_out:
        print_json(asdict(watermark))
    else:
        _show(watermark)


@app.command("set")
def set_(ctx: typer.Context, table: str = TABLE,
         timestamp: str = typer.Option(..., "--timestamp", help="'YYYY-MM-DD HH:MM:SS[.ffffff]'"),
         id_: Optional[str] = typer.Option(None, "--id", help="last key already backed up at that "
                                           "timestamp; without it, rows AT the timestamp are taken"),
         yes: bool = YES) -> None:
    """Move the watermark by hand: the next sync starts after (timestamp, id)."""
    try:
        timestamp = parse_timestamp(timestamp)
    except ValueError as exc:
        raise ConfigError(f"--timestamp: {exc}") from None
    settings, name, store, watermarks = _open(ctx, table)
    key = _parse_key(id_)
    where = f"after ({timestamp}, {key})" if key is not None else f"at {timestamp} (inclusive)"
    confirm(f"Set the watermark of {name} so the next sync starts {where}?", yes)
    with _locked(settings, store, name, "watermark set"):
        try:
            watermark = watermarks.get_or_new(name)
        except WatermarkError:
            watermarks.backup(name)
            watermark = Watermark(table_name=name)
        watermark.last_mysql_data_timestamp, watermark.last_mysql_data_id = timestamp, key
        watermark.mysql_status = "pending"
        watermarks.save(watermark)
    typer.echo(f"{name}: the next sync starts {where}")


def _parse_key(text: str | None) -> object:
    """Integer keys stay integers (the engine compares them as such); other keys stay text."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        raise ConfigError("--id: must not be empty")
    return int(stripped) if stripped.lstrip("-").isdigit() else stripped


@app.command()
def reset(ctx: typer.Context, table: str = TABLE, yes: bool = YES) -> None:
    """Start the table over from the beginning, keeping a backup copy of the old watermark."""
    settings, name, store, watermarks = _open(ctx, table)
    watermarks.get(name)  # a corrupt watermark stops here: force-reset is the way for those
    confirm(f"Reset {name} so the next sync re-reads the whole table?", yes)
    with _locked(settings, store, name, "watermark reset"):
        backup = watermarks.backup(name)
        watermarks.save(Watermark(table_name=name))
    typer.echo(f"{name}: reset; the old watermark is kept at {backup or '(there was none)'}")


@app.command("force-reset")
def force_reset(ctx: typer.Context, table: str = TABLE, yes: bool = YES) -> None:
    """Overwrite the watermark (even a corrupt one) with a fresh one; no backup, no recovery."""
    settings, name, store, watermarks = _open(ctx, table)
    confirm(f"Force-reset {name}? The old watermark is discarded without a backup.", yes)
    with _locked(settings, store, name, "watermark force-reset"):
        watermarks.save(Watermark(table_name=name))
    typer.echo(f"{name}: force-reset; the next sync starts from the beginning")


@app.command("list")
def list_(ctx: typer.Context,
          json_out: bool = typer.Option(False, "--json", help="print the watermarks as JSON")) -> None:
    """Every table that has a watermark in the store."""
    settings = settings_from(ctx)
    watermarks = WatermarkStore(open_store(settings))
    rows = []
    for name in watermarks.tables():
        try:
            rows.append(asdict(watermarks.get(name)))
        except WatermarkError as exc:
            rows.append({"table_name": name, "mysql_status": "corrupt", "error": str(exc)})
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("no watermarks in the store yet")
    for row in rows:
        typer.echo(f"{row['table_name']:40} {row.get('mysql_status', ''):12} "
                   f"{row.get('last_mysql_data_timestamp') or '-':26} {row.get('last_mysql_data_id')!s:>12} "
                   f"{row.get('mysql_rows_extracted', 0):>14,} rows {row.get('s3_file_count', 0):>6} files")
