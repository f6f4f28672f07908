"""The dashboard in a real terminal: tmux, headless, on a private server socket (never the
tester's own tmux). `s3rs sync` on a terminal opens the dashboard with the run going; killing the
session (what a dropped SSH connection does: SIGHUP) stops the run gracefully, watermark saved,
and the log file says so. Plain `s3rs` and `s3rs ui` open the dashboard in 16 colours, 256 colours
and truecolor; `s3rs watch` shows a headless run's snapshot, read-only."""

import os
import re
import shutil
import subprocess
import time

import pytest
from cli_helpers import make_table, run_cli, s3rs_command, table_ids, wait_until
from dashboard_helpers import Gate, stored_ids, watermark_of
from tmux_helpers import pid_gone

from s3rs_tui.runtime.config import load_settings
from s3rs_tui.store.lock import lock_key


def test_sync_dashboard_stops_gracefully_when_the_terminal_goes(tmp_path, db, local_config, tmux_session):
    make_table(db, rows=3000)
    state = tmp_path / "state"
    gate = Gate(db)
    session = tmux_session(s3rs_command("sync", "-t", "orders", "--batch-size", "50", config=local_config),
                           {"S3RS_STATE_DIR": state, "PYTHONPATH": os.getcwd()})
    pid = session.pid()
    # "starting": the run has begun (it is held at the gate), so `p` has a run to pause; pressed
    # on the first frame, before the run starts, it would be refused
    screen = session.wait_for_text("starting")
    assert "Tables" in screen and "orders" in screen and "Throughput" in screen
    session.run("send-keys", "-t", "main", "p")
    logs = state / "logs"
    wait_until(lambda: any("pause requested" in f.read_text() for f in logs.glob("*.log")), what="pause")
    gate.open()
    (log_file,) = logs.glob("*.log")
    wait_until(lambda: "file 1:" in log_file.read_text(), what="the first file")
    session.run("kill-session", "-t", "main")  # the terminal goes away: SIGHUP
    wait_until(lambda: pid_gone(pid), what="the process to exit",
               detail=lambda: f"log:\n{log_file.read_text()}\nthreads:\n{threads_of(pid)}")
    log = log_file.read_text()
    assert "SIGHUP: the terminal went away" in log and "every run has stopped with its watermark saved" in log
    settings = load_settings(str(local_config), environ={})
    name = f"{db.name}.orders"
    watermark = watermark_of(settings, name)
    ids = stored_ids(settings, name)
    assert watermark.mysql_status == "interrupted" and 0 < len(ids) < 3000
    assert ids == table_ids(db)[:len(ids)] and watermark.last_mysql_data_id == ids[-1]
    assert not (tmp_path / "store" / "backups" / lock_key(name)).exists()  # the lock was released


def threads_of(pid: int) -> str:
    try:
        if not shutil.which("py-spy"):
            return os.listdir(f"/proc/{pid}/task")
        return subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True,
                              timeout=20).stdout
    except OSError as exc:
        return str(exc)


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colour_codes(screen: str) -> set[str]:
    """'16', '256' and 'truecolor' for the kinds of colour the screen's escape codes use."""
    kinds = set()
    for params in SGR.findall(screen):
        parts = [int(p) if p.isdigit() else 0 for p in params.split(";")]
        while parts:
            code = parts.pop(0)
            if code in (38, 48) and parts:  # extended colour: 5;n or 2;r;g;b
                mode = parts.pop(0)
                kinds.add("256" if mode == 5 else "truecolor")
                del parts[:1 if mode == 5 else 3]
            elif 30 <= code <= 37 or 40 <= code <= 47 or 90 <= code <= 97 or 100 <= code <= 107:
                kinds.add("16")
    return kinds


@pytest.mark.parametrize("colours, command", [("standard", ()), ("256", ("ui",)), ("truecolor", ("ui",))])
def test_dashboard_in_each_colour_system(tmp_path, local_config, tmux_session, colours, command):
    """Plain `s3rs` (and `s3rs ui`) open the dashboard; the colours used are the ones asked for,
    and every label is there in each (states are words, never colour alone)."""
    session = tmux_session(s3rs_command(*command, config=local_config),
                           {"S3RS_STATE_DIR": tmp_path / "state", "TEXTUAL_COLOR_SYSTEM": colours,
                            "PYTHONPATH": os.getcwd()}, size=(80, 24))
    session.wait_for_text("Quit")
    time.sleep(0.5)  # let the first full frame settle
    screen = session.screen()
    for label in ("Tables", "Progress", "Memory", "Watermark", "Log", "Quit"):
        assert label in screen
    kinds = colour_codes(session.screen(escapes=True))
    expected = {"standard": {"16"}, "256": {"16", "256"}, "truecolor": {"16", "truecolor"}}[colours]
    assert kinds and kinds <= expected and (colours == "standard" or kinds - {"16"}), kinds
    pid = session.pid()
    session.run("send-keys", "-t", "main", "q")
    wait_until(lambda: pid_gone(pid), timeout=20, what="quit")


def test_watch_shows_a_headless_run(tmp_path, db, local_config, tmux_session):
    make_table(db, rows=300)
    state = tmp_path / "state"
    result = run_cli("sync", "-t", "orders", "--batch-size", "100", config=local_config,
                     env={"S3RS_STATE_DIR": str(state)})
    assert result.returncode == 0, result.stderr
    session = tmux_session(s3rs_command("watch", config=local_config),
                           {"S3RS_STATE_DIR": state, "PYTHONPATH": os.getcwd()})
    session.wait_for_text(f"{db.name}.orders")
    time.sleep(0.5)
    screen = session.screen()
    assert "done" in screen and "300" in screen and "watch (read-only)" in screen
    assert "orders success: 300 rows" in screen  # the run's own log lines, from its snapshot (the last)
    assert "Sync" not in screen and "Stop" not in screen  # read-only: no run keys in the footer
    session.run("send-keys", "-t", "main", "q")
