"""The `s3rs` command line (Typer). Every failure ends as one line on stderr and a documented
exit code: 0 done, 1 failed but safe to rerun, 2 bad usage/input/config, 3 table locked,
130 stopped by the operator. Unexpected errors write their traceback to the error log, not the screen.
"""

import sys
import traceback
from pathlib import Path

import typer

try:  # recent typer ships its own copy of click (and no longer depends on click)
    from typer._click.exceptions import ClickException
except ImportError:  # older typer runs on click itself
    from click import ClickException  # type: ignore[assignment]  # the same class, in click itself

from s3rs_tui import __version__
from s3rs_tui.cli import (
    dashboard,
    demo,
    info,
    progressive,
    reconcile,
    restore,
    s3clean,
    sync,
    verify,
    watermark,
)
from s3rs_tui.cli.common import on_terminal
from s3rs_tui.cli.examples import epilog
from s3rs_tui.runtime.control import stop_at_once_on_signals
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.runtime.private import open_private
from s3rs_tui.status.snapshot import state_dir

# Markdown help (not Rich markup) so help texts can say `[mysql] database` as the TOML file does.
app = typer.Typer(name="s3rs", no_args_is_help=False, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown", epilog=epilog("s3rs"),
                  help="Exact, resumable MySQL -> Parquet -> S3 backups, loaded into a warehouse.")
for command in (sync.sync, progressive.progressive, verify.verify, reconcile.reconcile, restore.restore,
                info.config, info.status, demo.demo, dashboard.ui, dashboard.watch):
    app.command(epilog=epilog(command.__name__))(command)
app.add_typer(watermark.app, name="watermark")
app.add_typer(s3clean.app, name="s3clean")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"s3rs {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML settings file "
                                          "(default: $S3RS_CONFIG, else ./s3rs.toml)"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    """Back up MySQL tables incrementally to Parquet files in S3 or a local folder.

    Without a command: the dashboard on a terminal, else this help."""
    if ctx.invoked_subcommand is not None:
        return
    if not on_terminal():
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    dashboard.ui(ctx, [])


def error_log_path() -> Path:
    """In the state folder, with the status snapshots and dashboard logs: $S3RS_STATE_DIR or ~/.s3rs."""
    return state_dir() / "errors.log"


def _log_traceback() -> Path | None:
    path = error_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open_private(path, "a") as log:
            log.write(f"--- s3rs {' '.join(sys.argv[1:])}\n{traceback.format_exc()}\n")
        return path
    except OSError:
        return None


def _fail(message: str, code: int) -> None:
    try:
        sys.stderr.write(f"s3rs: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass
    sys.exit(code)


def main() -> None:
    """Console-script entry point: run the app and turn every outcome into an exit code."""
    try:
        stop_at_once_on_signals()
        # The same name (and completion) for `python -m s3rs_tui`:
        result = app(standalone_mode=False, prog_name="s3rs")
    except typer.Abort:
        _fail("aborted", 130)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except S3rsError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("stopped by the operator", 130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback on screen
        where = _log_traceback()
        _fail(f"internal error: {type(exc).__name__}: {exc}"
              + (f" (traceback in {where})" if where else ""), 1)
    sys.exit(result if isinstance(result, int) else 0)
