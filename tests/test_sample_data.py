"""The benchmark table generator: shape, data distribution and determinism, on the real MariaDB."""

import pytest

from s3rs_tui.sandbox import sample_data
from s3rs_tui.sandbox.sample_data import TABLE, create_settlement_table

ROWS = 20_000


def generate(db, table=TABLE, rows=ROWS, progress=None, seed=0):
    with db.connect() as conn:
        create_settlement_table(conn, db.name, table=table, rows=rows, progress=progress, seed=seed)


def one(db, sql):
    return db.execute(sql)[0]


def test_table_has_the_benchmark_ddl_and_exact_ids(db):
    generate(db)
    create = db.execute(f"SHOW CREATE TABLE `{TABLE}`")[0][1]
    assert "KEY `idx_update_at_id` (`update_at`,`id`)" in create
    assert "`status` enum('CREATED','PICKED','IN_TRANSIT','DELIVERED','RETURNED','CANCELLED')" in create
    assert "COLLATE=utf8mb4_unicode_ci" in create
    assert one(db, f"SELECT COUNT(*), MIN(id), MAX(id), COUNT(DISTINCT id) FROM `{TABLE}`") == (
        ROWS, 1, ROWS, ROWS)


@pytest.mark.parametrize("seed", [0, 7])
def test_distribution(db, seed):
    generate(db, seed=seed)
    t = f"`{TABLE}`"

    # Groups of 50 consecutive ids share one create_at second, one group per minute.
    groups, smallest, largest, widest = one(db, f"""
        SELECT COUNT(*), MIN(n), MAX(n), MAX(span) FROM (
          SELECT create_at, COUNT(*) n, MAX(id) - MIN(id) span FROM {t} GROUP BY create_at) g""")
    assert (groups, smallest, largest, widest) == (ROWS // 50, 50, 50, 49)
    assert one(db, f"SELECT COUNT(DISTINCT DATE_FORMAT(create_at, '%Y%m%d%H%i')),"
                   f" TO_SECONDS(MAX(create_at)) DIV 60 - TO_SECONDS(MIN(create_at)) DIV 60 FROM {t}") == (
        ROWS // 50, ROWS // 50 - 1)

    # ~30% later updated, to a later whole minute; the others keep update_at = create_at.
    updated, earlier, off_minute, whole_minute_create = one(db, f"""
        SELECT AVG(update_at > create_at), SUM(update_at < create_at),
               SUM(update_at > create_at AND SECOND(update_at) <> 0), SUM(SECOND(create_at) = 0)
        FROM {t}""")
    assert 0.25 <= updated <= 0.35
    assert (earlier, off_minute, whole_minute_create) == (0, 0, 0)
    # Update seconds gather rows from scattered groups: ~50 at the busiest ones, never a pile-up.
    busiest, updated_seconds = one(db, f"""
        SELECT MAX(n), COUNT(*) FROM (SELECT update_at, COUNT(*) n FROM {t}
                                      WHERE update_at > create_at GROUP BY update_at) s""")
    assert 35 <= busiest <= 90
    assert updated_seconds > 50
    ids_by_update = [row[0] for row in db.execute(f"SELECT id FROM {t} ORDER BY update_at, id")]
    assert ids_by_update != sorted(ids_by_update)

    # NULL shares.
    goods_null, amount_null, date_null, both_null, remark_set = one(db, f"""
        SELECT AVG(goods_desc IS NULL), AVG(settle_amount IS NULL), AVG(settle_date IS NULL),
               AVG(settle_amount IS NULL AND settle_date IS NULL), AVG(remark IS NOT NULL) FROM {t}""")
    assert 0.035 <= goods_null <= 0.065
    assert 0.02 <= amount_null <= 0.04
    assert amount_null == date_null == both_null
    assert 0.17 <= remark_set <= 0.23

    # About 400 bytes a row (sum of the values' lengths as text).
    text_bytes = " + ".join(f"IFNULL(LENGTH(`{c}`), 0)" for c in sample_data.COLUMNS)
    average = float(one(db, f"SELECT AVG({text_bytes}) FROM {t}")[0])
    assert 340 <= average <= 460

    # Scripts: CJK, accented Latin, Cyrillic and emoji (4-byte utf8mb4) survive the round trip.
    texts = "".join(
        "".join(v for v in row if v) for row in
        db.execute(f"SELECT merchant_name, consignee_name, consignee_address, remark, goods_desc FROM {t}"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in texts)
    assert any("\u0400" <= ch <= "\u04ff" for ch in texts)
    assert any(ch in texts for ch in "éüøñçł")
    emoji_rows = one(db, f"""SELECT SUM(CONCAT_WS('', consignee_name, remark, merchant_name, goods_desc)
                                       RLIKE '[\\\\x{{1F000}}-\\\\x{{1FAFF}}]') FROM {t}""")[0]
    assert emoji_rows > 0
    assert any(ord(ch) > 0xFFFF for ch in texts)


def test_same_rows_give_the_same_table_whatever_the_chunking(db, monkeypatch):
    calls = []
    generate(db, table="first", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(ROWS, ROWS)]

    monkeypatch.setattr(sample_data, "CHUNK_ROWS", 7_000)
    calls.clear()
    generate(db, table="second", progress=lambda done, total: calls.append((done, total)))
    assert calls == [(7_000, ROWS), (14_000, ROWS), (ROWS, ROWS)]

    checksums = dict(db.execute("CHECKSUM TABLE `first`, `second`"))
    assert checksums[f"{db.name}.first"] == checksums[f"{db.name}.second"]
    assert checksums[f"{db.name}.first"] not in (None, 0)

    # Generating again replaces the table (drop first); the first rows do not depend on the size.
    generate(db, table="second", rows=1_000)
    assert one(db, "SELECT COUNT(*), MAX(id) FROM `second`") == (1_000, 1_000)
    digest = "SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', id, order_no, consignee_name, update_at) ORDER BY id))" \
             " FROM `{}` WHERE id <= 1000"
    assert one(db, digest.format("first")) == one(db, digest.format("second"))


def test_another_seed_gives_other_values_with_the_same_shape(db):
    generate(db, table="seed0")
    generate(db, table="seed7", seed=7)
    generate(db, table="seed7_again", seed=7)
    checksums = dict(db.execute("CHECKSUM TABLE `seed0`, `seed7`, `seed7_again`"))
    assert checksums[f"{db.name}.seed7"] == checksums[f"{db.name}.seed7_again"]
    assert checksums[f"{db.name}.seed7"] != checksums[f"{db.name}.seed0"]

    # The same ids and columns, but (nearly) every row has other values.
    shape = "SELECT COUNT(*), MIN(id), MAX(id), COUNT(DISTINCT create_at) FROM `{}`"
    assert one(db, shape.format("seed0")) == one(db, shape.format("seed7")) == (ROWS, 1, ROWS, ROWS // 50)
    differing = one(db, """
        SELECT SUM(NOT (a.consignee_name <=> b.consignee_name AND a.waybill_no <=> b.waybill_no
                        AND a.update_at <=> b.update_at))
        FROM `seed0` a JOIN `seed7` b USING (id)""")[0]
    assert differing > ROWS * 0.9
    # The script mix (CJK / Latin / Cyrillic) stays about the same.
    currencies = "SELECT currency, COUNT(*) FROM `{}` GROUP BY currency ORDER BY currency"
    for (currency, n0), (other, n7) in zip(db.execute(currencies.format("seed0")),
                                           db.execute(currencies.format("seed7")), strict=True):
        assert currency == other
        assert abs(n0 - n7) < ROWS * 0.03
