"""A strict Redshift stand-in: PostgreSQL underneath, Redshift's rules on top.

Redshift cannot run here, so tests talk to this instead: a psycopg2-shaped connection that checks
every statement the way Redshift would refuse it, runs what passes in a real PostgreSQL, and runs
COPY ... FORMAT AS PARQUET itself from the moto S3 server. Each rule cites the page of Amazon's
Redshift Database Developer Guide it comes from (docs.aws.amazon.com/redshift/latest/dg/<page>.html):

- r_names: quoted and unquoted identifiers are folded to lower case (enable_case_sensitive_identifier
  is off by default): CREATE TABLE "public"."Orders" makes orders, and the catalog knows no 'Orders'.
- r_Character_types: VARCHAR(n) counts bytes, at most 65535. r_VARBYTE_type: VARBYTE(n) at most
  16,777,216 bytes. Both are enforced by COPY: one value too long fails the whole COPY.
- copy-usage_notes-copy-from-columnar: only ACCEPTINVCHARS, FILLRECORD, FROM, IAM_ROLE, CREDENTIALS,
  STATUPDATE, MANIFEST and EXPLICIT_IDS go with a columnar COPY; columns map by position and the
  counts must match; any error fails the COPY and comes back to the client (some reach
  STL_LOAD_ERRORS). loading-data-files-using-manifest: Parquet entries need meta.content_length.
- The Parquet types a column accepts: Spectrum does no coercion (knowledge-center
  redshift-spectrum-data-errors: "has an incompatible Parquet schema for column ..."), so each
  Redshift type takes the physical + logical types below, read from each file's own footer.
- PG_LAST_COPY_ID: set when the COPY starts loading; not kept when its transaction rolls back.
  SYS_LOAD_ERROR_DETAIL / r_STL_LOAD_ERRORS: system logs (not rolled back) with session_id/session.
- c_serial_isolation (c_serial_isolation-serializable-isolation-troubleshooting): "ERROR:1023
  DETAIL: Serializable isolation violation on table"; the answer is to retry the transaction.
  `fail_serializable(pattern)` makes the next statement matching `pattern` fail so.
- Every statement must parse with sqlglot's Redshift dialect, must not use PostgreSQL-only syntax
  (_DENIED), and may call only functions Redshift has (_FUNCTIONS, c_SQL_functions).
"""

import contextlib
import io
import itertools
import json
import re
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlglot
from conftest import s3_client
from sqlglot import exp

from s3rs_tui.warehouse.kinds.postgres import _csv

MAX_VARCHAR = 65535        # r_Character_types
MAX_VARBYTE = 16_777_216   # r_VARBYTE_type
COLUMNAR_PARAMETERS = {"ACCEPTINVCHARS", "FILLRECORD", "IAM_ROLE", "CREDENTIALS", "STATUPDATE", "MANIFEST",
                       "EXPLICIT_IDS"}  # copy-usage_notes-copy-from-columnar (FROM and FORMAT besides)

# PostgreSQL syntax Redshift does not have (outside string literals).
_DENIED = {
    r"\bON\s+CONFLICT\b": "ON CONFLICT (Redshift has no upsert clause: r_INSERT_30)",
    r"\bFROM\s+STDIN\b": "COPY FROM STDIN (Redshift COPY reads S3, DynamoDB, EMR or SSH: r_COPY)",
    r"\bSTRING_AGG\s*\(": "string_agg (Redshift has LISTAGG)",
    r"\bGENERATE_SERIES\s*\(": "generate_series (leader node only)",
    r"::\s*reg\w+": "reg* casts (PostgreSQL object identifier types)",
    r"\bAS\s+bit\s*\(": "BIT(n) (Redshift has no bit string types: c_Supported_data_types)",
    r"\bRETURNING\b": "RETURNING",
    r"\b(bytea|jsonb|uuid|bigserial|serial)\b": "a PostgreSQL-only type (c_Supported_data_types)",
    r"\bencode\s*\(": "encode() (not a Redshift function)",
    r"\bdiv\s*\(": "div() (not a Redshift function)",
}
# Functions the statements may call: all in the Redshift function reference (c_SQL_functions),
# named as sqlglot calls them (STRTOL parses as FROM_BASE, TO_HEX as HEX or LOWER_HEX).
_FUNCTIONS = {"COUNT", "SUM", "MIN", "MAX", "MD5", "FROM_BASE", "SUBSTRING", "LOWER", "UPPER", "HEX",
              "LOWER_HEX", "TRUNC", "ROW_NUMBER", "TRIM", "COALESCE", "CAST", "TO_CHAR", "TIME_TO_STR",
              "CONCAT", "DPIPE", "PG_LAST_COPY_ID", "PG_BACKEND_PID", "FORMAT_TYPE"}
_COMMANDS = re.compile(r"^SET TIME ZONE '[^']*'$", re.IGNORECASE)  # statements sqlglot keeps as text

_SETUP = """
CREATE SCHEMA IF NOT EXISTS redshift_sys;
-- SYS_LOAD_ERROR_DETAIL and r_STL_LOAD_ERRORS (the columns the loader reads, with their types)
CREATE TABLE IF NOT EXISTS redshift_sys.sys_load_error_detail (query_id bigint, session_id integer,
    start_time timestamp, file_name character(256), column_name character(127), error_code integer,
    error_message character(512));
CREATE TABLE IF NOT EXISTS redshift_sys.stl_load_errors (query integer, session integer, starttime timestamp,
    filename character(256), colname character(127), err_code integer, err_reason character(100));
-- PG_LAST_COPY_ID: -1 before any COPY in the session
CREATE OR REPLACE FUNCTION redshift_sys.pg_last_copy_id() RETURNS integer LANGUAGE sql STABLE AS
    $$ SELECT coalesce(nullif(current_setting('redshift.last_copy_id', true), ''), '-1')::integer $$;
-- STRTOL(num_string, base) (r_STRTOL): the string read as a number in base 2..36
CREATE OR REPLACE FUNCTION redshift_sys.strtol(text, integer) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE total bigint := 0; digit integer; ch text;
BEGIN
    FOREACH ch IN ARRAY regexp_split_to_array(lower($1), '') LOOP
        digit := strpos('0123456789abcdefghijklmnopqrstuvwxyz', ch) - 1;
        IF digit < 0 OR digit >= $2 THEN RETURN NULL; END IF;
        total := total * $2 + digit;
    END LOOP;
    RETURN total;
END $$;
-- TO_HEX(varbyte) (r_TO_HEX): the bytes as hexadecimal text
CREATE OR REPLACE FUNCTION redshift_sys.to_hex(bytea) RETURNS text LANGUAGE sql IMMUTABLE AS
    $$ SELECT pg_catalog.encode($1, 'hex') $$;
-- the catalog spells a VARBYTE(n) column varbyte(n) (here a domain redshift_sys.varbyte_<n>)
CREATE OR REPLACE FUNCTION redshift_sys.format_type(oid, integer) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN t.typnamespace = 'redshift_sys'::regnamespace AND t.typname LIKE 'varbyte\\_%'
                THEN 'varbyte(' || substr(t.typname, 9) || ')' ELSE pg_catalog.format_type($1, $2) END
    FROM pg_catalog.pg_type t WHERE t.oid = $1 $$;
"""


class StandInError(psycopg2.errors.InternalError_):
    """An error as Redshift sends it: the whole server text, DETAIL lines included."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    @property
    def pgerror(self):
        return self.text

    @property
    def pgcode(self):
        return "XX000"


@dataclass
class Cluster:
    """One Redshift database: the PostgreSQL database under it and what the tests can inspect."""

    pg: object          # the conftest Warehouse
    s3_endpoint: str
    statements: list[str] = field(default_factory=list)
    manifests: list[dict] = field(default_factory=list)
    serializable: list[str] = field(default_factory=list)  # patterns of statements to fail with 1023
    connections: list["Connection"] = field(default_factory=list)

    def __post_init__(self):
        self.s3 = s3_client(self.s3_endpoint)
        self.query_ids = itertools.count(5000)
        self.admin = psycopg2.connect(**self.pg.server.connect_args(self.pg.name))
        self.admin.autocommit = True  # system logs and domains: outside any load's transaction
        with self.admin.cursor() as cur:
            cur.execute(_SETUP)

    def connect(self, **_) -> "Connection":
        self.connections.append(Connection(self))
        return self.connections[-1]

    def fail_serializable(self, pattern: str) -> None:
        self.serializable.append(pattern)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.admin.close()

    def system(self, sql: str, params=()) -> None:
        with self.admin.cursor() as cur:
            cur.execute(sql, params)


class Connection:
    """psycopg2's connection surface (autocommit, cursor, commit, rollback, close)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.real = psycopg2.connect(**cluster.pg.server.connect_args(cluster.pg.name))
        self.real.autocommit = True
        with self.real.cursor() as cur:  # Redshift's default search_path, plus its system objects
            cur.execute('SET search_path TO "$user", public, redshift_sys')
        self.session = self.real.get_backend_pid()

    @property
    def autocommit(self):
        return self.real.autocommit

    @autocommit.setter
    def autocommit(self, value):
        self.real.autocommit = value

    def commit(self):
        self.real.commit()

    def rollback(self):
        self.real.rollback()

    def close(self):
        self.real.close()

    def cursor(self):
        return Cursor(self)


class Cursor:
    def __init__(self, conn: Connection):
        self.conn, self.cluster, self.real = conn, conn.cluster, conn.real.cursor()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    @property
    def description(self):
        return self.real.description

    def fetchall(self):
        return self.real.fetchall()

    def execute(self, sql, params=None):
        text = self.real.mogrify(sql, params).decode() if params else sql
        self.cluster.statements.append(text)
        try:
            check_redshift_sql(text)
        except StandInError as refused:  # as any error, it aborts the transaction
            self._fail(refused.text)
        for pattern in self.cluster.serializable:
            if re.search(pattern, text):
                self.cluster.serializable.remove(pattern)
                self._fail(f"ERROR:  1023\nDETAIL:  Serializable isolation violation on table - 100342, "
                           f"transactions forming the cycle are: 7711, 7712 (pid:{self.conn.session})")
        if re.match(r"^\s*COPY\b", text, re.IGNORECASE):
            return self._copy(text)
        for size in set(re.findall(r"\bvarbyte\s*\((\d+)\)", text, re.IGNORECASE)):
            self.cluster.system(f"DO $$ BEGIN CREATE DOMAIN redshift_sys.varbyte_{int(size)} AS bytea; "
                                "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        return self.real.execute(_translate(text))

    def _fail(self, text: str):
        """Abort the transaction for real (later statements are refused until ROLLBACK), then answer."""
        if not self.conn.real.autocommit:
            with contextlib.suppress(psycopg2.Error):
                self.real.execute("SELECT 1 / 0")
        raise StandInError(text)

    # -- COPY ... FORMAT AS PARQUET [MANIFEST] ------------------------------------------------

    def _copy(self, text: str):
        match = re.match(r"^\s*COPY\s+(\S+)\s+FROM\s+'([^']*)'\s+(.*)$", text, re.IGNORECASE | re.DOTALL)
        if not match:
            self._fail("ERROR:  syntax error at or near \"COPY\"")
        table, source, options = match.groups()
        params = _copy_parameters(options)
        if params.pop("FORMAT", None) != "PARQUET":
            self._fail("ERROR:  this stand-in runs only FORMAT AS PARQUET")
        for name in params:
            if name not in COLUMNAR_PARAMETERS:  # copy-usage_notes-copy-from-columnar
                self._fail(f"ERROR:  {name} argument is not supported for PARQUET based COPY")
        if "IAM_ROLE" not in params and "CREDENTIALS" not in params:
            self._fail("ERROR:  Invalid credentials. Must be of the format: credentials "
                       "'aws_iam_role=...' or 'aws_access_key_id=...;aws_secret_access_key=...'")
        columns = self._columns(_fold(table))
        urls = self._manifest(source) if "MANIFEST" in params else [(source, None)]
        query = next(self.cluster.query_ids)
        # PG_LAST_COPY_ID is set once the load starts; a rollback takes it back (it is a SET)
        self.real.execute("SELECT set_config('redshift.last_copy_id', %s, false)", (str(query),))
        for url, length in urls:
            data = self._object(url, length)
            failure = check_parquet(data, columns, url)
            if failure:
                self._load_error(query, url, *failure)
            names = ", ".join(f'"{name}"' for name, _ in columns)
            for batch in pq.ParquetFile(io.BytesIO(data)).iter_batches():
                self.real.copy_expert(f"COPY {_fold(table)} ({names}) FROM STDIN WITH (FORMAT csv)",
                                      io.BytesIO(_csv(batch)))

    def _columns(self, table: str) -> list[tuple[str, str]]:
        self.real.execute("SELECT a.attname, redshift_sys.format_type(a.atttypid, a.atttypmod) "
                          "FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 "
                          "AND NOT a.attisdropped ORDER BY a.attnum", (table,))
        rows = self.real.fetchall()
        if not rows:
            self._fail(f'ERROR:  relation "{table}" does not exist')
        return rows

    def _manifest(self, url: str) -> list[tuple[str, int]]:
        """loading-data-files-using-manifest: entries of url, mandatory, meta.content_length."""
        try:
            manifest = json.loads(self._object(url, None))
        except ValueError:
            self._fail(f"ERROR:  Manifest file is not in correct json format: {url}")
        self.cluster.manifests.append(manifest)
        entries = []
        for entry in manifest.get("entries", []):
            length = (entry.get("meta") or {}).get("content_length")
            if not isinstance(length, int):
                self._fail(f"ERROR:  Manifest entry {entry.get('url')} has no meta.content_length, which "
                           "COPY from Parquet requires")
            if entry.get("mandatory") is not True:  # a missing file would be skipped without a word
                self._fail(f"ERROR:  stand-in policy: manifest entry {entry.get('url')} must be mandatory")
            entries.append((entry["url"], length))
        if not entries:
            self._fail("ERROR:  Manifest file has no entries")
        return entries

    def _object(self, url: str, length: int | None) -> bytes:
        bucket, key = url[len("s3://"):].split("/", 1)
        try:
            data = self.cluster.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.cluster.s3.exceptions.NoSuchKey:
            self._fail(f"ERROR:  Problem reading manifest file - S3ServiceException:The specified key does "
                       f"not exist.,Status 404,Error NoSuchKey\nDETAIL:  {url}")
        if length is not None and length != len(data):
            self._fail(f"ERROR:  Spectrum Scan Error\nDETAIL:  File '{url}' has content_length {length} in "
                       f"the manifest but is {len(data)} bytes")
        return data

    def _load_error(self, query: int, url: str, column: str, code: int, reason: str, context: str):
        """Record the error in the system logs (they outlive the rollback), then fail the COPY."""
        for table, reason_size in (("sys_load_error_detail", 512), ("stl_load_errors", 100)):
            self.cluster.system(f"INSERT INTO redshift_sys.{table} VALUES (%s, %s, now(), %s, %s, %s, %s)",
                                (query, self.conn.session, url, column, code, reason[:reason_size]))
        self._fail("ERROR:  Spectrum Scan Error\nDETAIL:  \n"
                   "  -----------------------------------------------\n"
                   "  error:  Spectrum Scan Error\n"
                   f"  code:      {code}\n"
                   f"  context:   {context}\n"
                   f"  query:     {query}\n"
                   "  location:  dory_util.cpp:1509\n"
                   f"  process:   worker_thread [pid={self.conn.session}]\n"
                   "  -----------------------------------------------\n")


def _copy_parameters(options: str) -> dict[str, str]:
    """COPY's parameters by name (FORMAT AS PARQUET -> {'FORMAT': 'PARQUET'}; IAM_ROLE takes one value)."""
    tokens = re.findall(r"'(?:[^']|'')*'|\S+", options)
    params, i = {}, 0
    while i < len(tokens):
        name = tokens[i].upper()
        if name == "FORMAT":
            i += 2 if i + 1 < len(tokens) and tokens[i + 1].upper() == "AS" else 1
            params["FORMAT"] = tokens[i].upper() if i < len(tokens) else ""
        elif name in ("IAM_ROLE", "CREDENTIALS", "REGION", "MAXERROR", "STATUPDATE", "ACCEPTINVCHARS"):
            params[name] = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 1
        else:
            params[name] = ""
        i += 1
    return params


# -- what a Parquet column may load into (Spectrum: no coercion) ------------------------------------

def accepts(column: pq.ColumnSchema, redshift_type: str) -> bool:
    """Does a Redshift column of `redshift_type` take this Parquet column (physical + logical type)?"""
    physical, logical = column.physical_type, json.loads(column.logical_type.to_json())
    kind, base = logical.get("Type"), redshift_type.split("(")[0].strip()
    if kind == "Decimal":  # NUMERIC(p,s) must match the file's precision and scale exactly
        return redshift_type == f"numeric({logical['precision']},{logical['scale']})"
    if kind == "Timestamp":  # no timestamptz in Spectrum; nanoseconds are misread (year 161065)
        return (base == "timestamp without time zone"
                and logical["timeUnit"] in ("milliseconds", "microseconds"))
    if kind == "Int":
        if not logical["isSigned"]:
            return False  # Redshift has no unsigned integers
        widths = {"smallint": 16, "integer": 32, "bigint": 64}
        return base in widths and logical["bitWidth"] <= widths[base]
    allowed = {("BOOLEAN", "None"): ("boolean",), ("INT32", "None"): ("integer", "bigint"),
               ("INT64", "None"): ("bigint",), ("FLOAT", "None"): ("real",),
               ("DOUBLE", "None"): ("double precision",), ("INT32", "Date"): ("date",),
               ("INT96", "None"): ("timestamp without time zone",),
               ("BYTE_ARRAY", "String"): ("character varying", "character"),
               ("BYTE_ARRAY", "None"): ("varbyte",)}
    return base in allowed.get((physical, kind), ())


def check_parquet(data: bytes, columns: list[tuple[str, str]], url: str) -> tuple | None:
    """(column, code, reason, context) of the first thing Redshift would refuse in this file, or None."""
    parquet = pq.ParquetFile(io.BytesIO(data))
    schema = parquet.schema  # the file's own footer: physical and logical types
    if len(schema) != len(columns):
        return ("", 15001, "Unmatched number of columns",
                f"Unmatched number of columns between table and file. Table columns: {len(columns)}, "
                f"Data columns: {len(schema)}, File name: {url}")
    for index, (name, redshift_type) in enumerate(columns):
        column = schema.column(index)
        if not accepts(column, redshift_type):
            return (name, 15007, "incompatible Parquet schema",
                    f"File '{url}' has an incompatible Parquet schema for column '{url}.{column.name}'. "
                    f"Column type: {redshift_type.upper()}, Parquet schema:\n{column.physical_type} "
                    f"{column.logical_type}")
    table = parquet.read()
    for index, (name, redshift_type) in enumerate(columns):
        limit = re.match(r"^(?:character varying|character|varbyte)\((\d+)\)$", redshift_type)
        if not limit:
            continue
        values = table.column(index)
        longest = pc.max(pc.binary_length(values.cast(pa.binary()))).as_py() or 0
        if longest > int(limit.group(1)):  # r_Character_types: lengths in bytes
            return (name, 15007, "The length of the data column is longer than the length defined",
                    f"The length of the data column {name} is longer than the length defined in the table. "
                    f"Table: {limit.group(1)}, Data: {longest}. File: {url}")
    return None


# -- statements ---------------------------------------------------------------------------------

def _outside_literals(sql: str, change) -> str:
    """Apply `change` to the parts of `sql` outside '...' literals."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    return "".join(part if part.startswith("'") else change(part) for part in parts)


def _fold_names(part: str) -> str:
    """r_names: "Orders" is orders (quoted identifiers are folded to lower case too)."""
    return re.sub(r'"([^"]*)"', lambda m: f'"{m.group(1).lower()}"', part)


def _fold(sql: str) -> str:
    return _outside_literals(sql, _fold_names)


def check_redshift_sql(sql: str) -> None:
    """Refuse what Redshift would not run: sqlglot's Redshift dialect, a deny-list, allowed functions."""
    if _COMMANDS.match(sql.strip()):
        return
    bare = re.sub(r"('(?:[^']|'')*')", "''", sql)  # literals emptied: only the SQL itself is checked
    for pattern, what in _DENIED.items():
        if re.search(pattern, bare, re.IGNORECASE):
            raise StandInError(f"ERROR:  not Redshift SQL: {what}\nSTATEMENT: {sql}")
    try:
        tree = sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        raise StandInError(f"ERROR:  syntax error (sqlglot, Redshift dialect): {exc}") from None
    if isinstance(tree, exp.Command):
        raise StandInError(f"ERROR:  statement sqlglot's Redshift dialect does not know: {sql}")
    for function in tree.find_all(exp.Func):
        if isinstance(function, (exp.Binary, exp.Connector, exp.Unary, exp.Predicate)):
            continue  # operators (AND, =, ||...), not functions
        name = function.name.upper() if isinstance(function, exp.Anonymous) else function.sql_name()
        if name not in _FUNCTIONS:
            raise StandInError(f"ERROR:  function {name} is not on the stand-in's list of Redshift functions")
    for size in re.findall(r"character varying\((\d+)\)|varchar\((\d+)\)", bare, re.IGNORECASE):
        if int(size[0] or size[1]) > MAX_VARCHAR:
            raise StandInError(f"ERROR:  length for type varchar cannot exceed {MAX_VARCHAR}")
    for size in re.findall(r"varbyte\((\d+)\)", bare, re.IGNORECASE):
        if int(size) > MAX_VARBYTE:
            raise StandInError(f"ERROR:  length for type varbyte cannot exceed {MAX_VARBYTE}")


def _translate(sql: str) -> str:
    """Redshift's spelling for the PostgreSQL underneath: folded names, VARBYTE(n) as a domain,
    no DISTKEY or DISTSTYLE, no SORTKEY, the catalog's format_type that knows VARBYTE."""
    def change(part: str) -> str:
        part = _fold_names(part)
        part = re.sub(r"\s*(DISTKEY\s*\([^)]*\)|DISTSTYLE\s+(EVEN|ALL|AUTO))\s*SORTKEY\s*\([^)]*\)\s*$", "",
                      part, flags=re.IGNORECASE)
        part = re.sub(r"\bformat_type\s*\(", "redshift_sys.format_type(", part, flags=re.IGNORECASE)
        return re.sub(r"\bvarbyte\s*\((\d+)\)", lambda m: f"redshift_sys.varbyte_{int(m.group(1))}", part,
                      flags=re.IGNORECASE)

    return _outside_literals(sql, change)

