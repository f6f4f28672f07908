"""The `s3rs` commands end to end: real MariaDB, a local folder store or the moto S3 server, and the
CLI run as a subprocess exactly as an operator runs it. Every error path also checks the exit code
and that no traceback reaches the screen."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cursor_time, make_table, parquet_files, parquet_ids, run_cli, table_ids
from conftest import s3_client, write_config

from s3rs_tui.store import open_store
from s3rs_tui.store.lock import TableLock, lock_key
from s3rs_tui.store.watermark import WatermarkStore

PREFIX = "backups"
SECRET = "Zq9-very-distinctive-Secret-7731"


# -- small helpers ------------------------------------------------------------------------------

def base(tmp_path: Path) -> Path:
    """The local store's folder as `local_config` lays it out: <local_path>/<prefix>."""
    return tmp_path / "store" / PREFIX


def data_dir(tmp_path: Path, db, table: str = "orders") -> Path:
    return base(tmp_path) / "data" / db.name / table


def watermark_file(tmp_path: Path, db, table: str = "orders") -> Path:
    return base(tmp_path) / "_state" / "watermarks" / f"{db.name}.{table}.json"


def backups_dir(tmp_path: Path) -> Path:
    return base(tmp_path) / "_state" / "watermarks" / "backups"


def assert_clean_error(result, code: int, *fragments: str) -> str:
    """Exit code `code`, no traceback, and the final stderr line (the one-line error) holds every
    fragment; returns that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "no error message on stderr"
    last = lines[-1]
    for fragment in fragments:
        assert fragment.lower() in last.lower(), (fragment, result.stderr)
    return last


def ok(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def sync_json(config, *args, env=None) -> dict:
    result = ok(run_cli("sync", "-t", "orders", "--json", *args, config=config, env=env))
    return json.loads(result.stdout)


def watermark_json(config):
    return json.loads(ok(run_cli("watermark", "get", "-t", "orders", "--json", config=config)).stdout)


def dead_pid() -> int:
    """A pid that belonged to a process of ours that has exited (and been reaped); a few tries, as
    the system may hand the pid to another process at once (never a skip: CI must run the test)."""
    for _ in range(10):
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        process.wait()
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            return process.pid
    raise AssertionError("the pids of 10 exited processes were all reused at once")


# -- version, sync and watermark get/list --------------------------------------------------------

def test_version():
    result = ok(run_cli("--version"))
    from s3rs_tui import __version__
    assert result.stdout.strip() == f"s3rs {__version__}"


def test_sync_then_watermark_get_and_list(db, local_config, tmp_path):
    make_table(db, rows=300)
    summary = sync_json(local_config, "--batch-size", "70")
    assert summary["status"] == "success" and summary["error"] is None
    assert (summary["rows"], summary["files"]) == (300, 5)
    assert parquet_ids(data_dir(tmp_path, db)) == table_ids(db)
    assert len(parquet_files(data_dir(tmp_path, db))) == 5

    watermark = watermark_json(local_config)
    last = table_ids(db)[-1]
    assert watermark["table_name"] == f"{db.name}.orders"
    assert watermark["mysql_status"] == "success"
    assert watermark["mysql_rows_extracted"] == 300
    assert watermark["s3_file_count"] == 5
    assert watermark["last_mysql_data_id"] == last
    assert watermark["last_mysql_data_timestamp"] == cursor_time(last, 300).strftime("%Y-%m-%d %H:%M:%S")
    assert (watermark["cursor_column"], watermark["key_column"]) == ("update_at", "id")
    assert watermark["last_s3_file"].startswith(f"data/{db.name}/orders/part-")
    for field in ("last_mysql_extraction_time", "created_at", "updated_at", "processed_s3_files",
                  "redshift_status", "backup_strategy"):
        assert field in watermark
    # the document in the store is what `get` shows
    assert json.loads(watermark_file(tmp_path, db).read_bytes()) == watermark

    listed = json.loads(ok(run_cli("watermark", "list", "--json", config=local_config)).stdout)
    assert [row["table_name"] for row in listed] == [f"{db.name}.orders"]
    assert listed[0]["mysql_rows_extracted"] == 300 and listed[0]["last_mysql_data_id"] == last

    plain = ok(run_cli("watermark", "list", config=local_config)).stdout
    line, = [line for line in plain.splitlines() if line.strip()]
    assert line.split()[:2] == [f"{db.name}.orders", "success"]
    assert "300 rows" in line and "5 files" in line

    # nothing new: a second sync takes nothing and keeps the position
    again = sync_json(local_config)
    assert (again["status"], again["rows"], again["files"]) == ("success", 0, 0)
    assert watermark_json(local_config)["last_mysql_data_id"] == last


def test_watermark_get_without_watermark(db, local_config):
    make_table(db, rows=10)
    got = ok(run_cli("watermark", "get", "-t", "orders", "--json", config=local_config))
    assert json.loads(got.stdout) is None
    assert "no watermark yet" in ok(run_cli("watermark", "get", "-t", "orders", config=local_config)).stdout


# -- watermark set / reset / force-reset ----------------------------------------------------------

def test_watermark_set_with_id_takes_rows_strictly_after(db, local_config, tmp_path):
    make_table(db, rows=200)  # 50 seconds, 4 rows each: second 10 holds ids 10, 60, 110, 160
    assert sync_json(local_config, "--batch-size", "64")["rows"] == 200
    shutil.rmtree(data_dir(tmp_path, db))

    ok(run_cli("watermark", "set", "-t", "orders", "--timestamp", "2024-01-01 00:00:10", "--id", "60",
               "--yes", config=local_config))
    watermark = watermark_json(local_config)
    position = (watermark["last_mysql_data_timestamp"], watermark["last_mysql_data_id"])
    assert position == ("2024-01-01 00:00:10", 60)
    assert watermark["mysql_status"] == "pending"

    expected = table_ids(db, after=("2024-01-01 00:00:10", 60))
    assert expected[:2] == [110, 160] and len(expected) == 200 - 42
    summary = sync_json(local_config, "--batch-size", "64")
    assert summary["rows"] == len(expected)
    assert parquet_ids(data_dir(tmp_path, db)) == expected


def test_watermark_set_without_id_takes_rows_at_the_timestamp(db, local_config, tmp_path):
    make_table(db, rows=200)
    ok(run_cli("watermark", "set", "-t", "orders", "--timestamp", "2024-01-01T00:00:10", "--yes",
               config=local_config))
    watermark = watermark_json(local_config)
    assert watermark["last_mysql_data_timestamp"] == "2024-01-01 00:00:10"  # canonical form
    assert watermark["last_mysql_data_id"] is None

    expected = table_ids(db, at_or_after="2024-01-01 00:00:10")
    assert expected[:4] == [10, 60, 110, 160] and len(expected) == 200 - 40
    assert sync_json(local_config)["rows"] == len(expected)
    assert parquet_ids(data_dir(tmp_path, db)) == expected


def test_watermark_set_with_a_text_id_on_an_integer_key(db, local_config, tmp_path):
    """The CLI cannot know the key type; the next sync refuses the position instead of crashing."""
    make_table(db, rows=100)
    ok(run_cli("watermark", "set", "-t", "orders", "--timestamp", "2024-01-01 00:00:05", "--id", "abc",
               "--yes", config=local_config))
    before = watermark_file(tmp_path, db).read_bytes()
    result = run_cli("sync", "-t", "orders", config=local_config)
    assert_clean_error(result, 2, "'abc'", "integer", "watermark set")
    assert "internal error" not in result.stderr
    assert watermark_file(tmp_path, db).read_bytes() == before
    assert parquet_files(base(tmp_path)) == []

    ok(run_cli("watermark", "set", "-t", "orders", "--timestamp", "2024-01-01 00:00:05", "--id", "30",
               "--yes", config=local_config))
    assert sync_json(local_config)["rows"] == len(table_ids(db, after=("2024-01-01 00:00:05", 30)))


@pytest.mark.parametrize("timestamp", ["2024-13-01 00:00:00", "yesterday", "2024-01-01 25:00", ""])
def test_watermark_set_malformed_timestamp_changes_nothing(db, local_config, tmp_path, timestamp):
    make_table(db, rows=20)
    ok(run_cli("sync", "-t", "orders", config=local_config))
    before = watermark_file(tmp_path, db).read_bytes()
    result = run_cli("watermark", "set", "-t", "orders", "--timestamp", timestamp, "--id", "3", "--yes",
                     config=local_config)
    assert_clean_error(result, 2, "--timestamp", "invalid timestamp")
    assert watermark_file(tmp_path, db).read_bytes() == before
    assert not backups_dir(tmp_path).exists()


def test_watermark_reset_keeps_a_backup_and_rereads_everything(db, local_config, tmp_path):
    make_table(db, rows=120)
    assert sync_json(local_config, "--batch-size", "50")["rows"] == 120
    before = watermark_file(tmp_path, db).read_bytes()

    result = ok(run_cli("watermark", "reset", "-t", "orders", "--yes", config=local_config))
    backups = sorted(backups_dir(tmp_path).iterdir())
    assert len(backups) == 1
    assert backups[0].name.startswith(f"{db.name}.orders.") and backups[0].name.endswith(".json")
    assert backups[0].read_bytes() == before  # the old document, byte for byte
    assert f"_state/watermarks/backups/{backups[0].name}" in result.stdout

    watermark = watermark_json(local_config)
    assert watermark["last_mysql_data_timestamp"] is None and watermark["mysql_rows_extracted"] == 0
    # the backup is not listed as a table
    listed = json.loads(ok(run_cli("watermark", "list", "--json", config=local_config)).stdout)
    assert [row["table_name"] for row in listed] == [f"{db.name}.orders"]

    shutil.rmtree(data_dir(tmp_path, db))
    summary = sync_json(local_config, "--batch-size", "50")
    assert (summary["rows"], summary["files"]) == (120, 3)
    assert parquet_ids(data_dir(tmp_path, db)) == table_ids(db)


def test_force_reset_replaces_a_corrupt_watermark(db, local_config, tmp_path):
    make_table(db, rows=40)
    ok(run_cli("sync", "-t", "orders", config=local_config))
    watermark_file(tmp_path, db).write_bytes(b"{not json at all")

    # plain reset refuses a corrupt document (it cannot back it up meaningfully)
    assert_clean_error(run_cli("watermark", "reset", "-t", "orders", "--yes", config=local_config), 2,
                       "corrupt", "force-reset")
    assert watermark_file(tmp_path, db).read_bytes() == b"{not json at all"

    ok(run_cli("watermark", "force-reset", "-t", "orders", "--yes", config=local_config))
    watermark = watermark_json(local_config)
    assert watermark["table_name"] == f"{db.name}.orders"
    assert watermark["last_mysql_data_timestamp"] is None and watermark["mysql_rows_extracted"] == 0
    assert sync_json(local_config)["rows"] == 40


@pytest.mark.parametrize("command", [
    ["watermark", "set", "-t", "orders", "--timestamp", "2024-01-01 00:00:05", "--id", "2"],
    ["watermark", "reset", "-t", "orders"],
    ["watermark", "force-reset", "-t", "orders"],
    ["s3clean", "clean", "-t", "orders", "--force"],
])
def test_destructive_commands_need_yes_without_a_terminal(db, local_config, tmp_path, command):
    make_table(db, rows=30)
    ok(run_cli("sync", "-t", "orders", "--batch-size", "10", config=local_config))
    before = watermark_file(tmp_path, db).read_bytes()
    files = parquet_files(data_dir(tmp_path, db))
    assert len(files) == 3

    assert_clean_error(run_cli(*command, config=local_config), 2, "add --yes")
    assert watermark_file(tmp_path, db).read_bytes() == before
    assert parquet_files(data_dir(tmp_path, db)) == files
    assert not backups_dir(tmp_path).exists()
    assert not list((base(tmp_path) / "_state" / "locks").iterdir())


# -- a corrupt watermark stops sync ---------------------------------------------------------------

def test_sync_on_corrupt_watermark_exits_2_and_leaves_it_alone(db, local_config, tmp_path):
    make_table(db, rows=40)
    ok(run_cli("sync", "-t", "orders", "--batch-size", "20", config=local_config))
    files = parquet_files(data_dir(tmp_path, db))
    garbage = b"\x00garbage \xff{[ not a watermark"
    watermark_file(tmp_path, db).write_bytes(garbage)

    result = run_cli("sync", "-t", "orders", config=local_config)
    last = assert_clean_error(result, 2, "watermark", "corrupt", "force-reset")
    assert last.startswith("s3rs: ")
    assert watermark_file(tmp_path, db).read_bytes() == garbage
    assert parquet_files(data_dir(tmp_path, db)) == files
    assert not list((base(tmp_path) / "_state" / "locks").iterdir())  # the lock was released

    # get fails the same way; list shows the table as corrupt instead of failing
    assert_clean_error(run_cli("watermark", "get", "-t", "orders", config=local_config), 2, "corrupt")
    listed = json.loads(ok(run_cli("watermark", "list", "--json", config=local_config)).stdout)
    assert [(row["table_name"], row["mysql_status"]) for row in listed] == [(f"{db.name}.orders", "corrupt")]


# -- s3clean ----------------------------------------------------------------------------------------

def test_s3clean_on_s3(db, s3_config, bucket, s3_endpoint):
    make_table(db, rows=100)
    assert sync_json(s3_config, "--batch-size", "30")["files"] == 4
    client = s3_client(s3_endpoint)

    def data_keys():
        response = client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/data/")
        return sorted(item["Key"][len(PREFIX) + 1:] for item in response.get("Contents", []))

    keys = data_keys()
    assert len(keys) == 4 and all(key.startswith(f"data/{db.name}/orders/part-") for key in keys)

    listed = json.loads(ok(run_cli("s3clean", "list", "-t", "orders", "--json", config=s3_config)).stdout)
    assert sorted(row["key"] for row in listed) == keys
    for row in listed:
        head = client.head_object(Bucket=bucket, Key=f"{PREFIX}/{row['key']}")
        assert row["size"] == head["ContentLength"] > 0
        assert row["loaded"] is False  # no warehouse: nothing is loaded
        assert row["modified"].endswith("+00:00")

    text = ok(run_cli("s3clean", "list", "-t", "orders", config=s3_config))
    assert len([line for line in text.stdout.splitlines() if "not loaded" in line]) == 4
    assert "4 files" in text.stderr

    # not loaded => kept, unless --force
    result = ok(run_cli("s3clean", "clean", "-t", "orders", "--yes", config=s3_config))
    assert "0 files" in result.stdout and "4 not yet loaded" in result.stdout
    assert data_keys() == keys

    result = ok(run_cli("s3clean", "clean", "-t", "orders", "--force", "--dry-run", config=s3_config))
    assert sorted(line.split()[-1] for line in result.stdout.splitlines()
                  if line.startswith("would delete")) == keys
    assert data_keys() == keys

    result = ok(run_cli("s3clean", "clean", "-t", "orders", "--force", "--older-than", "7d", "--yes",
                        config=s3_config))
    assert "0 files" in result.stdout
    assert data_keys() == keys

    ok(run_cli("s3clean", "clean", "-t", "orders", "--force", "--older-than", "0m", "--yes",
               config=s3_config))
    assert data_keys() == []
    # the watermark is untouched by clean
    assert watermark_json(s3_config)["mysql_rows_extracted"] == 100


def test_s3clean_deletes_only_loaded_files_without_force(db, local_config, tmp_path, settings_for):
    make_table(db, rows=100)
    ok(run_cli("sync", "-t", "orders", "--batch-size", "25", config=local_config))
    files = parquet_files(data_dir(tmp_path, db))
    assert len(files) == 4
    keys = [str(path.relative_to(base(tmp_path))) for path in files]

    # pretend the warehouse loaded the first two files
    watermarks = WatermarkStore(open_store(settings_for(local_config)))
    watermark = watermarks.get(f"{db.name}.orders")
    watermark.processed_s3_files = keys[:2]
    watermarks.save(watermark)

    listed = json.loads(ok(run_cli("s3clean", "list", "-t", "orders", "--json", config=local_config)).stdout)
    assert {row["key"]: row["loaded"] for row in listed} == {key: key in keys[:2] for key in keys}
    assert {row["key"]: row["size"] for row in listed} == {
        key: (base(tmp_path) / key).stat().st_size for key in keys}

    ok(run_cli("s3clean", "clean", "-t", "orders", "--dry-run", config=local_config))
    assert parquet_files(data_dir(tmp_path, db)) == files

    result = ok(run_cli("s3clean", "clean", "-t", "orders", "--yes", config=local_config))
    assert "2 files" in result.stdout and "2 not yet loaded" in result.stdout
    assert parquet_files(data_dir(tmp_path, db)) == files[2:]


@pytest.mark.parametrize("duration", ["7x", "d7", "-1d", "7"])
def test_s3clean_bad_duration(db, local_config, tmp_path, duration):
    make_table(db, rows=10)
    ok(run_cli("sync", "-t", "orders", config=local_config))
    files = parquet_files(data_dir(tmp_path, db))
    result = run_cli("s3clean", "clean", "-t", "orders", "--force", "--yes", f"--older-than={duration}",
                     config=local_config)
    assert_clean_error(result, 2, "--older-than", "invalid duration")
    assert parquet_files(data_dir(tmp_path, db)) == files


# -- config: sources, redaction, validation, precedence -------------------------------------------

@pytest.fixture
def secret_user(db):
    """A MySQL user with a distinctive password that may read the test database."""
    user = "u" + db.name[2:]
    db.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'",
               f"GRANT ALL ON `{db.name}`.* TO '{user}'@'%'")
    yield user
    db.execute(f"DROP USER '{user}'@'%'")


def test_config_shows_sources_and_redacts_the_password(db, tmp_path, secret_user):
    make_table(db, rows=50)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store")
    text = config.read_text().replace('user = "s3rs"', f'user = "{secret_user}"')
    text = "\n".join(line for line in text.splitlines() if not line.startswith("password"))
    config.write_text(text + "\n")
    env = {"S3RS_MYSQL_PASSWORD": SECRET, "BACKUP_BATCH_SIZE": "20"}

    result = ok(run_cli("config", "--json", config=config, env=env))
    shown = json.loads(result.stdout)
    assert shown["config_file"] == str(config)
    assert shown["settings"]["mysql"]["password"] == "********"
    assert shown["settings"]["mysql"]["user"] == secret_user
    assert shown["settings"]["backup"]["batch_size"] == 20
    assert shown["sources"]["mysql.password"] == "env S3RS_MYSQL_PASSWORD"
    assert shown["sources"]["backup.batch_size"] == "env BACKUP_BATCH_SIZE"
    assert shown["sources"]["mysql.database"] == "file"
    assert shown["sources"]["backup.safety_lag_seconds"] == "file"
    assert shown["sources"]["backup.max_workers"] == "default"
    assert SECRET not in result.stdout + result.stderr

    plain = ok(run_cli("config", config=config, env=env))
    assert SECRET not in plain.stdout + plain.stderr
    assert any("password" in line and "'********'" in line and "env S3RS_MYSQL_PASSWORD" in line
               for line in plain.stdout.splitlines())

    # the password really is the one in force: sync works with it, and never prints it
    result = run_cli("sync", "-t", "orders", "--json", config=config, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"] == 3  # 50 rows / BACKUP_BATCH_SIZE 20
    assert SECRET not in result.stdout + result.stderr

    # a wrong password fails as one line, without echoing it
    wrong = SECRET + "-wrong"
    result = run_cli("sync", "-t", "orders", "--json", config=config,
                     env={**env, "S3RS_MYSQL_PASSWORD": wrong})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "access denied" in result.stderr.lower()


@pytest.mark.parametrize("case, key", [
    ("env_batch_size", "backup.batch_size"),
    ("warehouse_kind", "warehouse.kind"),
    ("missing_file", "does-not-exist.toml"),
    ("not_toml", "not valid TOML"),
    ("unknown_key", "backup.bogus_key"),
    ("bad_port", "mysql.port"),
])
def test_invalid_config_exits_2_naming_the_key(db, tmp_path, case, key):
    env = {}
    config = tmp_path / "s3rs.toml"
    if case == "env_batch_size":
        write_config(config, db, store=tmp_path / "store")
        env = {"BACKUP_BATCH_SIZE": "-5"}
    elif case == "warehouse_kind":
        write_config(config, db, store=tmp_path / "store", extra='\n[warehouse]\nkind = "oracle"\n')
    elif case == "missing_file":
        config = tmp_path / "does-not-exist.toml"
    elif case == "not_toml":
        config.write_text("[mysql\nhost = = 'x'\n")
    elif case == "unknown_key":
        write_config(config, db, store=tmp_path / "store", extra="bogus_key = 1\n")
    elif case == "bad_port":
        write_config(config, db, store=tmp_path / "store")
        env = {"S3RS_MYSQL_PORT": "seventy"}
    for command in (["config"], ["sync", "-t", "orders"]):
        result = run_cli(*command, config=config, env=env)
        last = assert_clean_error(result, 2, key)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert last.startswith("s3rs: config")
    assert not (tmp_path / "store").exists()


def test_batch_size_precedence_flag_over_env_over_file(db, tmp_path):
    make_table(db, rows=100)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store", extra="batch_size = 50\n")
    shown = json.loads(ok(run_cli("config", "--json", config=config)).stdout)
    assert (shown["settings"]["backup"]["batch_size"], shown["sources"]["backup.batch_size"]) == (50, "file")

    def files_of(*args, env=None):
        shutil.rmtree(tmp_path / "store", ignore_errors=True)
        return sync_json(config, *args, env=env)["files"]

    assert files_of() == 2                                               # file: 50
    assert files_of(env={"BACKUP_BATCH_SIZE": "10"}) == 10               # env beats file
    assert files_of("--batch-size", "25", env={"BACKUP_BATCH_SIZE": "10"}) == 4  # flag beats env
    # the new-style name beats the legacy one
    assert files_of(env={"S3RS_BACKUP_BATCH_SIZE": "34", "BACKUP_BATCH_SIZE": "10"}) == 3


def test_batch_size_flag_is_validated(db, local_config, tmp_path):
    make_table(db, rows=10)
    result = run_cli("sync", "-t", "orders", "--batch-size", "0", config=local_config)
    assert_clean_error(result, 2, "batch_size")
    assert parquet_files(base(tmp_path)) == []


# -- status ---------------------------------------------------------------------------------------

def test_status_ok_against_the_real_servers(db, tmp_path, s3_config):
    local = write_config(tmp_path / "local.toml", db, store=tmp_path / "store")  # s3_config is s3rs.toml
    for config, store in ((local, str(base(tmp_path))), (s3_config, "s3://")):
        result = ok(run_cli("status", config=config))
        lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        assert lines["mysql"].split()[1] == "ok:", result.stdout
        assert lines["store"].split()[1] == "ok:", result.stdout
        assert lines["store"].split()[2].startswith(store), result.stdout
        assert "FAILED" not in result.stdout
    status = json.loads(ok(run_cli("status", "--json", config=s3_config)).stdout)
    assert status["mysql"].startswith("ok: ") and "MariaDB" in status["mysql"]
    assert status["store"].startswith("ok: s3://")


def test_status_fails_when_mysql_is_unreachable(db, local_config):
    result = run_cli("status", config=local_config, env={"S3RS_MYSQL_PORT": "1"})
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["mysql"].split()[1] == "FAILED:"
    assert lines["store"].split()[1] == "ok:"


# -- bad input --------------------------------------------------------------------------------------

def test_unknown_table(db, local_config, tmp_path):
    make_table(db, rows=5)
    assert_clean_error(run_cli("sync", "-t", "nosuchtable", config=local_config), 2, "does not exist")
    assert not watermark_file(tmp_path, db, "nosuchtable").exists()


@pytest.mark.parametrize("name", ["x; DROP TABLE y", "{db}.y; DROP TABLE y", "`y`", "y -- ", "{db}.y.z"])
def test_injection_in_table_name_is_refused(db, local_config, tmp_path, name):
    make_table(db, rows=5)
    make_table(db, name="y", rows=5)
    result = run_cli("sync", "-t", name.format(db=db.name), config=local_config)
    assert_clean_error(result, 2, "invalid")
    assert sorted(row[0] for row in db.execute("SHOW TABLES")) == ["orders", "y"]
    assert parquet_files(base(tmp_path)) == []


def test_injection_in_cursor_column_is_refused(db, tmp_path):
    make_table(db, rows=5)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'\n[tables."{db.name}.orders"]\ncursor_column = "update_at; DROP TABLE t"\n')
    result = run_cli("sync", "-t", "orders", config=config)
    assert_clean_error(result, 2, "cursor_column", "invalid column name")
    assert [row[0] for row in db.execute("SHOW TABLES")] == ["orders"]


def test_table_without_a_unique_key_is_read_by_whole_cursor_values(db, local_config, tmp_path):
    """No key at all: backed up (test_keys.py has the exactness), and the run says how."""
    make_table(db, rows=20, primary_key=False)
    result = run_cli("sync", "-t", "orders", config=local_config)
    assert result.returncode == 0, result.stderr
    assert "no unique key" in result.stderr and "append-only" in result.stderr
    assert len(parquet_ids(base(tmp_path))) == 20


def test_table_without_cursor_column(db, local_config, tmp_path):
    make_table(db, rows=20, cursor_column="changed_at")
    result = run_cli("sync", "-t", "orders", config=local_config)
    assert_clean_error(result, 2, "no cursor column", "update_at")
    assert parquet_files(base(tmp_path)) == []

    # naming the column in the config makes it work
    config = write_config(tmp_path / "other.toml", db, store=tmp_path / "store",
                          extra=f'\n[tables."{db.name}.orders"]\ncursor_column = "changed_at"\n')
    assert sync_json(config)["rows"] == 20


@pytest.mark.parametrize("args, fragment", [
    (["sync", "-t", "orders", "--limit", "0"], "--limit"),
    (["sync", "-t", "orders", "--no-such-option"], "no such option"),
    (["sync"], "--table"),
    (["sync", "-t", "orders", "--strategy", "sideways"], "--strategy"),
    (["watermark", "set", "-t", "orders", "--timestamp", "2024-01-01 00:00:00", "--id", " ", "--yes"],
     "--id"),
])
def test_bad_usage_exits_2(db, local_config, tmp_path, args, fragment):
    make_table(db, rows=5)
    result = run_cli(*args, config=local_config)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert fragment.lower() in result.stderr.lower()
    assert parquet_files(base(tmp_path)) == []
    assert not watermark_file(tmp_path, db).exists()


def test_limit_takes_at_most_n_rows_and_resumes(db, local_config, tmp_path):
    make_table(db, rows=90)
    first = sync_json(local_config, "--limit", "35", "--batch-size", "20")
    assert (first["rows"], first["files"]) == (35, 2)
    assert first["tables"][0]["caught_up"] is False
    second = sync_json(local_config, "--batch-size", "20")
    assert second["rows"] == 55
    assert sorted(parquet_ids(data_dir(tmp_path, db))) == list(range(1, 91))


# -- the lock ----------------------------------------------------------------------------------------

@pytest.fixture
def held_lock(db, local_config, settings_for):
    make_table(db, rows=60)
    lock = TableLock(open_store(settings_for(local_config)), f"{db.name}.orders", purpose="sync")
    lock.acquire()
    yield lock
    lock.release()


def test_sync_refuses_a_locked_table(db, local_config, tmp_path, held_lock):
    result = run_cli("sync", "-t", "orders", config=local_config)
    last = assert_clean_error(result, 3, "locked", "--break-lock")
    assert f"{socket.gethostname()}:{os.getpid()}" in last
    assert held_lock.run_id in last
    assert parquet_files(base(tmp_path)) == []
    assert not watermark_file(tmp_path, db).exists()

    result = run_cli("watermark", "set", "-t", "orders", "--timestamp", "2024-01-01 00:00:05", "--yes",
                     config=local_config)
    assert_clean_error(result, 3, "locked", f"{socket.gethostname()}:{os.getpid()}")
    assert not watermark_file(tmp_path, db).exists()

    for command in (["watermark", "reset", "-t", "orders", "--yes"],
                    ["watermark", "force-reset", "-t", "orders", "--yes"]):
        assert_clean_error(run_cli(*command, config=local_config), 3, "locked")
    assert not watermark_file(tmp_path, db).exists()

    # the lock is still ours
    lock_doc = json.loads((base(tmp_path) / lock_key(f"{db.name}.orders")).read_bytes())
    assert lock_doc["run_id"] == held_lock.run_id


def test_break_lock_takes_the_table(db, local_config, tmp_path, held_lock):
    summary = sync_json(local_config, "--break-lock")
    assert (summary["status"], summary["rows"]) == ("success", 60)
    assert sorted(parquet_ids(data_dir(tmp_path, db))) == list(range(1, 61))
    assert not (base(tmp_path) / lock_key(f"{db.name}.orders")).exists()  # released at the end


@pytest.mark.parametrize("who", ["dead_pid_here", "old_heartbeat_elsewhere"])
def test_stale_lock_is_taken_over(db, local_config, tmp_path, settings_for, who):
    make_table(db, rows=60)
    now = time.time()
    if who == "dead_pid_here":
        host, pid, heartbeat = socket.gethostname(), dead_pid(), now
    else:
        host, pid, heartbeat = "some-other-host", os.getpid(), now - 3600
    document = {"owner": f"{host}:{pid}", "host": host, "pid": pid, "run_id": "deadbeef0000",
                "purpose": "sync", "started_at": heartbeat, "heartbeat_at": heartbeat}
    store = open_store(settings_for(local_config))
    store.put_bytes(lock_key(f"{db.name}.orders"), json.dumps(document).encode())

    summary = sync_json(local_config)
    assert (summary["status"], summary["rows"]) == ("success", 60)
    assert not (base(tmp_path) / lock_key(f"{db.name}.orders")).exists()


def test_live_lock_from_another_host_is_respected(db, local_config, tmp_path, settings_for):
    make_table(db, rows=10)
    now = time.time()
    document = {"owner": "other-host:1", "host": "other-host", "pid": 1, "run_id": "cafe00000001",
                "purpose": "sync", "started_at": now, "heartbeat_at": now}
    store = open_store(settings_for(local_config))
    store.put_bytes(lock_key(f"{db.name}.orders"), json.dumps(document).encode())
    assert_clean_error(run_cli("sync", "-t", "orders", config=local_config), 3, "other-host:1")
    assert parquet_files(base(tmp_path)) == []


def test_lock_on_s3(db, s3_config, settings_for, bucket, s3_endpoint):
    make_table(db, rows=30)
    lock = TableLock(open_store(settings_for(s3_config)), f"{db.name}.orders", purpose="sync")
    with lock:
        assert_clean_error(run_cli("sync", "-t", "orders", config=s3_config), 3, lock.run_id)
        assert sync_json(s3_config, "--break-lock")["rows"] == 30
    response = s3_client(s3_endpoint).list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/_state/locks/")
    assert response.get("KeyCount", 0) == 0


# -- dry run -----------------------------------------------------------------------------------------

def test_dry_run_writes_nothing(db, local_config, tmp_path):
    make_table(db, rows=400)
    result = ok(run_cli("sync", "-t", "orders", "--dry-run", "--batch-size", "100", config=local_config))
    assert f"{db.name}.orders: from the beginning" in result.stdout
    assert "nothing written" in result.stdout
    assert parquet_files(tmp_path / "store") == []
    assert not watermark_file(tmp_path, db).exists()

    plan = json.loads(ok(run_cli("sync", "-t", "orders", "--dry-run", "--json", "--batch-size", "100",
                                 config=local_config)).stdout)
    assert plan["dry_run"] is True
    table, = plan["tables"]
    assert table["table"] == f"{db.name}.orders"
    assert table["start_timestamp"] is None and table["rows_extracted_so_far"] == 0
    assert table["estimated_rows"] > 0 and table["keyset_index"] is True
    assert table["estimated_pages"] == -(-table["estimated_rows"] // 100)
    assert parquet_files(tmp_path / "store") == []
    assert not watermark_file(tmp_path, db).exists()
    assert [path for path in (base(tmp_path) / "_state").rglob("*") if path.is_file()] == []

    # after a partial run the plan starts at the watermark
    ok(run_cli("sync", "-t", "orders", "--limit", "100", config=local_config))
    before = watermark_file(tmp_path, db).read_bytes()
    plan = json.loads(ok(run_cli("sync", "-t", "orders", "--dry-run", "--json", config=local_config)).stdout)
    watermark = json.loads(before)
    assert plan["tables"][0]["start_timestamp"] == watermark["last_mysql_data_timestamp"]
    assert plan["tables"][0]["start_id"] == watermark["last_mysql_data_id"]
    assert plan["tables"][0]["rows_extracted_so_far"] == 100
    assert watermark_file(tmp_path, db).read_bytes() == before
    assert len(parquet_files(tmp_path / "store")) == 1


@pytest.mark.parametrize("state_dir_set", [True, False])
def test_an_internal_error_logs_its_traceback_in_the_state_folder(tmp_path, monkeypatch, capsys,
                                                                   state_dir_set):
    """$S3RS_STATE_DIR/errors.log when set (like the status snapshots and dashboard logs), else
    ~/.s3rs/errors.log; the screen gets one line naming it."""
    import s3rs_tui.cli as cli

    def broken_command(**_):
        raise RuntimeError("boom")

    home, state = tmp_path / "home", tmp_path / "state"
    monkeypatch.setenv("HOME", str(home))
    if state_dir_set:
        monkeypatch.setenv("S3RS_STATE_DIR", str(state))
    else:
        monkeypatch.delenv("S3RS_STATE_DIR", raising=False)
    monkeypatch.setattr(cli, "app", broken_command)
    monkeypatch.setattr(cli, "stop_at_once_on_signals", lambda: None)  # keep pytest's own handlers
    with pytest.raises(SystemExit) as exited:
        cli.main()
    expected = state / "errors.log" if state_dir_set else home / ".s3rs" / "errors.log"
    assert exited.value.code == 1
    assert capsys.readouterr().err == f"s3rs: internal error: RuntimeError: boom (traceback in {expected})\n"
    assert "RuntimeError: boom" in expected.read_text() and expected.stat().st_mode & 0o777 == 0o600
    assert not (home / ".s3rs").exists() if state_dir_set else not state.exists()
