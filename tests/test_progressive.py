"""`s3rs progressive` on a real MariaDB and real stores: exact chunks, resume, refusals, failures."""

import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import run_cli
from test_engine import TABLE_DDL, assert_exactly_once, fill, stored_files

from s3rs_tui.jobs.progressive import ProgressiveOptions, ProgressiveRun
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import S3rsError, StoppedByOperator
from s3rs_tui.runtime.events import ChunkProgress, FileStored
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import Watermark, WatermarkStore


@pytest.fixture
def orders(db):
    db.execute(TABLE_DDL)
    fill(db, 20000)
    return db


def test_max_chunks_takes_exactly_that_many_chunks(orders, local_config, settings_for, tmp_path):
    name = f"{orders.name}.orders"
    done = subprocess.run([sys.executable, "-m", "s3rs_tui", "--config", str(local_config), "progressive",
                           name, "--chunk-size", "3000", "--max-chunks", "3", "--json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    watermark = WatermarkStore(open_store(settings_for(local_config))).get(name)
    assert watermark.mysql_rows_extracted == 9000 and watermark.backup_strategy == "progressive"
    assert '"chunks": 3' in done.stdout and '"caught_up": false' in done.stdout
    logs = list(tmp_path.glob(f"progressive_{name}_*.log"))
    assert len(logs) == 1 and "chunk 3 of 3 done: 9,000 rows so far" in logs[0].read_text()
    # Rerunning the same command resumes; without --max-chunks it goes on until caught up.
    rest = run_cli("progressive", name, "--chunk-size", "3000", config=local_config, cwd=local_config.parent)
    assert rest.returncode == 0 and "caught up after 4 chunks" in rest.stderr
    assert_exactly_once(orders, settings_for(local_config), name)


def test_every_chunk_holds_at_most_chunk_size_rows(orders, local_config, settings_for):
    events = []
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 700)  # pages that do not divide the chunk
    result = ProgressiveRun(settings, f"{orders.name}.orders", events.append, RunControl(),
                            ProgressiveOptions(chunk_size=2500)).run()
    assert result.rows == 20000 and result.caught_up and result.chunks == 9  # 8 full, 1 finds nothing
    finished = [e for e in events if type(e).__name__ == "RunFinished"]
    assert [e.rows for e in finished] == [2500] * 8 + [0]
    assert_exactly_once(orders, settings, f"{orders.name}.orders")


def test_a_stop_between_chunks_starts_no_other_chunk(orders, local_config, settings_for):
    """A stop asked while a chunk ends (or in a chunk that found nothing to read) ends the run
    there: the next chunk used to start, store a file, and a caught-up chunk even exited 0."""
    settings, name, events = settings_for(local_config), f"{orders.name}.orders", []
    control = RunControl()

    def sink(event):
        events.append(event)
        if isinstance(event, ChunkProgress) and event.status == "done":
            control.request_stop("SIGTERM")

    with pytest.raises(StoppedByOperator, match="stopped by SIGTERM after 1 chunks"):
        ProgressiveRun(settings, name, sink, control, ProgressiveOptions(chunk_size=5000)).run()
    assert [e.status for e in events if isinstance(e, ChunkProgress)] == ["started", "done"]
    assert WatermarkStore(open_store(settings)).get(name).mysql_rows_extracted == 5000


def test_killed_mid_chunk_then_rerun_is_exact(orders, s3_config, settings_for):
    name = f"{orders.name}.orders"
    settings = settings_for(s3_config)
    process = subprocess.Popen([sys.executable, "-m", "s3rs_tui", "--config", str(s3_config), "progressive",
                                name, "--chunk-size", "4000", "--monitor-interval", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=s3_config.parent)
    watermarks = WatermarkStore(open_store(settings))
    deadline = time.monotonic() + 60
    while (watermarks.get(name) or watermarks.get_or_new(name)).s3_file_count < 3:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rerun = run_cli("progressive", name, "--chunk-size", "4000", config=s3_config, cwd=s3_config.parent)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(orders, settings, name)


def test_start_timestamp_is_refused_on_a_table_with_progress(orders, local_config, settings_for):
    name = f"{orders.name}.orders"
    first = run_cli("progressive", name, "--chunk-size", "5000", "--max-chunks", "1",
                    "--start-timestamp", "2024-01-01 00:10:00", config=local_config, cwd=local_config.parent)
    assert first.returncode == 0, first.stderr
    watermark = WatermarkStore(open_store(settings_for(local_config))).get(name)
    assert watermark.last_mysql_data_timestamp > "2024-01-01 00:10:00"  # started there
    before = watermark.to_json()
    again = run_cli("progressive", name, "--start-timestamp", "2024-01-01 00:00:00", config=local_config,
                    cwd=local_config.parent)
    assert again.returncode == 2 and "already has progress" in again.stderr and "--restart" in again.stderr
    assert WatermarkStore(open_store(settings_for(local_config))).get(name).to_json() == before
    restarted = run_cli("progressive", name, "--start-timestamp", "2024-01-01 00:00:00", "--restart",
                        config=local_config, cwd=local_config.parent)
    assert restarted.returncode == 0, restarted.stderr


def test_bad_options_exit_2(orders, local_config):
    name = f"{orders.name}.orders"
    for args in (["--chunk-size", "0"], ["--mode", "sideways"], ["--start-timestamp", "yesterday"],
                 ["--load-at-end"], ["--mode", "full"], ["--estimate", "guess"]):
        done = run_cli("progressive", name, *args, config=local_config, cwd=local_config.parent)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_table_error_ends_the_run_at_once_with_exit_2(orders, local_config, settings_for):
    """A watermark made with another cursor column is bad input, not bad luck: no backoff, no retry."""
    name = f"{orders.name}.orders"
    watermarks = WatermarkStore(open_store(settings_for(local_config)))
    watermarks.save(Watermark(table_name=name, last_mysql_data_timestamp="2024-01-01 00:00:00",
                              last_mysql_data_id=1, cursor_column="created_at"))
    started = time.monotonic()
    done = run_cli("progressive", name, "--chunk-size", "5000", config=local_config, cwd=local_config.parent)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "was made with cursor_column 'created_at'" in last and "Traceback" not in done.stderr
    assert "retrying" not in done.stderr and time.monotonic() - started < 5  # a retry waits 5 s first


def test_a_chunk_that_times_out_is_retried_and_keeps_its_files(orders, local_config, settings_for):
    settings = settings_for(local_config)
    settings.override("backup.batch_size", 500)
    events = []
    options = ProgressiveOptions(chunk_size=20000, max_chunks=2, timeout_minutes=0.0005,
                                 retry_delay_seconds=0)
    with pytest.raises(S3rsError, match="3 chunks failed in a row"):
        ProgressiveRun(settings, f"{orders.name}.orders", events.append, RunControl(), options).run()
    failed = [e for e in events if isinstance(e, ChunkProgress) and e.status == "failed"]
    assert len(failed) == 3 and "time allowed ran out" in failed[0].error
    # Each timed-out chunk stopped at a file boundary with its watermark saved: nothing lost.
    stored = sum(len(rows) for rows in stored_files(settings, f"{orders.name}.orders").values())
    watermark = WatermarkStore(open_store(settings)).get(f"{orders.name}.orders")
    assert watermark.mysql_rows_extracted == stored > 0
    assert sum(isinstance(e, FileStored) for e in events) == watermark.s3_file_count


def test_monitor_lines_report_progress(orders, local_config):
    done = run_cli("progressive", f"{orders.name}.orders", "--chunk-size", "2000",
                   "--monitor-interval", "0.1", "--pause-seconds", "0.1", config=local_config,
                   cwd=local_config.parent)
    assert done.returncode == 0
    assert "rows/min, ETA" in done.stderr and "RSS" in done.stderr


def test_staged_backup_only_chunks_then_one_load_in_as_few_copies_as_possible(
        db, tmp_path, bucket, s3_endpoint, pg, settings_for):
    """The staged approach for massive tables: backup-only chunks, then `sync --load-only`, which
    loads every stored file of the table in one group (one COPY, one merge)."""
    import json as json_module

    from cli_helpers import make_table
    from conftest import write_config

    make_table(db, rows=10000)
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint,
                          extra="batch_size = 500\n" + pg.config())
    name = f"{db.name}.orders"
    staged = run_cli("progressive", name, "--chunk-size", "4000", "--mode", "backup-only", config=config,
                     cwd=tmp_path)
    assert staged.returncode == 0, staged.stderr
    files = WatermarkStore(open_store(settings_for(config))).get(name).s3_file_count
    assert files == 20  # a file per 500-row page (file_size_mb = 0 in the tests' config): more than
    # the 16 files a load after an extraction takes at once
    loaded = run_cli("sync", "-t", name, "--load-only", "--debug", "--json", config=config)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr.count(" loaded 20 files") == 1  # one group: one COPY of all 20 files
    summary = json_module.loads(loaded.stdout)
    assert summary["loads"][0]["files"] == 20 and summary["loads"][0]["rows"] == 10000
    assert pg.execute('SELECT COUNT(*), COUNT(DISTINCT id) FROM public."orders"') == [(10000, 10000)]
