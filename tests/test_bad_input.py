"""Bad input an operator or a database can hand us: random config values, injection attempts in
every name we take, a damaged data file, a table or column dropped mid-run. Each gets a clear
one-line message and a documented exit code, and changes nothing it should not.
(Parsers of durations, timestamps and identifiers: test_config.py; a corrupt watermark, NULL
cursors and tables without a primary key: test_cli_commands.py and test_engine.py.)"""

import json
import string
from dataclasses import fields

import pytest
from cli_helpers import make_table, parquet_files, run_cli
from conftest import write_config
from exact_rows import assert_watermark_matches_files
from hypothesis import given, settings as hypothesis_settings, strategies as st
from test_engine import TABLE_DDL, assert_exactly_once, fill

from s3rs_tui.engine.sync import TableSync
from s3rs_tui.runtime import config
from s3rs_tui.runtime.config import SECTIONS, Settings, load_settings
from s3rs_tui.runtime.control import RunControl
from s3rs_tui.runtime.errors import ConfigError, S3rsError
from s3rs_tui.runtime.events import FileStored

KEYS = [(section, name) for section in SECTIONS for name in vars(getattr(Settings(), section))]
TOML_VALUES = st.one_of(st.text(max_size=20), st.integers(-10**12, 10**12), st.booleans(),
                        st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(), max_size=3))


def toml_literal(value) -> str:
    # JSON strings (escapes for control characters, but DEL), numbers, booleans and arrays are TOML
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


@given(st.sampled_from(KEYS), TOML_VALUES)
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_config_value_loads_or_names_its_key(tmp_path_factory, key, value):
    section, name = key
    path = tmp_path_factory.mktemp("cfg") / "s3rs.toml"
    path.write_text(f"[{section}]\n{name} = {toml_literal(value)}\n")
    path.chmod(0o600)
    try:
        load_settings(str(path), environ={})
    except ConfigError as error:
        message = str(error)
        assert f"{section}.{name}" in message and "\n" not in message and error.exit_code == 2
        if name in ("password", "secret_access_key", "key_passphrase", "access_key_id") and value:
            assert str(value) not in message.replace("config key", "") or str(value) in f"{section}.{name}"


INT64 = {"min_value": -2**63, "max_value": 2**63 - 1}  # TOML's integers
ARRAYS = st.lists(st.integers(-10, 10), max_size=3)  # no key takes an array
WORDS = st.text(alphabet=string.ascii_letters + " ;.-", min_size=1).filter(
    lambda text: any(ch.isalpha() or ch in ";." for ch in text))  # never a number, nor a size
BOOLEAN_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off", "")
NOT_AN_IDENTIFIER = st.one_of(
    st.just(""), st.text(alphabet=string.ascii_letters + "_", min_size=65),
    st.text(min_size=1).filter(lambda text: any(not (ch.isascii() and (ch.isalnum() or ch in "_$"))
                                                for ch in text)))
FINITE = {"allow_nan": False, "allow_infinity": False}
# Values each check refuses on top of its key's type (a new check needs an entry: the test says so).
REFUSED_BY_CHECK = {
    config._positive: st.integers(INT64["min_value"], 0),
    config._not_negative: st.integers(INT64["min_value"], -1),
    config._port: st.one_of(st.integers(INT64["min_value"], 0), st.integers(65536, INT64["max_value"])),
    config._fraction: st.one_of(st.floats(max_value=0, **FINITE),
                                st.floats(min_value=1, exclude_min=True, **FINITE)),
    config._identifier: NOT_AN_IDENTIFIER,
    config._port_or_off: st.one_of(st.integers(INT64["min_value"], -1),
                                   st.integers(65536, INT64["max_value"])),
    config._web_url: st.text(min_size=1).filter(lambda text: not text.startswith(("http://", "https://"))),
    config._ranges: st.one_of(st.integers(INT64["min_value"], 0), st.integers(65, INT64["max_value"])),
}
CHOICES = {("backup", "reader"): config.READERS, ("s3", "sse"): config.SSE_KINDS}
TABLE_IDENTIFIERS = ["cursor_column", "key_column", "target"]  # checked as names when not empty


def invalid_values(key: tuple[str, str]) -> st.SearchStrategy:
    """Values the key must refuse: of another type than its default's, or failing its check."""
    section, name = key
    if section == "tables":
        return st.one_of(ARRAYS, st.booleans(), NOT_AN_IDENTIFIER.filter(bool))
    f = next(f for f in fields(getattr(Settings(), section)) if f.name == name)
    kind, check = type(f.default), f.metadata.get("check")
    wrong_type = {
        bool: st.one_of(ARRAYS, WORDS.filter(lambda text: text.strip().lower() not in BOOLEAN_WORDS),
                        st.integers(**INT64).filter(lambda n: n not in (0, 1)),
                        st.floats(**FINITE)),
        int: st.one_of(ARRAYS, st.booleans(), WORDS, st.floats(**FINITE)),
        float: st.one_of(ARRAYS, st.booleans(), WORDS),  # "inf" or "nan" parse, then fail any check
        str: st.one_of(ARRAYS, st.booleans()),
    }[kind]
    if key in CHOICES:
        return st.one_of(wrong_type, st.text(max_size=20).filter(lambda text: text not in CHOICES[key]))
    if check is None:
        return wrong_type
    assert check in REFUSED_BY_CHECK, f"no values known to fail {key}'s check: add them to REFUSED_BY_CHECK"
    return st.one_of(wrong_type, REFUSED_BY_CHECK[check])


@given(st.sampled_from(KEYS + [("tables", name) for name in TABLE_IDENTIFIERS])
       .flatmap(lambda key: st.tuples(st.just(key), invalid_values(key))))
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_invalid_config_value_is_refused_naming_its_key(tmp_path_factory, key_and_value):
    """The other side of the test above: a value known to be wrong for its key never loads."""
    (section, name), value = key_and_value
    path, key = tmp_path_factory.mktemp("cfg") / "s3rs.toml", f"{section}.{name}"
    table = section == "tables"
    header, where = ('tables."shop.orders"', f"tables.shop.orders.{name}") if table else (section, key)
    path.write_text(f"[{header}]\n{name} = {toml_literal(value)}\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as refused:
        load_settings(str(path), environ={})
    message = str(refused.value)
    assert where in message and "\n" not in message and refused.value.exit_code == 2, message


@given(st.text(alphabet=string.printable, max_size=40))
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_table_name_resolves_to_plain_identifiers_or_is_refused(name):
    settings = load_settings(None, environ={"S3RS_MYSQL_DATABASE": "shop"})
    try:
        database, table, _ = settings.table(name)
    except ConfigError as error:
        assert error.exit_code == 2 and "invalid" in str(error)
        return
    for part in (database, table):
        assert part and all(ch.isalnum() or ch in "_$" for ch in part)


INJECTIONS = [
    ('[tables."{db}.orders"]\nkey_column = "id; DROP TABLE orders"\n', "key_column"),
    ('[tables."{db}.orders"]\ntarget = "orders; DROP TABLE orders"\n', "target"),
    ('[tables."{db}.orders"]\ncursor_column = "update_at` = 1 OR `id"\n', "cursor_column"),
    ('[warehouse]\nkind = "duckdb"\nschema = "public; DROP SCHEMA public"\n', "warehouse.schema"),
    ('[tables."{db}.orders; DROP TABLE orders"]\n', "DROP TABLE"),
]


@pytest.mark.parametrize("extra, where", INJECTIONS)
def test_injection_attempts_in_config_exit_2_and_change_nothing(db, tmp_path, extra, where):
    make_table(db, rows=50)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra="\n" + extra.format(db=db.name))
    for command in (["sync", "-t", "orders"], ["watermark", "reset", "-t", "orders", "--yes"],
                    ["verify", "-t", "orders"]):
        result = run_cli(*command, config=config)
        assert result.returncode == 2, (command, result.stderr)
        assert where in result.stderr and "Traceback" not in result.stderr
    assert [row[0] for row in db.execute("SHOW TABLES")] == ["orders"]
    assert db.execute("SELECT COUNT(*) FROM orders")[0][0] == 50
    assert parquet_files(tmp_path / "store") == []


def test_injection_attempts_on_the_command_line_exit_2(db, local_config, tmp_path):
    make_table(db, rows=50)
    for args in (["watermark", "set", "-t", "orders", "--timestamp", "2024-01-01'; DROP TABLE orders; --",
                  "--yes"],
                 ["s3clean", "list", "-t", "orders", "--older-than", "7d; rm -rf /"],
                 ["sync", "-t", "orders`; DROP TABLE orders; --"],
                 ["sync", "-t", "orders", "--strategy", "parallel; DROP"]):
        result = run_cli(*args, config=local_config)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert [row[0] for row in db.execute("SHOW TABLES")] == ["orders"]


def test_a_damaged_data_file_is_named_and_nothing_is_loaded(db, tmp_path):
    make_table(db, rows=2000)
    config = write_config(tmp_path / "s3rs.toml", db, store=tmp_path / "store",
                          extra=f'\n[warehouse]\nkind = "duckdb"\npath = "{tmp_path / "w.duckdb"}"\n')
    stored = run_cli("sync", "-t", "orders", "--backup-only", "--batch-size", "500", config=config)
    assert stored.returncode == 0
    damaged = parquet_files(tmp_path / "store")[1]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])  # truncated, as by a bad copy
    result = run_cli("sync", "-t", "orders", "--load-only", config=config)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert damaged.name in last and "is damaged (truncated?" in last and "README: Faults" in last, last
    import duckdb

    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'"
                            ).fetchone()[0] == 0


def changed_mid_run(orders, config, settings_for, ddl):
    """A sync of 6,000 rows that meets `ddl` after its 2nd file: it stops with an S3rsError
    (returned), and what it stored is intact and counted by the watermark."""
    orders.execute(TABLE_DDL)
    fill(orders, 6000)
    settings = settings_for(config)
    settings.override("backup.batch_size", 1000)
    name = f"{orders.name}.orders"

    def sink(event):
        if isinstance(event, FileStored) and event.run_files == 2:
            orders.execute(ddl)

    with pytest.raises(S3rsError) as error:
        TableSync(settings, name, sink, RunControl()).run()
    assert_watermark_matches_files(settings, name)
    return settings, name, error.value


def test_a_table_dropped_mid_run(db, local_config, settings_for):
    _, _, error = changed_mid_run(db, local_config, settings_for, "DROP TABLE orders")
    assert "the table was dropped or renamed during the run" in str(error) and error.exit_code == 1
    rerun = run_cli("sync", "-t", "orders", config=local_config)
    assert rerun.returncode == 2 and "does not exist" in rerun.stderr


def test_a_column_dropped_mid_run(db, local_config, settings_for):
    settings, name, error = changed_mid_run(db, local_config, settings_for,
                                            "ALTER TABLE orders DROP COLUMN note")
    assert "a column was dropped or renamed during the run" in str(error)
    rerun = run_cli("sync", "-t", "orders", "--batch-size", "1000", config=local_config)
    assert rerun.returncode == 0, rerun.stderr
    assert_exactly_once(db, settings, name)
