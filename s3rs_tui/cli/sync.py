"""`s3rs sync`: back up tables to Parquet files in the store, then load them into the warehouse."""

from dataclasses import asdict

import typer

from s3rs_tui.cli.common import on_terminal, print_json, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.engine.plan import plan_notices
from s3rs_tui.engine.sync import SyncOptions, TableSync
from s3rs_tui.jobs.tables import Steps, TableJobs, TableOutcome
from s3rs_tui.runtime.control import RunControl, stop_on_signals
from s3rs_tui.runtime.errors import ConfigError, S3rsError
from s3rs_tui.runtime.events import Notice, tee
from s3rs_tui.status.control_file import ControlFileWatcher
from s3rs_tui.status.headless import DEBUG, NORMAL, QUIET, HeadlessLog
from s3rs_tui.status.monitoring import monitoring
from s3rs_tui.status.snapshot import SnapshotWriter
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import shown_key
from s3rs_tui.warehouse import check_warehouse

STRATEGIES = ("parallel", "sequential")
FAILED = ("failed", "differs")  # outcomes that exit 1 (differs: --verify-data found differences)


# -t and --all, as every command that takes several tables spells them
TABLE_OPTION = typer.Option(None, "--table", "-t", help="db.table (or table in [mysql] database); repeatable",
                            autocompletion=table_names)
ALL_TABLES_OPTION = typer.Option(False, "--all", help="every table in the config's [tables.*]")

def sync(
    ctx: typer.Context,
    tables: list[str] | None = TABLE_OPTION,
    all_tables: bool = ALL_TABLES_OPTION,
    strategy: str = typer.Option("parallel", "--strategy", "-s",
                                 help="several tables: parallel (up to max_workers at once) or sequential"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="take at most N rows this run"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="rows per page read from MySQL"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the plan, write nothing"),
    backup_only: bool = typer.Option(False, "--backup-only", help="stop once the files are stored"),
    load_only: bool = typer.Option(False, "--load-only", "--redshift-only",
                                   help="only load stored files not loaded yet into the warehouse"),
    verify_data: bool = typer.Option(False, "--verify-data", help="after loading, compare MySQL and the "
                                     "warehouse (like `s3rs verify`)"),
    break_lock: bool = typer.Option(False, "--break-lock", help="take the table even if a lock is held"),
    no_ui: bool = typer.Option(False, "--no-ui", help="log lines instead of the dashboard"),
    debug: bool = typer.Option(False, "--debug", help="more detail in the log"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings and the final line"),
    json_out: bool = typer.Option(False, "--json", help="print a final JSON summary on stdout"),
) -> None:
    """Back up tables: every row after the watermark, up to now minus the safety lag."""
    settings = settings_from(ctx)
    names = table_list(settings, tables or [], all_tables)
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: must be one of {', '.join(STRATEGIES)}")
    if batch_size is not None:
        settings.override("backup.batch_size", batch_size)
    log = HeadlessLog(DEBUG if debug else QUIET if quiet else NORMAL)
    load = _check_steps(settings.warehouse.kind, backup_only, load_only, verify_data)
    if load:
        check_warehouse(settings, open_store(settings))
    if dry_run:
        _dry_run(settings, names, log, json_out)
        return
    options = SyncOptions(limit=limit, break_lock=break_lock, backup_strategy=strategy)
    steps = Steps(extract=not load_only, load=load, verify=verify_data)
    workers = settings.backup.max_workers if strategy == "parallel" else 1
    if not no_ui and not json_out and on_terminal():
        from s3rs_tui.tui.launch import run_dashboard  # noqa: PLC0415 - Textual loads only for a dashboard

        failure = run_dashboard(settings, names, start_workers=workers, options=options, steps=steps,
                                verbosity=log.verbosity)
        if failure is not None:
            raise failure
        return
    control = RunControl()
    with monitoring(settings, log.write) as monitors:  # [metrics] and [notify]
        sink = tee(log, SnapshotWriter(formatter=log.format), *monitors)  # the snapshot: `s3rs watch`
        jobs = TableJobs(settings, sink, control, options, steps)
        def announce(message: str) -> None:
            log(Notice(table="-", message=message, level="warning"))

        with stop_on_signals(control, announce), \
                ControlFileWatcher(control, names):  # `s3rs watch` may pause or stop this run
            outcomes = jobs.run_many(names, workers)
    if len(names) > 1:
        _print_summary(outcomes)
    if json_out:
        print_json(_summary_document(outcomes))
    raise_worst(names, outcomes)


def table_list(settings, tables: list[str], all_tables: bool) -> list[str]:
    if all_tables and tables:
        raise ConfigError("give tables with -t or use --all, not both")
    if all_tables:
        if not settings.tables:
            raise ConfigError("--all: the config has no [tables.\"db.table\"] sections")
        return list(settings.tables)
    if not tables:
        raise ConfigError("which tables? give --table/-t db.table (repeatable) or --all")
    return [".".join(settings.table(name)[:2]) for name in dict.fromkeys(tables)]


def _print_summary(outcomes: list[TableOutcome]) -> None:
    typer.echo(f"{'table':40} {'status':12} {'rows':>12} {'files':>6} {'seconds':>8}", err=True)
    for outcome in outcomes:
        typer.echo(f"{outcome.table:40} {outcome.status:12} {outcome.rows:>12,} {outcome.files:>6} "
                   f"{outcome.seconds:>8.1f}", err=True)


def _summary_document(outcomes: list[TableOutcome]) -> dict:
    failed = [o for o in outcomes if o.status in (*FAILED, "interrupted")]
    return {"status": "failed" if failed else "success",
            "rows": sum(o.rows for o in outcomes), "files": sum(o.files for o in outcomes),
            "bytes": sum(o.extracted.bytes for o in outcomes if o.extracted),
            "tables": [{**(asdict(o.extracted) if o.extracted else {"table": o.table}),
                        "status": o.status, "seconds": o.seconds,
                        "error": str(o.error) if o.error else ""} for o in outcomes],
            "loads": [asdict(o.loaded) for o in outcomes if o.loaded],
            "verifications": [o.verification.as_dict() for o in outcomes if o.verification],
            "error": str(failed[0].error) if failed else None}


def raise_worst(names: list[str], outcomes: list[TableOutcome]) -> None:
    """130 if stopped, 3 if the only table was locked, 2 for bad input, else 1 if any failed."""
    stopped = [o.error for o in outcomes if o.status == "interrupted" and o.error]
    if stopped:
        raise stopped[0]
    failed = [o for o in outcomes if o.status in FAILED]
    if not failed:
        return
    if len(failed) == 1 and len(names) == 1 and failed[0].error:
        raise failed[0].error
    raise S3rsError(f"{len(failed)} of {len(names)} tables failed: "
                    + "; ".join(f"{o.table}: {o.error}" for o in failed))


def _check_steps(kind: str, backup_only: bool, load_only: bool, verify_data: bool) -> bool:
    """Refuse contradictory flags; True when this run loads into the warehouse."""
    if backup_only and (load_only or verify_data):
        raise ConfigError("--backup-only stops before the warehouse: it cannot go with "
                          f"{'--load-only' if load_only else '--verify-data'}")
    if kind == "none" and (load_only or verify_data):
        raise ConfigError(f"{'--load-only' if load_only else '--verify-data'} needs a warehouse: set "
                          "[warehouse] kind (redshift, postgres or duckdb)")
    return kind != "none" and not backup_only


def _dry_run(settings, tables: list[str], log: HeadlessLog, json_out: bool) -> None:
    batch = settings.backup.batch_size
    plans = []
    for name in tables:
        info, watermark, plan = TableSync(settings, name, log, RunControl()).dry_run()
        pages = -(-plan.estimated_rows // batch)
        file_size = settings.backup.file_size_mb
        plans.append({"table": info.name, "start_timestamp": plan.start.timestamp,
                      "start_id": shown_key(plan.start.key),
                      "upper_bound": plan.bound, "estimated_rows": plan.estimated_rows,
                      "estimated_pages": pages, "batch_size": batch, "file_size_mb": file_size,
                      "keyset_index": info.has_keyset_index,
                      "null_cursor_rows": plan.null_cursor_rows,
                      "future_cursor_rows": plan.future_cursor_rows,
                      "rows_extracted_so_far": watermark.mysql_rows_extracted})
        for message in plan_notices(plan, info):
            log(Notice(table=info.name, message=message))
        if not json_out:
            files = "a file per page" if file_size == 0 else f"files of up to ~{file_size} MB"
            typer.echo(f"{info.name}: from {plan.start.label()} to before {plan.bound}: "
                       f"~{plan.estimated_rows:,} rows in ~{pages:,} pages of {batch:,} rows, {files} "
                       f"(estimate from EXPLAIN; nothing written)")
    if json_out:
        print_json({"dry_run": True, "tables": plans})
