"""PostgreSQL: files stream into the staging table with COPY FROM STDIN (CSV made by Arrow).

Also the connection, catalog and error handling Redshift shares (it speaks the same protocol):
through the [ssh] tunnel with `[warehouse] ssh = true`, TLS verified (`verify-full`) against
`[warehouse] ssl_ca`, and TCP keepalives so a silently dropped connection fails instead of hanging.
"""

import io
import os

import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv

from s3rs_tui.runtime.checksum import STANDARD_TEXT, ChecksumDialect
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError, S3rsError, TransientError
from s3rs_tui.runtime.parsing import quote_standard
from s3rs_tui.runtime.tunnel import Notify, tunnel_to
from s3rs_tui.store import ObjectStore
from s3rs_tui.warehouse.base import Warehouse, first_line
from s3rs_tui.warehouse.datafiles import DataFile, read_batches
from s3rs_tui.warehouse.merge import STAGE
from s3rs_tui.warehouse.typemap import Column, fixed_type

_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")  # NULL unquoted, '' quoted
# Arrow types with one obvious column type, spelled as format_type() reports them.
FIXED_TYPES = {
    pa.int8(): "smallint", pa.int16(): "smallint", pa.int32(): "integer", pa.int64(): "bigint",
    pa.bool_(): "boolean", pa.float32(): "real", pa.float64(): "double precision", pa.date32(): "date",
    pa.timestamp("us"): "timestamp without time zone",
    pa.timestamp("us", tz="UTC"): "timestamp with time zone",
}


def postgres_type(column: Column) -> str:
    base, length, scale = column.mysql_base
    if pa.types.is_binary(column.arrow_type):
        return "bytea"
    if base in ("varchar", "char") and length and pa.types.is_string(column.arrow_type):
        return f"character varying({length})"  # PostgreSQL counts characters, as MySQL does
    if base == "decimal" and length and pa.types.is_string(column.arrow_type):
        return f"numeric({length},{scale or 0})"  # wider than 38 digits: PostgreSQL's numeric holds it
    return fixed_type(column, FIXED_TYPES, "numeric({},{})") or "text"


class PostgresWarehouse(Warehouse):
    kind = "postgres"
    default_port = 5432
    driver_error = psycopg2.Error
    checksum = ChecksumDialect(
        {**STANDARD_TEXT, "binary": "encode({c}, 'hex')"},
        "CAST(CAST('x' || substr({h}, 1, {n}) AS bit({bits})) AS bigint)", "div({k}, {n})",
        utc="SET TIME ZONE 'UTC'")

    def __init__(self, settings: Settings, store: ObjectStore, connect=psycopg2.connect,
                 notify: Notify | None = None):
        warehouse = settings.warehouse
        super().__init__(settings, store)
        explicit = settings.sources.get("warehouse.port", "default") != "default"
        port = warehouse.port if explicit else self.default_port
        self.label = f"{self.kind} at {warehouse.host}:{port}/{warehouse.database}"
        # libpq connects to hostaddr and checks the certificate against host: the real name, tunnel or not
        address = {"host": warehouse.host, "port": port}
        if warehouse.ssh:
            if not settings.ssh.enabled:
                raise ConfigError("[warehouse] ssh = true needs the tunnel: set [ssh] enabled = true")
            tunnel = tunnel_to(settings.ssh, warehouse.host, port)
            local, port = tunnel.address(notify or (lambda message: None))
            address = {"host": warehouse.host, "hostaddr": local, "port": port}
            self.label += f" through {settings.ssh.host}"
        tls = ({"sslmode": "verify-full", "sslrootcert": _ca_file(warehouse.ssl_ca)} if warehouse.ssl_ca
               else {})
        try:
            self.conn = connect(**address, dbname=warehouse.database, user=warehouse.user,
                                password=warehouse.password, connect_timeout=10, application_name="s3rs",
                                **tls, **_KEEPALIVES)
        except psycopg2.Error as exc:
            error = ConfigError if "certificate" in str(exc) else TransientError  # a bad one stays bad
            raise error(f"cannot connect to the warehouse ({self.label}): {first_line(exc)}") from None
        self.conn.autocommit = True

    def translate(self, exc: Exception, sql: str) -> S3rsError:
        if isinstance(exc, psycopg2.OperationalError):  # the connection is gone: a rerun can work
            return TransientError(f"lost the warehouse connection ({self.label}): {first_line(exc)}")
        return super().translate(exc, sql)

    def execute(self, sql: str, params: list) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params) or None)
            return cur.fetchall() if cur.description else []

    def begin(self) -> None:
        self.conn.autocommit = False

    def commit(self) -> None:
        self.conn.commit()
        self.conn.autocommit = True

    def rollback(self) -> None:
        try:
            self.conn.rollback()
            self.conn.autocommit = True
        except psycopg2.Error:
            pass

    def close(self) -> None:
        self.conn.close()

    @classmethod
    def column_type(cls, column: Column) -> str:
        return postgres_type(column)

    def describe_sql(self) -> str:
        return ("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
                "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid "
                "JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum")

    def fill_stage(self, files: list[DataFile]) -> None:
        names = ", ".join(quote_standard(column.name) for column in files[0].columns)
        copy = f"COPY {STAGE} ({names}) FROM STDIN WITH (FORMAT csv)"
        for data_file in files:
            for batch in read_batches(self.store, data_file.info.key):
                with self.errors(copy), self.conn.cursor() as cur:
                    cur.copy_expert(copy, io.BytesIO(_csv(batch)))


def _ca_file(path: str) -> str:
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ConfigError(f"[warehouse] ssl_ca {path}: no such file")
    return path


def _csv(batch: pa.RecordBatch) -> bytes:
    """CSV text PostgreSQL's COPY reads back exactly; binary columns as bytea hex ('\\x...')."""
    columns = [pa.array([None if value is None else "\\x" + value.hex() for value in column.to_pylist()],
                        pa.string()) if pa.types.is_binary(column.type) else column
               for column in batch.columns]
    out = io.BytesIO()
    pacsv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), out, _CSV)
    return out.getvalue()


ADAPTER = PostgresWarehouse
