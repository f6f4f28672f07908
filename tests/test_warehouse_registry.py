"""The warehouse registry: each kind is one module of warehouse/kinds, found by its config name."""

import pyarrow as pa
import pytest
from cli_helpers import run_cli

from s3rs_tui.runtime.checksum import ChecksumDialect
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.warehouse import adapter_class, check_config, known_kinds
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.typemap import file_columns


def test_every_kind_module_holds_its_whole_adapter():
    """Found by name, and carrying its dialect, types and checksum SQL on the class itself."""
    assert known_kinds() == ["duckdb", "postgres", "redshift"]
    column = file_columns(pa.schema([pa.field("n", pa.int64(), metadata={"mysql_type": "bigint(20)"})]))[0]
    spelled = {}
    for kind in known_kinds():
        adapter = adapter_class(kind)
        assert issubclass(adapter, Warehouse) and adapter.kind == kind
        assert isinstance(adapter.checksum, ChecksumDialect)
        spelled[kind] = adapter.column_type(column)
    assert spelled == {"duckdb": "BIGINT", "postgres": "bigint", "redshift": "bigint"}


def test_an_unknown_kind_is_refused_naming_the_known_ones(tmp_path):
    settings = Settings()
    settings.warehouse.kind = "snowflake"
    with pytest.raises(ConfigError) as error:
        check_config(settings)
    assert "snowflake" in str(error.value) and "duckdb, postgres, redshift" in str(error.value)
    config = tmp_path / "s3rs.toml"
    config.write_text('[warehouse]\nkind = "snowflake"\n')
    result = run_cli("config", config=config)
    assert result.returncode == 2, result.stderr
    assert "not a warehouse kind: one of none, duckdb, postgres, redshift" in result.stderr
    assert "Traceback" not in result.stderr
