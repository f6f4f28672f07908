"""`progressive --parallel N`: a first backfill split into ranges, each read by a process of its
own, this process the only writer of the watermark; killed anywhere and rerun, every row of every
column stored exactly once, and after the ranges one cursor goes on exactly."""

import json

from cli_helpers import run_cli
from conftest import write_config
from exact_rows import assert_store_matches_mysql, assert_watermark_matches_files
from test_faults import KILL_ROWS, RICH_DDL, change_rows, fill_rich  # noqa: F401

from s3rs_tui.store import open_store
from s3rs_tui.store.watermark import WatermarkStore


def progressive(config, name, *args, timeout=300):
    return run_cli("progressive", name, "--no-ui", *args, config=config, cwd=config.parent, timeout=timeout)


def test_two_ranges_then_one_cursor(db, tmp_path, bucket, s3_endpoint, settings_for):
    db.execute(RICH_DDL)
    fill_rich(db, 1, KILL_ROWS)
    config = write_config(tmp_path / "s3rs.toml", db, bucket=bucket, endpoint=s3_endpoint,
                          extra="batch_size = 3000\n")
    settings = settings_for(config)
    name = f"{db.name}.orders"
    first = progressive(config, name, "--parallel", "2", "--chunk-size", "8000", "--max-chunks", "2")
    assert first.returncode == 0, first.stderr
    watermark = WatermarkStore(open_store(settings)).get(name)
    print(json.dumps(watermark.document(), indent=1))
    assert watermark.ranges is not None and len(watermark.ranges) == 2
    rest = progressive(config, name, "--chunk-size", "8000")
    assert rest.returncode == 0, rest.stderr
    print(rest.stderr)
    watermark = WatermarkStore(open_store(settings)).get(name)
    assert watermark.ranges is None
    files = assert_store_matches_mysql(db, settings, name)
    assert_watermark_matches_files(settings, name, files)
