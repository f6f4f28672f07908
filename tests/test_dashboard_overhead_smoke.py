"""benchmarks/dashboard_overhead.py at a small N: both modes run end to end (the dashboard in a
private tmux) and it prints both rows/min and their ratio. Figures, not assertions: they mean
something only at millions of rows on a quiet machine (README "Dashboard")."""

import json
import subprocess
import sys
from pathlib import Path

from cli_helpers import require_tool

ROOT = Path(__file__).resolve().parent.parent


def test_overhead_benchmark_runs_at_a_small_n(tmp_path):
    require_tool("tmux")
    figures = tmp_path / "figures.json"
    process = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dashboard_overhead.py"), "--rows", "3000",
         "--repeat", "1", "--batch-size", "500", "--size", "80x24", "--json-out", str(figures)],
        cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "dashboard / headless = " in process.stdout
    report = json.loads(figures.read_text())
    for mode in ("headless", "dashboard"):
        (run,) = report["runs"][mode]
        assert run["rows"] == 3000 and run["state"] == "done" and report["medians"][mode] > 0
