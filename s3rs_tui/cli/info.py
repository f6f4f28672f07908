"""`s3rs config` (the settings in force, secrets redacted) and `s3rs status` (what is reachable)."""

import platform
from typing import Callable

import typer

from s3rs_tui import __version__
from s3rs_tui.cli.common import print_json, settings_from
from s3rs_tui.config import Settings
from s3rs_tui.engine.mysql import close_quietly, connect
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore


def config(ctx: typer.Context,
           json_out: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """Show every setting in force and where it came from (file, environment, flag, default)."""
    settings = settings_from(ctx)
    shown = settings.redacted()
    if json_out:
        print_json({"config_file": str(settings.config_path) if settings.config_path else None,
                    "settings": shown, "sources": settings.sources})
        return
    typer.echo(f"# config file: {settings.config_path or '(none: built-in defaults)'}")
    for section, values in shown.items():
        typer.echo(f"[{section}]")
        for key, value in values.items():
            source = settings.sources.get(f"{section}.{key}", "file")
            typer.echo(f"  {key:22} = {value!r:40} # {source}")


def _check_mysql(settings: Settings) -> str:
    conn = connect(settings.mysql, settings.backup.timeout_seconds)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@global.time_zone, @@system_time_zone")
            version, zone, system_zone = cur.fetchone()
        return f"{version} at {settings.mysql.host}:{settings.mysql.port}, time zone {zone} ({system_zone})"
    finally:
        close_quietly(conn)


def _check_store(settings: Settings) -> str:
    store = open_store(settings)
    return f"{store.url} ({len(WatermarkStore(store).tables())} tables with a watermark)"


def _check_warehouse(settings: Settings) -> str:
    warehouse = settings.warehouse
    if warehouse.kind == "none":
        return "none configured ([warehouse] kind = \"none\")"
    if warehouse.kind == "duckdb":
        return f"duckdb file {warehouse.path} (embedded, nothing to reach)"
    from s3rs_tui.warehouse import open_warehouse  # only needed for this check

    with open_warehouse(settings, open_store(settings)) as connection:
        (version,), = connection.run("SELECT version()")
        return f"{connection.label}: {version[:60]}"


def status(ctx: typer.Context,
           json_out: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """Check that MySQL, the store and the warehouse can be reached; exit 1 if one cannot."""
    settings = settings_from(ctx)
    checks: dict[str, Callable[[Settings], str]] = {
        "mysql": _check_mysql, "store": _check_store, "warehouse": _check_warehouse}
    results = {"s3rs": f"{__version__} on Python {platform.python_version()}"}
    failed = False
    for name, check in checks.items():
        try:
            results[name] = "ok: " + check(settings)
        except Exception as exc:  # noqa: BLE001 - status reports every failure as one line
            failed = True
            results[name] = f"FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if json_out:
        print_json(results)
    else:
        for name, line in results.items():
            typer.echo(f"{name:10} {line}")
    if failed:
        raise typer.Exit(1)
