"""The project as operators install it: the wheel built from this tree, installed non-editable
with `[fast]` into a clean virtual environment, and run from there with nothing of the source tree
importable: `s3rs demo` at a small size (twice: the rerun finds nothing new), and the dashboard in
tmux at 80x24 on a live sync. Every other test runs on the editable install, which cannot notice a
file the wheel leaves out (the dashboard's stylesheet once was: issue 10).

The virtual environment is built once for the module, and the module's tests share one xdist worker.
"""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from zipfile import ZipFile

import pytest
from cli_helpers import make_table, table_ids, wait_until
from dashboard_helpers import stored_ids
from tmux_helpers import pid_gone

from s3rs_tui.runtime.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DEMO_ROWS = 2000
DEMO_TABLE = "public.settlement_normal_delivery_detail"

pytestmark = pytest.mark.xdist_group("installed-wheel")


def git_files(*args: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def package_data_files() -> list[str]:
    """What the program reads besides its modules: every non-.py file tracked under s3rs_tui/."""
    return [name for name in git_files("s3rs_tui") if not name.endswith(".py")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this tree as it is (tracked and new files, not ignored ones), built from a clean
    copy: an in-tree build would also pack stale modules left in build/ by an earlier one."""
    source = tmp_path_factory.mktemp("source")
    for name in git_files("--cached", "--others", "--exclude-standard"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    folder = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", str(source), "-w", str(folder)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (path,) = folder.glob("s3rs_tui-*.whl")
    return path


@dataclass(kw_only=True)
class Installed:
    """A virtual environment with the wheel installed, and how to run its `s3rs` as an operator."""

    venv: Path
    environ: dict[str, str]

    @property
    def s3rs(self) -> Path:
        return self.venv / "bin" / "s3rs"

    def run(self, *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.s3rs), *[str(arg) for arg in args]], capture_output=True, text=True,
                              env=self.environ, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)

    def python(self, code: str, cwd: Path) -> str:
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                              env=self.environ, cwd=cwd, timeout=60, check=True)
        return done.stdout.strip()


def operator_environ(venv: Path) -> dict[str, str]:
    """This test's environment as an operator's shell has it: no PYTHONPATH (nothing of this tree can
    be imported), the virtual environment's bin/ first on PATH."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**environ, "PATH": f"{venv / 'bin'}{os.pathsep}{environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Installed:
    """`python -m venv` (no system site packages) and `pip install "<wheel>[fast]"`, run outside
    the repository; fails unless s3rs_tui then imports from the venv's site-packages."""
    venv = tmp_path_factory.mktemp("venv")
    outside = tmp_path_factory.mktemp("outside")
    environ = operator_environ(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=environ,
                   cwd=outside)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[fast]"],
                         capture_output=True, text=True, timeout=900, env=environ, cwd=outside)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    installed = Installed(venv=venv, environ=environ)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(installed.python(purelib, outside))
    package = Path(installed.python("import s3rs_tui; print(s3rs_tui.__file__)", outside))
    assert package.parent == site_packages / "s3rs_tui" and site_packages.is_relative_to(venv), package
    return installed


def test_the_wheel_carries_every_file_the_program_reads(wheel):
    data = package_data_files()
    assert "s3rs_tui/tui/dashboard.tcss" in data
    with ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert not [name for name in data if name not in names], sorted(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_demo_from_the_installed_wheel(installed, tmp_path):
    """README's first command, at a small size: verified, and the DuckDB table holds exactly the
    rows generated; the rerun finds nothing new."""
    warehouse = tmp_path / "s3rs-demo" / "warehouse.duckdb"
    first = installed.run("demo", "--rows", DEMO_ROWS, "--batch-size", 500, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"MySQL and duckdb {warehouse} agree: {DEMO_ROWS:,} rows" in first.stdout
    assert f"Done: {DEMO_ROWS:,} rows in" in first.stdout and "Traceback" not in first.stderr
    count = f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {DEMO_TABLE}"
    query = (f"import duckdb; "
             f"print(duckdb.connect({str(warehouse)!r}, read_only=True).execute({count!r}).fetchall())")
    assert installed.python(query, tmp_path) == str([(DEMO_ROWS, DEMO_ROWS)])
    again = installed.run("demo", "--rows", DEMO_ROWS, "--batch-size", 500, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Done: 0 rows in 0 Parquet files" in again.stdout and "0 rows loaded into DuckDB" in again.stdout
    assert f"agree: {DEMO_ROWS:,} rows" in again.stdout
    assert installed.python(query, tmp_path) == str([(DEMO_ROWS, DEMO_ROWS)])


def test_dashboard_from_the_installed_wheel_on_a_live_sync(installed, tmp_path, db, local_config,
                                                           tmux_session):
    """`s3rs sync` on an 80x24 terminal opens the dashboard (stylesheet and all) and shows the run
    to its end with the real row count; `q` leaves."""
    make_table(db, rows=3000)
    state, cwd = tmp_path / "state", tmp_path / "operator"
    cwd.mkdir()
    command = [installed.s3rs, "--config", local_config, "sync", "-t", "orders", "--batch-size", "300"]
    session = tmux_session(command, {"S3RS_STATE_DIR": state}, size=(80, 24), environ=installed.environ,
                           cwd=cwd)
    pid = session.pid()

    def logs() -> str:
        return "\n".join(f.read_text() for f in sorted((state / "logs").glob("*.log")))

    def table_row() -> str:  # the table's line in the Tables panel (log lines come below it)
        return next((line for line in session.screen().splitlines() if f"{db.name}.orders" in line), "")

    wait_until(lambda: "Throughput" in session.screen() or pid_gone(pid), timeout=60, what="the dashboard")
    assert not pid_gone(pid), f"the dashboard ended at once; its log:\n{logs()}"
    wait_until(lambda: " success: 3,000 rows" in logs(), what="the run's end in the log", detail=logs)
    wait_until(lambda: " done " in table_row() and " 3,000 " in table_row(),
               what="the finished run on screen", detail=session.screen)
    # the end as the store has it: every row of the run, and the stored watermark (read after the run)
    wait_until(lambda: "3,000 / 3,000" in session.screen() and "none yet" not in session.screen(),
               what="the run's rows and its stored watermark", detail=session.screen)
    assert "Error" not in session.screen(), session.screen()
    with open(f"/proc/{pid}/environ", "rb") as environ:
        assert b"PYTHONPATH=" not in environ.read()
    session.run("send-keys", "-t", "main", "q")
    wait_until(lambda: pid_gone(pid), timeout=20, what="quit", detail=session.screen)
    settings = load_settings(str(local_config), environ={})
    assert stored_ids(settings, f"{db.name}.orders") == table_ids(db)
