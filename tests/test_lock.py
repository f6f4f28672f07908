"""The table lock on its own: heartbeat, loss detection, and the engine stopping before it commits."""

import json
import time

import pytest

from s3rs_tui.runtime.errors import S3rsError, TableLockedError
from s3rs_tui.store.local import LocalStore
from s3rs_tui.store.lock import TableLock, lock_key


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store", "p/")


def test_heartbeat_moves_forward(store):
    with TableLock(store, "db.t", heartbeat_seconds=0.05):
        first = json.loads(store.get_bytes(lock_key("db.t"))[0])["heartbeat_at"]
        time.sleep(0.3)
        later = json.loads(store.get_bytes(lock_key("db.t"))[0])["heartbeat_at"]
    assert later > first
    assert store.get_bytes(lock_key("db.t")) is None  # released


def test_a_broken_lock_is_noticed_and_not_deleted_by_the_loser(store):
    lock = TableLock(store, "db.t", heartbeat_seconds=0.05).acquire()
    thief = TableLock(store, "db.t", break_lock=True).acquire()
    deadline = time.monotonic() + 5
    while not lock.lost.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lock.lost.is_set()
    lock.release()
    assert json.loads(store.get_bytes(lock_key("db.t"))[0])["run_id"] == thief.run_id
    thief.release()


def test_a_live_lock_is_refused_and_named(store):
    with (TableLock(store, "db.t", purpose="sync"),
          pytest.raises(TableLockedError, match=r"sync run .* on .*:\d+")):
        TableLock(store, "db.t").acquire()


def test_engine_stops_before_the_watermark_when_its_lock_is_taken(db, local_config, settings_for):
    from s3rs_tui.engine.sync import TableSync
    from s3rs_tui.runtime.control import RunControl
    from s3rs_tui.runtime.events import FileStored
    from s3rs_tui.store import open_store
    from s3rs_tui.store.watermark import WatermarkStore

    db.execute("CREATE TABLE t (id INT PRIMARY KEY, update_at DATETIME NOT NULL, KEY (update_at, id))",
               "INSERT INTO t SELECT seq, '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_5000")
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 500)
    settings.override("backup.lock_stale_seconds", 1)  # heartbeat every second
    store = open_store(settings)

    def steal_after_two_files(event):
        if isinstance(event, FileStored) and event.run_files == 2:
            TableLock(store, f"{db.name}.t", break_lock=True).acquire()
            time.sleep(1.5)  # the run's next heartbeat finds the lock gone

    with pytest.raises(S3rsError, match="lock was taken"):
        TableSync(settings, f"{db.name}.t", steal_after_two_files, RunControl()).run()
    assert WatermarkStore(store).get(f"{db.name}.t").s3_file_count == 2
