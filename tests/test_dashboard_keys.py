"""The dashboard's keys, screens and small displays at 80x24, with Pilot: the main screen's keys
stay out of the watermark and cleanup screens, a refused key says why, dialogs answer y/n, Enter
sets the watermark, the footer, the log pane, the forms and the trends fit and say their scale;
config values as TOML; no false "a run stopped" notice after a reset; a DuckDB path in a folder
that does not exist is refused (issue 17, defects 7, 8 and 9).

Most tests use the pictures' fixed dashboard (a local store, MySQL never reached), in tmp_path."""

from datetime import UTC, datetime, timedelta

import pytest
from cli_helpers import make_table, run_cli
from conftest import write_config
from dashboard_helpers import make_app, screen_text, wait_for
from textual.app import App
from textual.widgets import Button, DataTable, Switch
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from s3rs_tui.runtime.events import FileStored
from s3rs_tui.sandbox.pictures import (
    TABLE,
    picture_app,
    picture_settings,
    play_recorded_run,
    recorded_run,
    show_state,
)
from s3rs_tui.store import ObjectInfo
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.tui.bridge import EngineBridge
from s3rs_tui.tui.screens.cleanup import CleanupScreen
from s3rs_tui.tui.screens.confirm import ConfirmModal
from s3rs_tui.tui.screens.error import ErrorModal
from s3rs_tui.tui.screens.main import MainScreen
from s3rs_tui.tui.screens.watermark import WatermarkScreen
from s3rs_tui.tui.widgets.log_pane import LogPane
from s3rs_tui.tui.widgets.tables_list import TablesList
from s3rs_tui.tui.widgets.trend import Trend
from s3rs_tui.warehouse.datafiles import plan_load

MAIN_KEYS = ["s", "g", "v", "p", "x", "w", "c", "o"]
SMALL = (80, 24)


@pytest.fixture
def app(tmp_path):
    return picture_app(picture_settings(tmp_path / "pictures"), tmp_path / "pictures")


def toasts(app) -> str:
    return " | ".join(str(toast.render()) for toast in app.screen.query(Toast))


def shown_keys(app) -> list[str]:
    """The footer's keys that are on screen (inside the terminal's width)."""
    width = app.size.width
    return [key.key for key in app.screen.query(FooterKey) if key.region.width and key.region.right <= width]


def text(app) -> str:
    return screen_text(app).replace("\xa0", " ")


async def footer_once_laid_out(pilot, expected: set[str]) -> list[str]:
    """The footer's shown keys once it holds the expected ones (a loaded machine lays it out late)."""
    for _ in range(100):
        shown = shown_keys(pilot.app)
        if expected <= set(shown):
            break
        await pilot.pause(0.1)
    return shown


async def settle(pilot):
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)


# -- defect 7: keys and screens ------------------------------------------------------------------

@pytest.mark.parametrize("key, screen", [("w", WatermarkScreen), ("c", CleanupScreen)])
async def test_main_keys_do_nothing_inside_the_watermark_and_cleanup_screens(app, key, screen):
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, screen)
        app.screen.query_one("#close", Button).focus()  # not a text field: it would take the letters
        await pilot.pause()
        advertised = set(app.screen.active_bindings)
        assert not advertised & set(MAIN_KEYS), advertised
        await pilot.press(*[k for k in MAIN_KEYS if k != key])
        await settle(pilot)
        assert isinstance(app.screen, screen), app.screen
        assert not app.runs.active() and app.statuses[TABLE].state == "idle"


async def test_a_refused_key_says_why(app):
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await pilot.press("v")  # the pictures have no warehouse
        await pilot.pause(0.3)
        assert "no warehouse configured" in toasts(app)
        await play_recorded_run(pilot)  # the table is running now
        for key in ("w", "c", "s"):
            await pilot.press(key)
            await pilot.pause(0.3)
            assert isinstance(app.screen, MainScreen)
        assert toasts(app).count("is running: stop it first") == 3
        app.runs.stop_all("test over")


async def test_the_footer_keeps_the_keys_that_matter_at_80x24(app):
    async with app.run_test(size=SMALL) as pilot:
        idle_keys = {"s", "g", "w", "c", "o", "question_mark", "q"}
        idle = await footer_once_laid_out(pilot, idle_keys)
        assert idle_keys <= set(idle), idle
        await play_recorded_run(pilot)
        running_keys = {"p", "x", "o", "question_mark", "q"}
        running = await footer_once_laid_out(pilot, running_keys)
        assert running_keys <= set(running), running
        assert not {"s", "g", "w", "c"} & set(running)  # refused while it runs: not advertised
        app.runs.stop_all("test over")


async def test_enter_sets_the_watermark(app):
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("w")
        await settle(pilot)
        await pilot.press(*"2024-01-07 22:40:00", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmModal) and "2024-01-07 22:40:00" in app.screen.question


async def test_dialogs_answer_y_and_n():
    answers = []
    for key, expected in (("y", True), ("n", False), ("escape", False)):
        app = DialogApp(ConfirmModal("Reset it?", yes="Reset"), answers)
        async with app.run_test(size=SMALL) as pilot:
            await pilot.press(key)
            await pilot.pause()
        assert answers[-1] is expected, key
    typed = DialogApp(ConfirmModal("Force?", yes="Force reset", typed=TABLE), answers)
    async with typed.run_test(size=SMALL) as pilot:
        typed.screen.query_one("#no", Button).focus()
        await pilot.press("y")  # not before the table name is typed
        await pilot.pause()
        assert isinstance(typed.screen, ConfirmModal)
    error = DialogApp(ErrorModal("it failed", "because", "do this", "/tmp/log"), answers)
    async with error.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(error.screen, ErrorModal)


class DialogApp(App):
    """Just the dialog, its answer appended to `answers`."""

    def __init__(self, dialog, answers):
        super().__init__()
        self.dialog, self.answers = dialog, answers

    def on_mount(self):
        self.push_screen(self.dialog, self.answers.append)


async def test_the_log_pane_wraps_maximises_and_filters(app):
    async with app.run_test(size=SMALL) as pilot:
        app.log_file.write(f"{TABLE} verify: {'/a/long/warehouse/path' * 4} -> differs: 3 ranges, 12 keys")
        app.log_file.write("shop.refunds file 1: 10 rows")
        app.log_file.write(f"{TABLE} warning: 3 rows have a NULL update_at")
        await pilot.pause(0.6)
        assert "differs: 3 ranges, 12 keys" in text(app)  # the verdict after a long path stays on screen
        log = app.query_one(LogPane)
        await pilot.press("m")
        assert app.screen.maximized is log
        await pilot.press("m")
        assert app.screen.maximized is None
        await pilot.press("f")  # problems only
        await pilot.pause(0.3)
        assert "3 rows have a NULL" in text(app) and "shop.refunds file 1" not in text(app)
        await pilot.press("f")  # the selected table only
        await pilot.pause(0.3)
        assert "differs: 3 ranges" in text(app) and "shop.refunds file 1" not in text(app)
        await pilot.press("f")  # all again
        await pilot.pause(0.3)
        assert "shop.refunds file 1" in text(app)


async def test_the_watermark_form_fits_at_80x24(app):
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("w")
        await settle(pilot)
        shown = text(app)
        assert "2024-01-04 02:00:00" in shown and "600000" in shown, shown  # not folded into six columns


async def test_the_cleanup_screen_shows_what_happens_to_each_file_at_80x24(app):
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("c")
        await settle(pilot)
        shown = text(app)
        assert "loaded" in shown and "action" in shown and "delete" in shown and "keep" in shown
        assert "off" in str(app.screen.query_one("#force-state").render())
        app.screen.query_one(Switch).toggle()
        await pilot.pause()
        assert "ON" in str(app.screen.query_one("#force-state").render())


# -- defect 8: trends with their scale -------------------------------------------------------------

@pytest.mark.parametrize("size", [SMALL, (200, 50)], ids=["80x24", "200x50"])
async def test_trends_have_a_fixed_height_a_scale_and_a_unit(app, size):
    async with app.run_test(size=size) as pilot:
        first = next(event for event in recorded_run() if isinstance(event, FileStored))
        EngineBridge(app, app.log_file, app.formatter.format)(first)
        await pilot.pause(0.6)
        rate = app.query_one("#rate-trend", Trend)
        assert rate.size.height == 1
        assert str(rate.render()).strip() == "█"  # one sample, one bar: not a full panel
        assert "0–3.3M rows/min" in app.query_one("#throughput").border_subtitle  # its scale


async def test_a_small_wobble_does_not_look_full_scale(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)  # the store read, which repaints too
        app.statuses[TABLE].rss_history = [180.0, 195.0, 180.0, 195.0]
        app.dirty = True
        await pilot.pause(0.6)
        bars = str(app.query_one("#rss-trend", Trend).render()).strip()
        assert set(bars) <= {"▇", "█"}, bars  # scaled from 0: 180 MB is most of 195 MB
        assert "0–195 MB" in app.query_one("#memory").border_subtitle


# -- state colours, verify result ------------------------------------------------------------------

async def test_states_are_words_with_colours_and_the_verify_result(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await show_state(pilot, "failed", failed_phase="load")
        cell = app.query_one(TablesList).get_cell(TABLE, "state")
        assert cell.plain == "failed: load" and "red" in str(cell.style)
        await show_state(pilot, "differs", verify_result="differs: 3 ranges, 12 keys")
        cell = app.query_one(TablesList).get_cell(TABLE, "state")
        assert "differs: 3 ranges, 12 keys" in cell.plain and "yellow" in str(cell.style)
        await show_state(pilot, "verified")
        assert "green" in str(app.query_one(TablesList).get_cell(TABLE, "state").style)


# -- defect 9 --------------------------------------------------------------------------------------

async def test_the_config_screen_shows_toml_values(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        values = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        assert values["mysql.host"] == "127.0.0.1" and values["ssh.enabled"] == "false"
        assert values["mysql.password"] == "********"


def test_files_left_from_before_a_reset_are_not_called_a_stopped_run():
    reset_at = datetime(2026, 5, 28, 20, 0, tzinfo=UTC)
    old = [ObjectInfo(f"data/shop/orders/part-{n}.parquet", 10, reset_at - timedelta(days=1))
           for n in range(3)]
    watermark = Watermark(table_name=TABLE, created_at="2026-05-28T20:00:00Z")  # as a reset leaves it
    notes = " ".join(plan_load(old, {}, watermark).notices("target"))
    assert "between storing and saving" not in notes and "older than the watermark" in notes
    stopped = [ObjectInfo("data/shop/orders/part-9.parquet", 10, reset_at + timedelta(hours=1))]
    assert "between storing and saving" in " ".join(plan_load(stopped, {}, watermark).notices("target"))


def duckdb_in_a_missing_folder(tmp_path, db):
    missing = tmp_path / "no-such-folder" / "w.duckdb"
    make_table(db, rows=200)
    return missing, write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                                 extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{missing}"\n')


def test_a_duckdb_path_in_a_missing_folder_is_refused(tmp_path, db):
    missing, config = duckdb_in_a_missing_folder(tmp_path, db)
    result = run_cli("sync", "-t", "orders", config=config)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert str(missing) in last and "does not exist" in last, last
    assert not missing.parent.exists()


async def test_the_dashboard_refuses_a_duckdb_path_in_a_missing_folder_with_a_dialog(tmp_path, db,
                                                                                      settings_for):
    missing, config = duckdb_in_a_missing_folder(tmp_path, db)
    app = make_app(settings_for(config), ["orders"], tmp_path / "dashboard.log")
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), what="the error dialog")
        assert str(missing) in app.screen.message and "does not exist" in app.screen.message
    assert not missing.parent.exists()


@pytest.mark.parametrize("size, shown", [((200, 50), True), (SMALL, False)], ids=["200x50", "80x24"])
async def test_the_runs_panel_shows_the_last_runs_where_there_is_room(app, monkeypatch, size, shown):
    from s3rs_tui.tui import panel_rows

    monkeypatch.setattr(panel_rows, "history", lambda status: [("12:00", "done 600,000 rows in 0m13s")],
                        raising=False)
    async with app.run_test(size=size) as pilot:
        await show_state(pilot, "done")
        assert app.query_one("#runs").display is shown
        assert ("done 600,000 rows in 0m13s" in text(app)) is shown
