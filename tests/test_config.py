"""Settings and the parsers operators feed: precedence, legacy names, clear errors, no secrets."""

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from s3rs_tui.engine.keyset import upper_bound
from s3rs_tui.engine.table import TableInfo
from s3rs_tui.engine.typemap import MySQLColumn
from s3rs_tui.runtime.config import REDACTED, load_settings
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.parsing import (
    check_identifier,
    parse_duration,
    parse_size,
    parse_timestamp,
    quote_identifier,
    split_table_name,
)
from s3rs_tui.warehouse import check_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> str:
    path = tmp_path / "s3rs.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings.config_path is None
    assert (settings.backup.batch_size, settings.backup.safety_lag_seconds) == (50000, 5)
    assert settings.s3.local_path == "./s3rs-data" and settings.warehouse.kind == "none"
    assert settings.sources["backup.batch_size"] == "default"


def test_file_then_environment_then_flag(tmp_path):
    path = write(tmp_path, "[backup]\nbatch_size = 1000\nretry_attempts = 7\n")
    settings = load_settings(path, environ={"BACKUP_BATCH_SIZE": "2000"})
    assert settings.backup.batch_size == 2000
    assert settings.sources["backup.batch_size"] == "env BACKUP_BATCH_SIZE"
    assert settings.backup.retry_attempts == 7 and settings.sources["backup.retry_attempts"] == "file"
    settings.override("backup.batch_size", 3000)
    assert settings.backup.batch_size == 3000 and settings.sources["backup.batch_size"] == "flag"


def test_s3rs_prefixed_names_win_over_legacy_names(tmp_path):
    settings = load_settings(write(tmp_path, ""), environ={"S3RS_BACKUP_BATCH_SIZE": "11",
                                                           "BACKUP_BATCH_SIZE": "22"})
    assert settings.backup.batch_size == 11


def test_config_file_from_environment_variable(tmp_path):
    path = write(tmp_path, "[mysql]\nport = 3399\n")
    assert load_settings(None, environ={"S3RS_CONFIG": path}).mysql.port == 3399


@pytest.mark.parametrize("name,value,expected", [
    ("S3_CHUNK_SIZE", "16MB", 16 * 1024**2), ("S3_MULTIPART_THRESHOLD", "1048576", 1048576),
    ("S3_MAX_CONCURRENCY", "9", 9), ("DATABASE_CONNECTION_TIMEOUT", "3", 3),
    ("BACKUP_MAX_WORKERS", "6", 6), ("BACKUP_TIMEOUT_SECONDS", "60", 60),
    ("BACKUP_RETRY_ATTEMPTS", "0", 0), ("BACKUP_MEMORY_LIMIT_MB", "512", 512),
    ("S3RS_MYSQL_PASSWORD", "hunter2", "hunter2")])
def test_legacy_environment_names(tmp_path, name, value, expected):
    settings = load_settings(write(tmp_path, ""), environ={name: value})
    key = next(k for k, source in settings.sources.items() if source == f"env {name}")
    section, field = key.split(".")
    assert getattr(getattr(settings, section), field) == expected


@pytest.mark.parametrize("text,environ,fragment", [
    ("", {"BACKUP_BATCH_SIZE": "-5"}, "backup.batch_size"),
    ("", {"BACKUP_BATCH_SIZE": "many"}, "backup.batch_size"),
    ('[warehouse]\nkind = "oracle"\n', {}, "warehouse.kind"),
    ("[backup]\nbatchsize = 5\n", {}, "backup.batchsize"),
    ("[mysql]\nport = 70000\n", {}, "mysql.port"),
    ("[nosuch]\nx = 1\n", {}, "nosuch"),
    ("this is not toml", {}, "not valid TOML"),
    ('[tables."db.t"]\ncursor_column = "update_at; DROP TABLE t"\n', {}, "cursor_column"),
    ('[tables."db.t;x"]\n', {}, "db.t;x"),
    ("[ssh]\nenabled = \"maybe\"\n", {}, "ssh.enabled"),
    ('[s3]\nendpoint_url = "http://minio:9000"\n[warehouse]\nkind = "redshift"\n', {},
     "Redshift COPY reads only AWS S3"),
])
def test_invalid_values_name_their_key(tmp_path, text, environ, fragment):
    with pytest.raises(ConfigError) as error:
        check_config(load_settings(write(tmp_path, text), environ=environ))  # as the commands read it
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert error.value.exit_code == 2


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(str(tmp_path / "missing.toml"), environ={})


def test_secrets_are_redacted_even_in_errors(tmp_path):
    settings = load_settings(write(tmp_path, '[warehouse]\npassword = "filepass"\n'),
                             environ={"S3RS_MYSQL_PASSWORD": "envpass"})
    shown = str(settings.redacted())
    assert "envpass" not in shown and "filepass" not in shown and REDACTED in shown
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, "[mysql]\npassword = [1, 2]\n"), environ={})
    assert "[1, 2]" not in str(error.value)


def test_example_config_is_valid():
    settings = load_settings(str(ROOT / "config.example.toml"), environ={})
    assert "settlement.settlement_normal_delivery_detail" in settings.tables
    assert settings.s3.chunk_size == 8 * 1024**2


def test_table_names_resolve_against_the_default_database(tmp_path):
    settings = load_settings(write(tmp_path, '[mysql]\ndatabase = "shop"\n[tables."shop.orders"]\n'
                                             'cursor_column = "modified"\n'), environ={})
    assert settings.table("orders")[:2] == ("shop", "orders")
    assert settings.table("orders")[2].cursor_column == "modified"
    assert settings.table("other.orders")[2].cursor_column == "update_at"
    with pytest.raises(ConfigError):
        settings.table("x; DROP TABLE y")


@pytest.mark.parametrize("text,expected", [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)),
                                           ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)),
                                           (" 45s ", timedelta(seconds=45)), ("0m", timedelta(0))])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@given(st.text(max_size=12))
def test_duration_parser_never_crashes(text):
    try:
        assert parse_duration(text) >= timedelta(0)
    except ValueError as error:
        assert "invalid duration" in str(error)


@given(st.integers(0, 10**6), st.sampled_from("smhdw"))
def test_duration_round_trip(amount, unit):
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{amount}{unit}").total_seconds() == amount * seconds


@pytest.mark.parametrize("text,expected", [
    ("2024-06-01 12:30:00", "2024-06-01 12:30:00"), ("2024-06-01T12:30:00", "2024-06-01 12:30:00"),
    ("2024-06-01 12:30:00.250000", "2024-06-01 12:30:00.250000"), ("2024-06-01", "2024-06-01 00:00:00")])
def test_timestamps(text, expected):
    assert parse_timestamp(text) == expected


@given(st.text(max_size=30))
def test_timestamp_parser_accepts_only_real_times(text):
    try:
        canonical = parse_timestamp(text)
    except ValueError as error:
        assert "invalid timestamp" in str(error)
        return
    assert parse_timestamp(canonical) == canonical


@given(st.text(max_size=70))
def test_identifiers_are_plain_or_refused(name):
    try:
        checked = check_identifier(name)
    except ValueError:
        return
    assert checked == name and all(ch.isascii() and (ch.isalnum() or ch in "_$") for ch in name)
    assert quote_identifier(name) == f"`{name}`"


@pytest.mark.parametrize("name", ["x; DROP TABLE y", "a`b", "t'--", "", "a b", "db.t.x"])
def test_injection_attempts_are_refused(name):
    with pytest.raises(ValueError):
        split_table_name(name, "db")


def test_sizes():
    assert parse_size("8MB") == parse_size("8M") == parse_size("8MiB") == 8 * 1024**2
    assert parse_size(123) == parse_size("123") == 123
    with pytest.raises(ValueError):
        parse_size("eight")


def _info(data_type: str, precision: int) -> TableInfo:
    cursor = MySQLColumn("update_at", data_type, data_type, None, None, precision, None, False)
    key = MySQLColumn("id", "bigint", "bigint(20)", 19, 0, None, None, False)
    return TableInfo("db", "t", [key, cursor], cursor, key, True, 0)


@pytest.mark.parametrize("data_type,precision,lag,expected", [
    ("datetime", 0, 5, "2024-06-01 12:00:02"),          # the current second is excluded
    ("datetime", 0, 0, "2024-06-01 12:00:07"),
    ("datetime", 3, 0, "2024-06-01 12:00:07.123"),
    ("datetime", 6, 1, "2024-06-01 12:00:06.123456"),
    ("timestamp", 0, 10, "2024-06-01 11:59:57"),
    ("date", None, 5, "2024-06-01"),                    # today's rows wait for tomorrow
])
def test_upper_bound_is_truncated_to_the_cursor_precision(data_type, precision, lag, expected):
    assert upper_bound("2024-06-01 12:00:07.123456", _info(data_type, precision), lag) == expected


@pytest.mark.parametrize("environ", [{"S3RS_S3_SECRET_ACCESS_KEY": "s"}, {"S3RS_S3_ACCESS_KEY_ID": "k"}])
def test_half_an_s3_key_pair_is_refused_naming_both(tmp_path, environ):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, ""), environ=environ)
    assert "access_key_id" in str(error.value) and "secret_access_key" in str(error.value)
    assert error.value.exit_code == 2 and "\n" not in str(error.value)
