"""benchmarks/throughput.py at a small N: every line runs and prints a positive rows/min.

Figures, not assertions: the benchmark's numbers are only meaningful at millions of rows on a quiet
machine (README "Benchmark"); here it must merely run end to end. It starts its own throwaway MariaDB,
moto S3 server and PostgreSQL on 127.0.0.1 and stops them.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = 3000
EXPECTED = ("ceiling", "ceiling-ordered", "pymysql", "pymysql-nodecode", "s3rs-pymysql", "s3rs-connectorx",
            "s3rs-pymysql-k2", "s3rs-connectorx-k2", "s3rs-pymysql-s3", "s3rs-connectorx-s3", "load-duckdb",
            "load-postgres", "load-postgres-merge")
TIMEOUT = 300


def test_benchmark_runs_every_line_at_a_small_n(tmp_path):
    figures = tmp_path / "figures.json"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--rows", str(ROWS), "--repeat", "1",
         "--batch-size", "1000", "--json-out", str(figures)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: the script stops its MariaDB, S3 server and children first
        stdout, stderr = process.communicate(timeout=60)
        raise AssertionError(f"the benchmark took over {TIMEOUT} s; stderr tail:\n{stderr[-3000:]}") from None
    assert process.returncode == 0, stderr[-3000:]

    # "<line> <what ...> <rows/min> <seconds> <peak RSS MB> <ratio>x <ordered ratio>x <CPU s> <server CPU s>"
    printed = {}
    for line in stdout.splitlines():
        if line.split():
            printed.setdefault(line.split()[0], line.split())
    for name in EXPECTED:
        assert name in printed, f"no {name} line in:\n{stdout}"
        rows_per_min, seconds, peak_rss, ratio, ordered, cpu, server_cpu = printed[name][-7:]
        assert int(rows_per_min.replace(",", "")) > 0, printed[name]
        assert float(seconds) > 0 and float(peak_rss) > 0 and ratio.endswith("x") and ordered.endswith("x")
        assert (float(cpu) > 0 or name.startswith("ceiling")) and float(server_cpu) >= 0, printed[name]
    assert printed["ceiling"][-4] == "1.00x" and printed["ceiling-ordered"][-3] == "1.00x"
    # dlt is measured when installed, else says so.
    assert "dlt" in printed
    assert "skipped: dlt not installed" in " ".join(printed["dlt"]) or printed["dlt"][-4].endswith("x")

    report = json.loads(figures.read_text())
    assert report["errors"] == {}
    for name in EXPECTED:
        assert report["results"][name]["runs"] == 1
        assert report["results"][name]["median_rows_per_min"] > 0
    for name in (n for n in EXPECTED if n.startswith("s3rs-")):
        assert report["results"][name]["parquet_files"] >= 1
        assert report["results"][name]["store_mb"] > 0
    # The Parquet writer's choices, each measured: pyarrow's defaults first, the engine's own last.
    choices = [row["choice"] for row in report["encoding"]]
    assert choices[0].startswith("pyarrow defaults") and choices[-1].startswith("all of the engine's")
    assert all(row["cpu_seconds"] > 0 and row["mb"] > 0 for row in report["encoding"])
    assert "Parquet writer choices" in stdout and "dictionary on:" in stdout
