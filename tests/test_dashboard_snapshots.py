"""Pictures of the dashboard and every screen and dialog (pytest-textual-snapshot), at 80x24 and
120x40 (the dashboard also at 200x60). The dashboard is shown mid-run from a recorded event
sequence, and everything time-dependent is fixed: the log's clock, the files' dates, the paths
(a fixed folder), so the SVGs in __snapshots__ only change when the screen really does.
Update them with `pytest tests/test_dashboard_snapshots.py --snapshot-update` after looking at
snapshot_report.html."""

import os
import shutil
from pathlib import Path

import pytest

from dashboard_helpers import FROZEN_TIME, make_app, recorded_run
from s3rs_tui.config import load_settings
from s3rs_tui.store.watermark import Watermark
from s3rs_tui.tui.bridge import EngineBridge
from s3rs_tui.tui.screens.confirm import ConfirmModal
from s3rs_tui.tui.screens.error import ErrorModal

FOLDER = Path("/tmp/s3rs-snapshots")  # fixed: paths appear on screen
TABLE = "shop.orders"
SECRET = "Zq9-snapshot-Secret-7731"
SIZES = [(80, 24), (120, 40)]


def watermark_document(**changes) -> bytes:
    fields = dict(table_name=TABLE, last_mysql_data_timestamp="2024-01-04 02:00:00", last_mysql_data_id=600000,
                  last_mysql_extraction_time="2026-05-28T20:26:40Z", mysql_status="success",
                  mysql_rows_extracted=600000, s3_file_count=12, processed_s3_files=[],
                  created_at="2026-05-20T08:00:00Z", updated_at="2026-05-28T20:26:40Z",
                  last_s3_file="data/shop/orders/part-20240103T000000-550000.parquet",
                  cursor_column="update_at", key_column="id")
    fields.update(changes)
    return Watermark(**fields).to_json()


@pytest.fixture(scope="module")
def settings():
    """A config with a local store holding a watermark, a reset backup and six data files."""
    shutil.rmtree(FOLDER, ignore_errors=True)
    store = FOLDER / "store" / "s3rs"
    data = store / "data" / "shop" / "orders"
    data.mkdir(parents=True)
    keys = []
    for n in range(6):
        key = f"data/shop/orders/part-2024010{n + 1}T000000-{n * 100_000}.parquet"
        (store / key).write_bytes(b"x" * (2_300_000 + n * 1000))
        stamp = FROZEN_TIME - (30 - n * 5) * 86400  # 30, 25, ... 5 days before the frozen time
        os.utime(store / key, (stamp, stamp))
        keys.append(key)
    state = store / "_state" / "watermarks"
    (state / "backups").mkdir(parents=True)
    (state / f"{TABLE}.json").write_bytes(watermark_document(processed_s3_files=keys[:3]))
    (state / "backups" / f"{TABLE}.20260520T080000000000Z.json").write_bytes(
        watermark_document(last_mysql_data_timestamp="2024-01-02 00:00:00", last_mysql_data_id=150000))
    config = FOLDER / "s3rs.toml"
    config.write_text(f'[mysql]\nhost = "127.0.0.1"\nport = 1\ndatabase = "shop"\npassword = "{SECRET}"\n\n'
                      f'[s3]\nlocal_path = "{FOLDER / "store"}"\n\n[backup]\nmemory_limit_mb = 1024\n\n'
                      f'[tables."{TABLE}"]\ncursor_column = "update_at"\n')
    yield load_settings(str(config), environ={})
    shutil.rmtree(FOLDER, ignore_errors=True)


def app_for(settings):
    log = FOLDER / "logs" / "dashboard.log"
    log.unlink(missing_ok=True)
    return make_app(settings, [TABLE], log, clock=lambda: FROZEN_TIME)


async def mid_run(pilot):
    """Feed the recorded run through the same bridge the engine uses, then let it repaint."""
    app = pilot.app
    app.runs.start([TABLE])  # as if a run were going, so the keys show as a running table's
    bridge = EngineBridge(app, app.log_file, app.formatter.format)
    for event in recorded_run(TABLE):
        bridge(event)
        await pilot.pause()  # one at a time, as files come in a real run (else they coalesce)
    await pilot.pause(0.6)


@pytest.mark.parametrize("size", SIZES + [(200, 60)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_mid_run(snap_compare, settings, size):
    assert snap_compare(app_for(settings), terminal_size=size, run_before=mid_run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("key", ["w", "c", "o", "question_mark"],
                         ids=["watermark", "cleanup", "config", "help"])
def test_screens(snap_compare, settings, key, size):
    async def open_screen(pilot):
        await pilot.pause(0.3)
        await pilot.press(key)
        await pilot.pause(0.5)
        if key == "c":
            await pilot.press(*"7d")
            await pilot.pause(0.3)

    assert snap_compare(app_for(settings), terminal_size=size, run_before=open_screen)


DIALOGS = {
    "confirm": lambda app: ConfirmModal(f"Reset {TABLE} so the next sync re-reads the whole table? "
                                        "A copy of the old watermark is kept.", yes="Reset"),
    "typed-confirm": lambda app: ConfirmModal(f"Force-reset {TABLE}? The old watermark is discarded without a "
                                              "backup. Type the table name to confirm.", yes="Force reset",
                                              typed=TABLE),
    "quit": lambda app: ConfirmModal("A run is going. Stop it gracefully (finish the file in flight, save the "
                                     "watermark) and quit?", yes="Stop gracefully and quit", no="Cancel"),
    "error": lambda app: ErrorModal(f"{TABLE}: the run failed", f"{TABLE} is locked by sync run 5f2e9c1a7b3d on "
                                    "db-backup-1:4242, started 2026-05-28 18:00:00, last heartbeat 3s ago; wait "
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
        await pilot.pause(0.3)

    assert snap_compare(app_for(settings), terminal_size=size, run_before=open_dialog)


def test_no_secret_in_any_picture():
    folder = Path(__file__).parent / "__snapshots__" / Path(__file__).stem
    pictures = list(folder.glob("*.svg"))
    assert pictures, "no snapshots yet: run with --snapshot-update once"
    assert all(SECRET not in picture.read_text() for picture in pictures)
    config = [p for p in pictures if "config" in p.name]
    assert config and all("********" in p.read_text().replace("&#160;", " ") for p in config)

