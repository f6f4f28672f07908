"""`s3rs restore` against a real MariaDB and real stores: a table backed up over several syncs with
updates between them comes back exactly as MySQL held it at a moment between two syncs and as of
now, every column compared (the edge-value table too); killed mid-restore and rerun, every key is
there exactly once; deletions and fixes recorded by reconcile (store/history.py) apply as of their
found_at.

"Exactly" is a digest of every column per key (exact_rows.canonical), read from the source at the
moment and from the restored table by the same client. Zero and impossible dates are NULL in the
backup, so on both sides a date value MySQL cannot read as a date compares as NULL (README:
Restore).
"""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest
from cli_helpers import killed_at_failpoint, make_table, run_cli
from conftest import write_config
from exact_rows import digest
from test_keys import TABLES as KEY_TABLES
from test_typemap import edge_table  # noqa: F401 - the fixture

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.jobs import restore_mysql
from s3rs_tui.jobs.restore import Restore, RestoreOptions
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.workdir import OwnedFolder
from s3rs_tui.store import open_store
from s3rs_tui.store.history import Mark, history_key, write_deletions
from s3rs_tui.store.schemas import definitions_prefix
from s3rs_tui.store.watermark import WatermarkStore

_DATES = ("date", "datetime", "timestamp")


def snapshot(db, table: str, key: str | tuple[str, ...] = "id") -> dict[str, str]:
    """key -> digest of every column, in the table's column order; unreadable dates as NULL. A key
    of several columns is their values' texts joined by commas."""
    columns = db.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                         "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                         params=(db.name, table))
    names = [name for name, _ in columns]
    dates = [data_type in _DATES for _, data_type in columns]
    rows = db.execute(f"SELECT {', '.join(f'`{n}`' for n in names)} FROM `{table}`")
    at = [names.index(one) for one in ((key,) if isinstance(key, str) else key)]
    return {", ".join(str(row[i]) for i in at): digest([None if is_date and isinstance(value, str) else value
                                  for value, is_date in zip(row, dates, strict=True)]) for row in rows}


def sync(settings, name: str) -> None:
    finished = TableSync(settings, name, lambda event: None, RunControl()).run()
    assert finished.status == "success"


def restore(settings, table: str, events=None, **options):
    sink = ([] if events is None else events).append
    job = Restore(settings, RestoreOptions(table=table, **options), sink, RunControl())
    return job.run(job.plan())


@pytest.fixture
def history(db, tmp_path, settings_for):
    """orders backed up by three syncs, rows updated and added between them; the source's state
    after each sync, and the moments between."""
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store")
    settings = settings_for(config)
    make_table(db, rows=600)  # update_at in 2024-01-01, ids interleaved in time
    name = f"{db.name}.orders"
    sync(settings, name)
    states = [snapshot(db, "orders")]
    db.execute("UPDATE orders SET amount = amount * 3, note = CONCAT('v2 ', id), "
               "update_at = '2024-02-01 00:00:00' + INTERVAL id SECOND WHERE id % 7 = 0",
               "INSERT INTO orders (id, update_at, amount, note) "
               "SELECT seq, '2024-02-02 00:00:00', seq, NULL FROM seq_601_to_700")
    sync(settings, name)
    states.append(snapshot(db, "orders"))
    db.execute("UPDATE orders SET amount = -amount, note = 'v3', update_at = '2024-03-01 00:00:00' "
               "WHERE id % 7 = 0 AND id % 2 = 0 OR id = 650")
    sync(settings, name)
    states.append(snapshot(db, "orders"))
    assert states[0] != states[1] != states[2]
    return settings, name, states


@pytest.mark.parametrize("as_of, state", [("2024-01-15 00:00:00", 0), ("2024-02-15 12:00:00", 1), (None, 2)])
def test_restore_as_of_a_moment_equals_what_mysql_held_then(history, db, as_of, state):
    settings, name, states = history
    result = restore(settings, name, into=f"{db.name}.restored", as_of=as_of)
    assert snapshot(db, "restored") == states[state]
    assert result.rows == len(states[state]) and result.load_data


def test_the_restored_table_has_the_source_definition(history, db):
    settings, name, _ = history
    restore(settings, name, into=f"{db.name}.restored")
    definition = {tuple(row) for row in db.execute(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, EXTRA FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", params=(db.name, "restored"))}
    source = {tuple(row) for row in db.execute(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, EXTRA FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", params=(db.name, "orders"))}
    assert definition == source
    assert indexes(db, "restored") == indexes(db, "orders")


def indexes(db, table: str) -> set[tuple]:
    """Each index column of the table: (index, column, position, unique or not)."""
    return set(db.execute("SELECT INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX, NON_UNIQUE FROM "
                          "information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                          params=(db.name, table)))


def test_the_definition_is_stored_once_per_schema_change(history, db):
    settings, name, _ = history
    store = open_store(settings)
    assert len(list(store.list(definitions_prefix(name)))) == 1  # three syncs, one definition
    db.execute("ALTER TABLE orders ADD COLUMN extra INT NULL")
    sync(settings, name)
    db.execute("ALTER TABLE orders DROP COLUMN extra")
    sync(settings, name)
    keys = [info.key for info in store.list(definitions_prefix(name))]
    assert len(keys) == 3 and "extra" in store.get_bytes(keys[1])[0].decode()
    assert store.get_bytes(keys[0])[0] == store.get_bytes(keys[2])[0]


def test_a_key_range_and_parquet_output(history, db, tmp_path):
    settings, name, states = history
    restore(settings, name, into=f"{db.name}.part", as_of="2024-02-15 12:00:00", key_from=["100"],
            key_to=["199"])
    assert snapshot(db, "part") == {k: v for k, v in states[1].items() if 100 <= int(k) <= 199}
    folder = tmp_path / "state"
    result = restore(settings, name, to_parquet=folder, as_of="2024-02-15 12:00:00")
    table = pa.concat_tables(pq.read_table(path) for path in sorted(folder.glob("restore-*.parquet")))
    assert result.rows == table.num_rows == len(states[1])
    assert table.schema.field("amount").metadata == {b"mysql_type": b"decimal(18,4)"}
    restored = {str(row["id"]): digest([row[c] for c in ("id", "update_at", "amount", "note")])
                for row in table.to_pylist()}
    assert restored == states[1]
    assert len(set(table["id"].to_pylist())) == table.num_rows  # each key once


def test_refuses_a_non_empty_target_and_the_source_without_replace(history, db):
    settings, name, states = history
    run = run_cli("restore", "-t", name, "--into", name, config=settings.config_path)
    assert run.returncode == 2 and "is the source table itself" in run.stderr, run.stderr
    db.execute("CREATE TABLE busy (id INT PRIMARY KEY)", "INSERT INTO busy VALUES (1)")
    run = run_cli("restore", "-t", name, "--into", f"{db.name}.busy", config=settings.config_path)
    assert run.returncode == 2 and "is not empty" in run.stderr, run.stderr
    assert db.execute("SELECT id FROM busy") == ((1,),)
    busy = ["restore", "-t", name, "--into", f"{db.name}.busy"]
    run = run_cli(*busy, "--replace", config=settings.config_path)
    assert run.returncode == 2 and "--yes" in run.stderr, run.stderr  # no terminal: it insists
    run = run_cli("restore", "-t", name, "--into", f"{db.name}.busy", "--replace", "--yes", "--as-of",
                  "2024-01-15 00:00:00", config=settings.config_path)
    assert run.returncode == 0, run.stderr
    assert snapshot(db, "busy") == states[0]
    db.execute("UPDATE orders SET note = 'damaged'")
    run = run_cli("restore", "-t", name, "--into", name, "--replace", "--yes", config=settings.config_path)
    assert run.returncode == 0, run.stderr
    assert snapshot(db, "orders") == states[2]


def test_multi_row_inserts_give_the_same_table(history, db, monkeypatch):
    """A batch's INSERT text is built a slice of rows at a time (memory), each slice split into
    statements under a size: small limits here, so slices and statements both cut a batch."""
    settings, name, states = history
    monkeypatch.setattr(restore_mysql, "_TEXT_ROWS", 7)
    monkeypatch.setattr(restore_mysql, "_INSERT_BYTES", 150)
    sent = []
    original = pymysql.connections.Connection.query
    monkeypatch.setattr(pymysql.connections.Connection, "query", lambda conn, sql, *args: (
        sent.append(sql) if isinstance(sql, bytes) and sql.startswith(b"INSERT") else None,
        original(conn, sql, *args))[1])
    result = restore(settings, name, into=f"{db.name}.restored", as_of="2024-02-15 12:00:00", inserts=True,
                     batch_rows=64)
    assert snapshot(db, "restored") == states[1] and not result.load_data
    rows = [statement.count(b"),(") + 1 for statement in sent]
    assert max(rows) <= 7 and min(rows) < 7 and sum(rows) == len(states[1])


def test_a_server_refusing_load_data_local_gets_inserts_and_the_same_table(history, db):
    """local_infile OFF on the server (MySQL 8's default): the first batch is refused; the restore
    says so once and writes it, and the rest, as INSERTs."""
    settings, name, states = history
    db.execute("SET GLOBAL local_infile = 0")
    try:
        events = []
        result = restore(settings, name, events, into=f"{db.name}.restored", batch_rows=50)
    finally:
        db.execute("SET GLOBAL local_infile = 1")
    assert snapshot(db, "restored") == states[2] and not result.load_data
    said = [getattr(event, "message", "") for event in events]
    assert len([message for message in said if "LOAD DATA LOCAL INFILE is refused" in message]) == 1


def kill_at(tmp_path, config, point: str, *args) -> None:
    """`s3rs restore ARGS` stopped at fail point `point`, then SIGKILLed there."""
    killed_at_failpoint(config, point, tmp_path, "restore", *args)


@pytest.mark.parametrize("insert", [False, True])
def test_killed_mid_restore_then_rerun_has_each_key_once(history, db, tmp_path, insert):
    """Killed after a batch is committed but before its progress is saved (the hardest moment:
    the rerun must not load that batch twice), then again later; reruns finish exactly."""
    settings, name, states = history
    args = ["-t", name, "--into", f"{db.name}.restored", "--as-of", "2024-02-15 12:00:00",
            "--batch-size", "60", *(["--insert"] if insert else [])]
    config = settings.config_path
    kill_at(tmp_path, config, "restore-batch:3", *args)
    assert 120 <= len(db.execute("SELECT id FROM restored")) <= 180
    assert {name for name, *_ in indexes(db, "restored")} == {"PRIMARY"}  # the cursor index comes last
    kill_at(tmp_path, config, "restore-batch:4", *args)
    run = run_cli("restore", *args, config=config)
    assert run.returncode == 0, run.stderr
    assert "going on after" in run.stderr
    assert snapshot(db, "restored") == states[1]
    assert indexes(db, "restored") == indexes(db, "orders")


def test_killed_after_building_the_secondary_indexes_the_rerun_finishes(history, db, tmp_path):
    """The secondary index is added by an ALTER TABLE after the last batch; killed right after it
    (progress not yet done), the rerun finds it built, adds nothing twice and ends exactly."""
    settings, name, states = history
    args = ["-t", name, "--into", f"{db.name}.restored", "--batch-size", "200"]
    kill_at(tmp_path, settings.config_path, "restore-indexes:1", *args)
    assert indexes(db, "restored") == indexes(db, "orders")
    run = run_cli("restore", *args, config=settings.config_path)
    assert run.returncode == 0, run.stderr
    assert "building" not in run.stderr
    assert snapshot(db, "restored") == states[2] and indexes(db, "restored") == indexes(db, "orders")


def test_a_killed_restores_scratch_folder_is_removed_by_the_next_run(history, db, tmp_path):
    """SIGKILL leaves the work folder (the table's files, DuckDB's spill) behind; the rerun, whose
    own folder is made first, removes it (its owner is gone), keeps a live run's, finishes exactly."""
    settings, name, states = history
    work = tmp_path / "work"
    work.mkdir()
    args = ["-t", name, "--into", f"{db.name}.restored", "--batch-size", "100", "--work-dir", str(work)]
    kill_at(tmp_path, settings.config_path, "restore-batch:2", *args)
    left = list(work.glob("s3rs-restore-*"))
    assert len(left) == 1 and any(left[0].glob("*.parquet")), left
    with OwnedFolder("s3rs-restore-", work) as live:  # another restore, alive, sharing the work dir
        run = run_cli("restore", *args, config=settings.config_path)
        assert run.returncode == 0, run.stderr
        assert list(work.glob("s3rs-restore-*")) == [live]
    assert not list(work.iterdir())
    assert snapshot(db, "restored") == states[2]


def test_deletions_and_fixes_apply_as_of_their_time(history, db, tmp_path):
    """Reconcile's files, written through store/history.py: a deletion hides the key from its
    found_at on, a fix row wins from its found_at on, and neither changes an earlier state."""
    settings, name, states = history
    store = open_store(settings)
    watermark = WatermarkStore(store).get(name)
    found = datetime(2024, 3, 10, tzinfo=UTC)  # after every cursor value; the test server runs in UTC
    mark = Mark(found, watermark.last_mysql_data_timestamp, watermark.last_mysql_data_id)
    keys = pa.table({"id": pa.array([5, 14, 650], pa.decimal128(20, 0))})
    path = tmp_path / "del.parquet"
    write_deletions(path, keys, mark)
    store.put_file(history_key(name, "del", mark, 1), path)
    fix_mark = Mark(found + timedelta(days=1), mark.timestamp, mark.key)
    fix = pq.read_table(next(p for p in sorted((tmp_path / "store").rglob("part-*.parquet"))))
    fix = fix.filter(pa.compute.equal(fix["id"], pa.scalar(3, fix.schema.field("id").type)))
    fix = fix.set_column(fix.schema.get_field_index("note"), fix.schema.field("note"), pa.array(["fixed"]))
    fix = fix.replace_schema_metadata({**(fix.schema.metadata or {}), **{
        k.encode(): v.encode() for k, v in fix_mark.footer().items()}})
    pq.write_table(fix, tmp_path / "fix.parquet")
    store.put_file(history_key(name, "fix", fix_mark, 2), tmp_path / "fix.parquet")
    db.execute("DELETE FROM orders WHERE id IN (5, 14, 650)", "UPDATE orders SET note = 'fixed' WHERE id = 3")
    now = snapshot(db, "orders")
    restore(settings, name, into=f"{db.name}.before", as_of="2024-03-09 23:59:59.999999")
    assert snapshot(db, "before") == states[2]
    restore(settings, name, into=f"{db.name}.after_delete", as_of="2024-03-10 00:00:00")
    assert snapshot(db, "after_delete") == {k: v for k, v in states[2].items() if k not in ("5", "14", "650")}
    restore(settings, name, into=f"{db.name}.latest")
    assert snapshot(db, "latest") == now


def test_a_deletion_applies_at_its_found_at_in_the_servers_zone(history, db, tmp_path):
    """found_at is UTC; a DATETIME cursor holds the server's wall clock (no cursor_timezone): with
    the server at +05:00, a deletion found at 00:00 UTC happened at 05:00 cursor time. (The offset
    was read with NOW() in the restore's own UTC session: always 0.)"""
    settings, name, states = history
    store = open_store(settings)
    watermark = WatermarkStore(store).get(name)
    mark = Mark(datetime(2024, 3, 10, tzinfo=UTC), watermark.last_mysql_data_timestamp,
                watermark.last_mysql_data_id)
    write_deletions(tmp_path / "del.parquet", pa.table({"id": pa.array([5, 14], pa.decimal128(20, 0))}), mark)
    store.put_file(history_key(name, "del", mark, 1), tmp_path / "del.parquet")
    db.execute("SET GLOBAL time_zone = '+05:00'")
    try:
        restore(settings, name, into=f"{db.name}.before", as_of="2024-03-10 04:59:59")
        restore(settings, name, into=f"{db.name}.after", as_of="2024-03-10 05:00:00")
    finally:
        db.execute("SET GLOBAL time_zone = '+00:00'")
    assert snapshot(db, "before") == states[2]
    assert snapshot(db, "after") == {k: v for k, v in states[2].items() if k not in ("5", "14")}


@pytest.fixture
def edge_history(edge_table, tmp_path, settings_for):  # noqa: F811 - pytest fixture chaining
    """The edge-value table (every type, extremes, zero dates) with a cursor, synced, its values
    changed, synced again."""
    db = edge_table
    db.execute("ALTER TABLE t ADD COLUMN update_at DATETIME(6) NOT NULL DEFAULT '2024-01-01 00:00:00', "
               "ADD KEY idx_update_at_id (update_at, id)",
               "UPDATE t SET update_at = '2024-01-01 00:00:00.123456' + INTERVAL id MINUTE")
    settings = settings_for(write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                                         extra="batch_size = 3\n"))
    name = f"{db.name}.t"
    sync(settings, name)
    first = snapshot(db, "t")
    db.execute("SET SESSION sql_mode = ''",
               "UPDATE t SET vc = CONCAT('changed ', id), b8 = 1, d38 = -d38, tx = NULL, "
               "update_at = '2024-06-01 00:00:00.000001' WHERE id IN (1, 3, 6)")
    sync(settings, name)
    return db, settings, name, first, snapshot(db, "t")


def test_the_edge_value_table_comes_back_exactly(edge_history, monkeypatch):
    """Every type, LOAD DATA and INSERTs; the text built two rows at a time (as a batch's text is
    built a slice at a time), so every value also crosses a slice's end."""
    db, settings, name, first, now = edge_history
    monkeypatch.setattr(restore_mysql, "_TEXT_ROWS", 2)
    for as_of, table, wanted in (("2024-03-01 00:00:00", "then", first), (None, "now", now)):
        restore(settings, name, into=f"{db.name}.{table}", as_of=as_of)
        assert snapshot(db, table) == wanted, table
    restore(settings, name, into=f"{db.name}.inserted", inserts=True)
    assert snapshot(db, "inserted") == now


def test_verify_against_compares_the_restored_table_with_its_source(history, db):
    settings, name, _ = history
    restore(settings, name, into=f"{db.name}.restored")
    against = ["verify", "-t", name, "--against", f"{db.name}.restored", "--chunk-size", "100"]
    run = run_cli(*against, config=settings.config_path)
    assert run.returncode == 0, run.stderr
    assert f"MySQL {db.name}.restored agree: 700 rows" in run.stdout
    db.execute("UPDATE restored SET note = 'tampered' WHERE id = 321", "DELETE FROM restored WHERE id = 5")
    run = run_cli(*against, config=settings.config_path)
    assert run.returncode == 1
    assert "id 300..399: 1 changed (321)" in run.stdout and "id 0..99: 1 missing" in run.stdout, run.stdout


def test_taken_rows_reads_exactly_the_wanted_rows_across_row_groups_reads_and_chunks(tmp_path):
    """Phase two on a file of several row groups, read a few rows at a time, from a start row, the
    wanted row numbers coming in chunks of any size (one row, many reads, none)."""
    import random

    from s3rs_tui.jobs.restore_state import taken_rows

    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"n": pa.array(range(1000), pa.int64())}), path, row_group_size=128)
    draw = random.Random(7)
    wanted = sorted(draw.sample(range(1000), 300))
    random_sizes = [draw.randint(0, 40) for _ in range(20)] + [300]
    for chunk_sizes in ([300], [1] * 300, [0, 7, 0, 150, 143], random_sizes):
        chunks, first = [], 0
        for size in chunk_sizes:
            chunks.append(pa.array(wanted[first:first + size], pa.int64()))
            first += size
        for start in (0, 1, 500, 999, 1000):
            got, numbers = [], []
            for batch, taken in taken_rows(path, iter(chunks), start, read_rows=50):
                got += batch.column(0).to_pylist()
                numbers += taken.to_pylist()
            assert got == numbers == [row for row in wanted if row >= start], (chunk_sizes, start)


def test_bad_input_is_one_line_and_exit_2_and_dry_run_changes_nothing(history, db):
    settings, name, _ = history
    config = settings.config_path
    for args, said in (([], "give --into db.table (MySQL) or --to-parquet DIR"),
                       (["--into", f"{db.name}.x", "--as-of", "yesterday"], "--as-of: invalid timestamp"),
                       (["--into", "a.b.c"], "--into: invalid table"),
                       (["--into", f"{db.name}.x", "--where-key-from", "abc"],
                        "--where-key-from 'abc': not a value of the key column id (an integer)"),
                       (["--into", f"{db.name}.x", "--where-key-to", "1", "--where-key-to", "2"],
                        "--where-key-to: 2 values for a key of 1 column (id)")):
        run = run_cli("restore", "-t", name, *args, config=config)
        assert run.returncode == 2 and said in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    run = run_cli("restore", "-t", name, "--into", f"{db.name}.x", "--dry-run", "--json", config=config)
    assert run.returncode == 0, run.stderr
    plan = __import__("json").loads(run.stdout)
    assert plan["part_files"] >= 3 and plan["definition"] and plan["target_exists"] is False
    assert not db.execute("SHOW TABLES LIKE 'x'")


def test_a_rerun_reads_the_files_the_stopped_restore_read(history, db, tmp_path):
    """Killed mid-restore of "everything stored"; a sync then stores newer versions; the rerun
    finishes the restore it was (the state before that sync), each key once."""
    settings, name, states = history
    args = ["-t", name, "--into", f"{db.name}.restored", "--batch-size", "100"]
    kill_at(tmp_path, settings.config_path, "restore-batch:2", *args)
    db.execute("UPDATE orders SET note = 'after the kill', update_at = '2024-04-01 00:00:00' WHERE id < 50")
    sync(settings, name)
    run = run_cli("restore", *args, config=settings.config_path)
    assert run.returncode == 0, run.stderr
    assert snapshot(db, "restored") == states[2]


def test_a_key_range_on_a_two_column_key_is_compared_as_a_tuple(db, tmp_path, settings_for):
    """(emp_no, from_date): the option once per key column; the range is lexicographic, as the key
    sorts, so it starts and ends inside an emp_no's dates. Bad counts and values: exit 2, one line."""
    ddl, insert, key, _ = KEY_TABLES["salaries"]
    db.execute(ddl, insert.format(n=2000, first=0, start="2024-01-01"))
    settings = settings_for(write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store"))
    name = f"{db.name}.salaries"
    sync(settings, name)
    restore(settings, name, into=f"{db.name}.part", key_from=["10050", "1992-01-01"],
            key_to=["10100", "1991-01-01"])
    db.execute("CREATE TABLE expected AS SELECT * FROM salaries WHERE (emp_no, from_date) >= (10050, "
               "'1992-01-01') AND (emp_no, from_date) <= (10100, '1991-01-01')")
    expected = snapshot(db, "expected", key)
    assert len(expected) == 3 + 49 * 5 + 2 and snapshot(db, "part", key) == expected
    assert "10050, 1991-01-01" not in expected and "10100, 1991-01-01" in expected
    for args, said in ((["--where-key-from", "10050"], "--where-key-from: 1 value for a key of 2 columns "
                        "(emp_no, from_date): give it once per key column, in that order"),
                       (["--where-key-to", "10050", "--where-key-to", "1992-13-01"],
                        "--where-key-to '1992-13-01': not a value of the key column from_date (a date"),
                       (["--where-key-from", "x", "--where-key-from", "1992-01-01"],
                        "--where-key-from 'x': not a value of the key column emp_no (an integer)")):
        run = run_cli("restore", "-t", name, "--into", f"{db.name}.other", *args, config=settings.config_path)
        assert run.returncode == 2 and said in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
