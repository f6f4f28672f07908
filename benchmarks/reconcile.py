"""What `s3rs reconcile` costs next to `s3rs verify`, on the benchmark table, in one run.

    .venv/bin/python benchmarks/reconcile.py --rows 2000000 --changes 1000 [--warehouse postgres|none|both]
        [--keep-server DIR] [--seed 0] [--chunk-size 100000] [--json-out FILE]

1. Starts a throwaway MariaDB (in --keep-server DIR the generated table is kept between invocations)
   and, for --warehouse postgres or both, a throwaway PostgreSQL, both on 127.0.0.1; creates the
   benchmark table as benchmarks/throughput.py does (sample_data: the shape of
   settlement_normal_delivery_detail).
2. `s3rs sync` stores it in a local folder (and loads it into PostgreSQL): not timed. With both, a
   second store without a warehouse is synced too (reconcile then compares with the store alone).
3. Changes it behind the cursor, at random keys: --changes deletes, --changes updates that leave
   update_at alone, --changes inserts behind the watermark (copies of old rows under new ids).
4. Times, each as a fresh child process (wall seconds; peak RSS from wait4, see throughput.py):
   `s3rs verify` (PostgreSQL only; it differs), `s3rs reconcile`, then `s3rs verify` again (it must
   agree). Checks that reconcile found exactly the 3 x --changes keys.
5. Prints the figures (reconcile/verify ratio, peak RSS, rows checksummed per minute) as JSON and
   as a table; --json-out writes the JSON. Stops everything it started.
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import AWS_ENV, Bench, last_json_object, log, prepare_table, tail, time_child


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1_000, help="rows deleted, updated, inserted (each)")
    parser.add_argument("--warehouse", choices=("postgres", "none", "both"), default="postgres",
                        help="reconcile against PostgreSQL, the store alone, or each in turn")
    parser.add_argument("--seed", type=int, default=0, help="data seed (0: the original table)")
    parser.add_argument("--chunk-size", type=int, default=100_000, help="keys per compared range")
    parser.add_argument("--keep-server", metavar="DIR", type=Path,
                        help="MariaDB's folder, reused across invocations (table generated once)")
    parser.add_argument("--buffer-pool-mb", type=int, default=1024)
    parser.add_argument("--database", default="bench")
    parser.add_argument("--table", default="settlement_normal_delivery_detail")
    parser.add_argument("--json-out", metavar="FILE", type=Path)
    return parser.parse_args()


def change(bench: Bench, count: int, seed: int) -> dict[str, list[int]]:
    """Deletes, updates that leave update_at alone, and inserts of old rows under new ids."""
    rng = random.Random(seed)
    table = f"`{bench.database}`.`{bench.table}`"
    with pymysql.connect(**bench.mysql, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT MAX(id) FROM {table}")
        top = int(cur.fetchone()[0])
        picked = rng.sample(range(1, top + 1), 2 * count)
        deleted, updated = sorted(picked[:count]), sorted(picked[count:])
        inserted = sorted(rng.sample(range(top + 1, 2 * top), count))
        cur.execute(f"DELETE FROM {table} WHERE id IN ({', '.join(map(str, deleted))})")
        cur.execute(f"UPDATE {table} SET remark = CONCAT('fixed by hand ', id), update_at = update_at "
                    f"WHERE id IN ({', '.join(map(str, updated))})")
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
                    "TABLE_NAME = %s AND COLUMN_NAME <> 'id' ORDER BY ORDINAL_POSITION",
                    (bench.database, bench.table))
        columns = ", ".join(f"`{name}`" for (name,) in cur.fetchall())
        gone = set(deleted)
        sources = [x for x in rng.sample(range(1, top + 1), 2 * count) if x not in gone][:count]
        for new, source in zip(inserted, sources, strict=True):  # an old row's values, cursor too
            cur.execute(f"INSERT INTO {table} (id, {columns}) SELECT %s, {columns} FROM {table} "
                        "WHERE id = %s", (new, source))
        # the next run regenerates the table rather than reuse a changed one (same row count)
        cur.execute(f"ALTER TABLE {table} COMMENT = 'changed by benchmarks/reconcile.py'")
    return {"deleted": deleted, "updated": updated, "inserted": inserted}


def s3rs(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "s3rs_tui", "--config", str(config), *args]


def run_checked(command: list[str], work: Path, env: dict, want: tuple[int, ...] = (0,)) -> dict:
    result = time_child(command, work, env)
    if result["returncode"] not in want:
        raise SystemExit(f"{' '.join(command[3:])} exited {result['returncode']}:\n{tail(result['stderr'])}")
    log(f"{' '.join(command[5:])}: {result['seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MB")
    return result


def main() -> int:
    opts = parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, lambda signum, frame: sys.exit(128 + signum))
    from s3rs_tui.sandbox.mariadb import start_mariadb
    from s3rs_tui.sandbox.postgres import start_postgres

    work = Path(tempfile.mkdtemp(prefix="s3rs-bench-reconcile-"))
    base = opts.keep_server.resolve() if opts.keep_server else work / "mariadb"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("S3RS_", "S3_"))},
           **AWS_ENV, "S3RS_STATE_DIR": str(work / "state"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}  # this checkout's s3rs
    mariadb = postgres = None
    try:
        base.mkdir(parents=True, exist_ok=True)
        log(f"starting MariaDB in {base} ...")
        mariadb = start_mariadb(base, buffer_pool_mb=opts.buffer_pool_mb, databases=(opts.database,))
        bench = Bench(mariadb.connect_args(), opts.database, opts.table, opts.rows, 50_000, work, env)
        table_info = prepare_table(bench, opts.seed)
        warehouse = ""
        sides = ["postgres", "none"] if opts.warehouse == "both" else [opts.warehouse]
        if "postgres" in sides:
            log("starting PostgreSQL ...")
            postgres = start_postgres()
            args = postgres.connect_args()
            import psycopg2

            admin = psycopg2.connect(**args)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("CREATE DATABASE bench")
            admin.close()
            warehouse = (f'[warehouse]\nkind = "postgres"\nhost = "127.0.0.1"\nport = {args["port"]}\n'
                         f'database = "bench"\nuser = "{args["user"]}"\npassword = "{args["password"]}"\n')
        m, q = bench.mysql, json.dumps
        configs = {}
        for side in sides:
            config = work / f"s3rs-{side}.toml"
            config.write_text(f"[mysql]\nhost = {q(m['host'])}\nport = {m['port']}\nuser = {q(m['user'])}\n"
                              f"password = {q(m['password'])}\ndatabase = {q(opts.database)}\n\n"
                              f"[s3]\nlocal_path = {q(str(work / f'store-{side}'))}\n\n"
                              "[backup]\nsafety_lag_seconds = 0\n\n"
                              + (warehouse if side == "postgres" else ""))
            config.chmod(0o600)
            configs[side] = config
        name = f"{opts.database}.{opts.table}"
        chunk = ["--chunk-size", str(opts.chunk_size)]
        for config in configs.values():
            run_checked(s3rs(config, "sync", "-t", name, "--no-ui", "--quiet"), work, env)
        changed = change(bench, opts.changes, opts.seed + 1)
        figures: dict = {"rows": opts.rows, "changes": opts.changes, "warehouse": opts.warehouse,
                         "chunk_size": opts.chunk_size, "table": table_info}
        expected = (len(changed["updated"]) + len(changed["inserted"]), len(changed["deleted"]))
        lines = []
        for side, config in configs.items():
            against = "PostgreSQL" if side == "postgres" else "the store alone"
            if side == "postgres":
                before = run_checked(s3rs(config, "verify", "-t", name, "-q", *chunk), work, env, want=(1,))
                figures["verify_differing_seconds"] = before["seconds"]
                figures["verify_peak_rss_mb"] = before["peak_rss_mb"]
                lines.append(("verify (differs)", before, None))
            command = s3rs(config, "reconcile", "-t", name, "--no-ui", "--json", *chunk)
            result = run_checked(command, work, env)
            found = last_json_object(result["stdout"])["tables"][0]
            if (found["fixed"], found["deleted"]) != expected:
                raise SystemExit(f"reconcile found {found['fixed']} to re-read and {found['deleted']} "
                                 f"deleted, expected {expected}:\n{tail(result['stderr'])}")
            prefix = "" if side == "postgres" else "store_"
            figures.update({f"{prefix}reconcile_seconds": result["seconds"],
                            f"{prefix}reconcile_peak_rss_mb": result["peak_rss_mb"],
                            "rows_checked": found["rows_checked"],
                            f"{prefix}rows_per_minute": found["rows_checked"] / result["seconds"] * 60})
            lines.append((f"reconcile against {against}", result, found["rows_checked"]))
            if side == "postgres":
                after = run_checked(s3rs(config, "verify", "-t", name, "-q", *chunk), work, env)
                figures["verify_seconds"] = after["seconds"]
                figures["reconcile_to_verify"] = result["seconds"] / after["seconds"]
                lines.append(("verify (agrees)", after, found["rows_checked"]))
        verify_seconds = figures.get("verify_seconds")
        print(f"| {opts.rows:,} rows, {opts.changes:,} x 3 changes | seconds | x verify | peak RSS "
              "| rows/min |")
        print("|---|---|---|---|---|")
        for label, timed, rows in lines:
            ratio = f"{timed['seconds'] / verify_seconds:.2f}" if verify_seconds else "-"
            per_minute = f"{rows / timed['seconds'] * 60 / 1e6:.2f}M" if rows else "-"
            print(f"| {label} | {timed['seconds']:.1f} | {ratio} | {timed['peak_rss_mb']:.0f} MB "
                  f"| {per_minute} |")
        print(json.dumps(figures, indent=2))
        if opts.json_out:
            opts.json_out.write_text(json.dumps(figures, indent=2))
    finally:
        if postgres:
            postgres.stop()
        if mariadb:
            mariadb.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
