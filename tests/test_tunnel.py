"""MySQL and the warehouse through an SSH tunnel to a real OpenSSH server on 127.0.0.1, and what
happens when the session under a run is killed, the server restarted, or goes silent."""

import json
import signal
import threading
import time

import pytest
from cli_helpers import run_cli
from conftest import SSH_ENV, TEST_ENV, ssh_config, write_config
from test_engine import TABLE_DDL, assert_exactly_once, fill

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime.config import load_settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.events import FileStored, Notice, Retrying
from s3rs_tui.sandbox.sshd import _keygen

ENV = {**TEST_ENV, **SSH_ENV}


@pytest.fixture
def orders(db):
    db.execute(TABLE_DDL)
    fill(db, 30000)
    return db


def tunnel_settings(tmp_path, db, sshd, **overrides):
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra="retry_attempts = 8\n" + ssh_config(sshd))
    config.write_text(config.read_text().replace("retry_attempts = 2\n", ""))
    settings = load_settings(str(config), environ=ENV)
    settings.override("backup.batch_size", 1000)
    for key, value in overrides.items():
        settings.override(key, value)
    return settings


def run_with(settings, name, on_file):
    """Sync in-process; `on_file(n)` runs after the n-th stored file (the fault goes there)."""
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, FileStored):
            on_file(event.run_files)

    finished = TableSync(settings, name, sink, RunControl()).run()
    return finished, events


def outage_notices(events) -> list[str]:
    return [e.message for e in events
            if isinstance(e, Notice) and ("rebuilt" in e.message or "back after" in e.message)]


def test_sync_and_load_through_the_tunnel_and_status_shows_it(db, orders, tmp_path, sshd, pg):
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=ssh_config(sshd) + pg.config() + "ssh = true\n")
    result = run_cli("sync", "-t", "orders", "--json", config=config, env=SSH_ENV)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 30000 and summary["loads"][0]["rows"] == 30000
    assert pg.execute("SELECT count(*), count(DISTINCT id) FROM public.orders")[0] == (30000, 30000)
    status = run_cli("status", config=config, env=SSH_ENV)
    assert status.returncode == 0, status.stdout + status.stderr
    ssh_line = next(line for line in status.stdout.splitlines() if line.startswith("ssh"))
    assert "ok:" in ssh_line and "host key ssh-ed25519 SHA256:" in ssh_line
    assert "MySQL and the warehouse through it" in ssh_line
    warehouse_line = next(line for line in status.stdout.splitlines() if line.startswith("warehouse"))
    assert "through 127.0.0.1" in warehouse_line
    # Everything went through the bastion: without it, nothing connects (MySQL itself is up).
    sshd.stop()
    down = run_cli("status", config=config, env=SSH_ENV)
    assert down.returncode == 1 and "Connection refused" in down.stdout, down.stdout


@pytest.mark.parametrize("reader", ["pymysql", "connectorx"])
def test_session_killed_mid_run_is_rebuilt_and_the_run_finishes_exactly_once(orders, tmp_path, sshd, reader):
    settings = tunnel_settings(tmp_path, orders, sshd, **{"backup.reader": reader})
    name = f"{orders.name}.orders"
    killed = []

    def kill_session(files):
        if files in (5, 15):
            killed.extend(sshd.signal_sessions(signal.SIGKILL))

    finished, events = run_with(settings, name, kill_session)
    assert killed and finished.rows == 30000 and finished.status == "success"
    assert any(isinstance(e, Retrying) for e in events)
    notices = outage_notices(events)
    assert any("the SSH session ended; rebuilt on 127.0.0.1" in n for n in notices), notices
    assert any(n.startswith("MySQL is back after") for n in notices), notices
    assert_exactly_once(orders, settings, name)


def test_sshd_restarted_mid_run(orders, tmp_path, sshd):
    settings = tunnel_settings(tmp_path, orders, sshd)
    name = f"{orders.name}.orders"
    restarts = []

    def restart(files):
        if files == 4:
            sshd.stop()  # the server and its sessions are gone for 2 s, then back on the same port
            timer = threading.Timer(2.0, sshd.start)
            timer.start()
            restarts.append(timer)

    finished, events = run_with(settings, name, restart)
    restarts[0].join()
    assert finished.rows == 30000
    back = [n for n in outage_notices(events) if n.startswith("MySQL is back after")]
    assert back and float(back[0].split("after ")[1].split("s")[0]) >= 2.0, back
    assert sum(isinstance(e, Retrying) for e in events) >= 2
    assert_exactly_once(orders, settings, name)


def test_a_silent_bastion_is_noticed_and_left(orders, tmp_path, sshd):
    """The session stops answering without closing (a dead network path): keepalive probes find it
    out in 3 rounds, the session is closed, and a new one carries the run to its end."""
    settings = tunnel_settings(tmp_path, orders, sshd)
    name = f"{orders.name}.orders"
    frozen = []

    def freeze(files):
        if files == 3:
            frozen.extend(sshd.signal_sessions(signal.SIGSTOP))

    started = time.monotonic()
    finished, events = run_with(settings, name, freeze)
    assert frozen and finished.rows == 30000
    notices = outage_notices(events)
    assert any("the bastion stopped answering for 3s" in n for n in notices), notices
    assert time.monotonic() - started < 60
    assert_exactly_once(orders, settings, name)


def test_unknown_or_changed_host_key_is_refused(orders, tmp_path, sshd):
    config = write_config(tmp_path / "s3rs.toml", orders, store=tmp_path / "store", extra=ssh_config(sshd))
    sshd.known_hosts.write_text("")
    unknown = run_cli("sync", "-t", "orders", config=config, env=SSH_ENV)
    assert unknown.returncode == 2, unknown.stderr
    assert "REFUSED: the host key of the bastion" in unknown.stderr and "ssh-keyscan" in unknown.stderr
    _keygen(tmp_path / "impostor")
    kind, key = (tmp_path / "impostor.pub").read_text().split()[:2]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    changed = run_cli("sync", "-t", "orders", config=config, env=SSH_ENV)
    assert changed.returncode == 2, changed.stderr
    assert "presented a host key that differs" in changed.stderr
    for result in (unknown, changed):
        assert "Traceback" not in result.stderr and result.stderr.splitlines()[-1].startswith("s3rs: REFUSED")
    assert not (tmp_path / "store" / "backups" / "data").exists()


def test_a_missing_or_wrong_passphrase_is_a_clear_error(orders, tmp_path, sshd):
    config = write_config(tmp_path / "s3rs.toml", orders, store=tmp_path / "store", extra=ssh_config(sshd))
    missing = run_cli("sync", "-t", "orders", config=config)
    assert missing.returncode == 2 and "is encrypted: set S3RS_SSH_KEY_PASSPHRASE" in missing.stderr
    wrong = run_cli("sync", "-t", "orders", config=config, env={"S3RS_SSH_KEY_PASSPHRASE": "not-it"})
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr, wrong.stderr
    assert "not-it" not in wrong.stderr
