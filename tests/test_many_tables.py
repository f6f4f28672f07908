"""Several tables at once: their own locks and watermarks, failures kept apart, hosts sharing work."""

import json
import subprocess
import sys
import threading
import time

from cli_helpers import run_cli
from conftest import write_config
from test_engine import TABLE_DDL, assert_exactly_once, fill

from s3rs_tui.jobs.tables import TableJobs
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.events import RunFinished, RunStarted

NAMES = ("a", "b", "c", "d")


def make_tables(db, names=NAMES, rows=20000):
    for name in names:
        db.execute(TABLE_DDL.replace("orders", name))
        fill(db, rows, table=name)


def test_three_tables_at_once_with_one_failing(db, tmp_path, settings_for):
    make_tables(db, ("a", "b"))
    db.execute("CREATE TABLE broken (id INT PRIMARY KEY, changed DATETIME NOT NULL)")  # no update_at
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra="max_workers = 3\nbatch_size = 2000\n")
    done = run_cli("sync", "-t", "a", "-t", "broken", "-t", "b", "--json", config=config)
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert [(t["table"].split(".")[1], t["status"]) for t in summary["tables"]] == [
        ("a", "success"), ("broken", "failed"), ("b", "success")]
    assert "1 of 3 tables failed" in done.stderr and "no cursor column" in done.stderr
    table_lines = [line for line in done.stderr.splitlines() if line.startswith(f"{db.name}.")]
    assert len(table_lines) == 3 and "20,000" in table_lines[0]  # the final table
    settings = settings_for(config)
    for name in ("a", "b"):
        assert_exactly_once(db, settings, f"{db.name}.{name}", name)


def test_tables_really_run_side_by_side(db, local_config, settings_for):
    make_tables(db, ("a", "b", "c"), rows=30000)
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 500)
    settings.override("backup.max_workers", 3)
    spans, lock = {}, threading.Lock()

    def sink(event):
        with lock:
            if isinstance(event, RunStarted):
                spans[event.table] = [time.monotonic(), None]
            elif isinstance(event, RunFinished):
                spans[event.table][1] = time.monotonic()

    outcomes = TableJobs(settings, sink, RunControl()).run_many([f"{db.name}.{t}" for t in "abc"], workers=3)
    assert [o.status for o in outcomes] == ["success"] * 3
    latest_start = max(start for start, _ in spans.values())
    earliest_end = min(end for _, end in spans.values())
    assert latest_start < earliest_end  # all three were running at the same moment


def test_two_hosts_share_the_tables_through_the_s3_lock(db, tmp_path, bucket, s3_endpoint, settings_for):
    make_tables(db, rows=30000)
    tables = "".join(f'[tables."{db.name}.{name}"]\ncursor_column = "update_at"\n' for name in NAMES)
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint,
                          extra=f"max_workers = 1\nbatch_size = 500\n\n{tables}")
    command = [sys.executable, "-m", "s3rs_tui", "--config", str(config), "sync", "--all", "--json"]
    hosts = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(*host.communicate(timeout=240), host.returncode) for host in hosts]
    assert [code for _, _, code in results] == [0, 0], [err for _, err, _ in results]
    statuses = [{t["table"]: t["status"] for t in json.loads(out)["tables"]} for out, _, _ in results]
    assert any("skipped" in s.values() for s in statuses), statuses  # someone found a table taken
    settings = settings_for(config)
    for name in NAMES:
        full = f"{db.name}.{name}"
        assert "success" in (statuses[0][full], statuses[1][full])
        assert_exactly_once(db, settings, full, name)


def test_all_needs_tables_in_the_config(db, local_config):
    done = run_cli("sync", "--all", config=local_config)
    assert done.returncode == 2 and "no [tables" in done.stderr


def test_a_single_locked_table_still_exits_3(db, local_config, settings_for):
    from s3rs_tui.store import open_store
    from s3rs_tui.store.lock import TableLock

    make_tables(db, ("a",), rows=10)
    with TableLock(open_store(settings_for(local_config)), f"{db.name}.a"):
        done = run_cli("sync", "-t", "a", config=local_config)
    assert done.returncode == 3 and "locked by" in done.stderr
