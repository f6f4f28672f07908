"""`s3rs reconcile`: what a cursor cannot see (deletes, changes that left the cursor alone, rows
written behind the watermark), found by checksums and stored, then loaded, so the backup is exact."""


import typer

from s3rs_tui.cli.common import on_terminal, print_json, settings_from
from s3rs_tui.cli.sync import ALL_TABLES_OPTION, TABLE_OPTION, raise_worst, table_list
from s3rs_tui.jobs.checksums import CHUNK_KEYS
from s3rs_tui.jobs.reconcile import ReconcileOptions
from s3rs_tui.jobs.tables import Steps, TableJobs
from s3rs_tui.runtime.control import RunControl, stop_on_signals
from s3rs_tui.runtime.events import Notice, tee
from s3rs_tui.status.control_file import ControlFileWatcher
from s3rs_tui.status.headless import DEBUG, NORMAL, QUIET, HeadlessLog
from s3rs_tui.status.snapshot import SnapshotWriter
from s3rs_tui.store import open_store
from s3rs_tui.warehouse import NO_WAREHOUSE, check_warehouse


def reconcile(
    ctx: typer.Context,
    tables: list[str] | None = TABLE_OPTION,
    all_tables: bool = ALL_TABLES_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="compare and report the keys; store nothing"),
    chunk_size: int = typer.Option(CHUNK_KEYS, "--chunk-size", min=1, help="integer keys per compared range"),
    break_lock: bool = typer.Option(False, "--break-lock", help="take the table even if a lock is held"),
    no_ui: bool = typer.Option(False, "--no-ui", help="log lines instead of the dashboard"),
    debug: bool = typer.Option(False, "--debug", help="more detail in the log"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the final line"),
    json_out: bool = typer.Option(False, "--json", help="print a final JSON summary on stdout"),
) -> None:
    """Compare MySQL with the newest backup (the warehouse, else the store) by checksums over all
    columns; store deleted keys and MySQL's current rows of changed ones, and load them."""
    settings = settings_from(ctx)
    names = table_list(settings, tables or [], all_tables)
    if settings.warehouse.kind != NO_WAREHOUSE:
        check_warehouse(settings, open_store(settings))
    log = HeadlessLog(DEBUG if debug else QUIET if quiet else NORMAL)
    options = ReconcileOptions(dry_run=dry_run, chunk_keys=chunk_size, break_lock=break_lock)
    steps = Steps(extract=False, reconcile=True)
    if not no_ui and not json_out and not dry_run and on_terminal():
        from s3rs_tui.tui.launch import run_dashboard  # noqa: PLC0415 - Textual loads only for a dashboard

        failure = run_dashboard(settings, names, start_workers=1, steps=steps, verbosity=log.verbosity,
                                reconcile=options)
        if failure is not None:
            raise failure
        return
    control = RunControl()
    sink = tee(log, SnapshotWriter(formatter=log.format))
    jobs = TableJobs(settings, sink, control, steps=steps, reconcile=options)
    with stop_on_signals(control, lambda message: log(Notice(table="-", message=message, level="warning"))), \
            ControlFileWatcher(control, names):
        outcomes = jobs.run_many(names, 1)
    if json_out:
        print_json({"status": "success" if all(o.status == "success" for o in outcomes) else "failed",
                    "tables": [{**(o.reconciliation.as_dict() if o.reconciliation else {"table": o.table}),
                                "status": o.status, "error": str(o.error or "")} for o in outcomes]})
    else:
        for outcome in outcomes:
            if outcome.reconciliation:
                typer.echo(outcome.reconciliation.summary())
    raise_worst(names, outcomes)
