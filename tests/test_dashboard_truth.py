"""The dashboard against the engine's truth, in the default layout (files of up to 128 MB, the
5 s safety lag): a table of a few hundred thousand benchmark rows is one file that takes seconds,
and at several moments inside it what the dashboard shows (its panels' rows, its screen) must be
what the engine has really done: rows read, state, phase, a percentage below 100 until the end.
Each test names the defect of issue 17 it guards."""

import json
import subprocess
import threading
import time
import uuid
from contextlib import asynccontextmanager

import pymysql
import pytest
from cli_helpers import make_table, s3rs_command
from conftest import Database, write_config
from dashboard_helpers import make_app, wait_for, watermark_of

from s3rs_tui.engine import sync as engine_sync
from s3rs_tui.engine.progress import time_share
from s3rs_tui.sandbox.sample_data import TABLE, create_settlement_table
from s3rs_tui.status.model import TableStatus
from s3rs_tui.status.snapshot import read_snapshots
from s3rs_tui.tui import panel_rows
from s3rs_tui.tui.screens.error import ErrorModal
from s3rs_tui.tui.widgets.log_pane import LogPane
from s3rs_tui.tui.widgets.panel import Panel

ROWS = 500_000  # one file of ~26 MB: several seconds in the dashboard (2.7 s headless for 300k)


@pytest.fixture(scope="module")
def sample(mariadb):
    """One database with the benchmark table of ROWS rows, shared by the module's tests (they only
    read it; each has its own store, so its own watermark)."""
    name = "truth_" + uuid.uuid4().hex[:10]
    with pymysql.connect(**mariadb.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        create_settlement_table(conn, name, rows=ROWS)
    yield Database(mariadb, name)
    with pymysql.connect(**mariadb.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(autouse=True)
def own_state_folder(tmp_path, monkeypatch):
    """Snapshots (and their last runs) of this test only: the module's tests share one table."""
    monkeypatch.setenv("S3RS_STATE_DIR", str(tmp_path / "state"))


class Truth:
    """What the engine has really read: rows added to its files, sampled with the time."""

    def __init__(self, monkeypatch):
        self.rows, self.lock = 0, threading.Lock()
        self.samples = [(time.monotonic(), 0, None)]  # (when, rows read, cursor time of the last row)
        original = engine_sync.TableSync._add_chunk

        def add_chunk(sync, run, file, chunk):
            original(sync, run, file, chunk)
            with self.lock:
                self.rows += chunk.rows
                self.samples.append((time.monotonic(), self.rows, chunk.last.timestamp))

        monkeypatch.setattr(engine_sync.TableSync, "_add_chunk", add_chunk)

    def between(self, seconds: float) -> list[tuple[int, str | None]]:
        """(rows, cursor time) read from `seconds` ago until now: what a display at most one
        progress tick late may show (all of them when the run is younger than `seconds`)."""
        moment = time.monotonic() - seconds
        with self.lock:
            start = max((i for i, sample in enumerate(self.samples) if sample[0] <= moment), default=0)
            return [(rows, at) for _, rows, at in self.samples[start:]]


def shown(app, panel: str) -> dict[str, str]:
    """The rows a panel shows right now (label -> value), as drawn."""
    return dict(app.query_one(f"#{panel}", Panel).shown or [])


def shown_rows(app) -> int:
    return int(shown(app, "progress")["rows"].split(" / ")[0].replace(",", ""))


def percent(app) -> int:
    return int(shown(app, "progress")["done"].split("%")[0])


def config_for(tmp_path, db, extra: str = "", default_layout: bool = True):
    return write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=extra,
                        default_layout=default_layout)


def dashboard(tmp_path, settings_for, config, table: str = TABLE, **options):
    return make_app(settings_for(config), [table], tmp_path / "dashboard.log", **options)


@asynccontextmanager
async def driving(app, size=(120, 40)):
    """app.run_test, and whatever happens in the test, its runs stopped before the app closes: a
    failed assertion must not leave an engine thread paused for ever (the test would hang)."""
    async with app.run_test(size=size) as pilot:
        try:
            yield pilot
        finally:
            app.runs.stop_all("the test's end")


async def test_mid_file_the_dashboard_shows_what_the_engine_read(tmp_path, sample, settings_for, monkeypatch):
    """Defects 1 and 2: nothing moved until a file was stored; progress came from the estimate."""
    truth = Truth(monkeypatch)
    app = dashboard(tmp_path, settings_for, config_for(tmp_path, sample))
    table = f"{sample.name}.{TABLE}"
    assert app.settings.backup.file_size_mb == 128 and app.settings.backup.safety_lag_seconds == 5
    async with driving(app) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: shown_rows(app) > 0, what="rows ticking")
        status = app.statuses[table]
        assert status.estimated_rows < 0.7 * ROWS  # EXPLAIN's guess is about half: the table of the issue
        moments = past_the_estimate = 0
        while status.files == 0 and status.active:
            rows, state, done = shown_rows(app), shown(app, "progress")["state"], percent(app)
            read = truth.between(4.0)  # a tick late, on a machine as loaded as CI's 2 cores
            if status.files:  # the file was stored meanwhile: not mid-file any more
                break
            assert read[0][0] <= rows <= read[-1][0], (read[0][0], rows, read[-1][0])
            shares = [time_share(status.span_start, status.upper_bound, at) for _, at in read]
            assert int(100 * min(shares)) - 1 <= done <= 100 * max(shares) + 1 and done < 100
            assert state in ("extracting", "storing")
            watermark = shown(app, "watermark")
            if "stored" not in watermark:  # the store read saw the file's watermark before its event came
                assert watermark_of(app.settings, table) is not None, watermark
                break
            assert "none yet" in watermark["stored"]  # nothing durable yet
            last = shown(app, "throughput")["last"]
            assert last == "progress just now" or int(last.split()[1].rstrip("s")) < 5, last
            moments += 1
            past_the_estimate += rows > status.estimated_rows
            await pilot.pause(0.5)
        assert moments >= 3, f"only {moments} moments mid-file: the file took too little time"
        assert past_the_estimate, "no moment past EXPLAIN's estimate, where it used to say 100%"
        await wait_for(pilot, lambda: not app.runs.active(), timeout=120, what="the end")
        await pilot.pause(0.6)
        progress = shown(app, "progress")
        assert (progress["state"], progress["rows"], progress["done"].split(",")[0]) == \
            ("done", f"{ROWS:,} / {ROWS:,}", "100%")
    assert truth.rows == ROWS and watermark_of(app.settings, table).mysql_rows_extracted == ROWS


async def test_a_paused_run_shows_no_rate_now_nor_eta_and_its_pause_is_not_in_the_average(
        tmp_path, sample, settings_for):
    """Defect 6: a paused run showed `now 8,807,904 rows/min, ETA 0m07s`, its pause counted in the
    average, and its peak RSS never reached the screen."""
    app = dashboard(tmp_path, settings_for, config_for(tmp_path, sample))
    status_of = lambda: app.statuses[f"{sample.name}.{TABLE}"]  # noqa: E731
    async with driving(app) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: shown_rows(app) > 0, what="rows ticking")
        assert float(shown(app, "memory")["peak"].split()[0].replace(",", "")) > 0  # fed live, mid-file
        await pilot.press("p")
        assert status_of().state in ("pausing", "paused")
        await wait_for(pilot, lambda: status_of().state == "paused", what="paused")
        await pilot.pause(2.0)
        assert shown(app, "progress")["state"] == "paused"
        assert shown(app, "throughput")["now"] == "-" and "ETA -" in shown(app, "progress")["done"]
        assert percent(app) < 100
        await pilot.press("p")
        await wait_for(pilot, lambda: not app.runs.active(), timeout=120, what="the end")
    status = status_of()
    assert status.state == "done" and status.rows == ROWS and status.paused_seconds >= 2
    working = status.elapsed_seconds - status.paused_seconds
    assert status.rows_per_minute == pytest.approx(ROWS * 60 / working, rel=0.01)


async def test_quit_exits_with_the_latest_run_of_each_table_and_the_runs_are_listed(
        tmp_path, sample, settings_for):
    """Defect 6: a stopped run, then a successful one: quitting said `stopped by the operator`
    (exit 130). Defect 7: the last runs (outcome, rows, time) are kept per table."""
    app = dashboard(tmp_path, settings_for, config_for(tmp_path, sample))
    table = f"{sample.name}.{TABLE}"
    async with driving(app) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: shown_rows(app) > 0, what="rows ticking")
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.runs.active(), timeout=120, what="the stop")
        assert app.statuses[table].state == "stopped"
        await pilot.press("s")
        await wait_for(pilot, lambda: app.statuses[table].state == "done" and not app.runs.active(),
                       timeout=120, what="the second run")
        history = panel_rows.history(app.statuses[table])
        assert [value.split(",")[0] for _, value in history] == ["done", "stopped"]
        stopped_rows = app.statuses[table].last_runs[1]["rows"]
        assert 0 < stopped_rows < ROWS and app.statuses[table].last_runs[0]["rows"] == ROWS - stopped_rows
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the exit")
    assert app.return_value is None  # exit 0: the table's latest run succeeded
    (snapshot,) = read_snapshots(None, [table])
    assert [run["outcome"] for run in snapshot.status.last_runs][:2] == ["done", "stopped"]


def record_states(monkeypatch, app, table: str) -> list[tuple[str, str]]:
    """(event, state after it) for every event the dashboard folds for `table`."""
    seen: list[tuple[str, str]] = []
    original = TableStatus.apply

    def apply(status, event):
        original(status, event)
        if status is app.statuses.get(table):  # the dashboard's, not the snapshot writer's
            seen.append((type(event).__name__, status.state))

    monkeypatch.setattr(TableStatus, "apply", apply)
    return seen


async def test_load_and_verify_have_their_states_and_a_difference_is_not_safe_to_retry(
        tmp_path, db, pg, settings_for, monkeypatch):
    """Defect 3: `v` left the table `starting`, the row said `done` while the load ran, and a verify
    that found differences said `Safe to retry ... press s to resume`."""
    make_table(db, rows=3000)
    app = dashboard(tmp_path, settings_for, config_for(tmp_path, db, pg.config()), table="orders")
    table = f"{db.name}.orders"
    states = record_states(monkeypatch, app, table)
    async with driving(app) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.runs.active() and app.statuses[table].state == "done",
                       what="sync")
        after = {event: state for event, state in states}
        assert after["RunFinished"] == "loading" and after["LoadStarted"] == "loading"
        assert ("LoadFinished", "done") in states and states.index(("LoadFinished", "done")) == \
            min(i for i, (_, state) in enumerate(states) if state == "done")  # never done before the load
        states.clear()
        await pilot.press("v")
        await wait_for(pilot, lambda: not app.runs.active() and app.statuses[table].state == "verified",
                       what="verified")
        assert ("VerifyStarted", "verifying") in states
        await pilot.pause(0.5)  # the next repaint
        assert shown(app, "progress")["verify"] == "agrees: 3,000 rows"
        pg.execute("UPDATE public.orders SET note = 'tampered' WHERE id = 1234")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the dialog")
        assert app.statuses[table].state == "differs"
        assert shown(app, "progress")["state"] in ("differs", "verifying")
        assert "verify found differences" in app.screen.title_text
        assert "Safe to retry" not in app.screen.next_step and "press s" not in app.screen.next_step
        assert app.statuses[table].verify_result == "differs: 1 ranges, 1 keys"


async def test_a_failed_load_is_failed_load_never_done(tmp_path, db, pg, settings_for, monkeypatch):
    """Defect 3: a failed warehouse load showed the table as `done`."""
    make_table(db, rows=500)
    broken = pg.config().replace(f'database = "{pg.name}"', 'database = "no_such_database"')
    app = dashboard(tmp_path, settings_for, config_for(tmp_path, db, broken), table="orders")
    table = f"{db.name}.orders"
    states = record_states(monkeypatch, app, table)
    async with driving(app) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), timeout=60, what="the dialog")
        assert (app.statuses[table].state, app.statuses[table].failed_phase) == ("failed", "load")
        assert "done" not in [state for _, state in states]
        assert "the warehouse load failed" in app.screen.title_text
        assert "only the load failed" in app.screen.next_step
        await pilot.press("escape")
        await pilot.pause(0.5)
        assert shown(app, "progress")["state"] == "failed: load"
    assert watermark_of(app.settings, table).mysql_rows_extracted == 500  # the backup itself is stored


async def test_progressive_shows_every_chunk_and_ends_on_its_totals(tmp_path, sample, settings_for):
    """Defect 4: after 3M rows the final screen said `rows 0 / ~2  done 0%  chunk 13: caught up`, and
    mid-run the rows disagreed with the watermark."""
    from s3rs_tui.jobs.progressive import ProgressiveOptions

    chunk = ROWS // 3
    app = dashboard(tmp_path, settings_for, config_for(tmp_path, sample),
                    progressive=ProgressiveOptions(chunk_size=chunk))
    table = f"{sample.name}.{TABLE}"
    status = lambda: app.statuses[table]  # noqa: E731
    async with driving(app) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: status().chunk.startswith("2: started") and status().rows_read > 0,
                       timeout=120, what="the second chunk")
        await pilot.press("p")  # paused at its next file boundary: then nothing moves, all can be compared
        await wait_for(pilot, lambda: status().state == "paused", what="paused")
        await pilot.pause(0.6)
        rows = shown_rows(app)
        assert chunk < rows < 2 * chunk and percent(app) < 100  # all chunks' rows, not this chunk's
        assert rows == watermark_of(app.settings, table).mysql_rows_extracted  # agrees with what is stored
        assert shown(app, "progress")["chunk"].startswith("2: started")
        await pilot.press("p")
        await wait_for(pilot, lambda: not app.runs.active(), timeout=180, what="the end")
        await pilot.pause(0.6)
        progress = shown(app, "progress")
        assert (progress["state"], progress["rows"], progress["done"].split(",")[0]) == \
            ("done", f"{ROWS:,} / {ROWS:,}", "100%")
        assert progress["chunk"].startswith("4: caught up")
    assert watermark_of(app.settings, table).mysql_rows_extracted == ROWS


def watch_app(tmp_path, settings_for, config):
    from s3rs_tui.tui.logfile import RunLog
    from s3rs_tui.tui.watch import WatchApp

    return WatchApp(settings_for(config), [], RunLog(tmp_path / "watch.log"))


async def test_watch_of_a_crashed_run_shows_the_store_and_its_log_follows(tmp_path, db, settings_for):
    """Defect 5: a stale run said `none yet: the next sync starts from the beginning` while its
    watermark was stored, and its log pane stopped following."""
    from s3rs_tui.engine.sync import TableSync
    from s3rs_tui.runtime.control import RunControl
    from s3rs_tui.runtime.events import discard
    from s3rs_tui.status.model import LOG_LINES
    from s3rs_tui.status.snapshot import status_dir, write_atomic

    make_table(db, rows=1000)
    config = config_for(tmp_path, db, default_layout=False)
    settings = settings_for(config)
    table = f"{db.name}.orders"
    TableSync(settings, table, discard, RunControl()).run()  # what the crashed run had stored
    stored = watermark_of(settings, table)
    crashed = TableStatus(table, state="extracting", rows=560, files=3,
                          log=[f"line {n}" for n in range(LOG_LINES)])
    path = status_dir() / f"{table}.json"

    def write(status):
        document = {"pid": 2**22 + 77, "host": "gone", "updated_at": time.time() - 600,
                    "status": status.to_dict()}
        write_atomic(path, json.dumps(document).encode())

    write(crashed)
    app = watch_app(tmp_path, settings_for, config)
    async with driving(app) as pilot:
        await wait_for(pilot, lambda: app.statuses.get(table) and app.watermarks.get(table),
                       what="snapshot, store")
        await pilot.pause(0.6)
        assert app.statuses[table].state == "stale"
        watermark = shown(app, "watermark")
        assert "stored" not in watermark and watermark["timestamp"] == stored.last_mysql_data_timestamp
        assert watermark["id"] == str(stored.last_mysql_data_id)
        assert watermark["files"] == str(stored.s3_file_count)
        assert app.check_action("pause_resume", ()) is False  # a stale run cannot be steered
        crashed.add_log("a line written after the pane was full")
        write(crashed)
        last_line = ["a line written after the pane was full"]
        await wait_for(pilot, lambda: list(app.query_one(LogPane).kept)[-1:] == last_line,
                       what="the log to follow")


async def test_watch_pauses_and_stops_a_headless_run(tmp_path, sample, settings_for):
    """Defect 5: from watch, pause and stop a headless run (it obeys at its next file boundary)."""
    config = config_for(tmp_path, sample)
    table = f"{sample.name}.{TABLE}"
    process = subprocess.Popen(s3rs_command("sync", "-t", table, "--no-ui", config=config),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    app = watch_app(tmp_path, settings_for, config)
    try:
        async with driving(app) as pilot:
            await wait_for(pilot, lambda: table in app.statuses and app.statuses[table].state == "extracting",
                           timeout=60, what="the headless run in watch")
            await wait_for(pilot, lambda: app.selected == table, what="the table listed")
            assert app.check_action("pause_resume", ()) is True and app.check_action("stop_run", ()) is True
            await pilot.press("p")
            await wait_for(pilot, lambda: app.statuses[table].state == "paused", timeout=30, what="paused")
            stored = watermark_of(app.settings, table).mysql_rows_extracted
            assert 0 < stored < ROWS and process.poll() is None
            await pilot.pause(1.5)
            assert watermark_of(app.settings, table).mysql_rows_extracted == stored  # paused: nothing moves
            await pilot.press("x")
            await wait_for(pilot, lambda: app.statuses[table].state == "stopped", timeout=30, what="stopped")
        assert process.wait(30) == 130, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert watermark_of(app.settings, table).mysql_rows_extracted == stored  # stopped while paused
