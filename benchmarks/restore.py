"""Throughput and memory of `s3rs restore`: the benchmark table backed up once, then restored into
MariaDB (LOAD DATA LOCAL INFILE, and multi-row INSERTs) and into Parquet files, each run timed;
and the server's own ceiling for the same rows: a plain LOAD DATA LOCAL INFILE by its client.

    .venv/bin/python benchmarks/restore.py --rows 2000000 --repeat 3 [--keep-server DIR]
        [--only baseline,load-data,insert,parquet] [--batch-size 50000] [--memory-mb M]
        [--json-out FILE]

1. Starts a throwaway MariaDB (or reuses --keep-server DIR) and creates the benchmark table of
   benchmarks/throughput.py (the shape of settlement_normal_delivery_detail) with --rows rows.
2. `s3rs sync` backs it up once into a local folder store (timed, not measured).
3. Each line, --repeat times, interleaved: a fresh child `s3rs restore ... --json` (wall seconds and
   peak RSS from os.wait4, as in throughput.py), checked: exit 0, the rows it reports equal the
   table's, and for MySQL targets CHECKSUM TABLE of the restored table equals the source's (same
   definition, same rows). The target is dropped before each run. The baseline line: the source's
   rows written once by the server (SELECT ... INTO OUTFILE, not timed) are loaded by `mariadb
   --local-infile` into `CREATE TABLE ... LIKE` the source (same indexes), checked the same way:
   what the server itself takes to load these rows, the bound of any restore into it.
4. Prints per line the medians of rows/min, seconds and peak RSS. Stops what it started.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from throughput import AWS_ENV, ROOT, Bench, last_json_object, log, prepare_table, tail, time_child

BASELINE = "baseline"
LINES = {
    BASELINE: ("plain LOAD DATA LOCAL INFILE (the mariadb client)", None),
    "load-data": ("restore into MariaDB, LOAD DATA LOCAL INFILE", []),
    "insert": ("restore into MariaDB, multi-row INSERTs", ["--insert"]),
    "parquet": ("restore to Parquet files (--to-parquet)", None),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(LINES), help=f"comma-separated: {', '.join(LINES)}")
    parser.add_argument("--batch-size", type=int, default=50_000, help="s3rs restore --batch-size")
    parser.add_argument("--memory-mb", type=int, help="s3rs restore --memory-mb (DuckDB; default: its own)")
    parser.add_argument("--keep-server", metavar="DIR", type=Path,
                        help="throwaway server's folder, reused across invocations (table generated once)")
    parser.add_argument("--buffer-pool-mb", type=int, default=1024)
    parser.add_argument("--json-out", metavar="FILE", type=Path)
    opts = parser.parse_args()
    opts.only = [name.strip() for name in opts.only.split(",") if name.strip()]
    unknown = [name for name in opts.only if name not in LINES]
    if unknown or opts.rows <= 0 or opts.repeat <= 0:
        parser.error(f"--only takes {', '.join(LINES)}; --rows and --repeat must be positive")
    return opts


def checksum(bench: Bench, table: str) -> int:
    import pymysql

    with pymysql.connect(**bench.mysql, database=bench.database) as conn, conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE `{table}`")
        return int(cur.fetchone()[1])


def drop(bench: Bench, table: str) -> None:
    import pymysql

    with pymysql.connect(**bench.mysql, database=bench.database, autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")


def export(bench: Bench, path: Path) -> None:
    """The source's rows as the server writes them for LOAD DATA (tab-separated, \\N for NULL)."""
    import pymysql

    with pymysql.connect(**bench.mysql, database=bench.database) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{bench.table}` INTO OUTFILE %s CHARACTER SET utf8mb4", [str(path)])


def baseline(bench: Bench, target: str, path: Path, work: Path, env: dict[str, str]) -> dict:
    """`mariadb --local-infile` loading the exported rows into an empty copy of the source."""
    import pymysql

    with pymysql.connect(**bench.mysql, database=bench.database, autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{target}` LIKE `{bench.table}`")
    m = bench.mysql
    sql = f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE `{target}` CHARACTER SET utf8mb4"
    command = [shutil.which("mariadb") or "mariadb", "--no-defaults", "--local-infile=1",
               f"--host={m['host']}", f"--port={m['port']}", f"--user={m['user']}",
               f"--database={bench.database}", "-e", sql]
    result = time_child(command, work, {**env, "MYSQL_PWD": m["password"]})
    with pymysql.connect(**bench.mysql, database=bench.database) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{target}`")
        result["stdout"] = json.dumps({"rows": cur.fetchone()[0]})
    return result


def main() -> int:
    opts = parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, lambda signum, frame: sys.exit(128 + signum))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3RS_", "BACKUP_", "S3_"))}
    env.update(AWS_ENV)
    work = Path(tempfile.mkdtemp(prefix="s3rs-restore-bench-"))
    base = opts.keep_server.resolve() if opts.keep_server else work / "mariadb"
    server, runs, errors = None, {name: [] for name in opts.only}, {}
    try:
        from s3rs_tui.sandbox.mariadb import start_mariadb

        base.mkdir(parents=True, exist_ok=True)
        log(f"starting MariaDB in {base} ...")
        server = start_mariadb(base, buffer_pool_mb=opts.buffer_pool_mb, databases=("bench",))
        bench = Bench(server.connect_args(), "bench", "settlement_normal_delivery_detail", opts.rows, 50_000,
                      work, env)
        prepare_table(bench, opts.seed)
        q, m = json.dumps, bench.mysql
        config = work / "s3rs.toml"
        config.write_text(f"[mysql]\nhost = {q(m['host'])}\nport = {m['port']}\nuser = {q(m['user'])}\n"
                          f"password = {q(m['password'])}\ndatabase = \"bench\"\n\n[s3]\n"
                          f"local_path = {q(str(work / 'store'))}\n\n[backup]\nsafety_lag_seconds = 0\n")
        config.chmod(0o600)  # it holds a password
        base_command = [sys.executable, "-m", "s3rs_tui", "--config", str(config)]
        # The children run this checkout's s3rs, whatever the virtual environment has installed.
        child_env = {**env, "S3RS_STATE_DIR": str(work / "state"), "PYTHONPATH": str(ROOT)}
        log("backing the table up once (s3rs sync) ...")
        synced = time_child([*base_command, "sync", "-t", f"bench.{bench.table}", "--no-ui", "--json"], work,
                            child_env)
        if synced["returncode"]:
            raise SystemExit(f"the sync failed:\n{tail(synced['stderr'])}")
        log(f"synced in {synced['seconds']:.1f}s")
        source_sum = checksum(bench, bench.table)
        target = "restored"
        exported = work / "baseline.tsv"
        if BASELINE in opts.only:
            export(bench, exported)
        for index in range(opts.repeat):
            for name in opts.only:
                if name in errors:
                    continue
                drop(bench, target)
                folder = work / f"parquet-{index}"
                extra = LINES[name][1]
                where = ["--to-parquet", str(folder)] if extra is None else \
                    ["--into", f"bench.{target}", *extra]
                sizes = ["--batch-size", str(opts.batch_size)]
                if opts.memory_mb:
                    sizes += ["--memory-mb", str(opts.memory_mb)]
                if name == BASELINE:
                    result = baseline(bench, target, exported, work, env)
                else:
                    result = time_child([*base_command, "restore", "-t", f"bench.{bench.table}", *where,
                                         "--json", *sizes], work, child_env)
                shutil.rmtree(folder, ignore_errors=True)
                rows = last_json_object(result["stdout"]).get("rows")
                into_mysql = extra is not None or name == BASELINE
                problem = (f"exited with {result['returncode']}" if result["returncode"] else
                           f"rows = {rows}, expected {opts.rows}" if rows != opts.rows else
                           "CHECKSUM TABLE differs from the source's"
                           if into_mysql and checksum(bench, target) != source_sum else "")
                if problem:
                    errors[name] = f"{problem}; stderr tail:\n{tail(result['stderr'])}"
                    log(f"{name}: FAILED: {errors[name]}")
                    continue
                runs[name].append(result)
                log(f"run {index + 1}/{opts.repeat} {name}: {result['seconds']:.2f}s, "
                    f"{opts.rows / result['seconds'] * 60:,.0f} rows/min, "
                    f"peak RSS {result['peak_rss_mb']:.0f} MB")
        drop(bench, target)
    finally:
        if server:
            log("stopping MariaDB")
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    results = {}
    print(f"{'line':10} {'what':48} {'rows/min':>12} {'seconds':>8} {'peak RSS MB':>12}")
    for name, measured in runs.items():
        if not measured:
            print(f"{name:10} {LINES[name][0]:48} failed")
            continue
        seconds = statistics.median(r["seconds"] for r in measured)
        rss = statistics.median(r["peak_rss_mb"] for r in measured)
        results[name] = {"median_seconds": seconds, "median_rows_per_min": opts.rows / seconds * 60,
                         "median_peak_rss_mb": rss, "seconds": [r["seconds"] for r in measured],
                         "peak_rss_mb": [r["peak_rss_mb"] for r in measured]}
        rate = opts.rows / seconds * 60
        print(f"{name:10} {LINES[name][0]:48} {rate:>12,.0f} {seconds:>8.2f} {rss:>12.0f}")
    if opts.json_out:
        document = {"rows": opts.rows, "results": results, "errors": errors}
        opts.json_out.write_text(json.dumps(document, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
