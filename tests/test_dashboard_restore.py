"""A restore in the dashboard (`b`), driving the real engine on a real backed-up table: what the
Progress panel shows is true at each moment (rows in the target, never ahead of MySQL's count,
the state's total), pause holds it between batches with the panel equal to the target's count,
stop then `b` again goes on where it stopped, and the restored table equals the source in every
column (tests/exact_rows.py, through test_restore.snapshot)."""

import uuid
from contextlib import asynccontextmanager

import pymysql
import pytest
from conftest import TEST_ENV, Database, write_config
from dashboard_helpers import make_app, wait_for
from test_restore import snapshot

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime.config import load_settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.sandbox.sample_data import TABLE, create_settlement_table
from s3rs_tui.tui.screens.confirm import ConfirmModal
from s3rs_tui.tui.screens.error import ErrorModal
from s3rs_tui.tui.screens.restore import RestoreModal
from s3rs_tui.tui.widgets.panel import Panel

ROWS = 200_000  # four batches of 50,000: seconds of restore, several progress events
BATCH = 50_000


@pytest.fixture(scope="module")
def backed_up(mariadb, tmp_path_factory):
    """The benchmark table of ROWS rows, synced once into a local store shared by the module."""
    name = "rst_" + uuid.uuid4().hex[:10]
    with pymysql.connect(**mariadb.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        create_settlement_table(conn, name, rows=ROWS)
    db = Database(mariadb, name)
    folder = tmp_path_factory.mktemp("restore")
    config = write_config(folder / "s3rs.toml", db, store=folder / "store", default_layout=True)
    settings = load_settings(str(config), environ=TEST_ENV)
    assert TableSync(settings, f"{name}.{TABLE}", lambda event: None, RunControl()).run().status == "success"
    yield db, settings, folder, snapshot(db, TABLE)
    with pymysql.connect(**mariadb.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(autouse=True)
def own_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("S3RS_STATE_DIR", str(tmp_path / "state"))


def shown(app) -> dict[str, str]:
    return dict(app.query_one("#progress", Panel).shown or [])


def shown_rows(app) -> tuple[int, int]:
    """(rows restored, total) as the Progress panel says them ("0" before anything is known)."""
    done, _, total = shown(app)["rows"].partition(" / ")
    return int(done.replace(",", "")), int(total.replace(",", "").lstrip("~") or 0)


def count(db, table: str) -> int:
    return db.execute(f"SELECT COUNT(*) FROM `{table}`")[0][0]


@asynccontextmanager
async def driving(app, size=(120, 40)):
    async with app.run_test(size=size) as pilot:
        try:
            yield pilot
        finally:
            app.runs.stop_all("the test's end")


async def ask_restore(pilot, target: str, replace: bool = False) -> None:
    """`b`, the target typed over the proposed one (Replace ticked if asked), Enter, then y on the
    confirmation."""
    await pilot.press("b")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RestoreModal), what="the restore dialog")
    pilot.app.screen.query_one("#target").value = target
    pilot.app.screen.query_one("#replace").value = replace
    pilot.app.screen.query_one("#target").focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), what="the confirmation")
    await pilot.press("y")


async def test_restore_in_the_dashboard_shows_the_truth_then_equals_the_source(backed_up, tmp_path):
    db, settings, _, source = backed_up
    app = make_app(settings, [f"{db.name}.{TABLE}"], tmp_path / "dashboard.log")
    table, target = f"{db.name}.{TABLE}", f"restored_{uuid.uuid4().hex[:6]}"
    async with driving(app) as pilot:
        assert "Restore" in [command.title for command in app.get_system_commands(app.screen)]  # ctrl+p
        await ask_restore(pilot, f"{db.name}.{target}")
        await wait_for(pilot, lambda: app.statuses[table].state == "restoring", what="restoring")
        seen = []
        while app.statuses[table].active:
            before = count(db, target) if seen else 0
            rows, total = shown_rows(app)
            after = count(db, target)
            # committed before it is shown: never ahead of MySQL, at most a batch (and a repaint) behind
            assert before - 2 * BATCH <= rows <= after, (before, rows, after)
            if rows:
                assert total == ROWS  # the state's count, known before the first batch is shown
                values = shown(app)
                assert values["state"] in ("restoring", "done"), values
                assert values["done"].startswith(f"{min(99, rows * 100 // ROWS)}%"), values
                throughput = dict(app.query_one("#throughput", Panel).shown or [])
                assert throughput["avg"] != "0/min", throughput
                seen.append(rows)
            await pilot.pause(0.1)
        await wait_for(pilot, lambda: shown(app).get("state") == "done", what="done shown")
        assert shown_rows(app) == (ROWS, ROWS) and shown(app)["done"].startswith("100%")
        last_run = dict(app.query_one("#runs", Panel).shown or []).popitem()[1]
        assert last_run.startswith(f"restore done, {ROWS:,} rows"), last_run
    assert snapshot(db, target) == source


async def test_pause_holds_between_batches_and_resume_finishes_exactly(backed_up, tmp_path):
    db, settings, _, source = backed_up
    app = make_app(settings, [f"{db.name}.{TABLE}"], tmp_path / "dashboard.log")
    table, target = f"{db.name}.{TABLE}", f"restored_{uuid.uuid4().hex[:6]}"
    async with driving(app) as pilot:
        await ask_restore(pilot, f"{db.name}.{target}")
        await pilot.press("p")  # asked before the first batch is committed: it pauses after it
        await wait_for(pilot, lambda: app.statuses[table].state == "paused", what="paused")
        await pilot.pause(0.5)
        held = count(db, target)
        assert 0 < held < ROWS and held % BATCH == 0
        assert shown_rows(app) == (held, ROWS) and shown(app)["state"] == "paused"
        assert shown(app)["done"].endswith("ETA -")  # no ETA while paused
        assert dict(app.query_one("#throughput", Panel).shown or [])["now"] == "-"
        await pilot.pause(1.0)
        assert count(db, target) == held  # nothing moves while paused
        await pilot.press("p")
        await wait_for(pilot, lambda: shown(app).get("state") == "done", timeout=120, what="done shown")
        status = app.statuses[table]
        assert status.paused_seconds >= 1.0 and shown_rows(app) == (ROWS, ROWS)
    assert snapshot(db, target) == source


async def test_stop_then_b_again_goes_on_and_is_exact(backed_up, tmp_path):
    db, settings, _, source = backed_up
    app = make_app(settings, [f"{db.name}.{TABLE}"], tmp_path / "dashboard.log")
    table, target = f"{db.name}.{TABLE}", f"restored_{uuid.uuid4().hex[:6]}"
    async with driving(app) as pilot:
        await ask_restore(pilot, f"{db.name}.{target}")
        await pilot.press("x")  # stops after the batch in flight, its progress saved
        await wait_for(pilot, lambda: shown(app).get("state") == "stopped" and not app.runs.active(),
                       what="stopped shown")
        stopped = count(db, target)
        assert 0 < stopped < ROWS and stopped % BATCH == 0
        assert shown_rows(app)[0] == stopped
        await ask_restore(pilot, f"{db.name}.{target}")
        await wait_for(pilot, lambda: shown(app).get("state") == "done", timeout=120, what="done shown")
        assert shown_rows(app) == (ROWS, ROWS)
        assert f"going on after {stopped:,} rows" in app.log_file.path.read_text()
        outcomes = [run["outcome"] for run in app.statuses[table].last_runs[:2]]
        assert outcomes == ["restore done", "restore stopped"]
    assert snapshot(db, target) == source


async def test_a_restore_refused_before_it_starts_says_the_restore_failed_and_why(backed_up, tmp_path):
    """Into a table that holds rows: the plan refuses it (nothing written); the dialog names the
    restore, not "the run", and the panel says where it failed. Asked again with Replace ticked,
    the table is dropped and restored."""
    db, settings, _, source = backed_up
    app = make_app(settings, [f"{db.name}.{TABLE}"], tmp_path / "dashboard.log")
    target = f"occupied_{uuid.uuid4().hex[:6]}"
    db.execute(f"CREATE TABLE `{target}` (id INT PRIMARY KEY)", f"INSERT INTO `{target}` VALUES (7)")
    async with driving(app) as pilot:
        await ask_restore(pilot, f"{db.name}.{target}")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the error dialog")
        assert app.screen.title_text == f"{db.name}.{TABLE}: the restore failed"
        assert "exists and is not empty" in app.screen.message
        await wait_for(pilot, lambda: shown(app).get("state") == "failed: restore", what="the failure shown")
        assert list(db.execute(f"SELECT id FROM `{target}`")) == [(7,)]
        await pilot.press("escape")
        await ask_restore(pilot, f"{db.name}.{target}", replace=True)
        await wait_for(pilot, lambda: shown(app).get("state") == "done", timeout=120, what="done shown")
    assert snapshot(db, target) == source
