"""A faster reader of pymysql's unbuffered results: raw bytes per field, nothing decoded.

pymysql spends most of a bulk read per row: several method calls to read one packet (two socket
reads, a packet object, error and end checks), then four method calls and a decode per field. The
engine converts values column-wise in Arrow anyway (casting binary to string validates UTF-8 in C),
so it only needs each field's bytes, column by column. `fetch` reads the row packets of the open
result straight from the connection's buffered socket file and splits their length-encoded fields
into one list per column in one loop (no row tuples to transpose afterwards);
what is not a plain row (the end of the result, an error, a row over 16 MB) goes through pymysql's
own packet objects.

It relies on pymysql internals (`Connection._result/_rfile/_sock/_next_seq_id/_read_timeout/
_force_close`, `MySQLResult.unbuffered_active/_check_packet_is_eof`); pyproject pins the pymysql
versions it was checked with, and `fetch` refuses anything else loudly.
"""

import pymysql.connections
from pymysql import err
from pymysql.constants import CR

_EOF = 0xFE
_ERROR = 0xFF
_LONG_PACKET = 0xFFFFFF  # a packet this long continues in the next one
_LOST = "Lost connection to MySQL server during query"


def _parse(buf: bytes, appends: list) -> None:
    """A text-protocol row packet: each field's bytes (None for NULL) to its column's list."""
    pos = 0
    for append in appends:
        first = buf[pos]
        if first < 251:  # the length itself (literals: faster than named constants here)
            pos += 1
            append(buf[pos:pos + first])
            pos += first
            continue
        if first == 251:  # NULL
            pos += 1
            append(None)
            continue
        if first == 252:
            length, pos = buf[pos + 1] | buf[pos + 2] << 8, pos + 3
        elif first == 253:
            length, pos = buf[pos + 1] | buf[pos + 2] << 8 | buf[pos + 3] << 16, pos + 4
        else:
            length, pos = int.from_bytes(buf[pos + 1:pos + 9], "little"), pos + 9
        append(buf[pos:pos + length])
        pos += length


def _check_supported(conn: pymysql.connections.Connection) -> pymysql.connections.MySQLResult | None:
    result = conn._result
    if result is not None and (not isinstance(result, pymysql.connections.MySQLResult)
                               or not hasattr(result, "_check_packet_is_eof")
                               or not hasattr(conn, "_rfile") or not hasattr(conn, "_next_seq_id")):
        raise RuntimeError(f"pymysql {pymysql.__version__} is not supported by the fast row reader")
    return result


def fetch(conn: pymysql.connections.Connection, limit: int, width: int) -> list[list[bytes | None]]:
    """Up to `limit` rows of the unbuffered result (of `width` columns) open on `conn`, column by
    column: a list of each column's raw field bytes; [] once the result is read to its end. Errors
    are pymysql's own (lost connection, server error)."""
    result = _check_supported(conn)
    if result is None or not result.unbuffered_active:
        return []
    columns: list[list[bytes | None]] = [[] for _ in range(width)]
    appends = [column.append for column in columns]
    rows = 0
    conn._sock.settimeout(conn._read_timeout)
    if hasattr(conn, "_current_timeout"):  # pymysql 1.2 skips settimeout when it thinks it is set
        conn._current_timeout = conn._read_timeout
    read = conn._rfile.read
    try:
        while rows < limit:
            body = _read_packet(conn, read)
            first = body[0]
            if first == _ERROR or (first == _EOF and len(body) < 9):
                packet = pymysql.connections.MysqlPacket(body, conn.encoding)
                result.unbuffered_active = False
                if first == _ERROR:
                    packet.raise_for_error()
                result._check_packet_is_eof(packet)  # warnings and more-results flags, as pymysql
                result.connection, result.rows = None, None
                break
            _parse(body, appends)
            rows += 1
    except OSError as exc:
        raise _lost(conn, f"{_LOST} ({exc})") from None
    return columns if rows else []


def _lost(conn: pymysql.connections.Connection, message: str) -> err.OperationalError:
    """Close a connection whose stream broke; its result cannot be drained any more (pymysql
    would try when the cursor closes, on a closed socket)."""
    conn._force_close()
    if conn._result is not None:
        conn._result.unbuffered_active = False
    return err.OperationalError(CR.CR_SERVER_LOST, message)


def _read_packet(conn: pymysql.connections.Connection, read) -> bytes:
    """One whole packet's payload (a long one joined from its parts), checking the sequence."""
    parts: list[bytes] = []
    while True:
        header = read(4)
        if len(header) < 4:
            raise _lost(conn, _LOST)
        length, number = header[0] | header[1] << 8 | header[2] << 16, header[3]
        if number != conn._next_seq_id:
            if number == 0:  # MariaDB sends an error packet numbered 0 when it shuts down
                raise _lost(conn, _LOST)
            expected = conn._next_seq_id
            _lost(conn, _LOST)
            raise err.InternalError(f"Packet sequence number wrong - got {number} expected {expected}")
        conn._next_seq_id = (number + 1) % 256
        body = read(length)
        if len(body) < length:
            raise _lost(conn, _LOST)
        if length < _LONG_PACKET and not parts:
            return body
        parts.append(body)
        if length < _LONG_PACKET:
            return b"".join(parts)
