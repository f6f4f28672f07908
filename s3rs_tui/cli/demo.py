"""`s3rs demo`: a throwaway MariaDB, a realistic table, and a full sync to a local folder."""

from pathlib import Path

import typer

from s3rs_tui.sandbox.demo import run_demo


def demo(rows: int = typer.Option(1_000_000, "--rows", min=1, help="rows in the demo table"),
         folder: Path = typer.Option(Path("s3rs-demo"), "--dir",
                                     help="where the server, store and config go"),
         batch_size: int = typer.Option(50_000, "--batch-size", min=1, help="rows per Parquet file"),
         keep_server: bool = typer.Option(False, "--keep-server",
                                          help="leave MariaDB running afterwards")) -> None:
    """Run the whole backup on embedded defaults (installs mariadb-server if missing)."""
    run_demo(folder, rows, batch_size, keep_server)
