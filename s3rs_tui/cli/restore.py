"""`s3rs restore`: a table back into MySQL (or Parquet files) from its stored history, as of a moment."""

from pathlib import Path

import typer

from s3rs_tui.cli.common import confirm, print_json, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.jobs.restore import DUCKDB_MEMORY_MB, Restore, RestoreOptions, RestorePlan
from s3rs_tui.runtime.control import RunControl, stop_on_signals
from s3rs_tui.runtime.events import Notice
from s3rs_tui.status.headless import NORMAL, QUIET, HeadlessLog


def restore(
    ctx: typer.Context,
    table: str = typer.Option(..., "--table", "-t", help="the backed-up table, db.table (or table in "
                              "[mysql] database)", autocompletion=table_names),
    into: str | None = typer.Option(None, "--into", help="the MySQL table to create and fill, db.table"),
    to_parquet: Path | None = typer.Option(None, "--to-parquet", help="write Parquet files into this folder "
                                           "instead of MySQL"),
    as_of: str | None = typer.Option(None, "--as-of", help="'YYYY-MM-DD HH:MM:SS[.ffffff]' in the cursor "
                                     "column's time (default: everything stored)"),
    key_from: list[str] | None = typer.Option(None, "--where-key-from", help="only keys >= this; a key of "
                                              "several columns: once per column, in the key's order"),
    key_to: list[str] | None = typer.Option(None, "--where-key-to", help="only keys <= this (as "
                                            "--where-key-from)"),
    replace: bool = typer.Option(False, "--replace", help="drop a non-empty target (or rewrite the folder's "
                                 "files) and restore into it"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be read and written; change "
                                 "nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask before dropping a table"),
    batch_size: int = typer.Option(50_000, "--batch-size", min=1, help="rows per committed batch"),
    memory_mb: int = typer.Option(DUCKDB_MEMORY_MB, "--memory-mb", min=64, help="DuckDB's memory; it spills "
                                  "to disk beyond"),
    insert: bool = typer.Option(False, "--insert", help="multi-row INSERTs instead of LOAD DATA LOCAL "
                                "INFILE"),
    work_dir: Path | None = typer.Option(None, "--work-dir", help="for the files' local copies and "
                                         "DuckDB's spill (default: $TMPDIR)"),
    no_ui: bool = typer.Option(False, "--no-ui", help="log lines (restore always runs headless here)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the final line"),
    json_out: bool = typer.Option(False, "--json", help="print a final JSON summary on stdout"),
) -> None:
    """Restore a table as it was at a moment: each key's newest stored version at or before --as-of,
    without the keys deleted by then. Rerun the same command after any stop to go on."""
    settings = settings_from(ctx)
    log = HeadlessLog(QUIET if quiet else NORMAL)
    control = RunControl()
    options = RestoreOptions(table=table, into=into, to_parquet=to_parquet, as_of=as_of, key_from=key_from,
                             key_to=key_to, replace=replace, batch_rows=batch_size, memory_mb=memory_mb,
                             inserts=insert, work_dir=work_dir)
    job = Restore(settings, options, log, control)
    plan = job.plan()
    for message in plan.notices:
        log(Notice(table=plan.source, message=message))
    if dry_run:
        _show_plan(plan, json_out)
        return
    _confirm(plan, yes)
    with stop_on_signals(control, lambda message: log(Notice(table=plan.source, message=message))):
        result = job.run(plan)
    if json_out:
        print_json(result.as_dict())


def _confirm(plan: RestorePlan, yes: bool) -> None:
    if plan.resume is not None:
        return
    if plan.target.lower() == plan.source.lower():
        confirm(f"Replace the source table {plan.source} itself with its state as of "
                f"{plan.as_of or 'the last backup'}?", yes)
    elif plan.target_rows:
        confirm(f"Drop {plan.target} (it holds rows) and restore {plan.source} into it?", yes)


def _show_plan(plan: RestorePlan, json_out: bool) -> None:
    if json_out:
        print_json({"dry_run": True, **plan.as_dict()})
        return
    document = plan.as_dict()
    resume = f"; goes on after {plan.resume.rows:,} rows already restored" if plan.resume else ""
    typer.echo(f"{plan.source} as of {plan.as_of or 'the last backup'} -> {plan.target}: "
               f"{document['part_files']} part files, {document['fix_files']} fix files, "
               f"{document['deletion_files']} deletion files, {plan.bytes:,} bytes; definition "
               f"{document['definition'] or 'none stored (built from the files)'}{resume} (nothing written)")
