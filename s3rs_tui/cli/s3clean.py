"""`s3rs s3clean list|clean`: see and delete a table's data files in the store.

Files not yet loaded into the warehouse are the backup itself: `clean` keeps them unless --force.
"""

import sys

import typer

from s3rs_tui.cli.common import confirm, print_json, settings_from
from s3rs_tui.cli.completion import table_names
from s3rs_tui.cli.examples import epilog
from s3rs_tui.jobs.cleanup import cutoff, delete_files, older, plan_cleanup, table_files
from s3rs_tui.status.text import human_bytes

app = typer.Typer(help="List and delete a table's data files in the store.", no_args_is_help=True,
                  epilog=epilog("s3clean"))

TABLE = typer.Option(..., "--table", "-t", help="db.table (or table in [mysql] database)",
                     autocompletion=table_names)
OLDER_THAN = typer.Option(None, "--older-than", help="only files modified before this long ago: 30m, 12h, 7d")


@app.command("list", epilog=epilog("s3clean list"))
def list_(ctx: typer.Context, table: str = TABLE, older_than: str | None = OLDER_THAN,
          json_out: bool = typer.Option(False, "--json", help="print the files as JSON")) -> None:
    """The table's data files: key, size, modified, loaded into the warehouse or not."""
    before = cutoff(older_than)
    found = table_files(settings_from(ctx), table)
    files = older(found.files, before)
    if json_out:
        print_json([f.as_dict() for f in files])
        return
    for f in files:
        typer.echo(f"{f.info.key}  {human_bytes(f.info.size):>10}  {f.info.modified:%Y-%m-%d %H:%M:%S}  "
                   f"{'loaded' if f.loaded else 'not loaded'}")
    total = sum(f.info.size for f in files)
    typer.echo(f"{found.name}: {len(files)} files, {human_bytes(total)} in {found.store.url}", err=True)


@app.command(epilog=epilog("s3clean clean"))
def clean(ctx: typer.Context, table: str = TABLE, older_than: str | None = OLDER_THAN,
          dry_run: bool = typer.Option(False, "--dry-run", help="show what would go, delete nothing"),
          force: bool = typer.Option(False, "--force", help="also delete files not loaded yet"),
          yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
    """Delete the table's files (older than --older-than); unloaded files only with --force."""
    before = cutoff(older_than)
    found = table_files(settings_from(ctx), table)
    plan = plan_cleanup(older(found.files, before), force)
    summary = f"{found.name}: {len(plan.doomed)} files ({human_bytes(plan.size)}) to delete"
    if plan.kept:
        summary += (f", {len(plan.kept)} not yet loaded into the warehouse kept "
                    "(use --force to delete them too)")
    typer.echo(summary)
    if dry_run or not plan.doomed:
        for f in plan.doomed:
            typer.echo(f"would delete {f.info.key}")
        return
    confirm(f"Delete {len(plan.doomed)} files ({human_bytes(plan.size)}) of {found.name} from "
            f"{found.store.url}?", yes)
    with typer.progressbar(length=len(plan.doomed), label="deleting", file=sys.stderr) as bar:
        delete_files(found.store, plan.doomed, lambda done, total: bar.update(1))
    typer.echo(f"{found.name}: deleted {len(plan.doomed)} files ({human_bytes(plan.size)})")
