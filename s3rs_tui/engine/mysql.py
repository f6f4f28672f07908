"""MySQL connections set up the way the engine needs them.

- Encoders only, no decoders: values arrive as text (or bytes for binary columns) and are converted
  column-wise in Arrow, which is both faster and exact (no float detour for DECIMAL, no crash on zero dates).
- Session time zone UTC, so TIMESTAMP columns read the same whatever the server's zone.
- autocommit: every page is its own snapshot; a days-long run never pins an old read view.
- Long net timeouts: an unbuffered read that pauses while a file uploads must not be cut off.
- Through the [ssh] tunnel when it is on; with TLS verified against [mysql] ssl_ca when that is set.
"""

import dataclasses
import os
import ssl
from collections.abc import Iterator
from contextlib import suppress

import pymysql
import pymysql.converters
import pymysql.cursors

from s3rs_tui.runtime.config import MySQLSettings, Settings
from s3rs_tui.runtime.errors import ConfigError, S3rsError, TransientError
from s3rs_tui.runtime.tunnel import Notify, tunnel_to

# Client/server errors after which a reconnect and a retry can succeed.
_TRANSIENT_CODES = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # connection was killed (MariaDB)
    2003,  # can't connect
    2006,  # server has gone away
    2013,  # lost connection during query
    2014,  # commands out of sync after a broken read
    2055,  # lost connection (system error)
}
_FATAL_HINTS = {
    1044: "access denied to the database",
    1045: "access denied: check [mysql] user and S3RS_MYSQL_PASSWORD",
    1049: "unknown database",
    1142: "the MySQL user lacks SELECT on the table",
    1054: "a column was dropped or renamed during the run: the watermark covers every stored file; "
          "rerun, and the next run reads the table's columns as they are now",
    1146: "the table was dropped or renamed during the run: the watermark covers every stored file; "
          "see README, Faults",
}


class _NamedTLS(ssl.SSLContext):
    """Checks the certificate against the MySQL host's real name, also when the connection goes
    to the local end of a tunnel (pymysql would check the name it connected to: 127.0.0.1)."""

    server_name = ""

    def wrap_socket(self, sock, *args, **kwargs):
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(ca_file: str, server_name: str, setting: str) -> ssl.SSLContext:
    """Verify on: the server's certificate must chain to `ca_file` and name `server_name`."""
    context = _NamedTLS(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    try:
        context.load_verify_locations(cafile=os.path.expanduser(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{setting} {ca_file}: cannot load it as a CA file ({exc})") from None
    context.server_name = server_name
    return context


def endpoint(settings: Settings, notify: Notify | None = None) -> MySQLSettings:
    """[mysql] as a client must reach it now: host and port of the tunnel's local end when [ssh] is on."""
    mysql = settings.mysql
    if not settings.ssh.enabled:
        return mysql
    if mysql.unix_socket:
        raise ConfigError("[mysql] unix_socket cannot be reached through [ssh]: use host and port")
    host, port = tunnel_to(settings.ssh, mysql.host, mysql.port).address(notify or (lambda message: None))
    return dataclasses.replace(mysql, host=host, port=port)


def connectorx_endpoint(settings: Settings) -> MySQLSettings:
    """What the connectorx reader connects to: the tunnel works; a CA file it cannot take."""
    if settings.mysql.ssl_ca:
        raise ConfigError("[backup] reader = \"connectorx\" cannot verify TLS against [mysql] ssl_ca "
                          "(it takes no CA file): use reader = \"pymysql\", or reach MySQL through [ssh]")
    return endpoint(settings)


def connect(settings: Settings, timeout_seconds: int | None = None, notify: Notify | None = None,
            local_infile: bool = False) -> pymysql.Connection:
    """Open a connection; errors become TransientError (retry) or S3rsError (operator must act).
    `timeout_seconds` (default [backup] timeout_seconds) bounds every read and write;
    `local_infile`: the client allows LOAD DATA LOCAL INFILE (restore's fast path)."""
    timeout = timeout_seconds or settings.backup.timeout_seconds
    try:
        mysql = endpoint(settings, notify)
        tls = tls_context(mysql.ssl_ca, settings.mysql.host, "[mysql] ssl_ca") if mysql.ssl_ca else None
        conn = pymysql.connect(
            host=mysql.host, port=mysql.port, user=mysql.user,
            password=mysql.password, unix_socket=mysql.unix_socket or None, ssl=tls,
            connect_timeout=mysql.connect_timeout, read_timeout=timeout,
            write_timeout=timeout, charset="utf8mb4", conv=dict(pymysql.converters.encoders), autocommit=True,
            program_name="s3rs", local_infile=local_infile)
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00', net_read_timeout = 3600, net_write_timeout = 3600, "
                        "wait_timeout = 28800")
        return conn
    except Exception as exc:  # broad: classified right here
        raise classify(exc, "connecting to MySQL") from exc


def classify(exc: BaseException, doing: str) -> S3rsError:
    """Map a driver exception to TransientError or a one-line S3rsError."""
    if isinstance(exc, S3rsError):
        return exc
    code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
    if _tls_refused(exc):
        return ConfigError(f"MySQL TLS refused while {doing}: {_message(exc)} (check [mysql] ssl_ca and the "
                           "server's certificate)")
    # Closing a cursor on a connection that just broke fails too (pymysql: 'NoneType' has no 'read'):
    # what counts is the first error of the chain.
    lost = next((seen for seen in _chain(exc) if _lost(seen)), None)
    if lost is not None:
        return TransientError(f"MySQL connection problem while {doing}: {_message(lost)}")
    hint = _FATAL_HINTS.get(code) if isinstance(code, int) else None
    return S3rsError(f"MySQL error while {doing}: {_message(exc)}" + (f" ({hint})" if hint else ""))


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and the ones it was raised from or while handling, newest first."""
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _lost(exc: BaseException) -> bool:
    code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
    driver_lost = isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) and (
        not isinstance(code, int) or code in _TRANSIENT_CODES or code == 0 or code >= 2000)
    return isinstance(exc, OSError) or driver_lost


def _tls_refused(exc: BaseException) -> bool:
    """A certificate that fails verification is not worth a retry."""
    return any(isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen)
               for seen in _chain(exc))


def _message(exc: BaseException) -> str:
    if isinstance(exc, pymysql.MySQLError) and len(exc.args) >= 2:
        return f"({exc.args[0]}) {exc.args[1]}"
    return str(exc) or type(exc).__name__


def unbuffered_cursor(conn: pymysql.Connection) -> pymysql.cursors.SSCursor:
    """Rows stream from the server as they are fetched: memory stays flat on any table size."""
    return conn.cursor(pymysql.cursors.SSCursor)


def close_quietly(conn: pymysql.Connection | None) -> None:
    if conn is None:
        return
    result = getattr(conn, "_result", None)
    # A stream cut mid-page cannot be drained: pymysql must not try when it is collected.
    if result is not None:
        result.unbuffered_active = False
    with suppress(Exception):  # broad: the connection may already be dead; nothing to save
        conn.close()
