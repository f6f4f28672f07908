"""Throughput of `s3rs sync` next to its neighbours, for the same rows, in one run.

    .venv/bin/python benchmarks/throughput.py --rows 2000000 --repeat 3 [--seed 0] [--batch-size 50000]
        [--keep-server DIR | --mysql HOST:PORT --mysql-user U --mysql-password P --database DB]
        [--only ceiling,pymysql,s3rs-pymysql,...] [--json-out FILE]

The `-k2` lines sync `<table>_k2`: the same rows with a two-column primary key
(warehouse_code, id) and the keyset index (update_at, warehouse_code, id), against the one-column
key (id) of the `s3rs-pymysql` / `s3rs-connectorx` lines.

1. MariaDB: starts a throwaway server (s3rs_tui.sandbox.mariadb) on 127.0.0.1 in a temporary folder,
   or in --keep-server DIR so the generated table is kept between invocations (the server itself is
   stopped every run); or, with --mysql HOST:PORT, uses that server as it is.
2. Creates the benchmark table (s3rs_tui.sandbox.sample_data: the shape of
   settlement_normal_delivery_detail, --rows rows from --seed) in --database, unless it already holds
   exactly those rows (same count and seed, recorded in the table comment).
3. When a selected line stores to S3, starts a moto S3 server on 127.0.0.1 (a free port) and creates a
   bucket; every run writes under its own prefix, which is emptied after the run.
4. For the load lines: stores the table once (untimed `s3rs sync` to a local folder, the fast reader
   when installed) and starts a throwaway PostgreSQL (s3rs_tui.sandbox.postgres) for the PostgreSQL
   ones; each load run gets a fresh DuckDB file or PostgreSQL database, dropped afterwards.
5. Measures every selected line (MEASUREMENTS below), --repeat times, interleaved so that drift of the
   machine hits every line alike. Each run is one fresh child process in a fresh folder, timed by
   `time_child` (wall seconds; peak RSS and CPU seconds from os.wait4's rusage; the throwaway server's
   CPU seconds from /proc), and checked: exit code 0, and the rows it reports or stored equal the
   table's.
6. Prints, per line, the medians over the repeats of rows/min, seconds, peak RSS and CPU seconds of the
   line and of the server (on a machine of few cores their sum bounds the wall time: seconds >=
   (CPU s + server CPU s) / cores), and the ratio of its rows/min to the ceiling's; then the Parquet
   writer's choices, each measured alone (ENCODING);
   --json-out writes every figure as JSON. Stops everything it started.
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FETCH_ROWS = 10_000
# The S3 server and every child get these; the metadata address is never probed (127.0.0.1 only).
AWS_ENV = {"AWS_ACCESS_KEY_ID": "s3rsbench", "AWS_SECRET_ACCESS_KEY": "s3rsbenchsecret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

# Forks and times one command, then writes "seconds peak-RSS-KB exit-code" to the file argv[1].
LAUNCHER = """
import os, sys, time
report, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(report, "w") as f:
    cpu = usage.ru_utime + usage.ru_stime
    f.write(f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu}")
"""

# Bare pymysql: read the whole table unbuffered, drop the rows, print the count.
CHILD_PYMYSQL = """
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
        chunk = cur.fetchmany(FETCH_ROWS)
        if not chunk:
            break
        rows += len(chunk)
conn.close()
print(json.dumps({"rows": rows}))
""".replace("FETCH_ROWS", str(FETCH_ROWS))

# dlt: sql_table with the pyarrow backend, to a filesystem destination as Parquet (rows counted after).
CHILD_DLT = """
import sys
from pathlib import Path
import dlt, sqlalchemy
from dlt.sources.sql_database import sql_table
host, port, user, password, database, table, batch, out = sys.argv[1:9]
url = sqlalchemy.engine.URL.create("mysql+pymysql", username=user, password=password, host=host,
                                   port=int(port), database=database, query={"charset": "utf8mb4"})
source = sql_table(credentials=sqlalchemy.create_engine(url), table=table, backend="pyarrow",
                   chunk_size=int(batch))
pipeline = dlt.pipeline(pipeline_name="bench", dataset_name="bench",
                        pipelines_dir=str(Path(out, "pipelines")),
                        destination=dlt.destinations.filesystem(Path(out, "store").as_uri()))
pipeline.run(source, loader_file_format="parquet")
"""


class MeasureError(RuntimeError):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines()[-lines:]) or "    (empty)"


def time_child(command: list[str], cwd: Path, env: dict[str, str], stdout_to_devnull: bool = False) -> dict:
    """Run one child to completion: wall seconds, peak RSS (MB, from wait4), exit code, its output.

    Linux carries the forking process's high-water RSS into a child across fork and exec, so a child
    forked from this (large) process would report at least our size. The child is therefore forked by
    LAUNCHER, a bare interpreter of about 7 MB (the floor of every peak RSS here), which times it and
    reads its rusage with os.wait4. Launcher and child get their own process group, killed whole if we
    are interrupted while they run."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", prefix="s3rs-bench-") as timing:
        launcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, timing.name, *command],
                                    cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL if stdout_to_devnull else out, stderr=err,
                                    start_new_session=True)
        try:
            launcher.wait()
        except BaseException:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            raise
        measured = timing.read().split()
        if launcher.returncode or len(measured) != 4:
            raise MeasureError(f"the launcher failed (exit {launcher.returncode}) for {command[0]}")
        out.seek(0)
        err.seek(0)
        return {"seconds": float(measured[0]), "peak_rss_mb": int(measured[1]) / 1024,  # KB on Linux
                "returncode": int(measured[2]), "cpu_seconds": float(measured[3]),
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def last_json_object(text: str) -> dict:
    """The JSON summary a command printed: the whole output, else its last line that parses."""
    candidates = [text.strip()] + [line.strip() for line in reversed(text.strip().splitlines())]
    for candidate in candidates:
        if candidate.startswith("{"):
            try:
                return json.loads(candidate)
            except ValueError:
                continue
    return {}


@dataclass
class S3Server:
    """A moto S3 server of ours on 127.0.0.1, with one bucket."""
    process: subprocess.Popen
    endpoint: str
    bucket: str
    client: object

    @classmethod
    def start(cls, folder: Path, env: dict[str, str]) -> "S3Server":
        import boto3

        from s3rs_tui.sandbox.mariadb import free_port

        port = free_port()
        with open(folder / "moto.log", "wb") as server_log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env=env, stdin=subprocess.DEVNULL, stdout=server_log, stderr=server_log,
                start_new_session=True)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name=AWS_ENV["AWS_DEFAULT_REGION"],
                              aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])
        server = cls(process, endpoint, "s3rs-bench", client)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=server.bucket)
                return server
            except Exception:  # noqa: BLE001 - not up yet, whatever the error
                if time.monotonic() > deadline or process.poll() is not None:
                    server.stop()
                    raise MeasureError(f"moto S3 server did not start (see {folder / 'moto.log'})") from None
                time.sleep(0.2)

    def objects(self, prefix: str) -> list[dict]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item for page in pages for item in page.get("Contents", [])]

    def delete(self, prefix: str) -> None:
        keys = [{"Key": item["Key"]} for item in self.objects(prefix)]
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys[start:start + 1000]})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Bench:
    """What every run needs: where the rows are, the run parameters, the S3 server, the environment."""
    mysql: dict  # host, port, user, password
    database: str
    table: str
    rows: int
    batch_size: int
    work: Path
    env: dict[str, str]
    s3: S3Server | None = None
    stored: Path | None = None  # a local folder store holding the whole table, for the load lines
    pg: object = None           # the throwaway PostgreSQL server, for the PostgreSQL load lines
    server_pid: int | None = None  # the throwaway MariaDB's, whose CPU time each line reports


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a running process so far (/proc/<pid>/stat), None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


@dataclass
class Child:
    """One timed run: its command, and how to tell what it did (a dict with "rows", maybe more)."""
    command: list[str]
    figures: Callable[[str], dict]  # from its stdout (and its store) once it has exited 0
    env: dict[str, str] = field(default_factory=dict)
    stdout_to_devnull: bool = False
    cleanup: Callable[[], None] = lambda: None  # after the run, whatever happened


# ---- stores: what a run wrote (files, MB, and rows where the Parquet footers tell) ----

def local_output(store: Path) -> dict:
    import pyarrow.parquet as pq

    files = [p for p in store.rglob("*") if p.is_file()]
    parquet = [p for p in files if p.suffix == ".parquet"]
    return {"parquet_files": len(parquet), "store_mb": sum(p.stat().st_size for p in files) / 2**20,
            "stored_rows": sum(pq.ParquetFile(p).metadata.num_rows for p in parquet)}


def s3_output(server: S3Server, prefix: str) -> dict:
    """What the run stored under its prefix; then empties the prefix (moto keeps objects in memory)."""
    objects = server.objects(prefix)
    server.delete(prefix)
    return {"parquet_files": sum(o["Key"].endswith(".parquet") for o in objects),
            "store_mb": sum(o["Size"] for o in objects) / 2**20}


# ---- the lines of the table: how to run each ----

def ceiling(bench: Bench, run_dir: Path, order: str = "") -> Child:
    """The server's own client reading every row, in the table's order or (`order`) in another."""
    m = bench.mysql
    query = f"SELECT * FROM `{bench.table}`" + (f" ORDER BY {order}" if order else "")
    command = [shutil.which("mariadb"), "--no-defaults", "--batch", "--quick",
               "--default-character-set=utf8mb4", f"--host={m['host']}", f"--port={m['port']}",
               f"--user={m['user']}", f"--database={bench.database}", "-e", query]
    # Its TSV goes to /dev/null: nothing to count; exit 0 after --quick streamed the whole result.
    return Child(command, lambda stdout: {"rows": bench.rows}, env={"MYSQL_PWD": m["password"]},
                 stdout_to_devnull=True)


def bare_pymysql(conv: str, bench: Bench, run_dir: Path) -> Child:
    m = bench.mysql
    command = [sys.executable, "-c", CHILD_PYMYSQL, m["host"], str(m["port"]), m["user"], m["password"],
               bench.database, bench.table, conv]
    return Child(command, lambda stdout: {"rows": last_json_object(stdout).get("rows")})


def s3rs_sync(reader: str, to_s3: bool, bench: Bench, run_dir: Path, table_suffix: str = "",
              parallel: int | None = None) -> Child:
    """`s3rs sync` of the table; with `parallel`, `s3rs progressive --parallel N` instead, in one
    chunk (the ranges share it), then the chunk that finds nothing after the collapse."""
    q, m = json.dumps, bench.mysql  # a JSON string is a TOML basic string
    if to_s3:
        prefix = f"{run_dir.name}-{uuid.uuid4().hex[:8]}/"  # a fresh prefix for every run
        store_settings = (f"bucket = {q(bench.s3.bucket)}\nendpoint_url = {q(bench.s3.endpoint)}\n"
                          f"prefix = {q(prefix)}\n")
        output = partial(s3_output, bench.s3, prefix)
    else:
        store = run_dir / "store"
        store_settings = f"local_path = {q(str(store))}\n"
        output = partial(local_output, store)
    config = run_dir / "s3rs.toml"
    config.write_text(
        f"[mysql]\nhost = {q(m['host'])}\nport = {m['port']}\nuser = {q(m['user'])}\n"
        f"password = {q(m['password'])}\ndatabase = {q(bench.database)}\n\n[s3]\n{store_settings}\n"
        f"[backup]\nreader = {q(reader)}\nsafety_lag_seconds = 0\n")
    table = f"{bench.database}.{bench.table}{table_suffix}"
    command = [sys.executable, "-m", "s3rs_tui", "--config", str(config), "sync", "-t", table, "--no-ui",
               "--json", "--batch-size", str(bench.batch_size)]
    if parallel is not None:
        config.write_text(config.read_text() + f"batch_size = {bench.batch_size}\n")
        command = [*command[:5], "progressive", table, "--no-ui", "--json", "--parallel", str(parallel),
                   "--chunk-size", str(2 * bench.rows)]

    def figures(stdout: str) -> dict:
        return {"rows": last_json_object(stdout).get("rows"), **output()}

    return Child(command, figures, env={"S3RS_STATE_DIR": str(run_dir / "state")})


def dlt_pyarrow(bench: Bench, run_dir: Path) -> Child:
    m = bench.mysql
    command = [sys.executable, "-c", CHILD_DLT, m["host"], str(m["port"]), m["user"], m["password"],
               bench.database, bench.table, str(bench.batch_size), str(run_dir)]

    def figures(stdout: str) -> dict:
        stored = local_output(run_dir / "store")
        return {"rows": stored["stored_rows"], **stored}

    # No telemetry (127.0.0.1 only), and dlt's own folders inside the run's.
    return Child(command, figures,
                 env={"RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(run_dir / "dlt")})


def load_config(bench: Bench, run_dir: Path, warehouse: str) -> Path:
    """A config reading bench.stored (the stored table) and loading into `warehouse` (a TOML section)."""
    q, m = json.dumps, bench.mysql
    config = run_dir / "s3rs.toml"
    config.write_text(
        f"[mysql]\nhost = {q(m['host'])}\nport = {m['port']}\nuser = {q(m['user'])}\n"
        f"password = {q(m['password'])}\ndatabase = {q(bench.database)}\n\n"
        f"[s3]\nlocal_path = {q(str(bench.stored))}\n\n{warehouse}")
    return config


def load_command(bench: Bench, config: Path) -> list[str]:
    return [sys.executable, "-m", "s3rs_tui", "--config", str(config), "sync", "-t",
            f"{bench.database}.{bench.table}", "--load-only", "--no-ui", "--json"]


def loaded_rows(stdout: str) -> dict:
    return {"rows": sum(load.get("rows", 0) for load in last_json_object(stdout).get("loads", []))}


def duckdb_load(bench: Bench, run_dir: Path) -> Child:
    path = run_dir / "warehouse.duckdb"
    config = load_config(bench, run_dir, f'[warehouse]\nkind = "duckdb"\npath = {json.dumps(str(path))}\n')
    return Child(load_command(bench, config), loaded_rows, env={"S3RS_STATE_DIR": str(run_dir / "state")})


def postgres_load(merge: bool, bench: Bench, run_dir: Path) -> Child:
    """Into a fresh database; with `merge`, one that already holds every row (loaded untimed, then
    its ledger emptied), so every staged row goes through the delete-and-insert merge."""
    import psycopg2

    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**bench.pg.connect_args())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    args = bench.pg.connect_args(name)
    config = load_config(bench, run_dir, (
        f'[warehouse]\nkind = "postgres"\nhost = "{args["host"]}"\nport = {args["port"]}\n'
        f'database = "{name}"\nuser = "{args["user"]}"\npassword = "{args["password"]}"\n'))
    env = {"S3RS_STATE_DIR": str(run_dir / "state")}

    def drop() -> None:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()

    if merge:
        first = subprocess.run(load_command(bench, config), env={**bench.env, **env}, cwd=run_dir,
                               capture_output=True, text=True, check=False)
        if first.returncode:
            drop()
            raise MeasureError(f"the untimed first load failed:\n{tail(first.stderr)}")
        with psycopg2.connect(**args) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM public.s3rs_loaded_files")
        conn.close()
    return Child(load_command(bench, config), loaded_rows, env=env, cleanup=drop)


@dataclass(frozen=True)
class Measurement:
    label: str
    child: Callable[[Bench, Path], Child]
    needs: tuple[str, ...] = ()  # modules that must import (in a child), else the line is skipped
    s3: bool = False             # stores to the S3 server
    loads: str = ""              # loads the stored table into this warehouse kind


CX = ("connectorx",)
K2 = "_k2"  # the table with a two-column key
# The lines of the table, in print order; --only takes these names.
MEASUREMENTS = {
    "ceiling": Measurement("mariadb --batch --quick, TSV to /dev/null", ceiling),
    # The order every cursor-based reader must read in (s3rs's keyset pages): the index on the
    # cursor, then a primary key lookup per row, where the plain ceiling scans the primary key.
    "ceiling-ordered": Measurement("the same, ORDER BY update_at, id (s3rs's read order)",
                                   partial(ceiling, order="update_at, id")),
    "pymysql": Measurement("bare pymysql fetch, default converters", partial(bare_pymysql, "default")),
    "pymysql-nodecode": Measurement("bare pymysql fetch, no decoders", partial(bare_pymysql, "none")),
    "s3rs-pymysql": Measurement("s3rs sync, reader pymysql, local folder",
                                partial(s3rs_sync, "pymysql", False)),
    "s3rs-connectorx": Measurement("s3rs sync, reader connectorx, local folder",
                                   partial(s3rs_sync, "connectorx", False), needs=CX),
    "s3rs-pymysql-k2": Measurement("s3rs sync, reader pymysql, local folder, 2-column key",
                                   partial(s3rs_sync, "pymysql", False, table_suffix=K2)),
    "s3rs-connectorx-k2": Measurement("s3rs sync, reader connectorx, local folder, 2-column key",
                                      partial(s3rs_sync, "connectorx", False, table_suffix=K2), needs=CX),
    "s3rs-pymysql-s3": Measurement("s3rs sync, reader pymysql, S3 (moto)",
                                   partial(s3rs_sync, "pymysql", True), s3=True),
    "s3rs-connectorx-s3": Measurement("s3rs sync, reader connectorx, S3 (moto)",
                                      partial(s3rs_sync, "connectorx", True), needs=CX, s3=True),
    # A first backfill in 1, 2, 4 ranges, each read by a process of its own (progressive --parallel).
    **{f"s3rs-parallel-{n}": Measurement(f"s3rs progressive --parallel {n}, reader pymysql, local folder",
                                         partial(s3rs_sync, "pymysql", False, parallel=n))
       for n in (1, 2, 4)},
    "dlt": Measurement("dlt sql_table, pyarrow backend, local Parquet", dlt_pyarrow,
                       needs=("dlt", "sqlalchemy")),
    "load-duckdb": Measurement("s3rs load, stored files into empty DuckDB", duckdb_load, loads="duckdb"),
    "load-postgres": Measurement("s3rs load, stored files into empty PostgreSQL",
                                 partial(postgres_load, False), loads="postgres"),
    "load-postgres-merge": Measurement("s3rs load into PostgreSQL holding every row",
                                       partial(postgres_load, True), loads="postgres"),
}


def skip_reason(name: str) -> str | None:
    """Why a line cannot run here (None: it can)."""
    if name.startswith("ceiling") and not shutil.which("mariadb"):
        return "mariadb client not installed"
    if MEASUREMENTS[name].loads == "postgres" and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "PostgreSQL not installed"
    for module in MEASUREMENTS[name].needs:
        command = [sys.executable, "-c", f"import {module}"]
        if subprocess.run(command, capture_output=True, check=False).returncode:
            return f"{module} not installed"
    return None


def measure(name: str, bench: Bench, index: int) -> dict:
    """One run of one line in a fresh folder (removed afterwards); its figures, checked."""
    run_dir = bench.work / f"{name}-{index}"
    run_dir.mkdir(parents=True)
    child = None
    try:
        child = MEASUREMENTS[name].child(bench, run_dir)
        server_before = process_cpu_seconds(bench.server_pid)
        result = time_child(child.command, run_dir, {**bench.env, **child.env}, child.stdout_to_devnull)
        server_after = process_cpu_seconds(bench.server_pid)
        server_cpu = None if server_before is None or server_after is None else server_after - server_before
        if result["returncode"]:
            raise MeasureError(f"exited with {result['returncode']}; stderr tail:\n"
                               f"{tail(result['stderr'] or result['stdout'])}")
        figures = child.figures(result["stdout"])
        for key in ("rows", "stored_rows"):
            if key in figures and figures[key] != bench.rows:
                raise MeasureError(f"{key} = {figures[key]}, expected {bench.rows}; stderr tail:\n"
                                   f"{tail(result['stderr'])}")
        return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"],
                "cpu_seconds": result["cpu_seconds"], "server_cpu_seconds": server_cpu, **figures}
    finally:
        if child is not None:
            child.cleanup()
        shutil.rmtree(run_dir, ignore_errors=True)


def summarize(runs: list[dict]) -> dict:
    out = {"runs": len(runs), "median_seconds": statistics.median(r["seconds"] for r in runs),
           "median_rows_per_min": statistics.median(r["rows"] / r["seconds"] * 60 for r in runs),
           "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
           "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
           "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
           "median_server_cpu_seconds": (None if any(r["server_cpu_seconds"] is None for r in runs)
                                         else statistics.median(r["server_cpu_seconds"] for r in runs)),
           "seconds": [r["seconds"] for r in runs], "peak_rss_mb": [r["peak_rss_mb"] for r in runs]}
    if "store_mb" in runs[-1]:
        out.update(parquet_files=runs[-1]["parquet_files"], store_mb=runs[-1]["store_mb"])
    return out


# ---- the stored table (for the load lines) and the Parquet writer's choices ----

def store_table(bench: Bench) -> Path:
    """The whole table in a local folder store, by one untimed `s3rs sync` (the fast reader when
    installed): what the load lines load."""
    run_dir = bench.work / "stored"
    run_dir.mkdir()
    reader = "pymysql" if skip_reason("s3rs-connectorx") else "connectorx"
    log(f"storing the table once for the load lines (untimed, reader {reader}) ...")
    child = s3rs_sync(reader, False, bench, run_dir)
    result = subprocess.run(child.command, cwd=run_dir, env={**bench.env, **child.env}, capture_output=True,
                            text=True, check=False)
    if result.returncode:
        raise MeasureError(f"storing the table failed:\n{tail(result.stderr)}")
    return run_dir / "store"


ENCODE_ROW_GROUPS = 8  # row groups of the engine's size (64k rows) encoded per choice


def encoding_choices(store: Path) -> list[dict]:
    """CPU seconds and size of Parquet encoding of the first rows of a stored file, with pyarrow's
    defaults, with each of the engine's writer choices alone, and with all of them (what the engine
    writes): one thread, the best of three, so each choice's own cost shows."""
    import io

    import pyarrow.parquet as pq

    from s3rs_tui.engine.memory import MemoryBudget
    from s3rs_tui.engine.parquet import writer_options

    rows = MemoryBudget(1).row_group_rows
    first = next(store.rglob("*.parquet"))
    table = pq.read_table(first).slice(0, rows * ENCODE_ROW_GROUPS).combine_chunks()
    groups = [table.slice(start, rows) for start in range(0, table.num_rows, rows)]
    chosen = writer_options(groups[0])  # key and cursor statistics aside: the same choices
    defaults = {"compression": "zstd"}
    variants = [
        ("pyarrow defaults, zstd", defaults),
        ("dictionary only under 10% distinct", {**defaults, "use_dictionary": chosen["use_dictionary"]}),
        ("statistics on fixed-width columns only",
         {**defaults, "write_statistics": chosen["write_statistics"]}),
        ("zstd level -1", {**defaults, "compression_level": -1}),
        ("zstd level 3", {**defaults, "compression_level": 3}),
        ("all of the engine's choices (zstd 1)", chosen),
    ]
    out = []
    for label, options in variants:
        best, size = None, 0
        for _ in range(3):
            buffer = io.BytesIO()
            clock = time.process_time()
            writer = pq.ParquetWriter(buffer, table.schema, coerce_timestamps="us", **options)
            for group in groups:
                writer.write_table(group, row_group_size=group.num_rows)
            writer.close()
            seconds = time.process_time() - clock
            best, size = seconds if best is None else min(best, seconds), buffer.tell()
        out.append({"choice": label, "rows": table.num_rows, "cpu_seconds": best, "mb": size / 2**20})
    out[0]["dictionary_columns"] = chosen["use_dictionary"]
    out[0]["statistics_columns"] = chosen["write_statistics"]
    return out


def report_encoding(encoding: list[dict]) -> None:
    if not encoding:
        return
    base = encoding[0]
    print(f"\nParquet writer choices: {base['rows']:,} rows of the stored table encoded in one thread"
          " (best of 3)")
    header = f"{'choice':<42}{'CPU s':>8}{'vs defaults':>13}{'MB':>9}{'vs defaults':>13}"
    print(header)
    print("-" * len(header))
    for row in encoding:
        cpu, size = row["cpu_seconds"], row["mb"]
        print(f"{row['choice']:<42}{cpu:>8.3f}{cpu / base['cpu_seconds']:>12.2f}x"
              f"{size:>9.1f}{size / base['mb']:>12.2f}x")
    print(f"dictionary on: {', '.join(base['dictionary_columns'])}")
    print(f"statistics on: {', '.join(base['statistics_columns'])}")


# ---- the table ----

def prepare_table(bench: Bench, seed: int) -> dict:
    """Create the table with `rows` rows from `seed` unless it already holds exactly those."""
    import pymysql

    from s3rs_tui.sandbox.sample_data import create_settlement_table

    database, table, rows = bench.database, bench.table, bench.rows
    comment = f"s3rs benchmark: rows={rows} seed={seed}"
    with pymysql.connect(**bench.mysql, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        cur.execute("SELECT table_comment FROM information_schema.tables WHERE table_schema = %s"
                    " AND table_name = %s", (database, table))
        found = cur.fetchone()
        existing = None
        if found and found[0] == comment:
            cur.execute(f"SELECT COUNT(*) FROM `{database}`.`{table}`")
            existing = cur.fetchone()[0]
        generated = None
        if existing == rows:
            log(f"table {database}.{table} already holds {rows:,} rows of seed {seed}: reusing it")
        else:
            log(f"generating {rows:,} rows (seed {seed}) in {database}.{table} ...")
            start = time.perf_counter()

            def progress(done: int, total: int) -> None:
                log(f"  {done:,}/{total:,} rows ({time.perf_counter() - start:.1f}s)")

            create_settlement_table(conn, database, table, rows, progress=progress, seed=seed)
            cur.execute(f"ALTER TABLE `{database}`.`{table}` COMMENT = %s", (comment,))
            generated = time.perf_counter() - start
            log(f"generated in {generated:.1f}s")
        cur.execute("SELECT data_length, index_length, avg_row_length FROM information_schema.tables"
                    " WHERE table_schema = %s AND table_name = %s", (database, table))
        data_length, index_length, avg_row_length = cur.fetchone()
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    return {"generated_seconds": generated, "data_mb": data_length / 2**20, "index_mb": index_length / 2**20,
            "avg_row_length": avg_row_length, "mariadb_version": version}


def prepare_two_column_key_table(bench: Bench, seed: int) -> None:
    """`<table>_k2`: the benchmark table's rows under the primary key (warehouse_code, id), unless
    it already holds them."""
    import pymysql

    source, copy = f"`{bench.database}`.`{bench.table}`", f"`{bench.database}`.`{bench.table}{K2}`"
    comment = f"s3rs benchmark, two-column key: rows={bench.rows} seed={seed}"
    with pymysql.connect(**bench.mysql, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_comment FROM information_schema.tables WHERE table_schema = %s"
                    " AND table_name = %s", (bench.database, bench.table + K2))
        found = cur.fetchone()
        if found and found[0] == comment:
            log(f"table {bench.table}{K2} already holds the rows: reusing it")
            return
        log(f"copying the rows into {bench.table}{K2} (primary key (warehouse_code, id)) ...")
        start = time.perf_counter()
        cur.execute(f"DROP TABLE IF EXISTS {copy}")
        cur.execute(f"CREATE TABLE {copy} LIKE {source}")
        cur.execute(f"ALTER TABLE {copy} MODIFY `id` bigint(20) unsigned NOT NULL, DROP PRIMARY KEY, "
                    "DROP KEY `idx_update_at_id`, ADD PRIMARY KEY (`warehouse_code`, `id`), "
                    "ADD KEY `idx_update_at_key` (`update_at`, `warehouse_code`, `id`)")
        cur.execute(f"INSERT INTO {copy} SELECT * FROM {source}")
        cur.execute(f"ALTER TABLE {copy} COMMENT = %s", (comment,))
        log(f"copied in {time.perf_counter() - start:.1f}s")


def machine(mariadb_version: str) -> dict:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {"nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu": cpu, "mariadb": mariadb_version, "python": platform.python_version(),
            **{p: version(p) for p in ("pymysql", "pyarrow", "connectorx", "dlt", "moto")},
            "platform": platform.platform()}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(results: dict, skipped: dict, errors: dict, env: dict, params: dict) -> None:
    print()
    print(f"machine:    nproc {env['nproc']}, {env['cpu'] or 'unknown CPU'};"
          f" load average {params['load_before']} (start), {params['load_after']} (end)")
    print(f"            MariaDB {env['mariadb']}, Python {env['python']}, pymysql {env['pymysql']},"
          f" pyarrow {env['pyarrow']}, connectorx {env['connectorx']}, dlt {env['dlt']}")
    print(f"parameters: rows {params['rows']:,}, seed {params['seed']}, batch size {params['batch_size']:,},"
          f" repeat {params['repeat']} (medians), fetchmany {FETCH_ROWS:,}")
    print(f"table:      {params['table']}: data {params['data_mb']:.0f} MB,"
          f" index {params['index_mb']:.0f} MB, avg row {params['avg_row_length']} B")
    print()
    ceiling_rate = results.get("ceiling", {}).get("median_rows_per_min")
    ordered_rate = results.get("ceiling-ordered", {}).get("median_rows_per_min")
    what = max(len(measurement.label) for measurement in MEASUREMENTS.values()) + 2
    header = (f"{'line':<20}{'what':<{what}}{'rows/min':>13}{'seconds':>10}{'peak RSS MB':>13}"
              f"{'vs ceiling':>12}{'vs ordered':>12}{'CPU s':>8}{'server CPU s':>14}")
    print(header)
    print("-" * len(header))
    for name, measurement in MEASUREMENTS.items():
        if name not in params["only"]:
            continue
        start = f"{name:<20}{measurement.label:<{what}}"
        if name in results:
            figures = results[name]
            if ceiling_rate:
                figures["vs_ceiling"] = figures["median_rows_per_min"] / ceiling_rate
            ratio = f"{figures['vs_ceiling']:.2f}x" if ceiling_rate else "-"
            if ordered_rate:
                figures["vs_ordered_ceiling"] = figures["median_rows_per_min"] / ordered_rate
            ordered = f"{figures['vs_ordered_ceiling']:.2f}x" if ordered_rate else "-"
            server = figures["median_server_cpu_seconds"]
            print(f"{start}{figures['median_rows_per_min']:>13,.0f}{figures['median_seconds']:>10.2f}"
                  f"{figures['median_peak_rss_mb']:>13.0f}{ratio:>12}{ordered:>12}"
                  f"{figures['median_cpu_seconds']:>8.1f}"
                  f"{'-' if server is None else f'{server:.1f}':>14}")
        elif name in skipped:
            print(f"{start}  skipped: {skipped[name]}")
        else:
            print(f"{start}  FAILED")
    stored = [(name, f) for name, f in results.items() if "store_mb" in f]
    if stored:
        print("\nstored by the last run of each line:")
        for name, figures in stored:
            print(f"  {name:<20}{figures['parquet_files']} Parquet files, {figures['store_mb']:.1f} MB")
    for name, message in errors.items():
        print(f"\n{name} FAILED: {message}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="lines: " + ", ".join(MEASUREMENTS))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0, help="data seed (0: the original table)")
    parser.add_argument("--batch-size", type=int, default=50_000,
                        help="s3rs sync --batch-size; dlt chunk_size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", metavar="LIST", help="comma-separated lines to run (default: all)")
    parser.add_argument("--keep-server", metavar="DIR", type=Path,
                        help="throwaway server's folder, reused across invocations (table generated once)")
    parser.add_argument("--buffer-pool-mb", type=int, default=1024,
                        help="InnoDB buffer pool of the throwaway server (default 1024: the table stays"
                             " cached)")
    parser.add_argument("--mysql", metavar="HOST:PORT", help="use this server instead of a throwaway one")
    parser.add_argument("--mysql-user", default="root")
    parser.add_argument("--mysql-password", default="")
    parser.add_argument("--database", default="bench", help="where the table is created (default bench)")
    parser.add_argument("--table", default="settlement_normal_delivery_detail")
    parser.add_argument("--json-out", metavar="FILE", type=Path)
    opts = parser.parse_args()
    if opts.rows <= 0 or opts.repeat <= 0 or opts.batch_size <= 0:
        parser.error("--rows, --repeat and --batch-size must be positive")
    if opts.mysql and opts.keep_server:
        parser.error("--mysql and --keep-server exclude each other")
    if opts.mysql:
        host, _, port = opts.mysql.rpartition(":")
        if not host or not port.isdigit():
            parser.error("--mysql takes HOST:PORT")
        opts.mysql = {"host": host, "port": int(port), "user": opts.mysql_user,
                      "password": opts.mysql_password}
    only = {n.strip() for n in opts.only.split(",") if n.strip()} if opts.only else set(MEASUREMENTS)
    unknown = sorted(only - set(MEASUREMENTS))
    if unknown or not only:
        parser.error(f"--only: unknown line {', '.join(unknown)}; lines: {', '.join(MEASUREMENTS)}")
    opts.only = [name for name in MEASUREMENTS if name in only]  # in table order
    return opts


def main() -> int:
    opts = parse_args()
    # Ctrl+C (even when started with SIGINT ignored), SIGTERM and SIGHUP unwind through the finally
    # below, which stops everything this run started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, lambda signum, frame: sys.exit(128 + signum))
    load_before = load_average()
    os.environ.update(AWS_ENV)  # our own boto3 too
    # Children: our environment without s3rs settings that would override the generated config.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("S3RS_", "BACKUP_", "S3_"))}
    skipped = {name: reason for name in opts.only if (reason := skip_reason(name))}
    names = [name for name in opts.only if name not in skipped]
    for name, reason in skipped.items():
        log(f"{name}: skipped ({reason})")

    work = Path(tempfile.mkdtemp(prefix="s3rs-bench-work-"))
    base = None if opts.mysql else (opts.keep_server.resolve() if opts.keep_server
                                    else Path(tempfile.mkdtemp(prefix="s3rs-bench-")))
    server = None
    bench = None
    runs: dict[str, list[dict]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    encoding: list[dict] = []
    try:
        if opts.mysql:
            mysql = opts.mysql
        else:
            from s3rs_tui.sandbox.mariadb import start_mariadb

            base.mkdir(parents=True, exist_ok=True)
            log(f"starting MariaDB in {base} ...")
            server = start_mariadb(base, buffer_pool_mb=opts.buffer_pool_mb, databases=(opts.database,))
            mysql = server.connect_args()
        bench = Bench(mysql, opts.database, opts.table, opts.rows, opts.batch_size, work, env,
                      server_pid=server.pid if server else None)
        table_info = prepare_table(bench, opts.seed)
        if any(name.endswith("-k2") for name in names):
            prepare_two_column_key_table(bench, opts.seed)
        if any(MEASUREMENTS[name].s3 for name in names):
            log("starting the moto S3 server ...")
            bench.s3 = S3Server.start(work, env)
        if any(MEASUREMENTS[name].loads for name in names):
            bench.stored = store_table(bench)
        if any(MEASUREMENTS[name].loads == "postgres" for name in names):
            from s3rs_tui.sandbox.postgres import start_postgres

            log("starting PostgreSQL ...")
            bench.pg = start_postgres()
        warm_up = "ceiling" if not skip_reason("ceiling") else "pymysql-nodecode"
        log(f"warm-up: one untimed {warm_up} read (buffer pool and page cache)")
        try:
            measure(warm_up, bench, -1)
        except MeasureError as exc:
            raise SystemExit(f"warm-up read failed: {exc}") from None
        for index in range(opts.repeat):
            for name in names:  # interleaved, so drift of the machine hits every line alike
                if name in errors:
                    continue
                try:
                    run = measure(name, bench, index)
                except MeasureError as exc:
                    errors[name] = str(exc)
                    log(f"{name}: FAILED")
                    continue
                runs[name].append(run)
                rate = run["rows"] / run["seconds"] * 60
                log(f"run {index + 1}/{opts.repeat} {name}: {run['seconds']:.2f}s, {rate:,.0f} rows/min,"
                    f" peak RSS {run['peak_rss_mb']:.0f} MB")
        if bench.stored:
            encoding = encoding_choices(bench.stored)
    finally:
        if bench and bench.pg:
            log("stopping PostgreSQL")
            bench.pg.stop()
        if bench and bench.s3:
            log("stopping the S3 server")
            bench.s3.stop()
        if server:
            log("stopping MariaDB")
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if base and not opts.keep_server:
            shutil.rmtree(base, ignore_errors=True)

    results = {name: summarize(r) for name, r in runs.items() if r}
    env_info = machine(table_info["mariadb_version"])
    params = {"rows": opts.rows, "seed": opts.seed, "batch_size": opts.batch_size, "repeat": opts.repeat,
              "only": opts.only, "buffer_pool_mb": None if opts.mysql else opts.buffer_pool_mb,
              "table": f"{opts.database}.{opts.table}", "fetchmany": FETCH_ROWS,
              "load_before": load_before, "load_after": load_average(),
              **{k: table_info[k] for k in ("data_mb", "index_mb", "avg_row_length", "generated_seconds")}}
    report(results, skipped, errors, env_info, params)
    report_encoding(encoding)
    if opts.json_out:
        opts.json_out.write_text(json.dumps({"machine": env_info, "parameters": params, "results": results,
                                             "encoding": encoding, "skipped": skipped, "errors": errors},
                                            indent=2) + "\n")
        log(f"figures written to {opts.json_out}")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: everything this run started is stopped")
        sys.exit(130)
