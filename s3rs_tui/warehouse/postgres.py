"""PostgreSQL: files stream into the staging table with COPY FROM STDIN (CSV made by Arrow).

Also the connection, catalog and error handling Redshift shares (it speaks the same protocol).
"""

import io
from contextlib import contextmanager
from typing import Iterator

import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv

from s3rs_tui.config import Settings
from s3rs_tui.errors import S3rsError, TransientError
from s3rs_tui.store import ObjectStore
from s3rs_tui.warehouse.base import Warehouse
from s3rs_tui.warehouse.datafiles import DataFile, read_batches
from s3rs_tui.warehouse.merge import STAGE, quote
from s3rs_tui.warehouse.typemap import Column, postgres_type

_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")  # NULL unquoted, '' quoted


def _first_line(exc: Exception) -> str:
    text = (getattr(exc, "pgerror", None) or str(exc) or type(exc).__name__).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PostgresWarehouse(Warehouse):
    kind = "postgres"
    default_port = 5432

    def __init__(self, settings: Settings, store: ObjectStore, connect=psycopg2.connect):
        warehouse = settings.warehouse
        super().__init__(warehouse.schema, store)
        explicit = settings.sources.get("warehouse.port", "default") != "default"
        port = warehouse.port if explicit else self.default_port
        self.label = f"{self.kind} at {warehouse.host}:{port}/{warehouse.database}"
        try:
            self.conn = connect(host=warehouse.host, port=port, dbname=warehouse.database,
                                user=warehouse.user, password=warehouse.password, connect_timeout=10,
                                application_name="s3rs")
        except psycopg2.Error as exc:
            raise TransientError(f"cannot connect to the warehouse ({self.label}): {_first_line(exc)}") from None
        self.conn.autocommit = True

    @contextmanager
    def _errors(self, sql: str) -> Iterator[None]:
        """Driver errors leave as one line naming the statement's first words."""
        try:
            yield
        except psycopg2.OperationalError as exc:
            raise TransientError(f"lost the warehouse connection ({self.label}): {_first_line(exc)}") from None
        except psycopg2.Error as exc:
            raise S3rsError(f"warehouse error ({self.label}) in {' '.join(sql.split()[:3])}...: "
                            f"{_first_line(exc)}") from None

    def run(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._errors(sql), self.conn.cursor() as cur:
            cur.execute(sql, tuple(params) or None)
            return cur.fetchall() if cur.description else []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.autocommit = False
        try:
            yield
            with self._errors("COMMIT"):
                self.conn.commit()
        except BaseException:
            try:
                self.conn.rollback()
            except psycopg2.Error:  # the connection is gone: the server rolls back by itself
                pass
            raise
        finally:
            try:
                self.conn.autocommit = True
            except psycopg2.Error:
                pass

    def close(self) -> None:
        self.conn.close()

    def column_type(self, column: Column) -> str:
        return postgres_type(column)

    def describe_sql(self) -> str:
        return ("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
                "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid "
                "JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
                "ORDER BY a.attnum")

    def fill_stage(self, files: list[DataFile]) -> None:
        names = ", ".join(quote(column.name) for column in files[0].columns)
        copy = f"COPY {STAGE} ({names}) FROM STDIN WITH (FORMAT csv)"
        for data_file in files:
            for batch in read_batches(self.store, data_file.info.key):
                with self._errors(copy), self.conn.cursor() as cur:
                    cur.copy_expert(copy, io.BytesIO(_csv(batch)))


def _csv(batch: pa.RecordBatch) -> bytes:
    """CSV text PostgreSQL's COPY reads back exactly; binary columns as bytea hex ('\\x...')."""
    columns = [pa.array([None if value is None else "\\x" + value.hex() for value in column.to_pylist()],
                        pa.string()) if pa.types.is_binary(column.type) else column
               for column in batch.columns]
    out = io.BytesIO()
    pacsv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), out, _CSV)
    return out.getvalue()
