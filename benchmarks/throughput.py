"""Throughput of `s3rs sync` against bare pymysql reads, on a throwaway MariaDB.

    .venv/bin/python benchmarks/throughput.py --rows 1000000 [--batch-size 50000] [--repeat 3]
        [--keep-server DIR] [--reader-only] [--json-out FILE]

1. Starts a MariaDB server (s3rs_tui.sandbox.mariadb) in a temporary folder, or in --keep-server DIR
   so the generated table is kept between invocations (the server itself is stopped every run).
2. Creates database `bench` and the benchmark table with --rows rows (skipped when it already holds
   exactly that many).
3. Measures, --repeat times each, every reader in a fresh child process (peak RSS per run, from
   os.wait4's rusage):
     * bare pymysql: SSCursor (unbuffered), default converters, fetchmany(10000), rows dropped;
     * bare pymysql no decoders: the same with conv= encoders only (no decoders: values come back as
       str/bytes), as the engine reads (a literal conv={} breaks pymysql's own SET AUTOCOMMIT);
     * s3rs sync: `s3rs --config ... sync -t bench.<table> --no-ui --json --batch-size B` into a fresh
       local store folder (skipped with --reader-only).
4. Prints median rows/min, median seconds and peak RSS per reader, the tool's ratio against each
   baseline, the machine and the parameters; --json-out writes the same figures as JSON.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "bench"
FETCH_ROWS = 10_000
# "no decoders" is conv=encoders only (what the engine passes): values come back as str/bytes.
BASELINES = {"bare pymysql": "default", "bare pymysql no decoders": "none"}
TOOL = "s3rs sync"

# What a baseline child runs: read the whole table unbuffered, drop the rows, print the count.
CHILD_READ = """
import json, sys, pymysql, pymysql.converters, pymysql.cursors
host, port, user, password, database, table, conv = sys.argv[1:8]
# conv={} proper would also drop the encoders pymysql needs for its own SET AUTOCOMMIT.
kwargs = {} if conv == "default" else {"conv": dict(pymysql.converters.encoders)}
conn = pymysql.connect(host=host, port=int(port), user=user, password=password, database=database,
                       charset="utf8mb4", autocommit=True, cursorclass=pymysql.cursors.SSCursor, **kwargs)
rows = 0
with conn.cursor() as cur:
    cur.execute(f"SELECT * FROM `{table}`")
    while True:
        chunk = cur.fetchmany(%d)
        if not chunk:
            break
        rows += len(chunk)
conn.close()
print(json.dumps({"rows": rows}))
""" % FETCH_ROWS


class MeasureError(RuntimeError):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_measured(command: list[str], cwd: Path, env: dict[str, str]) -> dict:
    """Run a child to completion; wall seconds, peak RSS (MB), exit code, stdout and stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024,  # ru_maxrss is KB on Linux
                "returncode": process.returncode,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def last_json_object(text: str) -> dict | None:
    """The JSON summary a command printed: the whole output, else its last line that parses."""
    candidates = [text.strip()] + [line.strip() for line in reversed(text.strip().splitlines())]
    for candidate in candidates:
        if candidate.startswith("{"):
            try:
                return json.loads(candidate)
            except ValueError:
                continue
    return None


def child_env() -> dict[str, str]:
    """Our environment without s3rs settings that would override the generated config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3RS_", "BACKUP_", "S3_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def measure_baseline(name: str, server, table: str, rows: int, work: Path) -> dict:
    args = server.connect_args()
    command = [sys.executable, "-c", CHILD_READ, args["host"], str(args["port"]), args["user"],
               args["password"], DATABASE, table, BASELINES[name]]
    result = run_measured(command, work, child_env())
    summary = last_json_object(result["stdout"])
    if result["returncode"] or not summary:
        raise MeasureError(f"{name} failed (exit {result['returncode']}):\n{tail(result['stderr'])}")
    if summary["rows"] != rows:
        raise MeasureError(f"{name} read {summary['rows']} rows, expected {rows}")
    return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"], "rows": summary["rows"]}


def measure_tool(server, table: str, rows: int, batch_size: int, work: Path, index: int) -> dict:
    s3rs = Path(sys.executable).parent / "s3rs"
    if not s3rs.exists():
        raise MeasureError(f"{s3rs} not found: install the project in the venv (pip install -e .)")
    run_dir = work / f"tool-{index}"
    store = run_dir / "store"
    store.mkdir(parents=True)
    args = server.connect_args()
    config = run_dir / "s3rs.toml"
    config.write_text(
        f'[mysql]\nhost = "{args["host"]}"\nport = {args["port"]}\nuser = "{args["user"]}"\n'
        f'password = "{args["password"]}"\ndatabase = "{DATABASE}"\n\n'
        f'[s3]\nlocal_path = "{store}"\n\n[backup]\nsafety_lag_seconds = 0\n')
    command = [str(s3rs), "--config", str(config), "sync", "-t", f"{DATABASE}.{table}", "--no-ui",
               "--json", "--batch-size", str(batch_size)]
    result = run_measured(command, run_dir, child_env())  # cwd: a fresh folder, no stray local state
    summary = last_json_object(result["stdout"])
    if result["returncode"]:
        raise MeasureError(f"`{' '.join(command)}` exited with {result['returncode']}; stderr tail:\n"
                           f"{tail(result['stderr'] or result['stdout'])}")
    if not summary or not isinstance(summary.get("rows"), int):
        raise MeasureError(f"`{' '.join(command)}` printed no JSON summary with \"rows\"; stdout tail:\n"
                           f"{tail(result['stdout'])}\nstderr tail:\n{tail(result['stderr'])}")
    if summary["rows"] != rows:
        raise MeasureError(f"s3rs sync reported {summary['rows']} rows, expected {rows}")
    files = [p for p in store.rglob("*") if p.is_file()]
    parquet = [p for p in files if p.suffix == ".parquet"]
    measured = {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"], "rows": summary["rows"],
                "store_bytes": sum(p.stat().st_size for p in files),
                "parquet_files": len(parquet), "summary": summary}
    shutil.rmtree(run_dir, ignore_errors=True)
    return measured


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:]) or "    (empty)"


def prepare_table(server, table: str, rows: int) -> dict:
    """Create the table with `rows` rows unless it already holds exactly that many."""
    import pymysql

    from s3rs_tui.sandbox.sample_data import create_settlement_table

    with pymysql.connect(**server.connect_args(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        cur.execute("SELECT COUNT(*) FROM information_schema.tables"
                    " WHERE table_schema = %s AND table_name = %s", (DATABASE, table))
        existing = None
        if cur.fetchone()[0]:
            cur.execute(f"SELECT COUNT(*) FROM `{DATABASE}`.`{table}`")
            existing = cur.fetchone()[0]
        if existing == rows:
            log(f"table {DATABASE}.{table} already holds {rows:,} rows: reusing it")
            generated = None
        else:
            log(f"generating {rows:,} rows in {DATABASE}.{table} ...")
            start = time.perf_counter()

            def progress(done: int, total: int) -> None:
                log(f"  {done:,}/{total:,} rows ({time.perf_counter() - start:.1f}s)")

            create_settlement_table(conn, DATABASE, table, rows, progress=progress)
            generated = time.perf_counter() - start
            log(f"generated in {generated:.1f}s")
        cur.execute("SELECT data_length, index_length, avg_row_length FROM information_schema.tables"
                    " WHERE table_schema = %s AND table_name = %s", (DATABASE, table))
        data_length, index_length, avg_row_length = cur.fetchone()
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    return {"generated_seconds": generated, "data_mb": data_length / 2**20, "index_mb": index_length / 2**20,
            "avg_row_length": avg_row_length, "mariadb_version": version}


def machine(table_info: dict) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pymysql

    return {"nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu": cpu, "mariadb": table_info["mariadb_version"], "python": platform.python_version(),
            "pymysql": pymysql.__version__, "platform": platform.platform()}


def summarize(runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    rates = [r["rows"] / r["seconds"] * 60 for r in runs]
    out = {"runs": len(runs), "median_seconds": statistics.median(seconds),
           "median_rows_per_min": statistics.median(rates), "min_seconds": min(seconds),
           "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
           "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
           "seconds": seconds}
    if runs and "store_bytes" in runs[0]:
        out["store_mb"] = runs[-1]["store_bytes"] / 2**20
        out["parquet_files"] = runs[-1]["parquet_files"]
        out["summary"] = runs[-1]["summary"]
    return out


def report(results: dict, env: dict, params: dict, errors: dict) -> None:
    print()
    print(f"machine:    nproc {env['nproc']}, {env['cpu'] or 'unknown CPU'}")
    print(f"            MariaDB {env['mariadb']}, Python {env['python']}, pymysql {env['pymysql']}")
    print(f"parameters: rows {params['rows']:,}, batch size {params['batch_size']:,},"
          f" repeat {params['repeat']}, fetchmany {FETCH_ROWS:,}, buffer pool {params['buffer_pool_mb']} MB")
    print(f"table:      {params['table']}: data {params['data_mb']:.0f} MB,"
          f" index {params['index_mb']:.0f} MB, avg row {params['avg_row_length']} B")
    print()
    header = f"{'reader':<28}{'rows/min (median)':>20}{'seconds (median)':>18}{'peak RSS MB':>13}"
    print(header)
    print("-" * len(header))
    for name, figures in results.items():
        print(f"{name:<28}{figures['median_rows_per_min']:>20,.0f}{figures['median_seconds']:>18.2f}"
              f"{figures['peak_rss_mb']:>13.0f}")
    for name in errors:
        print(f"{name:<28}{'FAILED':>20}")
    tool = results.get(TOOL)
    if tool:
        print()
        for baseline in BASELINES:
            if baseline in results:
                ratio = tool["median_rows_per_min"] / results[baseline]["median_rows_per_min"]
                tool.setdefault("ratios", {})[baseline] = ratio
                print(f"tool / {baseline} = {ratio:.2f}x")
        if "store_mb" in tool:
            print(f"tool output: {tool['parquet_files']} Parquet files,"
                  f" {tool['store_mb']:.1f} MB in the store")
    for name, message in errors.items():
        print(f"\n{name} FAILED: {message}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000, help="passed to s3rs sync")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-server", metavar="DIR", type=Path,
                        help="server folder reused across invocations (table generated once)")
    parser.add_argument("--reader-only", action="store_true",
                        help="measure only the bare pymysql baselines, not s3rs sync")
    parser.add_argument("--buffer-pool-mb", type=int, default=1024,
                        help="InnoDB buffer pool of the server (default 1024: the table stays cached)")
    parser.add_argument("--table", default="settlement_normal_delivery_detail")
    parser.add_argument("--json-out", metavar="FILE", type=Path)
    opts = parser.parse_args()
    if opts.rows <= 0 or opts.repeat <= 0 or opts.batch_size <= 0:
        parser.error("--rows, --repeat and --batch-size must be positive")

    from s3rs_tui.sandbox.mariadb import start_mariadb

    base = opts.keep_server.resolve() if opts.keep_server else Path(tempfile.mkdtemp(prefix="s3rs-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="s3rs-bench-work-"))
    log(f"starting MariaDB in {base} ...")
    server = start_mariadb(base, buffer_pool_mb=opts.buffer_pool_mb, databases=(DATABASE,))
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    try:
        table_info = prepare_table(server, opts.table, opts.rows)
        env = machine(table_info)
        names = list(BASELINES) + ([] if opts.reader_only else [TOOL])
        log("warm-up: one untimed bare read (buffer pool and page cache)")
        try:
            measure_baseline("bare pymysql no decoders", server, opts.table, opts.rows, work)
        except MeasureError as exc:
            raise SystemExit(f"warm-up read failed: {exc}") from None
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for index in range(opts.repeat):
            for name in names:  # interleaved, so drift of the machine hits every reader alike
                if name in errors:
                    continue
                try:
                    if name == TOOL:
                        run = measure_tool(server, opts.table, opts.rows, opts.batch_size, work, index)
                    else:
                        run = measure_baseline(name, server, opts.table, opts.rows, work)
                except MeasureError as exc:
                    errors[name] = str(exc)
                    log(f"{name}: FAILED")
                    continue
                runs[name].append(run)
                rate = run["rows"] / run["seconds"] * 60
                log(f"run {index + 1}/{opts.repeat} {name}: {run['seconds']:.2f}s, {rate:,.0f} rows/min,"
                    f" peak RSS {run['peak_rss_mb']:.0f} MB")
        results = {name: summarize(r) for name, r in runs.items() if r}
    finally:
        log("stopping MariaDB")
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if not opts.keep_server:
            shutil.rmtree(base, ignore_errors=True)

    params = {"rows": opts.rows, "batch_size": opts.batch_size, "repeat": opts.repeat,
              "buffer_pool_mb": opts.buffer_pool_mb, "table": f"{DATABASE}.{opts.table}",
              "fetchmany": FETCH_ROWS, **{k: table_info[k] for k in
                                          ("data_mb", "index_mb", "avg_row_length", "generated_seconds")}}
    report(results, env, params, errors)
    if opts.json_out:
        opts.json_out.write_text(json.dumps({"machine": env, "parameters": params, "results": results,
                                             "errors": errors}, indent=2, default=str) + "\n")
        log(f"figures written to {opts.json_out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
