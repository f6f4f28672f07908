"""The default reader's packet reader (engine/rowparse.py) against a real MariaDB: every field's
bytes as pymysql itself reads them, a row split over several packets, the result's end, and a
query killed mid-stream."""

import random

import pyarrow as pa
import pymysql
import pymysql.cursors
import pytest

from s3rs_tui.engine import rowparse

QUERY = ("SELECT seq, IF(seq % 7 = 0, NULL, REPEAT('é', seq % 300)), REPEAT('x', seq * 40), "
         "CAST(seq * 1.25 AS DECIMAL(18,4)) FROM seq_1_to_3000")


def streamed(conn, sql: str, limit: int) -> list[list]:
    """Every row of `sql`, read with rowparse.fetch in chunks of `limit`, as rows."""
    rows: list[list] = []
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql)
        while columns := rowparse.fetch(conn, limit, len(cur.description)):
            assert len(columns[0]) <= limit
            rows.extend(list(row) for row in zip(*(column.to_pylist() for column in columns), strict=True))
        assert rowparse.fetch(conn, limit, len(cur.description)) == []
    return rows


def test_fields_are_the_bytes_pymysql_reads_and_the_connection_stays_usable(db):
    with db.connect(conv={}) as conn:
        rows = streamed(conn, QUERY, 1000)
        with conn.cursor() as cur:  # the same connection, after the result's end
            cur.execute(QUERY)
            expected = [[None if v is None else v if isinstance(v, bytes) else v.encode() for v in row]
                        for row in cur.fetchall()]
            cur.execute("SELECT 1")
            assert cur.fetchall() == (("1",),)  # conv={}: text as str
    assert len(rows) == 3000 and rows == expected
    assert rows[6][1] is None and len(rows[-1][2]) == 120_000  # a NULL; a field with a 3-byte length


def test_a_row_longer_than_one_packet_arrives_whole(db):
    db.execute("SET GLOBAL max_allowed_packet = 67108864")  # new connections may receive 17 MB rows
    with db.connect(conv={}) as conn:
        rows = streamed(conn, "SELECT seq, REPEAT('ab', 9000000), seq * 2 FROM seq_1_to_2", 10)
    assert [(row[0], len(row[1]), row[1][:4], row[2]) for row in rows] == [
        (b"1", 18_000_000, b"abab", b"2"), (b"2", 18_000_000, b"abab", b"4")]


def test_a_query_killed_mid_stream_raises_pymysql_error(db):
    with db.connect(conv={}) as conn, db.connect() as killer, conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute("SELECT seq, REPEAT('y', 200) FROM seq_1_to_100000000")
        assert len(rowparse.fetch(conn, 1000, 2)[0]) == 1000
        with killer.cursor() as kill:
            kill.execute(f"KILL QUERY {conn.thread_id()}")
        with pytest.raises(pymysql.err.MySQLError):
            for _ in range(100_000):  # far more than the rows in flight; each call reads 1,000
                if not rowparse.fetch(conn, 1000, 2):
                    break


def _length_prefixed(field: bytes | None, prefix: int) -> bytes:
    """A field as the text protocol sends it, its length in the given prefix form (any form can
    hold a short length; the server uses the shortest)."""
    if field is None:
        return bytes([251])
    size = len(field)
    if prefix == 1:
        return bytes([size]) + field
    width = {252: 2, 253: 3, 254: 8}[prefix]
    return bytes([prefix]) + size.to_bytes(width, "little") + field


def _forms(field: bytes | None) -> list[int]:
    """The length prefixes that can hold the field's length."""
    size = 0 if field is None else len(field)
    limits = ((1, 251), (252, 1 << 16), (253, 1 << 24), (254, 1 << 64))
    return [form for form, limit in limits if size < limit]


def test_split_columns_reads_every_length_form_nulls_and_empty_fields():
    draw = random.Random(3)
    sizes = [0, 1, 9, 250, 251, 70_000]
    rows = [[None if draw.random() < 0.2 else draw.randbytes(draw.choice(sizes)) for _ in range(5)]
            for _ in range(400)]
    packets = [b"".join(_length_prefixed(field, draw.choice(_forms(field))) for field in row) for row in rows]
    columns = rowparse.split_columns(packets, 5)
    assert all(column.type == pa.binary() for column in columns)
    assert [list(row) for row in zip(*(column.to_pylist() for column in columns), strict=True)] == rows


def test_split_columns_refuses_packets_of_another_width():
    packets = [_length_prefixed(b"ab", 1) + _length_prefixed(None, 1)] * 3
    assert [column.to_pylist() for column in rowparse.split_columns(packets, 2)] == [[b"ab"] * 3, [None] * 3]
    for width in (1, 3):
        with pytest.raises(pymysql.err.InternalError, match=f"do not hold {width} fields"):
            rowparse.split_columns(packets, width)


def test_a_wide_result_comes_in_chunks_of_fewer_rows(db):
    """The field bounds split at once are bounded: 1,000 columns give chunks of 250 rows."""
    select = ", ".join(f"seq + {column}" for column in range(1000))
    with db.connect(conv={}) as conn, conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(f"SELECT {select} FROM seq_1_to_600")
        sizes = []
        while columns := rowparse.fetch(conn, 10_000, 1000):
            sizes.append(len(columns[0]))
            assert columns[999].to_pylist()[-1] == str(sum(sizes) + 999).encode()
    assert sizes == [250, 250, 100]
