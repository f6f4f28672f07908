"""[metrics] and [notify] on real runs: the Prometheus endpoint scraped during a live sync of a
MariaDB table, node-exporter's textfile, a webhook receiver and a command on 127.0.0.1 told of a
failure and of a finish without a secret, and notifiers that hang or fail while the backup goes on."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cli_helpers import make_table, parquet_ids, run_cli, s3rs_command, table_ids, wait_until
from conftest import write_config
from dashboard_helpers import make_app, wait_for
from prometheus_client.parser import text_string_to_metric_families

from s3rs_tui.runtime.config import NotifySettings
from s3rs_tui.runtime.events import FileStored, JobFinished, JobStarted, RunStarted, StateChanged
from s3rs_tui.sandbox.mariadb import free_port
from s3rs_tui.status.monitoring import monitoring
from s3rs_tui.status.notify import Notifier, scrub


def samples(text: str) -> dict[tuple[str, str], float]:
    """{(sample name, table label): value} of a Prometheus text exposition."""
    return {(sample.name, sample.labels.get("table", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(port: int) -> dict[tuple[str, str], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            return samples(answer.read().decode())
    except OSError:  # not listening yet, or gone
        return None


def database_lag(db, table: str) -> float:
    """The server's now minus the table's newest cursor time, in seconds."""
    (now, newest), = db.execute(f"SELECT NOW(), MAX(update_at) FROM `{table}`")
    return (now - newest).total_seconds()


def test_metrics_endpoint_during_a_live_sync_shows_rows_grow_and_the_lag_fall(tmp_path, db):
    rows = 200_000
    make_table(db, "orders", rows, per_second=2)  # 100,000 cursor seconds: the lag falls by ~28 hours
    port = free_port()
    textfile = tmp_path / "s3rs.prom"
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", default_layout=True,
                          extra=f"file_size_mb = 0\nbatch_size = 5000\n\n[metrics]\nport = {port}\n"
                                f'textfile = "{textfile}"\ninterval_seconds = 1\n')
    process = subprocess.Popen(s3rs_command("sync", "-t", "orders", "--no-ui", config=config),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    key = f"{db.name}.orders"
    seen: list[tuple[float, float]] = []  # (rows stored, lag) per scrape while the run goes
    while process.poll() is None:
        got = scrape(port)
        if got and (("s3rs_rows_stored_total", key)) in got and ("s3rs_watermark_lag_seconds", key) in got:
            seen.append((got["s3rs_rows_stored_total", key], got["s3rs_watermark_lag_seconds", key]))
        time.sleep(0.05)
    _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert sorted(parquet_ids(tmp_path / "store")) == sorted(table_ids(db, "orders"))
    moving = sorted(set(seen))
    assert len({r for r, _ in moving}) >= 4, f"rows seen while running: {moving}"
    assert [r for r, _ in seen] == sorted(r for r, _ in seen), "rows stored never go back"
    stored = [(r, lag) for r, lag in seen if r > 0]
    assert stored[-1][1] < stored[0][1] - 3600, f"the lag fell: {stored[0]} -> {stored[-1]}"
    # the textfile written at the end: every row, and a lag that is the database's
    final = samples(textfile.read_text())
    assert final["s3rs_rows_stored_total", key] == rows
    assert final["s3rs_files_stored_total", key] == rows // 5000
    assert final["s3rs_last_run_failed", key] == 0 and final["s3rs_running", key] == 0
    assert abs(final["s3rs_last_success_timestamp_seconds", key] - time.time()) < 60
    assert abs(final["s3rs_last_progress_timestamp_seconds", key] - time.time()) < 60
    assert abs(final["s3rs_watermark_lag_seconds", key] - database_lag(db, "orders")) < 30
    assert final["s3rs_rss_bytes", ""] > 10 * 1024 * 1024
    assert scrape(port) is None, "the endpoint closes with the command"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self, answer: int = 200):
        self.bodies: list[dict] = []
        self.answer = answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.answer)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_gets_the_failure_and_the_finish_with_no_secret(tmp_path, db, bucket, s3_endpoint, receiver):
    make_table(db, "orders", 3000)
    token = "hooktoken9f3a2b"  # the webhook URL is a secret too (chat webhooks carry their token)
    password = db.server.connect_args()["password"]
    notify = f'\n[notify]\nwebhook_url = "{receiver.url}/hook/{token}"\ncommand = ""\n'
    good = write_config(tmp_path / "good.toml", db, bucket=bucket, endpoint=s3_endpoint, extra=notify)
    done = run_cli("sync", "-t", "orders", "--no-ui", config=good)
    assert done.returncode == 0, done.stderr
    shown = run_cli("config", "--json", config=good).stdout
    assert token not in shown and json.loads(shown)["settings"]["notify"]["webhook_url"] == "********"
    wait_until(lambda: len(receiver.bodies) == 1, 10, "the finish message")
    # the store's endpoint carries credentials in its URL and is down: the error names the URL
    key_id, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
    dead = f"http://{key_id}:{secret}@127.0.0.1:{free_port()}"
    bad = write_config(tmp_path / "bad.toml", db, bucket=bucket, endpoint=dead,
                       extra=f'\n[notify]\nwebhook_url = "{receiver.url}/hook/{token}"\n')
    failed = run_cli("sync", "-t", "orders", "--no-ui", config=bad,
                     env={"S3RS_S3_ACCESS_KEY_ID": "keyid5e1f", "S3RS_S3_SECRET_ACCESS_KEY": "s3cr3tKEYvalue",
                          "BACKUP_RETRY_ATTEMPTS": "1"})
    assert failed.returncode == 1
    assert "127.0.0.1" in failed.stderr  # the error is about the endpoint
    wait_until(lambda: len(receiver.bodies) == 2, 10, "the failure message")
    finish, failure = receiver.bodies
    assert finish["event"] == "finished" and finish["state"] == "done"
    assert finish["table"] == failure["table"] == f"{db.name}.orders"
    assert finish["rows"] == 3000 and finish["error"] == ""
    newest = db.execute("SELECT update_at, id FROM orders ORDER BY update_at DESC, id DESC LIMIT 1")[0]
    assert finish["watermark"] == {"timestamp": str(newest[0]), "id": str(newest[1])}
    assert failure["event"] == "failed" and failure["state"] == "failed: extract"
    assert failure["error"] and "\n" not in failure["error"] and failure["error"] in failure["text"]
    text = json.dumps(receiver.bodies)
    for leaked in (token, password, key_id, secret, "keyid5e1f", "s3cr3tKEYvalue",
                   os.environ["AWS_SECRET_ACCESS_KEY"]):
        assert leaked not in text, leaked
    assert "********" in failure["error"], failure["error"]  # the URL's credentials were there, and hidden


def test_a_notify_command_gets_the_message_on_stdin(tmp_path, db):
    make_table(db, "orders", 1000)
    out = tmp_path / "messages.jsonl"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\n{{ cat; echo; }} >> "{out}"\n'
                      f'echo "$S3RS_NOTIFY_EVENT" >> "{out}.events"\n')
    script.chmod(0o700)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'\n[notify]\ncommand = "{script}"\n')
    done = run_cli("sync", "-t", "orders", "--no-ui", config=config)
    assert done.returncode == 0, done.stderr
    message = json.loads(out.read_text())
    assert message["event"] == "finished" and message["rows"] == 1000
    assert (tmp_path / "messages.jsonl.events").read_text() == "finished\n"


def timed_sync(config, *args) -> tuple[subprocess.CompletedProcess, dict[str, float], float]:
    """`s3rs sync --no-ui ARGS` with the moment (seconds from its start) each stderr line came out,
    by its text, and its whole wall time."""
    started = time.monotonic()
    process = subprocess.Popen(s3rs_command("sync", "--no-ui", *args, config=config), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    arrived: dict[str, float] = {}
    assert process.stderr is not None
    for line in process.stderr:
        arrived[line] = time.monotonic() - started
    stdout = process.stdout.read() if process.stdout else ""
    process.wait(60)
    wall = time.monotonic() - started
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(arrived))
    return done, arrived, wall


def when(arrived: dict[str, float], words: str) -> float:
    return next(at for line, at in arrived.items() if words in line)


def test_a_hanging_or_failing_notifier_does_not_slow_the_run(tmp_path, db):
    """Two tables one after the other: the first fails at once (its failure message goes to a
    command that hangs and a webhook that never answers, 10 s each), the second is backed up. Were
    the run to wait for the notifier, the second would end 20 s later; the command ends at most
    two timeouts after the work (the finish message is given up), with the hanging command killed."""
    make_table(db, "orders", 100_000)
    tables = ("-s", "sequential", "-t", "missing", "-t", "orders")
    plain = write_config(tmp_path / "plain.toml", db, store=tmp_path / "store", extra="batch_size = 5000\n")
    baseline, arrived, _ = timed_sync(plain, *tables)
    assert baseline.returncode == 1, baseline.stderr
    before = when(arrived, f"{db.name}.orders success:")
    assert run_cli("watermark", "force-reset", "-t", "orders", "--yes", config=plain).returncode == 0
    silent = socket.socket()  # takes connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    marker = f"{time.time_ns()}"
    hanging = tmp_path / "hang.sh"
    hanging.write_text(f"#!/bin/sh\nsleep 600.{marker}\n")  # a child of its own, found by its marker
    hanging.chmod(0o700)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=(
        f'batch_size = 5000\n\n[notify]\ncommand = "{hanging}"\n'
        f'webhook_url = "http://127.0.0.1:{silent.getsockname()[1]}/hook"\ntimeout_seconds = 10\n'))
    slow, arrived, wall = timed_sync(config, *tables)
    silent.close()
    assert slow.returncode == 1, slow.stderr
    assert sorted(parquet_ids(tmp_path / "store")) == sorted(table_ids(db, "orders"))  # rewritten, same names
    after = when(arrived, f"{db.name}.orders success:")
    assert after < before + 5, f"orders done after {after:.1f}s with the notifier, {before:.1f}s without"
    assert wall < after + 2 * 10 + 1 + 5, f"{wall:.1f}s in all, the work done after {after:.1f}s"
    assert "not delivered: the command took longer than 10s: killed" in slow.stderr, slow.stderr
    assert "gave up" in slow.stderr or "not delivered: timed out" in slow.stderr, slow.stderr
    leftover = [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]
    assert not leftover, "the hanging command was killed with its children"


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


# -- the notifier's decisions, in process (a clock of our own) ------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_is_said_once_and_not_while_paused():
    clock = Clock()
    notifier = Notifier(NotifySettings(command="true", stall_seconds=60), [], lambda line: None, clock)
    table = "shop.orders"
    notifier(JobStarted(table=table, steps=("extract",)))
    notifier(RunStarted(table=table, run_id="r1", start_timestamp="2024-01-01 00:00:00", start_id=7,
                        upper_bound="2024-02-01 00:00:00", estimated_rows=10, batch_size=10,
                        store_url="store"))
    clock.now += 59
    notifier.check_stalls()
    assert notifier.outbox.empty()
    clock.now += 2
    notifier.check_stalls()
    notifier.check_stalls()
    stalled = notifier.outbox.get_nowait()
    assert stalled["event"] == "stalled"
    assert stalled["watermark"] == {"timestamp": "2024-01-01 00:00:00", "id": "7"}
    assert notifier.outbox.empty(), "said once"
    notifier(FileStored(table=table, key="k", rows=10, bytes=100, run_rows=10, run_files=1, run_bytes=100,
                        rows_per_minute=600.0, rss_mb=50.0, watermark_timestamp="2024-01-02 00:00:00",
                        watermark_id=9, elapsed_seconds=1.0))
    notifier(StateChanged(table=table, state="paused"))
    clock.now += 600
    notifier.check_stalls()
    assert notifier.outbox.empty(), "a paused run is not stalled"
    notifier(StateChanged(table=table, state="running"))
    clock.now += 61
    notifier.check_stalls()
    assert notifier.outbox.get_nowait()["watermark"]["timestamp"] == "2024-01-02 00:00:00"
    notifier(JobFinished(table=table, outcome="interrupted", failed_phase="", rows=10, seconds=700.0))
    assert notifier.outbox.get_nowait()["state"] == "stopped"
    clock.now += 600
    notifier.check_stalls()
    assert notifier.outbox.empty(), "an ended run is not stalled"


def test_the_sink_never_waits_for_the_notifier(tmp_path):
    reports: list[str] = []
    hanging = NotifySettings(command=f"{sys.executable} -c 'import time; time.sleep(60)'", timeout_seconds=1)
    with Notifier(hanging, [], reports.append) as notifier:
        started = time.monotonic()
        for n in range(500):  # far more than the queue holds: the rest are dropped, never waited for
            notifier(JobFinished(table=f"shop.t{n}", outcome="failed", failed_phase="extract", rows=0,
                                 seconds=1.0, error="boom"))
        assert time.monotonic() - started < 0.5
    assert any("dropping" in line for line in reports) and any("killed" in line for line in reports)


def test_scrub_hides_secrets_credentials_in_urls_and_aws_keys():
    line = ("cannot reach http://admin:hunter2@db.example.com:5439/dev with AKIAIOSFODNN7EXAMPLE, "
            "password=letmein; \"secret_access_key\": \"abc/def+ghi\" and my-own-secret")
    clean = scrub(line, ["my-own-secret"])
    for secret in ("hunter2", "admin:", "AKIAIOSFODNN7EXAMPLE", "letmein", "abc/def+ghi", "my-own-secret"):
        assert secret not in clean, clean
    assert "db.example.com:5439/dev" in clean  # what is needed to act stays


def test_metrics_port_in_use_is_reported_and_the_run_goes_on(tmp_path, db):
    make_table(db, "orders", 500)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f"\n[metrics]\nport = {taken.getsockname()[1]}\n")
    done = run_cli("sync", "-t", "orders", "--no-ui", config=config)
    taken.close()
    assert done.returncode == 0, done.stderr
    assert "metrics: cannot listen" in done.stderr and "goes on" in done.stderr


def test_bad_metrics_and_notify_keys_stop_with_one_line(tmp_path, db):
    for extra, word in (("\n[metrics]\nport = 70000\n", "metrics.port"),
                        ('\n[notify]\nwebhook_url = "ftp://example.com/x"\n', "notify.webhook_url"),
                        ("\n[notify]\nstall_seconds = -1\n", "notify.stall_seconds")):
        config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=extra)
        refused = run_cli("sync", "-t", "orders", "--no-ui", config=config)
        assert refused.returncode == 2 and word in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "ftp://example.com" not in refused.stderr



def test_status_json_gives_each_tables_watermark_lag(tmp_path, db):
    make_table(db, "orders", 2000)
    make_table(db, "refunds", 10)
    make_table(db, "gone", 10)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'\n[tables."{db.name}.refunds"]\ncursor_column = "update_at"\n')
    for table in ("orders", "gone"):
        assert run_cli("sync", "-t", table, "--no-ui", config=config).returncode == 0
    db.execute("DROP TABLE gone")
    result = run_cli("status", "--json", config=config)
    assert result.returncode == 0, result.stdout + result.stderr
    tables = json.loads(result.stdout)["tables"]
    orders = tables[f"{db.name}.orders"]
    newest = db.execute("SELECT update_at, id FROM orders ORDER BY update_at DESC, id DESC LIMIT 1")[0]
    assert (orders["watermark_timestamp"], orders["watermark_id"]) == (str(newest[0]), newest[1])
    assert abs(orders["lag_seconds"] - database_lag(db, "orders")) < 5
    nothing_yet = {"watermark_timestamp": None, "watermark_id": None, "lag_seconds": None}
    assert tables[f"{db.name}.refunds"] == nothing_yet
    assert "does not exist" in tables[f"{db.name}.gone"]["error"]
    text = run_cli("status", config=config).stdout
    assert f"{db.name}.orders: watermark {newest[0]} / {newest[1]}, " in text and "s behind now" in text


async def test_the_dashboard_feeds_the_metrics_and_the_notifier(tmp_path, db, settings_for, receiver):
    """As run_dashboard opens them: a sync started with `s` shows in the endpoint and the webhook."""
    make_table(db, "orders", 2000)
    port = free_port()
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=(
        f'\n[metrics]\nport = {port}\n\n[notify]\nwebhook_url = "{receiver.url}/hook"\n'))
    settings, reports = settings_for(config), []
    key = f"{db.name}.orders"
    with monitoring(settings, reports.append) as monitors:
        app = make_app(settings, ["orders"], tmp_path / "dashboard.log", monitors=monitors)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("s")
            await wait_for(pilot, lambda: app.statuses[key].state == "done", what="the sync")
            got = await asyncio.to_thread(scrape, port)
            assert got is not None and got["s3rs_rows_stored_total", key] == 2000
            assert got["s3rs_running", key] == 0 and got["s3rs_last_run_failed", key] == 0
    told = [(body["event"], body["table"], body["rows"]) for body in receiver.bodies]
    assert told == [("finished", key, 2000)]
    assert reports == []


def test_progressive_headless_writes_the_textfile_and_notifies(tmp_path, db):
    make_table(db, "orders", 3000)
    textfile, out = tmp_path / "s3rs.prom", tmp_path / "message.json"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\ncat > "{out}"\n')
    script.chmod(0o700)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra=(
        f'\n[metrics]\ntextfile = "{textfile}"\n\n[notify]\ncommand = "{script}"\n'))
    done = run_cli("progressive", "orders", "--no-ui", "--chunk-size", "1000", config=config, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    key = f"{db.name}.orders"
    final = samples(textfile.read_text())
    assert final["s3rs_rows_stored_total", key] == 3000 and final["s3rs_running", key] == 0
    assert final["s3rs_watermark_lag_seconds", key] == pytest.approx(database_lag(db, "orders"), abs=30)
    message = json.loads(out.read_text())
    assert (message["event"], message["state"], message["rows"]) == ("finished", "done", 3000)
