"""What the dashboard costs: `s3rs sync` rows/min with the dashboard open against headless, in one run.

    .venv/bin/python benchmarks/dashboard_overhead.py [--rows 1000000] [--batch-size 50000] [--repeat 3]
        [--keep-server DIR] [--size 200x60] [--json-out FILE]

1. Starts a throwaway MariaDB and creates the benchmark table, with benchmarks/throughput.py's
   helpers (the same table, config and command as its "s3rs sync" line, local folder store).
2. Runs, --repeat times, interleaved: `s3rs sync --no-ui` (headless, log lines to a file), and the
   same `s3rs sync` on a terminal: a private headless tmux of --size, where it opens the dashboard
   with the run going and repaints as in real use; it is quit with `q` once the run is done.
3. Both figures come from the run itself, as its status snapshot records them ($S3RS_STATE_DIR):
   rows/min over the engine's own elapsed time, so process start-up and the dashboard's opening
   and closing are left out; the wall time of each process is printed too.

The issue's target: the dashboard's median rows/min within 5% of headless. Needs tmux.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import Bench, MeasureError, log, prepare_table, s3rs_sync, time_child

MODES = ("headless", "dashboard")


def snapshot_figures(state: Path) -> dict:
    """rows, rows/min and end state of the (one) run, from its status snapshot."""
    (path,) = (state / "status").glob("*.json")
    status = json.loads(path.read_text())["status"]
    return {"rows": status["rows"], "rows_per_minute": status["rows_per_minute"], "state": status["state"],
            "engine_seconds": status["elapsed_seconds"]}


def run_headless(command: list[str], run_dir: Path, env: dict) -> dict:
    measured = time_child(command, run_dir, env)
    if measured["returncode"]:
        raise MeasureError(f"headless sync exited {measured['returncode']}: {measured['stderr'][-500:]}")
    return {"wall_seconds": measured["seconds"]}


def run_dashboard(command: list[str], run_dir: Path, env: dict, size: tuple[int, int],
                  timeout: float) -> dict:
    """The same sync on a terminal (tmux): it opens the dashboard; quit with q when the run is done."""
    socket = f"s3rs-bench-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", socket]
    exports = [f"{k}={v}" for k, v in env.items() if k.startswith(("S3RS_", "AWS_", "PATH", "HOME", "LANG"))]
    shell = " ".join(["env", *exports, *command])
    started = time.perf_counter()
    subprocess.run([*tmux, "new-session", "-d", "-s", "bench", "-x", str(size[0]), "-y", str(size[1]), shell],
                   check=True, cwd=run_dir)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = snapshot_figures(Path(env["S3RS_STATE_DIR"]))["state"]
            except (ValueError, OSError, KeyError):  # not written yet
                state = ""
            if state in ("done", "failed", "stopped"):
                break
            if time.monotonic() > deadline:
                raise MeasureError("the dashboard run did not finish in time")
            time.sleep(0.2)
        wall = time.perf_counter() - started
        subprocess.run([*tmux, "send-keys", "-t", "bench", "q"], check=True)
        while subprocess.run([*tmux, "has-session", "-t", "bench"], capture_output=True).returncode == 0:
            time.sleep(0.1)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    return {"wall_seconds": wall}


def measure(mode: str, bench: Bench, index: int, size: tuple[int, int]) -> dict:
    run_dir = bench.work / f"{mode}-{index}"
    run_dir.mkdir(parents=True)
    child = s3rs_sync("pymysql", False, bench, run_dir)  # throughput.py's "s3rs sync" line, as it runs it
    env = {**bench.env, **child.env}
    try:
        if mode == "headless":
            figures = run_headless(child.command, run_dir, env)
        else:
            command = [arg for arg in child.command if arg not in ("--no-ui", "--json")]
            figures = run_dashboard(command, run_dir, env, size, timeout=3600)
        figures.update(snapshot_figures(Path(env["S3RS_STATE_DIR"])))
        if figures["state"] != "done" or figures["rows"] != bench.rows:
            raise MeasureError(f"{mode}: the run ended {figures['state']} with {figures['rows']:,} rows")
        return figures
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def report(runs: dict[str, list[dict]], params: dict) -> dict:
    medians = {mode: statistics.median(r["rows_per_minute"] for r in runs[mode]) for mode in MODES}
    print()
    print(f"rows {params['rows']:,}, batch size {params['batch_size']:,}, repeat {params['repeat']}, "
          f"dashboard in a {params['size']} tmux, nproc {os.cpu_count()}")
    header = f"{'mode':<12}{'rows/min (median)':>20}{'runs (rows/min)':>44}{'wall s (median)':>17}"
    print(header)
    print("-" * len(header))
    for mode in MODES:
        each = ", ".join(f"{r['rows_per_minute']:,.0f}" for r in runs[mode])
        wall = statistics.median(r["wall_seconds"] for r in runs[mode])
        print(f"{mode:<12}{medians[mode]:>20,.0f}{each:>44}{wall:>17.2f}")
    ratio = medians["dashboard"] / medians["headless"]
    print(f"\ndashboard / headless = {ratio:.3f} ({(ratio - 1) * 100:+.1f}%; target: within -5%)")
    return {"medians": medians, "ratio": ratio, "runs": runs, "parameters": params}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", default="200x60", help="the dashboard's terminal, COLSxROWS")
    parser.add_argument("--keep-server", metavar="DIR", type=Path, help="server folder reused across runs")
    parser.add_argument("--json-out", metavar="FILE", type=Path)
    opts = parser.parse_args()
    if shutil.which("tmux") is None:
        parser.error("tmux is needed (apt-get install tmux)")
    size = tuple(int(n) for n in opts.size.lower().split("x"))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    from s3rs_tui.sandbox.mariadb import start_mariadb

    base = opts.keep_server.resolve() if opts.keep_server else Path(tempfile.mkdtemp(prefix="s3rs-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="s3rs-bench-work-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3RS_", "BACKUP_", "S3_"))}
    log(f"starting MariaDB in {base} ...")
    server = start_mariadb(base, buffer_pool_mb=1024, databases=("bench",))
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    try:
        bench = Bench(server.connect_args(), "bench", "settlement_normal_delivery_detail", opts.rows,
                      opts.batch_size, work, env)
        prepare_table(bench, 0)
        measure("headless", bench, -1, size)  # warm-up: buffer pool and page cache, not counted
        for index in range(opts.repeat):
            for mode in MODES:  # interleaved, so drift of the machine hits both alike
                run = measure(mode, bench, index, size)
                runs[mode].append(run)
                log(f"run {index + 1}/{opts.repeat} {mode}: {run['rows_per_minute']:,.0f} rows/min, "
                    f"{run['engine_seconds']:.2f}s in the engine, {run['wall_seconds']:.2f}s wall")
    except MeasureError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        log("stopping MariaDB")
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if not opts.keep_server:
            shutil.rmtree(base, ignore_errors=True)
    result = report(runs, {"rows": opts.rows, "batch_size": opts.batch_size, "repeat": opts.repeat,
                           "size": opts.size})
    if opts.json_out:
        opts.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
