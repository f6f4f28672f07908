"""Settings: built-in defaults < TOML file < environment < command-line flags.

The file is `--config PATH`, else `$S3RS_CONFIG`, else `./s3rs.toml`, else none. Every scalar key
can also be set as `S3RS_<SECTION>_<KEY>` (S3RS_MYSQL_PASSWORD, S3RS_S3_BUCKET...); the older
system's names (BACKUP_BATCH_SIZE, S3_CHUNK_SIZE...) keep working. Each value remembers where it
came from, for `s3rs config` and the dashboard.
"""

import difflib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.runtime.parsing import check_identifier, parse_size, split_table_name

READERS = ("pymysql", "connectorx")
SSE_KINDS = ("", "AES256", "aws:kms")
REDACTED = "********"


def _positive(value: int) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def _not_negative(value: int | float) -> None:
    if value < 0:
        raise ValueError("must not be negative")


def _fraction(value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError("must be a fraction between 0 and 1 (like 0.8)")


def _one_of(choices: tuple[str, ...]) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")

    return check


def _ranges(value: int) -> None:
    if not 1 <= value <= 64:  # jobs/ranges.MAX_RANGES (config sits below jobs)
        raise ValueError("must be between 1 and 64")


def _identifier(value: str) -> None:
    check_identifier(value, "name")


def _port(value: int) -> None:
    if not 0 < value < 65536:
        raise ValueError("must be a port number (1-65535)")


def _port_or_off(value: int) -> None:
    if not 0 <= value < 65536:
        raise ValueError("must be a port number (1-65535), or 0 for none")


def _web_url(value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")


def setting(default: Any, *, env: tuple[str, ...] = (), check: Callable | None = None,
            secret: bool = False, size: bool = False, doc: str = "") -> Any:
    """A config field with its legacy environment names, validation and secrecy."""
    return field(default=default, metadata={"env": env, "check": check, "secret": secret,
                                            "size": size, "doc": doc})


@dataclass
class MySQLSettings:
    host: str = setting("127.0.0.1", doc="MySQL host (through the SSH tunnel when [ssh] is on)")
    port: int = setting(3306, check=_port)
    user: str = setting("root")
    password: str = setting("", secret=True, doc="prefer S3RS_MYSQL_PASSWORD")
    database: str = setting("", doc="default schema for table names without one")
    unix_socket: str = setting("", doc="connect through this socket instead of host/port")
    connect_timeout: int = setting(10, env=("DATABASE_CONNECTION_TIMEOUT",), check=_positive)
    ssl_ca: str = setting("", doc="CA file: TLS, the server's certificate and host name verified")


@dataclass
class SSHSettings:
    enabled: bool = setting(False,
                            doc="reach MySQL (and the warehouse with [warehouse] ssh) through a bastion")
    host: str = setting("", doc="the bastion")
    port: int = setting(22, check=_port)
    user: str = setting("")
    key_file: str = setting("", doc="private key file; its passphrase in S3RS_SSH_KEY_PASSPHRASE")
    key_passphrase: str = setting("", secret=True, doc="prefer S3RS_SSH_KEY_PASSPHRASE")
    known_hosts: str = setting("~/.ssh/known_hosts", doc="the bastion's host key must be listed here")
    check_host_key: bool = setting(True, doc="false accepts any host key: open to a man in the middle")
    keepalive_seconds: int = setting(15, check=_positive,
                                     doc="probe the bastion this often; 3 probes unanswered = dropped")
    connect_timeout: int = setting(10, check=_positive)


@dataclass
class S3Settings:
    bucket: str = setting("", doc="empty = store in local_path instead of S3")
    prefix: str = setting("s3rs/", doc="key prefix for data files and state")
    region: str = setting("us-east-1")
    endpoint_url: str = setting("", doc="for S3-compatible servers")
    local_path: str = setting("./s3rs-data", doc="local folder store when bucket is empty")
    access_key_id: str = setting("", secret=True, doc="else the usual AWS credential chain")
    secret_access_key: str = setting("", secret=True)
    max_concurrency: int = setting(4, env=("S3_MAX_CONCURRENCY",), check=_positive)
    chunk_size: int = setting(8 * 1024**2, env=("S3_CHUNK_SIZE",), check=_positive, size=True)
    multipart_threshold: int = setting(8 * 1024**2, env=("S3_MULTIPART_THRESHOLD",), check=_positive,
                                       size=True)
    timeout_seconds: int = setting(60, check=_positive,
                                   doc="an S3 request silent this long fails and is retried")
    sse: str = setting("", check=_one_of(SSE_KINDS), doc="server-side encryption: AES256 (SSE-S3) or aws:kms")
    sse_kms_key_id: str = setting(
        "", doc="with sse = aws:kms: the key id or ARN; empty = the account's aws/s3 key")


@dataclass
class WarehouseSettings:
    kind: str = setting("none", check=_identifier,
                       doc="none, or a warehouse kind: redshift, postgres, duckdb")
    host: str = setting("")
    port: int = setting(5439, check=_port, doc="Redshift's; PostgreSQL uses 5432 unless this is set")
    database: str = setting("")
    user: str = setting("")
    password: str = setting("", secret=True, doc="prefer S3RS_WAREHOUSE_PASSWORD")
    schema: str = setting("public", check=_identifier)
    iam_role: str = setting("", doc="Redshift COPY role ARN")
    path: str = setting("./s3rs.duckdb", doc="DuckDB file")
    ssh: bool = setting(False, doc="reach the warehouse through the [ssh] bastion too")
    ssl_ca: str = setting("", doc="CA file: TLS, the server's certificate and host name verified")


@dataclass
class BackupSettings:
    batch_size: int = setting(50000, env=("BACKUP_BATCH_SIZE",), check=_positive,
                              doc="rows per page read from MySQL")
    file_size_mb: int = setting(128, check=_not_negative,
                                doc="a file closes once it holds this much Parquet; 0 = a file per page")
    max_workers: int = setting(2, env=("BACKUP_MAX_WORKERS",), check=_positive)
    timeout_seconds: int = setting(3600, env=("BACKUP_TIMEOUT_SECONDS",), check=_positive,
                                   doc="a read or upload silent for this long fails and is retried")
    retry_attempts: int = setting(5, env=("BACKUP_RETRY_ATTEMPTS",), check=_not_negative)
    memory_limit_mb: int = setting(2048, env=("BACKUP_MEMORY_LIMIT_MB",), check=_positive,
                                   doc="over this RSS a run halves its batch size")
    gc_threshold: float = setting(0.8, env=("BACKUP_GC_THRESHOLD",), check=_fraction,
                                  doc="share of memory_limit_mb past which memory is freed")
    memory_check_interval: int = setting(5, env=("BACKUP_MEMORY_CHECK_INTERVAL",), check=_positive,
                                         doc="check RSS every this many chunks (10k rows)")
    safety_lag_seconds: int = setting(5, check=_not_negative,
                                      doc="rows newer than now minus this wait for the next run")
    lock_stale_seconds: int = setting(120, check=_positive,
                                      doc="a lock whose heartbeat is older than this is stale")
    reader: str = setting("pymysql", check=_one_of(READERS),
                          doc="connectorx is faster: pip install 's3rs-tui[fast]'")
    parallel_ranges: int = setting(1, check=_ranges,
                                   doc="progressive: split a first backfill into this many ranges, "
                                       "each read by a process of its own (1-64)")


@dataclass
class TableSettings:
    cursor_column: str = setting("update_at")
    key_column: str = setting("", doc="default: the table's primary key")
    key_columns: tuple = setting((), doc="a composite key, like [\"emp_no\", \"from_date\"]; "
                                         "default: the table's primary key")
    cursor_timezone: str = setting("",
                                   doc="time zone of a DATETIME cursor, like +08:00; default the server's")
    target: str = setting("", doc="warehouse table name; default the MySQL table name")

    @property
    def key_names(self) -> tuple[str, ...]:
        """The configured key, one column or several; () = the table's primary key."""
        return self.key_columns or ((self.key_column,) if self.key_column else ())


@dataclass
class MetricsSettings:
    port: int = setting(0, check=_port_or_off,
                        doc="serve Prometheus metrics on this port while a run goes; 0 = no endpoint")
    address: str = setting("127.0.0.1", doc="the endpoint's address; 0.0.0.0 to be scraped from elsewhere")
    textfile: str = setting("", doc="also write them to this .prom file (node-exporter's textfile collector)")
    interval_seconds: int = setting(15, check=_positive, doc="rewrite the textfile this often")


@dataclass
class NotifySettings:
    command: str = setting("", doc="run this (no shell) with the message as JSON on stdin")
    webhook_url: str = setting("", check=_web_url, secret=True, doc="POST the message as JSON here")
    on_failure: bool = setting(True, doc="a run failed")
    on_finish: bool = setting(True, doc="a run ended without failing: done, or stopped")
    stall_seconds: int = setting(1800, check=_not_negative,
                                 doc="a run that stored no file for this long is stalled; 0 = never say")
    timeout_seconds: int = setting(10, check=_positive, doc="a command or webhook call gets this long")


SECTIONS = ("mysql", "ssh", "s3", "warehouse", "backup", "metrics", "notify")


@dataclass
class Settings:
    mysql: MySQLSettings = field(default_factory=MySQLSettings)
    ssh: SSHSettings = field(default_factory=SSHSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    tables: dict[str, TableSettings] = field(default_factory=dict)
    config_path: Path | None = None
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # for the operator: risky but working settings

    def table(self, name: str) -> tuple[str, str, TableSettings]:
        """(database, table, settings) for `db.table` or `table`; unknown tables get defaults."""
        try:
            database, table = split_table_name(name, self.mysql.database)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return database, table, self.tables.get(f"{database}.{table}", TableSettings())

    def override(self, key: str, value: Any, source: str = "flag") -> None:
        """Apply a command-line flag such as ('backup.batch_size', 1000); validated like the rest."""
        section, name = key.split(".")
        _assign(getattr(self, section), name, value, f"{source} for {key}", self.sources, key, source)

    def secret_values(self) -> list[str]:
        """The secrets in force (passwords, keys, the webhook URL): what a message must never carry."""
        sections = [getattr(self, section) for section in SECTIONS]
        return [value for obj in sections for f in fields(obj)
                if f.metadata.get("secret") and (value := getattr(obj, f.name))]

    def redacted(self) -> dict[str, dict[str, Any]]:
        """Every setting with secrets masked: what `s3rs config` and the dashboard show."""
        out: dict[str, dict[str, Any]] = {}
        for section in SECTIONS:
            obj = getattr(self, section)
            out[section] = {f.name: _shown(f, getattr(obj, f.name)) for f in fields(obj)}
        for name, table in self.tables.items():
            out[f"tables.{name}"] = {f.name: getattr(table, f.name) for f in fields(table)}
        return out


def _shown(f, value: Any) -> Any:
    return REDACTED if f.metadata.get("secret") and value else value


def find_config_file(explicit: str | None, environ: dict[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if environ.get("S3RS_CONFIG"):
        return Path(environ["S3RS_CONFIG"])
    default = Path("s3rs.toml")
    return default if default.exists() else None


def _no_config_file() -> ConfigError:
    return ConfigError(f"config: no config file: no --config, S3RS_CONFIG is not set, and there is no "
                       f"s3rs.toml in {Path.cwd()}; copy config.example.toml to s3rs.toml and edit it "
                       "(or try `s3rs demo`)")


def load_settings(config_path: str | None = None, environ: dict[str, str] | None = None, *,
                  require_file: bool = False) -> Settings:
    """Build the settings in force; any invalid value raises ConfigError naming its key.
    `require_file`: no config file found is an error (built-in defaults only suit `s3rs config`)."""
    environ = dict(os.environ if environ is None else environ)
    path = find_config_file(config_path, environ)
    if path is None and require_file:
        raise _no_config_file()
    document = _read_toml(path) if path else {}
    settings = Settings(config_path=path)
    for section in SECTIONS:
        values = document.pop(section, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config: [{section}] must be a table of keys")
        _fill_section(getattr(settings, section), section, values, environ, settings.sources)
    settings.tables = _read_tables(document.pop("tables", {}), settings)
    if document:
        unknown = sorted(document)[0]
        raise ConfigError(f"config: unknown section [{unknown}] in {path}"
                          f"{_closest(unknown, (*SECTIONS, 'tables'))}")
    _check_key_pair(settings)
    settings.warnings = _warnings(settings)
    return settings


def _check_key_pair(settings: Settings) -> None:
    """An S3 key id without its secret (or the other way round) is half a credential: boto3
    would fail on the first request with an error naming neither setting."""
    s3 = settings.s3
    if bool(s3.access_key_id) != bool(s3.secret_access_key):
        given, missing = (("access_key_id", "secret_access_key") if s3.access_key_id
                          else ("secret_access_key", "access_key_id"))
        raise ConfigError(f"config: s3.{given} is set but s3.{missing} is not (S3RS_S3_{missing.upper()}): "
                          "set both, or neither to use the usual AWS credential chain")


def _secrets_in_file(settings: Settings) -> list[str]:
    return [key for section in SECTIONS for f in fields(getattr(settings, section))
            if f.metadata.get("secret") and getattr(getattr(settings, section), f.name)
            and settings.sources.get(key := f"{section}.{f.name}") == "file"]


def _warnings(settings: Settings) -> list[str]:
    """Settings that work but put the data at risk: said on every command, never fatal."""
    found = []
    secrets, path = _secrets_in_file(settings), settings.config_path
    if secrets and path and path.stat().st_mode & 0o077:
        found.append(f"{path} holds secrets ({', '.join(secrets)}) and other users may read it "
                     f"(mode {path.stat().st_mode & 0o777:o}): chmod 600 {path}, "
                     "or move them to the environment (S3RS_MYSQL_PASSWORD...)")
    if settings.ssh.enabled and not settings.ssh.check_host_key:
        found.append("[ssh] check_host_key = false: the bastion's identity is not checked")
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None


def _fill_section(obj: Any, section: str, values: dict[str, Any], environ: dict[str, str],
                  sources: dict[str, str]) -> None:
    known = {f.name: f for f in fields(obj)}
    for name in values:
        if name not in known:
            raise ConfigError(f"config: unknown key {section}.{name}{_closest(name, known)}")
    for name, f in known.items():
        key = f"{section}.{name}"
        sources[key] = "default"
        if name in values:
            _assign(obj, name, values[name], f"config key {key}", sources, key, "file")
        for env_name in (f"S3RS_{section}_{name}".upper(), *f.metadata["env"]):
            if env_name in environ:
                _assign(obj, name, environ[env_name], f"{env_name} (for {key})", sources, key,
                        f"env {env_name}")
                break


def _closest(name: str, known) -> str:
    """ " (did you mean batch_size?)" for a misspelt name, or nothing."""
    found = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {found[0]}?)" if found else ""


def _assign(obj: Any, name: str, raw: Any, label: str, sources: dict[str, str], key: str,
            source: str) -> None:
    f = next(f for f in fields(obj) if f.name == name)
    try:
        value = _coerce(raw, type(f.default), f.metadata.get("size", False))
        if f.metadata.get("check"):
            f.metadata["check"](value)
    except ValueError as exc:
        shown = REDACTED if f.metadata.get("secret") else repr(raw)
        raise ConfigError(f"config: {label} {exc} (got {shown})") from None
    setattr(obj, name, value)
    sources[key] = source


def _coerce(raw: Any, kind: type, is_size: bool) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("must be true or false")
    if kind is float:
        try:
            return float(str(raw).strip())
        except ValueError:
            raise ValueError("must be a number") from None
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError("must be a whole number")
        if is_size:
            return parse_size(raw)
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind is tuple:
        parts = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(parts, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in parts):
            raise ValueError("must be a list of names")
        return tuple(part.strip() for part in parts)
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise ValueError("must be a string")
    return str(raw)


def _read_tables(tables: Any, settings: Settings) -> dict[str, TableSettings]:
    if not isinstance(tables, dict):
        raise ConfigError("config: [tables] must hold [tables.\"database.table\"] sections")
    result = {}
    for name, values in tables.items():
        try:
            database, table = split_table_name(name, settings.mysql.database)
        except ValueError as exc:
            raise ConfigError(f"config: [tables.\"{name}\"]: {exc}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config: [tables.\"{name}\"] must be a table of keys")
        spec = TableSettings()
        _fill_section(spec, f"tables.{name}", values, {}, {})
        _check_table_names(name, spec)
        result[f"{database}.{table}"] = spec
    return result


def _check_table_names(name: str, spec: TableSettings) -> None:
    if spec.key_column and spec.key_columns:
        raise ConfigError(f"config: tables.{name}: set key_column (one column) or key_columns (several), "
                          "not both")
    if len(set(column.lower() for column in spec.key_columns)) != len(spec.key_columns):
        raise ConfigError(f"config: tables.{name}.key_columns names a column twice")
    names = [("cursor_column", spec.cursor_column, "column name"),
             ("key_column", spec.key_column, "column name"),
             *(("key_columns", column, "column name") for column in spec.key_columns),
             ("target", spec.target, "table name")]
    for column_key, value, what in names:
        if value:
            try:
                check_identifier(value, what)
            except ValueError as exc:
                raise ConfigError(f"config: tables.{name}.{column_key}: {exc}") from None
