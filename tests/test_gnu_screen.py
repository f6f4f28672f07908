"""The dashboard inside GNU screen (the other multiplexer operators run over SSH): `s3rs sync` on
its terminal opens the dashboard, runs to the end, and `q` leaves; a session killed mid-run (the
SIGHUP of a dropped SSH connection) stops the run with the watermark saved."""

import os
import subprocess
import time
import uuid

import pytest
from cli_helpers import make_table, require_tool, s3rs_command, table_ids, wait_until
from dashboard_helpers import Gate, stored_ids, watermark_of

from s3rs_tui.runtime.config import load_settings


class Screen:
    """One detached GNU screen session of our own (its own name), 80x24 like a plain terminal."""

    def __init__(self, command: list[str], env: dict[str, str], folder):
        require_tool("screen")
        self.name, self.copy = f"s3rs-test-{uuid.uuid4().hex[:8]}", folder / "hardcopy.txt"
        environment = {**os.environ, **{k: str(v) for k, v in env.items()}, "TERM": "xterm-256color"}
        subprocess.run(["screen", "-dmS", self.name, *command], env=environment, check=True, timeout=30)

    def command(self, *args: str) -> None:
        subprocess.run(["screen", "-S", self.name, "-p", "0", "-X", *args], capture_output=True, timeout=30)

    def text(self) -> str:
        self.command("hardcopy", str(self.copy))
        return self.copy.read_text(errors="replace") if self.copy.exists() else ""

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in (screen := self.text()):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never appeared:\n{self.text()}")

    def alive(self) -> bool:
        listing = subprocess.run(["screen", "-ls"], capture_output=True, text=True, timeout=30).stdout
        return self.name in listing

    def close(self) -> None:
        if self.alive():
            self.command("quit")


@pytest.fixture
def screen_session(tmp_path):
    sessions = []

    def start(command, env):
        sessions.append(Screen(command, env, tmp_path))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()


def test_sync_in_gnu_screen_runs_to_the_end_and_q_leaves(tmp_path, db, local_config, screen_session):
    make_table(db, rows=2000)
    state = tmp_path / "state"
    session = screen_session(s3rs_command("sync", "-t", "orders", "--batch-size", "200", config=local_config),
                             {"S3RS_STATE_DIR": state, "PYTHONPATH": os.getcwd()})
    screen = session.wait_for("Throughput")
    assert "Tables" in screen and "orders" in screen
    wait_until(lambda: any(" success: 2,000 rows" in f.read_text() for f in (state / "logs").glob("*.log")),
               what="the run's end in the log")
    session.wait_for("2,000 / 2,000")  # the Progress panel shows the finished run, its count exact
    session.command("stuff", "q")
    wait_until(lambda: not session.alive(), what=f"the dashboard to quit:\n{session.text()}")
    settings = load_settings(str(local_config), environ={})
    assert stored_ids(settings, f"{db.name}.orders") == table_ids(db)


def test_gnu_screen_killed_mid_run_stops_gracefully(tmp_path, db, local_config, screen_session):
    make_table(db, rows=3000)
    state = tmp_path / "state"
    gate = Gate(db)  # the run waits at its first read until the session is gone
    session = screen_session(s3rs_command("sync", "-t", "orders", "--batch-size", "50", config=local_config),
                             {"S3RS_STATE_DIR": state, "PYTHONPATH": os.getcwd()})
    session.wait_for("Throughput")
    name = f"{db.name}.orders"
    settings = load_settings(str(local_config), environ={})
    wait_until(lambda: watermark_of(settings, name) is not None, what="the run to start")
    session.command("quit")  # the terminal goes away: SIGHUP to the dashboard
    gate.open()
    logs = state / "logs"
    wait_until(lambda: any("every run has stopped with its watermark saved" in f.read_text()
                           for f in logs.glob("*.log")), what="the graceful stop in the log")
    watermark, ids = watermark_of(settings, name), stored_ids(settings, name)
    assert watermark.mysql_status == "interrupted"
    assert ids == table_ids(db)[:len(ids)] and len(ids) < 3000
