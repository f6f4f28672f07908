"""The store's history files (store/history.py): names, footers, deletion files and their order."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3rs_tui.engine.keyset import Position
from s3rs_tui.engine.parquet import data_key, start_text
from s3rs_tui.engine.typemap import MySQLColumn
from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.store import ObjectInfo
from s3rs_tui.store.history import (
    DELETION,
    FIX,
    FOUND_AT,
    MARK_KEY,
    PART,
    Mark,
    history_key,
    kind_of,
    position_order,
    read_deletions,
    read_mark,
    run_files,
    sequence_of,
    write_deletions,
)
from s3rs_tui.store.layout import key_spelling, part_key
from s3rs_tui.store.local import LocalStore
from s3rs_tui.store.watermark import Watermark

FOUND = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
MARK = Mark(FOUND, "2026-03-01 10:00:00.500000", 42)


def info(key: str) -> ObjectInfo:
    return ObjectInfo(key, 1, FOUND)


def test_names_sort_in_the_order_written_and_say_their_kind():
    first = history_key("shop.orders", FIX, MARK, 7)
    assert first == "data/shop/orders/fix-20260304T050607000089-0007.parquet"
    later = history_key("shop.orders", FIX, Mark(FOUND + timedelta(microseconds=1), "x", 1), 0)
    assert first < later
    assert kind_of(first) == FIX and sequence_of(first) == 7
    assert kind_of(history_key("shop.orders", DELETION, MARK, 0)) == DELETION
    assert kind_of("data/shop/orders/part-20260101T000000000000-00000000000000000001.parquet") == PART
    assert kind_of("data/shop/orders/notes.txt") is None
    with pytest.raises(ValueError):
        history_key("shop.orders", PART, MARK, 0)


def test_mark_round_trips_and_rejects_damage():
    assert Mark.from_json(MARK.to_json()) == MARK
    assert Mark.from_json(Mark(FOUND, "2026-03-01", "abc").to_json()).key == "abc"
    for bad in ('{"found_at": "2026-03-04T05:06:07", "watermark": ["x", 1]}',  # no time zone
                '{"found_at": "2026-03-04T05:06:07+00:00", "watermark": [1, 1]}',
                '{"found_at": "2026-03-04T05:06:07+00:00"}'):
        with pytest.raises((ValueError, KeyError)):
            Mark.from_json(bad)


def test_deletion_file_holds_typed_keys_found_at_and_the_mark(tmp_path):
    store = LocalStore(tmp_path / "store", "")
    keys = pa.table({"id": pa.array([3, 9], pa.int64())})
    path = store.scratch_dir() / "d.parquet"
    write_deletions(path, keys, MARK)
    key = history_key("shop.orders", DELETION, MARK, 1)
    store.put_file(key, path)
    assert read_mark(store, key) == MARK
    local = tmp_path / "copy.parquet"
    store.download(key, local)
    table = read_deletions(local)
    assert table.column("id").to_pylist() == [3, 9]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field(FOUND_AT).type == pa.timestamp("us", tz="UTC")
    assert table.column(FOUND_AT).to_pylist() == [FOUND, FOUND]


def test_read_mark_refuses_files_reconcile_did_not_write(tmp_path):
    store = LocalStore(tmp_path / "store", "")
    path = store.scratch_dir() / "p.parquet"
    pq.write_table(pa.table({"id": [1]}), path)
    store.put_file("data/a/b/fix-x-0000.parquet", path)
    with pytest.raises(S3rsError, match=MARK_KEY):
        read_mark(store, "data/a/b/fix-x-0000.parquet")
    store.put_bytes("data/a/b/fix-y-0000.parquet", b"not parquet")
    with pytest.raises(S3rsError, match="damaged"):
        read_mark(store, "data/a/b/fix-y-0000.parquet")


def test_position_order_puts_history_at_its_watermark_before_later_parts():
    class Info:
        name, keys = "shop.orders", [MySQLColumn("id", "bigint", "bigint(20)", None, None, None, None, "NO")]
        integer_key = True

    def part(timestamp, key):
        return data_key(Info, Position(timestamp, (key,)))  # type: ignore[arg-type]

    early = part("2026-02-01 00:00:00", 5)
    before = part("2026-03-01 10:00:00.500000", 7)     # starts before the mark (same time, lower key)
    at = part("2026-03-01 10:00:00.500000", 42)        # the next sync's first file: starts at the mark
    later = part("2026-03-02 00:00:00", 1)
    assert at == part_key("shop.orders", "2026-03-01 10:00:00.500000", key_spelling(42, True))
    second_run = Mark(FOUND + timedelta(hours=1), MARK.timestamp, MARK.key)
    fix0 = history_key("shop.orders", FIX, MARK, 0)
    del1 = history_key("shop.orders", DELETION, MARK, 1)
    fix2 = history_key("shop.orders", FIX, MARK, 2)
    fix_next = history_key("shop.orders", FIX, second_run, 0)
    marks = {fix0: MARK, del1: MARK, fix2: MARK, fix_next: second_run}
    stored = [info(k) for k in sorted([early, before, at, later, fix0, del1, fix2, fix_next,
                                       "data/shop/orders/readme.txt"])]
    ordered = [i.key for i in position_order(stored, marks)]
    assert ordered == [early, before, fix0, del1, fix2, fix_next, at, later]
    assert [i.key for i in run_files(stored, MARK)] == sorted([fix0, del1, fix2])


def test_a_text_key_mark_sits_where_the_engine_spelled_its_watermark():
    """Text keys are spelled by collation weight, which only MySQL knows: the mark records the
    watermark as the engine spelled it, so a fix file sorts before the part file starting there."""
    class Info:
        name = "shop.codes"
        keys = (MySQLColumn("code", "varchar", "varchar(20)", None, None, None, None, "NO"),)
        integer_key = False

    stamp = "2026-03-01 10:00:00"
    before = data_key(Info, Position(stamp, ("a",)), "41")  # type: ignore[arg-type]
    at = data_key(Info, Position(stamp, ("m",)), "4D")  # type: ignore[arg-type]
    mark = Mark(FOUND, stamp, "m", start_text(Info, Position(stamp, ("m",)), "4D"))  # type: ignore[arg-type]
    assert Mark.from_json(mark.to_json()) == mark
    fix = history_key("shop.codes", FIX, mark, 0)
    stored = [info(k) for k in sorted([at, before, fix])]
    assert [i.key for i in position_order(stored, {fix: mark})] == [before, fix, at]


def test_a_watermark_commits_part_files_up_to_its_last_one():
    def name(stamp: str, key: str) -> str:
        return f"data/shop/codes/part-{stamp}-{key}.parquet"

    stamp, later = "20260301T100000000000", "20260302T000000000000"
    last = name(stamp, "k4D")
    watermark = Watermark("shop.codes", last_s3_file=last)
    assert watermark.commits(name(stamp, "k41")) and watermark.commits(last)
    assert not watermark.commits(name(stamp, "k5A")) and not watermark.commits(name(later, "k30"))
    assert not Watermark("shop.codes").commits(last)
    # Named by a hash of the start key (before sort-order names): any order within a cursor value
    hashed = Watermark("shop.codes", last_s3_file=name(stamp, "s" + "0" * 19))
    assert hashed.commits(name(stamp, "s" + "f" * 19)) and hashed.commits(name(stamp, "k5A"))
    assert not hashed.commits(name(later, "s" + "1" * 19))
