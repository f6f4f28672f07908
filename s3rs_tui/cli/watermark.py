"""`s3rs watermark get|set|reset|force-reset|list`.

Every change takes the table's lock for the moment of the write, so it is refused (exit 3) while a
run holds the table, and it can never race a run's own watermark commit.
"""


import typer

from s3rs_tui.cli.common import confirm, print_json, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.cli.examples import epilog
from s3rs_tui.jobs import watermark as ops
from s3rs_tui.runtime.errors import ConfigError, WatermarkError
from s3rs_tui.runtime.keys import Key, shown_key
from s3rs_tui.runtime.parsing import parse_timestamp
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import Watermark, WatermarkStore

app = typer.Typer(help="Show and change how far each table is backed up.", no_args_is_help=True,
                  epilog=epilog("watermark"))

TABLE = typer.Option(..., "--table", "-t", help="db.table (or table in [mysql] database)",
                     autocompletion=table_names)
YES = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")


def _state(ctx: typer.Context, table: str) -> ops.TableState:
    return ops.TableState(settings_from(ctx), table)


def _show(watermark: Watermark) -> None:
    for field, value in watermark.document().items():
        if field == "processed_s3_files":
            value = f"{len(value)} files"
        elif field == "ranges":  # a parallel first backfill: each range's position on a line
            value = "".join(f"\n  {n + 1}: {r['start_timestamp'] or 'the beginning'} to "
                            f"{r['end_timestamp'] or 'the bound'}, at "
                            f"{r['position_timestamp'] or 'its start'}, {r['rows']:,} rows"
                            f"{', done' if r['done'] else ''}" for n, r in enumerate(value))
        typer.echo(f"{field:28} {value}")


@app.command(epilog=epilog("watermark get"))
def get(ctx: typer.Context, table: str = TABLE,
        json_out: bool = typer.Option(False, "--json", help="print the document as JSON")) -> None:
    """Show a table's watermark."""
    state = _state(ctx, table)
    name, watermark = state.name, state.watermarks.get(state.name)
    if watermark is None:
        if json_out:
            print_json(None)
        else:
            typer.echo(f"{name}: no watermark yet (the next sync starts from the beginning)")
        return
    if json_out:
        print_json(watermark.document())
    else:
        _show(watermark)


@app.command("set", epilog=epilog("watermark set"))
def set_(ctx: typer.Context, table: str = TABLE,
         timestamp: str = typer.Option(..., "--timestamp", help="'YYYY-MM-DD HH:MM:SS[.ffffff]'"),
         id_: list[str] | None = typer.Option(None, "--id", help="last key already backed up at that "
                                                 "timestamp, one --id per key column in order; without it, "
                                                 "rows AT the timestamp are taken"),
         yes: bool = YES) -> None:
    """Move the watermark by hand: the next sync starts after (timestamp, id...)."""
    try:
        timestamp = parse_timestamp(timestamp)
    except ValueError as exc:
        raise ConfigError(f"--timestamp: {exc}") from None
    state = _state(ctx, table)
    key = ops.parse_key(id_)
    where = ops.describe_start(timestamp, key)
    confirm(f"Set the watermark of {state.name} so the next sync starts {where}?", yes)
    ops.set_position(state, timestamp, key)
    typer.echo(f"{state.name}: the next sync starts {where}")


@app.command(epilog=epilog("watermark reset"))
def reset(ctx: typer.Context, table: str = TABLE, yes: bool = YES) -> None:
    """Start the table over from the beginning, keeping a backup copy of the old watermark."""
    state = _state(ctx, table)
    state.watermarks.get(state.name)  # a corrupt watermark stops here: force-reset is the way for those
    confirm(f"Reset {state.name} so the next sync re-reads the whole table?", yes)
    backup = ops.reset(state)
    typer.echo(f"{state.name}: reset; the old watermark is kept at {backup or '(there was none)'}")


@app.command("force-reset", epilog=epilog("watermark force-reset"))
def force_reset(ctx: typer.Context, table: str = TABLE, yes: bool = YES) -> None:
    """Overwrite the watermark (even a corrupt one) with a fresh one; no backup, no recovery."""
    state = _state(ctx, table)
    confirm(f"Force-reset {state.name}? The old watermark is discarded without a backup.", yes)
    ops.force_reset(state)
    typer.echo(f"{state.name}: force-reset; the next sync starts from the beginning")


def _shown_id(row: dict) -> Key:
    """A `list` row's key as `watermark get` shows it (corrupt rows have none)."""
    key, one = row.get("last_mysql_data_key"), row.get("last_mysql_data_id")
    return shown_key(tuple(key) if key is not None else None if one is None else (one,))


@app.command("list", epilog=epilog("watermark list"))
def list_(ctx: typer.Context,
          json_out: bool = typer.Option(False, "--json", help="print the watermarks as JSON")) -> None:
    """Every table that has a watermark in the store."""
    settings = settings_from(ctx)
    watermarks = WatermarkStore(open_store(settings))
    rows = []
    for name in watermarks.tables():
        try:
            watermark = watermarks.get(name)
        except WatermarkError as exc:
            rows.append({"table_name": name, "mysql_status": "corrupt", "error": str(exc)})
            continue
        if watermark is not None:  # (None: deleted since the listing)
            rows.append(watermark.document())
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("no watermarks in the store yet")
    for row in rows:
        typer.echo(f"{row['table_name']:40} {row.get('mysql_status', ''):12} "
                   f"{row.get('last_mysql_data_timestamp') or '-':26} {_shown_id(row)!s:>12} "
                   f"{row.get('mysql_rows_extracted', 0):>14,} rows {row.get('s3_file_count', 0):>6} files")
