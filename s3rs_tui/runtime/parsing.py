"""Parsers for what operators type: durations, timestamps, sizes and SQL identifiers.

Each raises ValueError with a message fit to show as is; callers add which flag or key it was.
"""

import re
from datetime import datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f",
                      "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
# Plain MySQL identifiers only: letters, digits, _ and $. Anything else (quotes, spaces, `;`)
# is refused before it can reach SQL, even though we also quote every identifier we emit.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_$]{1,64}")


def parse_duration(text: str) -> timedelta:
    """'30m', '12h', '7d' -> timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, like 30m, 12h or 7d")
    amount, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit.lower()]: int(amount)})


def parse_timestamp(text: str) -> str:
    """Validate 'YYYY-MM-DD HH:MM:SS[.ffffff]' and return it in MySQL's canonical form."""
    for fmt in _TIMESTAMP_FORMATS:
        try:
            value = datetime.strptime(str(text).strip(), fmt)
        except ValueError:
            continue
        return format_timestamp(value)
    raise ValueError(f"invalid timestamp {text!r}: use 'YYYY-MM-DD HH:MM:SS' (optionally .ffffff)")


def format_timestamp(value: datetime) -> str:
    """MySQL literal for a datetime; microseconds only when there are some."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")


def parse_size(text: str | int) -> int:
    """Bytes from 8388608, '8MB', '8M' or '64KiB'."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"invalid size {text!r}: use bytes or a unit, like 8MB")
    amount, unit = match.groups()
    return int(amount) * _SIZE_UNITS[(unit or "")[:1].lower()]


def check_identifier(name: str, what: str = "identifier") -> str:
    """Refuse anything but a plain MySQL identifier (so `x; DROP TABLE y` never reaches SQL)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"invalid {what} {name!r}: only letters, digits, _ and $ are allowed")
    return name


def quote_identifier(name: str) -> str:
    """Backtick-quote a checked identifier."""
    return "`" + check_identifier(name).replace("`", "``") + "`"


def quote_standard(name: str) -> str:
    """Double-quote a checked identifier, the SQL standard's way (PostgreSQL, Redshift, DuckDB)."""
    return f'"{check_identifier(name)}"'


def split_table_name(name: str, default_database: str) -> tuple[str, str]:
    """'db.table' or 'table' (in the configured database) -> (database, table), both checked."""
    parts = str(name).split(".")
    if len(parts) == 1 and default_database:
        parts = [default_database, parts[0]]
    if len(parts) != 2:
        raise ValueError(f"invalid table {name!r}: use database.table (or set [mysql] database)")
    return check_identifier(parts[0], "database name"), check_identifier(parts[1], "table name")
