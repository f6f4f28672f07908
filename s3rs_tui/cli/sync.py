"""`s3rs sync`: back up tables to Parquet files in the store, then load them into the warehouse."""

from dataclasses import asdict
from typing import Optional

import typer

from s3rs_tui.cli.common import print_json, settings_from
from s3rs_tui.cli.headless import DEBUG, NORMAL, QUIET, HeadlessLog
from s3rs_tui.engine.events import LoadFinished, Notice, RunFinished, tee
from s3rs_tui.engine.plan import plan_notices
from s3rs_tui.engine.control import RunControl, stop_on_signals
from s3rs_tui.engine.sync import SyncOptions, TableSync
from s3rs_tui.errors import ConfigError, S3rsError, StoppedByOperator
from s3rs_tui.store import open_store
from s3rs_tui.warehouse import check_warehouse
from s3rs_tui.warehouse.loader import TableLoader
from s3rs_tui.warehouse.verify import Verification, verify_table
from s3rs_tui.status.snapshot import SnapshotWriter

STRATEGIES = ("sequential",)


def sync(
    ctx: typer.Context,
    tables: list[str] = typer.Option(..., "--table", "-t", help="db.table (or table in [mysql] database); repeatable"),
    strategy: str = typer.Option("sequential", "--strategy", "-s", help="how several tables run: sequential"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="take at most N rows this run"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="rows per Parquet file"),
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
    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy {strategy!r}: must be one of {', '.join(STRATEGIES)}")
    if batch_size is not None:
        settings.override("backup.batch_size", batch_size)
    log = HeadlessLog(DEBUG if debug else QUIET if quiet else NORMAL)
    load = _check_steps(settings.warehouse.kind, backup_only, load_only, verify_data)
    if load:
        check_warehouse(settings, open_store(settings))
    if dry_run:
        _dry_run(settings, tables, log, json_out)
        return
    control = RunControl()
    options = SyncOptions(limit=limit, break_lock=break_lock, backup_strategy=strategy)
    results: list[RunFinished] = []
    loads: list[LoadFinished] = []
    checks: list[Verification] = []
    failure: S3rsError | None = None
    sink = tee(log, SnapshotWriter(formatter=log.format))  # the snapshot is what `s3rs watch` shows
    with stop_on_signals(control, lambda message: log(Notice("-", message, "warning"))):
        for name in tables:
            if control.stop_requested:
                break
            try:
                if not load_only:
                    results.append(TableSync(settings, name, sink, control, options).run())
                if load:
                    loads.append(TableLoader(settings, name, sink, control, break_lock=break_lock).run())
                if verify_data:
                    checks.append(verify_table(settings, name, sink))
                    if not checks[-1].agrees:
                        failure = failure or S3rsError(checks[-1].summary())
            except StoppedByOperator as exc:
                failure = exc
                break
            except S3rsError as exc:
                log(Notice(name, str(exc), "error"))
                failure = failure or exc
    if json_out:
        print_json({"status": "success" if failure is None else "failed",
                    "rows": sum(r.rows for r in results), "files": sum(r.files for r in results),
                    "bytes": sum(r.bytes for r in results), "tables": [asdict(r) for r in results],
                    "loads": [asdict(r) for r in loads], "verifications": [c.as_dict() for c in checks],
                    "error": str(failure) if failure else None})
    if failure is not None:
        raise failure


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
        files = -(-plan.estimated_rows // batch)
        plans.append({"table": info.name, "start_timestamp": plan.start.timestamp, "start_id": plan.start.key,
                      "upper_bound": plan.bound, "estimated_rows": plan.estimated_rows,
                      "estimated_files": files, "batch_size": batch, "keyset_index": info.has_keyset_index,
                      "null_cursor_rows": plan.null_cursor_rows, "future_cursor_rows": plan.future_cursor_rows,
                      "rows_extracted_so_far": watermark.mysql_rows_extracted})
        for message in plan_notices(plan, info):
            log(Notice(info.name, message))
        if not json_out:
            typer.echo(f"{info.name}: from {plan.start.label()} to before {plan.bound}: "
                       f"~{plan.estimated_rows:,} rows in ~{files:,} files of {batch:,} rows "
                       f"(estimate from EXPLAIN; nothing written)")
    if json_out:
        print_json({"dry_run": True, "tables": plans})
