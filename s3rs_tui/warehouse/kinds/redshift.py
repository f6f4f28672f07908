"""Redshift: each group of files is one COPY from S3 through a manifest, then the shared merge.

Redshift runs COPY itself, reading the files straight from the bucket: the manifest names them
exactly (no prefix matching picks up a stray file) and, for Parquet, must give each file's size
(`meta.content_length`). Parquet COPY maps columns by position, which is why the staging table
has the file's columns in the file's order. Redshift folds quoted names to lower case (r_names),
so the catalog is asked for the folded spelling. A failed COPY keeps Redshift's DETAIL lines (the
file, column and cause) and the first rows of its load-error views, found by this session: once the
failed COPY's transaction is rolled back, pg_last_copy_id() no longer names it (PG_LAST_COPY_ID),
and before the rollback the aborted transaction runs no query. A serializable isolation violation
(error 1023, two loads writing the shared ledger at once) is transient: the group's transaction is
retried, as c_serial_isolation advises.
"""

import json
import re
import uuid
from collections import Counter

import pyarrow as pa

from s3rs_tui.runtime.checksum import STANDARD_TEXT, ChecksumDialect
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError, S3rsError, TransientError
from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.store import ObjectStore
from s3rs_tui.store.watermark import STATE_PREFIX
from s3rs_tui.warehouse.base import all_lines
from s3rs_tui.warehouse.datafiles import DataFile
from s3rs_tui.warehouse.fit import fits, load_copy
from s3rs_tui.warehouse.kinds.postgres import FIXED_TYPES, PostgresWarehouse
from s3rs_tui.warehouse.merge import FILE_COLUMN, STAGE, Target
from s3rs_tui.warehouse.typemap import Column, fixed_type

_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
# The newest view (serverless and provisioned) first, then the older provisioned-only table; the
# latest COPY of this session (session_id / session is the backend's process id).
_LOAD_ERRORS = (
    "SELECT TRIM(file_name), TRIM(column_name), error_code, TRIM(error_message) FROM sys_load_error_detail "
    "WHERE session_id = pg_backend_pid() AND query_id = (SELECT MAX(query_id) FROM sys_load_error_detail "
    "WHERE session_id = pg_backend_pid()) ORDER BY start_time LIMIT 3",
    "SELECT TRIM(filename), TRIM(colname), err_code, TRIM(err_reason) FROM stl_load_errors "
    "WHERE session = pg_backend_pid() AND query = (SELECT MAX(query) FROM stl_load_errors "
    "WHERE session = pg_backend_pid()) ORDER BY starttime LIMIT 3",
)
_SERIALIZABLE = re.compile(r"\b1023\b.*Serializable isolation violation", re.DOTALL)
MAX_VARCHAR = 65535  # bytes
MAX_VARBYTE = 1024000
_BLOB_BYTES = {"tinyblob": 255, "blob": 65535}
# Redshift's Parquet COPY goes through Spectrum, which has no timestamptz: the UTC wall time goes
# into a plain TIMESTAMP there.
_FIXED_TYPES = {**FIXED_TYPES, pa.timestamp("us", tz="UTC"): "timestamp without time zone"}


def redshift_type(column: Column) -> str:
    base, length, _ = column.mysql_base
    if pa.types.is_binary(column.arrow_type):
        size = length if base in ("binary", "varbinary") and length else _BLOB_BYTES.get(base, MAX_VARBYTE)
        return f"varbyte({size})"
    if base in ("varchar", "char") and length and pa.types.is_string(column.arrow_type):
        # Redshift VARCHAR lengths are bytes; utf8mb4 takes up to 4 per character.
        return f"character varying({min(4 * length, MAX_VARCHAR)})"
    if base == "decimal" and length and pa.types.is_string(column.arrow_type):
        return f"character varying({length + 2})"  # the exact text: sign, digits and the point
    # TEXT, JSON, ENUM, SET, TIME...
    return fixed_type(column, _FIXED_TYPES, "numeric({},{})") or f"character varying({MAX_VARCHAR})"


def byte_limit(column: Column) -> int | None:
    """The most bytes a value of this column may have in Redshift (VARCHAR and VARBYTE lengths are
    bytes), or None for types without a length."""
    match = re.match(r"^(?:character varying|varbyte)\((\d+)\)$", redshift_type(column))
    return int(match.group(1)) if match else None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def iam_role_clause(settings, store_url: str) -> str:
    """The COPY's IAM_ROLE argument; ConfigError when the settings cannot work at all."""
    role = settings.warehouse.iam_role
    if role and not _ROLE.match(role):
        raise ConfigError(f"config: warehouse.iam_role {role!r} is not an IAM role ARN "
                          "(arn:aws:iam::<account>:role/<name>)")
    if not store_url.startswith("s3://"):
        raise ConfigError("config: [warehouse] kind = \"redshift\" loads straight from S3: set [s3] bucket")
    return _literal(role) if role else "default"  # without a role: the cluster's default role


class RedshiftWarehouse(PostgresWarehouse):
    kind = "redshift"
    default_port = 5439
    checksum = ChecksumDialect(
        {**STANDARD_TEXT, "binary": "LOWER(TO_HEX({c}))"},
        "STRTOL(SUBSTRING({h}, 1, {n}), 16)", "TRUNC({k} / {n})", utc="SET TIME ZONE 'UTC'")

    @classmethod
    def check_config(cls, settings: Settings) -> None:
        if settings.s3.endpoint_url:
            raise ConfigError(f"config: [s3] endpoint_url ({settings.s3.endpoint_url}) cannot be used with "
                              "[warehouse] kind = \"redshift\": Redshift COPY reads only AWS S3 in its "
                              "region (use an AWS bucket there, or load into postgres or duckdb)")

    @classmethod
    def check_store(cls, settings: Settings, store: ObjectStore) -> None:
        iam_role_clause(settings, store.url)

    def __init__(self, settings, store, **kwargs):
        self.iam_role = iam_role_clause(settings, store.url)
        self.cut_values: Counter = Counter()  # per column, since the last notes()
        super().__init__(settings, store, **kwargs)

    @classmethod
    def column_type(cls, column: Column) -> str:
        return redshift_type(column)

    def catalog_name(self, name: str) -> str:
        return name.lower()

    def error_text(self, exc: Exception) -> str:
        return all_lines(exc)

    def translate(self, exc: Exception, sql: str) -> S3rsError:
        error = super().translate(exc, sql)
        if _SERIALIZABLE.search(str(error)):
            return TransientError(f"{error} (another transaction wrote the same table at once: retrying)")
        return error

    def table_options(self, target: Target) -> str:
        # Merges join on the key: distributing and sorting by it keeps that join local and cheap.
        if not target.keys:  # appended; rows of one file are deleted together
            return f" DISTSTYLE EVEN SORTKEY({quote_standard(FILE_COLUMN)})"
        keys = ", ".join(quote_standard(key) for key in target.keys)
        return f" DISTKEY({quote_standard(target.keys[0])}) SORTKEY({keys})"

    def manifest(self, objects: list[tuple[str, int]]) -> bytes:
        """The manifest of (key, size) objects: every one mandatory, with its size (Parquet needs it)."""
        entries = [{"url": self.store.url + key, "mandatory": True, "meta": {"content_length": size}}
                   for key, size in objects]
        return json.dumps({"entries": entries}, indent=1).encode()

    def fill_stage(self, files: list[DataFile]) -> None:
        copies: list[str] = []
        try:
            objects = []
            for data_file in files:
                copy = (None if fits(data_file, byte_limit)
                        else load_copy(self.store, data_file, byte_limit, self.cut_values))
                copies += [copy[0]] if copy else []
                objects.append(copy or (data_file.info.key, data_file.info.size))
            self._copy(objects)
        finally:
            for key in copies:
                self.store.delete(key)

    def _copy(self, objects: list[tuple[str, int]]) -> None:
        key = f"{STATE_PREFIX}manifests/{uuid.uuid4().hex}.manifest"
        self.store.put_bytes(key, self.manifest(objects))
        copy = (f"COPY {STAGE} FROM {_literal(self.store.url + key)} IAM_ROLE {self.iam_role} "
                "FORMAT AS PARQUET MANIFEST")
        try:
            self.run(copy)
        except TransientError:
            raise
        except S3rsError as exc:
            raise S3rsError(f"{exc}{self._load_errors()} (manifest {self.store.url}{key})") from None
        self.store.delete(key)

    def notes(self, target: Target) -> list[str]:
        if not self.cut_values:
            return []
        counts = ", ".join(f"{column}: {count}" for column, count in sorted(self.cut_values.items()))
        self.cut_values.clear()
        return [f"values longer than their Redshift column were cut to fit in {target.label} ({counts}); the "
                "backup files keep them whole (README: Loading into the warehouse)"]

    def _load_errors(self) -> str:
        """'; first load errors: ...' from Redshift's error views, or '' when they say nothing."""
        self.rollback()  # the failed COPY aborted the transaction: it runs no other query
        for query in _LOAD_ERRORS:
            try:
                rows = self.run(query)
            except S3rsError:
                self.rollback()
                continue
            if rows:
                return "; first load errors: " + "; ".join(
                    f"{name} column {column}: {code} {message}" for name, column, code, message in rows)
        return ""


ADAPTER = RedshiftWarehouse
