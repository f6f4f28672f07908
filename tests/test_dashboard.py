"""The dashboard driven from the keyboard (Textual's Pilot) against the real engine, MariaDB and
the moto S3 server: start, pause, resume, stop gracefully, quit while running; the watermark and
S3 cleanup screens doing real changes through s3rs_tui.ops; errors in a dialog with the traceback
in the log file only; secrets never on screen; progress messages coalescing."""

import itertools
import json
import os
import signal
import time

import pytest
from cli_helpers import make_table, table_ids
from dashboard_helpers import Gate, make_app, screen_text, stored_ids, wait_for, watermark_of
from textual.widgets import Button, DataTable, Input, ProgressBar, Switch

from s3rs_tui.engine import sync as engine_sync
from s3rs_tui.runtime.errors import StoppedByOperator
from s3rs_tui.runtime.events import FileStored, RunFinished, RunStarted
from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock
from s3rs_tui.store.watermark import WatermarkStore
from s3rs_tui.tui.bridge import EngineBridge
from s3rs_tui.tui.messages import DeleteProgress, EngineUpdate
from s3rs_tui.tui.screens.confirm import ConfirmModal
from s3rs_tui.tui.screens.error import ErrorModal
from s3rs_tui.tui.screens.watermark import WatermarkScreen


@pytest.fixture
def dashboard(tmp_path, settings_for):
    """make(config, tables=["orders"], **options) -> the app, with its log file in tmp_path."""
    def make(config, tables=("orders",), **options):
        return make_app(settings_for(config), list(tables), tmp_path / "dashboard.log", **options)

    return make


def status(app, db, table="orders"):
    return app.statuses[f"{db.name}.{table}"]


def app_on_table(dashboard, db, config, rows: int, batch_size: int = 50):
    """A source table of `rows` rows and the dashboard on it, `batch_size` rows a file."""
    make_table(db, rows=rows)
    app = dashboard(config)
    app.settings.override("backup.batch_size", batch_size)
    return app


async def sync_to_the_end(pilot, app, db):
    await pilot.press("s")
    await wait_for(pilot, lambda: status(app, db).state == "done", what="the sync")


async def start_paused(pilot, app, db):
    """Start a sync with the keys and pause it after its first file."""
    gate = Gate(db)
    await pilot.press("s", "p")
    gate.open()
    await wait_for(pilot, lambda: status(app, db).state == "paused", what="paused")


@pytest.mark.parametrize("store", ["local", "s3"])
async def test_sync_pause_resume_stop_from_the_keyboard(request, db, dashboard, store):
    config = request.getfixturevalue(f"{store}_config")
    app = app_on_table(dashboard, db, config, 6000, 50)
    name = f"{db.name}.orders"
    async with app.run_test(size=(120, 40)) as pilot:
        await start_paused(pilot, app, db)
        assert status(app, db).files == 1
        await pilot.pause(0.5)
        assert status(app, db).files == 1  # paused between files: nothing moves
        assert watermark_of(app.settings, name).s3_file_count == 1
        gate = Gate(db)
        await pilot.press("p")  # resumed: it waits at the gate for its next page
        await wait_for(pilot, lambda: status(app, db).state == "extracting", what="resumed")
        # the engine itself past the pause (the state above is said when resume is asked)
        await wait_for(pilot, gate.waited_at, what="a read waiting at the gate")
        await pilot.press("x")
        gate.open()  # one more file, then the stop
        # the run's end reaches the app as a message, handled a moment after the worker finished
        await wait_for(pilot, lambda: not app.runs.active() and app.failure is not None, what="stopped")
        assert status(app, db).state == "stopped" and status(app, db).files >= 2  # the reader may read ahead
        assert isinstance(app.failure, StoppedByOperator)
    watermark = watermark_of(app.settings, name)
    ids = stored_ids(app.settings, name)
    assert ids == table_ids(db)[:len(ids)] and len(ids) == watermark.mysql_rows_extracted
    assert watermark.last_mysql_data_id == ids[-1] and watermark.s3_file_count == status(app, db).files
    log = (app.log_file.path).read_text()
    assert "pause requested" in log and "stop requested" in log and "interrupted" in log


async def test_quit_while_running_asks_then_stops_gracefully(db, local_config, dashboard):
    app = app_on_table(dashboard, db, local_config, 2000, 50)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_paused(pilot, app, db)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("escape")  # cancel: the run goes on
        assert not isinstance(app.screen, ConfirmModal) and app.runs.active()
        await pilot.press("q")
        await pilot.click("#yes")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert not app.runs.active() and isinstance(app.return_value, StoppedByOperator)
    watermark = watermark_of(app.settings, f"{db.name}.orders")
    assert watermark.mysql_status == "interrupted"
    assert stored_ids(app.settings, f"{db.name}.orders") == table_ids(db)[:watermark.mysql_rows_extracted]


async def test_terminal_loss_stops_the_run_and_says_so(db, local_config, dashboard):
    """SIGHUP handling in-process (the tmux test does it for real): runs stop, log says so."""
    app = app_on_table(dashboard, db, local_config, 2000, 50)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_paused(pilot, app, db)
        app.hangup.handle(signal.SIGHUP)
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    app.hangup.disarm()  # as run_dashboard does once the app has ended (else: os._exit in 5 s)
    log = app.log_file.path.read_text()
    assert "SIGHUP: the terminal went away" in log and "every run has stopped with its watermark saved" in log
    assert watermark_of(app.settings, f"{db.name}.orders").mysql_status == "interrupted"


async def test_watermark_screen_set_reset_force_reset(db, local_config, dashboard):
    app = app_on_table(dashboard, db, local_config, 400, 100)
    name = f"{db.name}.orders"
    async with app.run_test(size=(120, 40)) as pilot:
        await sync_to_the_end(pilot, app, db)
        await pilot.press("w")
        screen = app.screen
        assert isinstance(screen, WatermarkScreen)
        await pilot.press(*"2024-13-01")
        assert "invalid timestamp" in str(screen.query_one("#check").render())
        assert screen.query_one("#set", Button).disabled
        screen.query_one("#timestamp", Input).value = "2024-01-01 00:00:50"
        await pilot.press("tab", *"7")
        await wait_for(pilot, lambda: "rows lie after it" in str(screen.query_one("#check").render()),
                       what="the estimate")
        await pilot.click("#set")
        await pilot.click("#yes")
        await wait_for(pilot, lambda: watermark_of(app.settings, name).last_mysql_data_id == 7, what="set")
        assert watermark_of(app.settings, name).last_mysql_data_timestamp == "2024-01-01 00:00:50"

        await pilot.click("#reset")
        await pilot.click("#yes")
        await wait_for(pilot, lambda: not watermark_of(app.settings, name).has_position, what="reset")
        assert WatermarkStore(open_store(app.settings)).latest_backup(name)[1].last_mysql_data_id == 7

        await pilot.click("#force")
        modal = app.screen
        await pilot.press(*"wrong", "enter")
        assert app.screen is modal and modal.query_one("#yes", Button).disabled
        modal.query_one(Input).value = ""
        await pilot.press(*name, "enter")  # typing the table name confirms
        await wait_for(pilot, lambda: "force-reset done" in app.log_file.path.read_text(), what="force")


async def test_watermark_changes_refused_while_running_or_locked(db, local_config, dashboard):
    app = app_on_table(dashboard, db, local_config, 1000, 50)
    name = f"{db.name}.orders"
    async with app.run_test(size=(120, 40)) as pilot:
        await start_paused(pilot, app, db)
        await pilot.press("w", "c")  # both keys are off while the table runs
        assert app.screen is app.screen_stack[0]
        app.push_screen(WatermarkScreen(app.settings, name, app.log_file, table_running=lambda: True))
        await pilot.pause()
        await pilot.click("#reset")
        await pilot.click("#yes")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the refusal")
        assert "refused" in app.screen.title_text and "Stop the run first" in app.screen.next_step
        await pilot.press("escape", "escape", "p", "x")
        await wait_for(pilot, lambda: not app.runs.active(), what="stopped")
        with TableLock(open_store(app.settings), name, purpose="sync"):  # another process's run
            await pilot.press("w")
            await pilot.click("#reset")
            await pilot.click("#yes")
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the lock error")
            assert "is locked by sync run" in app.screen.message


async def test_cleanup_screen_deletes_only_old_loaded_files(tmp_path, db, local_config, dashboard):
    app = app_on_table(dashboard, db, local_config, 500, 100)
    name = f"{db.name}.orders"
    async with app.run_test(size=(120, 40)) as pilot:
        await sync_to_the_end(pilot, app, db)
    store = open_store(app.settings)
    keys = [info.key for info in store.list(f"data/{db.name}/orders/")]
    assert len(keys) == 5
    watermarks = WatermarkStore(store)
    watermark = watermarks.get(name)
    watermark.processed_s3_files = keys[:2] + keys[4:]  # files 0, 1 and 4 are loaded
    watermarks.save(watermark)
    old = time.time() - 10 * 86400
    for key in keys[:4]:  # files 0..3 are ten days old; file 4 is new
        os.utime(tmp_path / "store" / "backups" / key, (old, old))

    app = dashboard(local_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        screen = app.screen
        await wait_for(pilot, lambda: screen.found is not None, what="the file list")
        await pilot.press(*"7x")
        assert "invalid duration" in str(screen.query_one("#totals").render())
        await pilot.press("backspace", "d")
        assert [f.info.key for f in screen.plan.doomed] == keys[:2]  # old and loaded only
        assert "2 of 5 files would go" in str(screen.query_one("#totals").render())
        rows = screen.query_one("#files", DataTable)
        assert [rows.get_row_at(i)[0] for i in range(rows.row_count)] == ["delete", "delete", "keep", "keep"]
        await pilot.click("#delete")
        await pilot.click("#yes")
        await wait_for(pilot, lambda: "deleted 2 files" in app.log_file.path.read_text(), what="delete")
        bar = screen.query_one("#deleting", ProgressBar)
        await wait_for(pilot, lambda: (bar.progress, bar.total) == (2, 2), what="the progress bar")
        await wait_for(pilot, lambda: screen.found is not None and len(screen.found.files) == 3,
                       what="reload")
        screen.query_one("#force", Switch).value = True  # force: old files not loaded go too
        await pilot.pause()
        assert [f.info.key for f in screen.plan.doomed] == keys[2:4]
    assert [info.key for info in store.list(f"data/{db.name}/orders/")] == keys[2:]


async def test_config_screen_redacts_secrets(tmp_path, db, dashboard):
    from conftest import write_config

    secret = "Zq9-dashboard-Secret-7731"
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'\n[warehouse]\nkind = "postgres"\npassword = "{secret}"\n')
    app = dashboard(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        text = screen_text(app)
        assert "********" in text and secret not in text
        table = app.screen.query_one(DataTable)
        cells = [str(cell) for i in range(table.row_count) for cell in table.get_row_at(i)]
        assert secret not in " ".join(cells) and "file" in cells
        assert "warehouse.password" in cells or ("warehouse", "password") in itertools.pairwise(cells)


async def test_errors_show_in_a_dialog_with_the_traceback_in_the_log(db, local_config, dashboard,
                                                                     monkeypatch):
    app = dashboard(local_config, tables=["missing_table"])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the error dialog")
        modal = app.screen
        assert "missing_table" in modal.message and "Fix the configuration" in modal.next_step
        assert "Traceback" not in screen_text(app)
        await pilot.press("escape")

        def explode(self):
            raise RuntimeError("boom")

        monkeypatch.setattr(engine_sync.TableSync, "run", explode)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the second dialog")
        assert app.screen.message == "internal error: RuntimeError: boom"
        assert "Traceback" not in screen_text(app) and "bug" in app.screen.next_step
    log = app.log_file.path.read_text()
    assert "Traceback" in log and "RuntimeError: boom" in log


def test_progress_messages_coalesce_per_table():
    def stored(table, n):
        return EngineUpdate(
            FileStored(
                table=table,
                key=f"k{n}",
                rows=1,
                bytes=1,
                run_rows=n,
                run_files=n,
                run_bytes=n,
                rows_per_minute=1.0,
                rss_mb=1.0,
                watermark_timestamp="t",
                watermark_id=n,
                elapsed_seconds=float(n),
            )
        )

    assert stored("a", 1).can_replace(stored("a", 2))
    assert not stored("a", 1).can_replace(stored("b", 2))
    started = EngineUpdate(
        RunStarted(
            table="a",
            run_id="r",
            start_timestamp=None,
            start_id=None,
            upper_bound="t",
            estimated_rows=1,
            batch_size=1,
            store_url="/",
        )
    )
    assert not started.can_replace(stored("a", 1)) and not stored("a", 1).can_replace(started)
    assert DeleteProgress(1, 5000).can_replace(DeleteProgress(2, 5000))  # deleting thousands: latest wins


async def test_a_flood_of_progress_is_handled_once(tmp_path, local_config, dashboard):
    """1000 FileStored queued at once reach the handler as one message; the totals are the last."""
    app = dashboard(local_config, tables=["shop.orders"])
    handled = []
    async with app.run_test(size=(80, 24), message_hook=lambda m: handled.append(m)) as pilot:
        bridge = EngineBridge(app, app.log_file, app.formatter.format)
        for n in range(1, 1001):
            bridge(
                FileStored(
                    table="shop.orders",
                    key=f"k{n}",
                    rows=10,
                    bytes=100,
                    run_rows=10 * n,
                    run_files=n,
                    run_bytes=100 * n,
                    rows_per_minute=600.0,
                    rss_mb=50.0,
                    watermark_timestamp="2024-01-01",
                    watermark_id=n,
                    elapsed_seconds=n / 10,
                )
            )
        bridge(
            RunFinished(
                table="shop.orders",
                status="success",
                rows=10_000,
                files=1000,
                bytes=100_000,
                elapsed_seconds=100.0,
                rows_per_minute=6000.0,
                peak_rss_mb=50.0,
                watermark_timestamp="2024-01-01",
                watermark_id=1000,
            )
        )
        await wait_for(pilot, lambda: app.statuses["shop.orders"].state == "done", what="the finish")
        await pilot.pause(0.3)
    delivered = [m for m in handled if isinstance(m, EngineUpdate) and isinstance(m.event, FileStored)]
    assert len(delivered) < 10
    assert app.statuses["shop.orders"].files == 1000
    assert app.log_file.path.read_text().count("shop.orders file ") == 1000  # the log keeps every line


async def test_watch_is_read_only_and_flags_a_dead_run(tmp_path, local_config, settings_for):
    from s3rs_tui.status.snapshot import SnapshotWriter
    from s3rs_tui.tui.logfile import RunLog
    from s3rs_tui.tui.watch import WatchApp

    writer = SnapshotWriter(tmp_path / "status", formatter=lambda event: type(event).__name__)
    writer(
        RunStarted(
            table="shop.orders",
            run_id="r1",
            start_timestamp=None,
            start_id=None,
            upper_bound="2024-06-01 00:00:00",
            estimated_rows=1000,
            batch_size=100,
            store_url="/store",
        )
    )
    writer(
        RunStarted(
            table="shop.refunds",
            run_id="r2",
            start_timestamp=None,
            start_id=None,
            upper_bound="2024-06-01 00:00:00",
            estimated_rows=1000,
            batch_size=100,
            store_url="/store",
        )
    )
    path = tmp_path / "status" / "shop.refunds.json"
    document = json.loads(path.read_text())
    document["pid"] = 2**22 + 4321  # above pid_max: a process that is gone
    path.write_text(json.dumps(document))
    app = WatchApp(settings_for(local_config), [], RunLog(tmp_path / "watch.log"), tmp_path / "status")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.statuses) == 2, what="the snapshots")
        assert app.statuses["shop.orders"].state == "extracting"
        refunds = app.statuses["shop.refunds"]
        assert refunds.state == "stale" and "is gone" in refunds.error
        for action in ("start_sync", "watermark", "cleanup"):
            assert app.check_action(action, ()) is False
        await pilot.press("s", "w")
        assert not app.runs.active() and app.screen is app.screen_stack[0]
        await pilot.pause(0.5)
        assert "RunStarted" in screen_text(app)  # the selected run's own log lines


async def test_progressive_from_the_keyboard_shows_the_chunk_count(db, local_config, dashboard):
    from s3rs_tui.jobs.progressive import ProgressiveOptions

    make_table(db, rows=3000)
    app = dashboard(local_config, progressive=ProgressiveOptions(chunk_size=700))
    app.settings.override("backup.batch_size", 300)
    name = f"{db.name}.orders"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("g")
        await wait_for(pilot, lambda: status(app, db).chunk.endswith("caught up"), what="caught up")
        await wait_for(pilot, lambda: not app.runs.active(), what="the run's end")
        assert status(app, db).chunk == "5: caught up" and status(app, db).chunk_rows == 3000
        await pilot.pause(0.5)  # the next repaint
        assert "chunk5: caught up" in screen_text(app).replace("\xa0", " ")
    assert stored_ids(app.settings, name) == table_ids(db)
    assert watermark_of(app.settings, name).backup_strategy == "progressive"


async def test_reconcile_from_the_keyboard_shows_its_ranges_in_the_progress_panel(db, local_config,
                                                                                  dashboard):
    from s3rs_tui.jobs.reconcile import ReconcileOptions

    make_table(db, rows=3000)
    app = dashboard(local_config, reconcile=ReconcileOptions(chunk_keys=1000))
    app.settings.override("backup.batch_size", 1000)
    async with app.run_test(size=(120, 40)) as pilot:
        await sync_to_the_end(pilot, app, db)
        db.execute("DELETE FROM orders WHERE id IN (5, 2500)")
        db.execute("UPDATE orders SET note = 'by hand', update_at = update_at WHERE id = 1234")
        await pilot.press("r")
        await wait_for(pilot, lambda: status(app, db).state == "done" and status(app, db).reconcile == "4/4",
                       what="the reconcile")
        assert status(app, db).reconcile_found == "1 fixed, 2 gone"
        await pilot.pause(0.5)  # the next repaint
        shown = screen_text(app).replace("\xa0", " ")
        assert "ranges4/4" in shown and "found 1 fixed, 2 gone" in shown, shown
