"""Pictures of the dashboard and every screen and dialog (pytest-textual-snapshot), at 80x24 and
200x50. The dashboard is shown mid-run from a recorded event sequence, and in each state of the
status model (sandbox.pictures.STATES: one line a state), and everything
time-dependent is fixed: the log's clock, the files' dates, the paths (a fixed folder), so the
SVGs in __snapshots__ only change when the screen really does.
Update them with `pytest tests/test_dashboard_snapshots.py --snapshot-update` after looking at
snapshot_report.html."""

import time
from pathlib import Path

import pytest
from textual.widgets import Input

from s3rs_tui.sandbox.pictures import (
    FOLDER,
    SECRET,
    STATES,
    TABLE,
    folder_taken,
    picture_app,
    picture_settings,
    play_recorded_run,
    show_state,
    watch_app,
)
from s3rs_tui.tui.panel_rows import position
from s3rs_tui.tui.screens.confirm import ConfirmModal
from s3rs_tui.tui.screens.error import ErrorModal
from s3rs_tui.tui.widgets.tables_list import TablesList

# Every picture uses the one fixed folder its screens show (sandbox.pictures.FOLDER): one xdist
# worker takes them all, so no two tests rebuild that folder at once.
pytestmark = pytest.mark.xdist_group("pictures")

SIZES = [(80, 24), (200, 50)]


@pytest.fixture(scope="module")
def settings():
    with folder_taken(FOLDER):
        yield picture_settings()


def app_for(settings):
    return picture_app(settings)


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch):
    """A focused input's cursor is always drawn: its blink timer may have hidden it just before a
    picture (CI caught typed-confirm without its cursor once in three runs)."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda field: None)


async def settle(pilot):
    """Deterministic pictures: every worker done (store reads), no blinking cursor."""
    await pilot.app.workers.wait_for_complete()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause(0.3)


mid_run = play_recorded_run


async def watermark_listed(pilot, seconds: float = 10):
    """The tables list shows the stored watermark: the panels repaint on a timer, which a loaded
    machine runs later than settle's pause, and the column widens only when the table next idles
    (CI drew the list behind the config and help screens with the watermark column still at its
    header's width)."""
    app, tables = pilot.app, pilot.app.query_one(TablesList)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = app.statuses[TABLE]
        stored = position(status.watermark_timestamp, status.watermark_id)
        listed = tables.get_cell(TABLE, "watermark") if TABLE in tables.rows else None
        fits = tables.columns["watermark"].content_width >= len(stored)  # its width follows on idle
        if status.watermark_timestamp and listed == stored and fits:
            await pilot.pause(0.3)  # and drawn
            return
        await pilot.pause(0.1)
    raise AssertionError(f"the tables list never showed {TABLE}'s stored watermark")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("keys", [[], ["m"]], ids=["dashboard", "log-maximised"])
def test_dashboard_mid_run(snap_compare, settings, keys, size):
    async def run_then_press(pilot):
        await mid_run(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    assert snap_compare(app_for(settings), terminal_size=size, run_before=run_then_press)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("picture", list(STATES))
def test_dashboard_states(snap_compare, settings, picture, size):
    async def in_state(pilot):
        await show_state(pilot, **STATES[picture])
        await settle(pilot)

    assert snap_compare(app_for(settings), terminal_size=size, run_before=in_state)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_watch_of_a_stale_run(snap_compare, settings, size):
    """`s3rs watch` on a run whose process died mid-file: stale, with what the store says."""
    async def polled(pilot):
        await pilot.pause(1.2)  # a snapshot poll and the store read
        await settle(pilot)

    assert snap_compare(watch_app(settings), terminal_size=size, run_before=polled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("key", ["w", "c", "o", "question_mark"],
                         ids=["watermark", "cleanup", "config", "help"])
def test_screens(snap_compare, settings, key, size):
    async def open_screen(pilot):
        await settle(pilot)  # the store read and its repaint: the tables list behind a dialog is complete
        await watermark_listed(pilot)
        await pilot.press(key)
        await settle(pilot)
        if key == "c":
            await pilot.press(*"7d")
        await settle(pilot)

    assert snap_compare(app_for(settings), terminal_size=size, run_before=open_screen)


DIALOGS = {
    "confirm": lambda app: ConfirmModal(f"Reset {TABLE} so the next sync re-reads the whole table? "
                                        "A copy of the old watermark is kept.", yes="Reset"),
    "typed-confirm": lambda app: ConfirmModal(f"Force-reset {TABLE}? The old watermark is discarded "
                                              "without a backup. Type the table name to confirm.",
                                              yes="Force reset", typed=TABLE),
    "quit": lambda app: ConfirmModal("A run is going. Stop it gracefully (finish the file in flight, "
                                     "save the watermark) and quit?", yes="Stop gracefully and quit",
                                     no="Cancel"),
    "error": lambda app: ErrorModal(f"{TABLE}: the run failed",
                                    f"{TABLE} is locked by sync run 5f2e9c1a7b3d on db-backup-1:4242, "
                                    "started 2026-05-28 18:00:00, last heartbeat 3s ago; wait "
                                    "for it, or use --break-lock if that run is dead",
                                    "Another run holds the table: wait for it, or break its lock if you know "
                                    "it is dead.", app.log_file.path),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dialog", list(DIALOGS))
def test_dialogs(snap_compare, settings, dialog, size):
    async def open_dialog(pilot):
        await mid_run(pilot)
        pilot.app.push_screen(DIALOGS[dialog](pilot.app))
        await settle(pilot)

    assert snap_compare(app_for(settings), terminal_size=size, run_before=open_dialog)


def test_no_secret_in_any_picture():
    folder = Path(__file__).parent / "__snapshots__" / Path(__file__).stem
    pictures = list(folder.glob("*.svg"))
    assert pictures, "no snapshots yet: run with --snapshot-update once"
    assert all(SECRET not in picture.read_text() for picture in pictures)
    config = [p for p in pictures if "config" in p.name]
    assert config and all("********" in p.read_text().replace("&#160;", " ") for p in config)

