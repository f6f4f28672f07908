"""deploy/: the systemd units checked by systemd itself, their stop sequence played with the real
signals systemd sends against a real `s3rs` (the rerun exact on every column), and the Dockerfile.

There is no systemd running here (and no Docker daemon), so the stop is played as systemd
documents it (systemd.kill(5)): KillSignal to the main process (KillMode=mixed) or to every process
of the unit (control-group), then SIGCONT; whatever is left after TimeoutStopSec gets SIGKILL, the
whole group. The unit's own ExecStart runs, with the test's config and Python in place of the paths.
"""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from cli_helpers import make_table, require_tool, s3rs_command, wait_until
from conftest import write_config
from exact_rows import assert_store_matches_mysql, assert_watermark_matches_files

from s3rs_tui.status.snapshot import read_snapshot, status_dir
from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore

DEPLOY = Path(__file__).parent.parent / "deploy"
UNITS = {"sync": "s3rs-sync.service", "progressive": "s3rs-progressive@.service"}
S3RS, CONFIG = "/opt/s3rs/bin/s3rs", "/etc/s3rs/s3rs.toml"


def unit_settings(name: str) -> dict[str, str]:
    """Key -> value of a unit file (the last one wins, as for the keys used here)."""
    found = {}
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    """systemd's own parser: every key known, values valid, the command executable."""
    require_tool("systemd-analyze")
    s3rs = Path(sys.executable).with_name("s3rs")
    assert s3rs.exists(), "the project is installed in this environment (pip install -e .)"
    copies = []
    for name in [*UNITS.values(), "s3rs-sync.timer"]:
        copy = tmp_path / name.replace("@.", "@shop.orders.")
        copy.write_text((DEPLOY / name).read_text().replace(S3RS, str(s3rs)))
        copies.append(str(copy))
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no", *copies], capture_output=True,
                             text=True)
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
    for name in UNITS.values():
        unit = unit_settings(name)
        assert unit["KillMode"] == "mixed" and unit["KillSignal"] == "SIGTERM", name
        assert unit["SendSIGHUP"] == "no", f"{name}: a SIGHUP right after SIGTERM would stop at once"
        assert "130" in unit["SuccessExitStatus"].split(), f"{name}: a graceful stop is not a failure"
    assert unit_settings("s3rs-sync.timer")["OnCalendar"] == "hourly"


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_unit_left_running():
    """A unit's process runs in a session of its own, so pytest's end would not stop it: a test
    that fails half-way must not leave a backup running (it did, for hours)."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def started_unit(kind: str, config: Path, table: str, cwd: Path, env: dict) -> subprocess.Popen:
    """The unit's ExecStart, with our config, in a session of its own (the unit's control group)."""
    unit = unit_settings(UNITS[kind])
    words = shlex.split(unit["ExecStart"].replace("%i", table))
    assert words[:3] == [S3RS, "--config", CONFIG], words
    command = s3rs_command(*words[3:], config=config)
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    _STARTED.append(process)
    return process


def systemd_stop(process: subprocess.Popen, kill_mode: str, timeout_stop: float) -> str:
    """systemctl stop, as systemd.kill(5) says: SIGTERM (+ SIGCONT) to the main process (mixed) or
    the whole group (control-group); SIGKILL to the group after `timeout_stop` seconds. Returns
    "exited" or "killed"."""
    send = (lambda sig: os.killpg(process.pid, sig)) if kill_mode == "control-group" else process.send_signal
    send(signal.SIGTERM)
    send(signal.SIGCONT)
    try:
        process.wait(timeout_stop)
        return "exited"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return "killed"


def reading(table: str) -> bool:
    """The run has read rows into the file it is writing (its status snapshot says so)."""
    snapshot = read_snapshot(status_dir() / f"{table}.json")
    return snapshot is not None and snapshot.status.file_rows > 0


def rerun_is_exact(db, settings_for, config: Path, name: str, cwd: Path) -> None:
    rerun = subprocess.run(s3rs_command("sync", "-t", name, "--no-ui", config=config), cwd=cwd,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    settings = settings_for(config)
    assert_watermark_matches_files(settings, name, assert_store_matches_mysql(db, settings, name))


ROWS = 200_000


@pytest.fixture
def big_table(db):
    """200k rows: in the default layout one file of many pages (of 1,000 rows: a few seconds to
    read), ties on the cursor, cursor order unlike key order."""
    make_table(db, "orders", 0)
    db.execute(f"INSERT INTO orders (id, update_at, amount, note) SELECT seq, "
               f"'2024-01-01' + INTERVAL (seq * 7919 % {ROWS}) DIV 4 SECOND, seq * 1.25, "
               f"IF(seq % 10 = 0, NULL, CONCAT('note ', seq)) FROM seq_1_to_{ROWS}")
    return db


@pytest.mark.parametrize("kind, kill_mode", [("sync", "mixed"), ("progressive", "mixed"),
                                             ("sync", "control-group")])  # the units', and systemd's default
def test_systemctl_stop_ends_at_a_file_boundary_and_the_rerun_is_exact(big_table, tmp_path, settings_for,
                                                                       kind, kill_mode):
    """SIGTERM mid-file: the file in flight is closed and stored, the watermark saved, exit 130 well
    within TimeoutStopSec (status 130 is the unit's SuccessExitStatus)."""
    db, name = big_table, f"{big_table.name}.orders"
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", default_layout=True,
                          # pages of 100 rows: thousands of queries, seconds however fast the engine,
                          # so the stop comes while the first file is being written
                          extra=f'batch_size = 100\n\n[tables."{name}"]\ncursor_column = "update_at"\n')
    process = started_unit(kind, config, name, tmp_path, {})
    wait_until(lambda: reading(name) or process.poll() is not None, 60, "rows read into the first file")
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    how = systemd_stop(process, kill_mode, float(unit_settings(UNITS[kind])["TimeoutStopSec"]))
    stderr = process.stderr.read() if process.stderr else ""
    assert (how, process.returncode) == ("exited", 130), stderr
    assert "SIGTERM: finishing the file in flight" in stderr and "stopped at once" not in stderr
    watermark = WatermarkStore(open_store(settings_for(config))).get(name)
    assert 0 < watermark.mysql_rows_extracted < ROWS, "stopped part way, at the end of a stored file"
    assert_watermark_matches_files(settings_for(config), name)
    rerun_is_exact(db, settings_for, config, name, tmp_path)


def test_a_stop_past_timeout_stop_sec_is_sigkilled_and_the_rerun_is_exact(big_table, tmp_path, settings_for):
    """The file in flight takes longer than TimeoutStopSec (here it hangs once stored, before its
    watermark is saved): systemd SIGKILLs the group; the rerun rewrites that file under its name."""
    db, name = big_table, f"{big_table.name}.orders"
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", default_layout=True,
                          extra="batch_size = 1000\n")
    marker = tmp_path / "reached"
    process = started_unit("progressive", config, name, tmp_path,
                           {"S3RS_FAILPOINT": "after-upload", "S3RS_FAILPOINT_FILE": str(marker)})
    wait_until(lambda: reading(name) or marker.exists() or process.poll() is not None, 60,
               "rows read into the first file")  # a fast chunk may be storing before a snapshot says so
    started = time.monotonic()
    assert systemd_stop(process, "mixed", 3.0) == "killed" and process.returncode == -signal.SIGKILL
    assert marker.exists() and time.monotonic() - started >= 3.0  # it was storing its file, past the timeout
    stored = [info.key for info in open_store(settings_for(config)).list("")]
    assert any(key.endswith(".parquet") for key in stored), "the file was stored, its watermark not saved"
    rerun_is_exact(db, settings_for, config, name, tmp_path)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    joined, found = "", []
    for line in path.read_text().splitlines():
        if line.strip().startswith("#") and not joined:
            continue
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        line, joined = joined + line, ""
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_dockerfile_builds_the_wheel_and_runs_s3rs(tmp_path):
    """No Docker daemon here to build the image. The Dockerfile is parsed, its build stage replayed
    in a folder holding only what it copies (its `pip wheel` must make the wheel from that alone),
    and the final stage checked: it installs that wheel, nothing else of the source, and its entry
    point is `s3rs`."""
    known = {"FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "ARG", "LABEL",
             "VOLUME", "EXPOSE", "STOPSIGNAL"}
    steps = dockerfile_instructions(DEPLOY / "Dockerfile")
    assert {word for word, _ in steps} <= known, steps
    stages = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    assert len(stages) == 2 and steps[stages[0]][1].endswith(" AS build"), "a build stage and a runtime stage"
    build, runtime = steps[stages[0]:stages[1]], steps[stages[1]:]
    context, workdir = DEPLOY.parent, tmp_path / "src"
    workdir.mkdir()
    for word, args in build:
        if word == "COPY":
            *sources, target = args.split()
            for source in sources:
                copy = shutil.copytree if (context / source).is_dir() else shutil.copy
                copy(context / source, workdir / target if target != "./" else workdir / source)
        elif word == "RUN":
            assert args.startswith("pip wheel --no-deps --wheel-dir /wheels "), args
            wheels = tmp_path / "wheels"
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels),
                            *args.split()[5:]], cwd=workdir, check=True, capture_output=True)
    wheel, = wheels.glob("s3rs_tui-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "s3rs_tui/cli/__init__.py" in names and any(n.endswith(".tcss") for n in names)
    assert "s3rs = s3rs_tui.cli:main" in entry_points
    copied = [args for word, args in runtime if word == "COPY"]
    assert copied == ["--from=build /wheels /tmp/wheels"], copied
    assert any(word == "RUN" and "pip install" in args and "/tmp/wheels/s3rs_tui-*.whl" in args
               for word, args in runtime)
    assert ("ENTRYPOINT", '["s3rs"]') in runtime and runtime[-1] == ("CMD", '["--help"]')
    assert ("STOPSIGNAL", "SIGTERM") in runtime and ("USER", "10001") in runtime  # s3rs, numeric (hadolint)
