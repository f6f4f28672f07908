"""`s3rs verify` and `sync --verify-data` on real MariaDB and PostgreSQL (and DuckDB): agreement,
and every kind of difference named with its key range, whichever side changed behind our back."""

import json

import pytest
from cli_helpers import make_table, run_cli
from conftest import write_config

ROWS = 3000


@pytest.fixture
def loaded(db, tmp_path, pg):
    """3,000 rows synced and loaded into PostgreSQL; returns the config path."""
    make_table(db, rows=ROWS)
    config = write_config(tmp_path / "s3rs.toml", db, extra=pg.config())
    result = run_cli("sync", "-t", "orders", "--batch-size", "1000", config=config)
    assert result.returncode == 0, result.stderr
    return config


def verify(config, *args):
    return run_cli("verify", "-t", "orders", "--chunk-size", "1000", *args, config=config)


def test_agreement_exits_0(loaded):
    result = verify(loaded)
    assert result.returncode == 0, result.stderr
    assert "agree: 3,000 rows in 4 chunks" in result.stdout  # ids 1..3000: chunks 0..3


def test_a_row_changed_in_the_warehouse_is_named_with_its_range(loaded, pg):
    pg.execute("UPDATE public.orders SET note = 'tampered' WHERE id = 1234")
    result = verify(loaded)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "differs: id 1000..1999: 1 changed (1234)" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert "1 key ranges differ" in last and "id 1000..1999" in last


def test_a_row_changed_in_mysql_without_its_cursor_is_caught(loaded, db):
    db.execute("UPDATE orders SET amount = amount + 1 WHERE id = 2500")  # update_at left alone
    result = verify(loaded, "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert not document["agrees"]
    assert document["ranges"] == [{"label": "id 2000..2999", "missing": [], "extra": [], "changed": ["2500"]}]


def test_missing_and_extra_rows_are_told_apart(loaded, db, pg):
    pg.execute("DELETE FROM public.orders WHERE id IN (10, 11)")
    db.execute("DELETE FROM orders WHERE id = 2999")
    result = verify(loaded)
    assert result.returncode == 1
    assert "id 0..999: 2 missing in the warehouse (10, 11)" in result.stdout
    assert "id 2000..2999: 1 only in the warehouse (2999)" in result.stdout


def test_rows_changed_after_the_watermark_are_pending_not_different(loaded, db):
    db.execute("UPDATE orders SET update_at = '2024-06-01', note = 'later' WHERE id IN (5, 1500)")
    db.execute("INSERT INTO orders (id, update_at, note) VALUES (7000, '2024-06-01', 'new')")
    result = verify(loaded)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rows changed in MySQL after the watermark" in result.stdout


def test_verify_wants_every_committed_file_loaded_first(db, tmp_path, pg):
    make_table(db, rows=100)
    config = write_config(tmp_path / "s3rs.toml", db, extra=pg.config())
    assert run_cli("sync", "-t", "orders", config=config).returncode == 0
    assert run_cli("sync", "-t", "orders", "--backup-only", config=config).returncode == 0
    db.execute("UPDATE orders SET update_at = '2024-06-01' WHERE id = 1")
    assert run_cli("sync", "-t", "orders", "--backup-only", config=config).returncode == 0
    result = run_cli("verify", "-t", "orders", config=config)
    assert result.returncode == 1 and "1 stored files are not loaded" in result.stderr
    assert "--load-only" in result.stderr


def test_string_keys_are_chunked_by_hash_and_named(db, tmp_path, pg):
    db.execute("CREATE TABLE orders (code VARCHAR(20) PRIMARY KEY, update_at DATETIME NOT NULL, "
               "qty INT, KEY (update_at, code))")
    db.executemany("INSERT INTO orders VALUES (%s, %s, %s)",
                   [(f"c-{i:04d}", f"2024-01-01 00:{i // 60 % 60:02d}:{i % 60:02d}", i) for i in range(500)])
    config = write_config(tmp_path / "s3rs.toml", db, extra=pg.config())
    assert run_cli("sync", "-t", "orders", "--batch-size", "100", config=config).returncode == 0
    assert run_cli("verify", "-t", "orders", config=config).returncode == 0
    pg.execute("UPDATE public.orders SET qty = -1 WHERE code = 'c-0042'")
    result = run_cli("verify", "-t", "orders", config=config)
    assert result.returncode == 1
    assert "code with MD5 starting" in result.stdout and "1 changed (c-0042)" in result.stdout


def test_duckdb_sync_with_verify_data(db, tmp_path):
    make_table(db, rows=1000)
    config = write_config(tmp_path / "s3rs.toml", db,
                          extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{tmp_path / "w.duckdb"}"\n')
    result = run_cli("sync", "-t", "orders", "--batch-size", "300", "--verify-data", "--json", config=config)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["loads"][0]["files"] == 4 and summary["verifications"][0]["agrees"]
    db.execute("UPDATE orders SET note = 'changed' WHERE id = 3")
    result = run_cli("sync", "-t", "orders", "--verify-data", config=config)
    assert result.returncode == 1 and "1 changed (3)" in result.stderr.splitlines()[-1]
