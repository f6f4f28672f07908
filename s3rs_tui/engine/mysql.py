"""MySQL connections set up the way the engine needs them.

- Encoders only, no decoders: values arrive as text (or bytes for binary columns) and are converted column-wise in
  Arrow, which is both faster and exact (no float detour for DECIMAL, no crash on zero dates).
- Session time zone UTC, so TIMESTAMP columns read the same whatever the server's zone.
- autocommit: every page is its own snapshot; a days-long run never pins an old read view.
- Long net timeouts: an unbuffered read that pauses while a file uploads must not be cut off.
"""

import pymysql
import pymysql.converters
import pymysql.cursors

from s3rs_tui.config import MySQLSettings
from s3rs_tui.errors import S3rsError, TransientError

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
}


def connect(settings: MySQLSettings, timeout_seconds: int = 3600) -> pymysql.Connection:
    """Open a connection; errors become TransientError (retry) or S3rsError (operator must act)."""
    try:
        conn = pymysql.connect(
            host=settings.host, port=settings.port, user=settings.user,
            password=settings.password, unix_socket=settings.unix_socket or None,
            connect_timeout=settings.connect_timeout, read_timeout=timeout_seconds,
            write_timeout=timeout_seconds, charset="utf8mb4", conv=dict(pymysql.converters.encoders), autocommit=True,
            program_name="s3rs")
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00', net_read_timeout = 3600, net_write_timeout = 3600, "
                        "wait_timeout = 28800")
        return conn
    except Exception as exc:  # noqa: BLE001 - classified right here
        raise classify(exc, "connecting to MySQL") from exc


def classify(exc: BaseException, doing: str) -> S3rsError:
    """Map a driver exception to TransientError or a one-line S3rsError."""
    if isinstance(exc, S3rsError):
        return exc
    code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
    lost = isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) and (
        not isinstance(code, int) or code in _TRANSIENT_CODES or code == 0 or code >= 2000)
    if lost or isinstance(exc, OSError):
        return TransientError(f"MySQL connection problem while {doing}: {_message(exc)}")
    hint = _FATAL_HINTS.get(code)
    return S3rsError(f"MySQL error while {doing}: {_message(exc)}" + (f" ({hint})" if hint else ""))


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
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - the connection may already be dead; nothing to save
        pass
