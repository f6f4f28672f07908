"""`s3rs verify`: compare a table in MySQL and in the warehouse, and name the key ranges that differ."""

import typer

from s3rs_tui.cli.common import print_json, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.jobs.verify import CHUNK_KEYS, verify_against, verify_table
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.status.headless import NORMAL, QUIET, HeadlessLog


def verify(ctx: typer.Context,
           table: str = typer.Option(..., "--table", "-t", help="db.table (or table in [mysql] database)",
                                      autocompletion=table_names),
           chunk_size: int = typer.Option(CHUNK_KEYS, "--chunk-size", min=1,
                                          help="integer keys per compared chunk"),
           against: str | None = typer.Option(None, "--against", help="compare with this MySQL table "
                                              "instead of the warehouse (a restored copy), db.table"),
           json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
           quiet: bool = typer.Option(False, "--quiet", "-q", help="only the result")) -> None:
    """Row counts and checksums per key range in MySQL and the warehouse; exit 1 when they differ."""
    settings = settings_from(ctx)
    log = HeadlessLog(QUIET if quiet else NORMAL)
    result = (verify_against(settings, table, against, log, chunk_size) if against
              else verify_table(settings, table, log, chunk_size))
    if json_out:
        print_json(result.as_dict())
    else:
        typer.echo(f"{result.table}: MySQL {result.mysql_rows:,} rows, {result.target} "
                   f"{result.warehouse_rows:,} rows, {result.chunks} chunks, up to {result.up_to}")
        if result.pending:
            typer.echo(f"{result.table}: {result.pending} rows changed in MySQL after the watermark "
                       "(the next sync loads them)")
        for diff in result.ranges:
            typer.echo(f"differs: {diff.describe()}")
    if not result.agrees:
        raise S3rsError(result.summary())
    if not json_out:
        typer.echo(result.summary())
