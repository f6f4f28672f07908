"""`s3rs config` (the settings in force, secrets redacted) and `s3rs status` (what is reachable)."""

import platform
from collections.abc import Callable

import typer

from s3rs_tui import __version__
from s3rs_tui.cli.common import print_json, settings_from
from s3rs_tui.engine.mysql import close_quietly, connect
from s3rs_tui.jobs.watermark import watermark_lags
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.tunnel import tunnel_to
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.warehouse import open_warehouse


def config(ctx: typer.Context,
           json_out: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """Show every setting in force and where it came from (file, environment, flag, default)."""
    settings = settings_from(ctx)
    shown = settings.redacted()
    if json_out:
        print_json({"config_file": str(settings.config_path) if settings.config_path else None,
                    "settings": shown, "sources": settings.sources, "warnings": settings.warnings})
        return
    typer.echo(f"# config file: {settings.config_path or '(none: built-in defaults)'}")
    for warning in settings.warnings:
        typer.echo(f"# WARNING: {warning}")
    for section, values in shown.items():
        typer.echo(f"[{section}]")
        for key, value in values.items():
            source = settings.sources.get(f"{section}.{key}", "file")
            typer.echo(f"  {key:22} = {value!r:40} # {source}")


def _check_ssh(settings: Settings) -> str:
    ssh = settings.ssh
    if not ssh.enabled:
        return "off ([ssh] enabled = false)"
    tunnel = tunnel_to(ssh, settings.mysql.host, settings.mysql.port)
    host, port = tunnel.address()
    through = "MySQL" + (" and the warehouse" if settings.warehouse.ssh else "")
    return (f"{ssh.user}@{ssh.host}:{ssh.port}, host key {tunnel.host_key}"
            f"{'' if ssh.check_host_key else ' (NOT checked)'}, keepalive {ssh.keepalive_seconds}s; "
            f"{through} through it (MySQL {settings.mysql.host}:{settings.mysql.port} at {host}:{port})")


def _check_mysql(settings: Settings) -> str:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@global.time_zone, @@system_time_zone")
            version, zone, system_zone = cur.fetchone()
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            tls = (cur.fetchone() or ("", ""))[1]
        verified = "verified" if settings.mysql.ssl_ca else "NOT verified (set [mysql] ssl_ca)"
        return (f"{version} at {settings.mysql.host}:{settings.mysql.port}, "
                f"time zone {zone} ({system_zone}), " + (f"TLS {tls}, {verified}" if tls else "no TLS"))
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
    with open_warehouse(settings, open_store(settings)) as connection:
        (version,), = connection.run("SELECT version()")
        return f"{connection.label}: {version[:60]}"


def _watermark_lags(settings: Settings) -> dict[str, dict]:
    """The config's tables and those with a watermark in the store: watermark and its lag."""
    names = list(dict.fromkeys([*settings.tables, *WatermarkStore(open_store(settings)).tables()]))
    return watermark_lags(settings, names)


def _lag_line(lag: dict) -> str:
    if "error" in lag:
        return f"FAILED: {lag['error']}"
    if lag["lag_seconds"] is None:
        return "no watermark yet"
    return (f"watermark {lag['watermark_timestamp']} / {lag['watermark_id']}, "
            f"{lag['lag_seconds']:,.0f}s behind now")


def status(ctx: typer.Context,
           json_out: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """Check that MySQL, the store and the warehouse can be reached (exit 1 if one cannot), and
    how far each table's watermark is behind now."""
    settings = settings_from(ctx)
    checks: dict[str, Callable[[Settings], str]] = {
        "ssh": _check_ssh, "mysql": _check_mysql, "store": _check_store, "warehouse": _check_warehouse}
    results = {"s3rs": f"{__version__} on Python {platform.python_version()}"}
    failed = False
    for name, check in checks.items():
        try:
            results[name] = "ok: " + check(settings)
        except Exception as exc:  # noqa: BLE001 - status reports every failure as one line
            failed = True
            results[name] = f"FAILED: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    lags = _watermark_lags(settings) if not failed else {}
    if json_out:
        print_json({**results, "tables": lags})
    else:
        for name, line in results.items():
            typer.echo(f"{name:10} {line}")
        for table, lag in lags.items():
            typer.echo(f"{'table':10} {table}: " + _lag_line(lag))
    if failed:
        raise typer.Exit(1)
