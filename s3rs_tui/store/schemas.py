"""A table's own definition (`SHOW CREATE TABLE`), kept in the store per schema change, so a
restore can create the table as MySQL had it, indexes, defaults and character sets included.

Each backup run compares the definition it reads with the newest one stored and writes a new
object only when it differs: `_state/schemas/<db>.<table>/<captured UTC>-<sha>.sql`. The stamp
first makes names sort in the order captured (a table changed A -> B -> A gets a third object,
so the newest is always the one in force); the hash is of the definition without its
AUTO_INCREMENT counter, which moves with every insert and is not a schema change.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from s3rs_tui.store.base import ObjectStore
from s3rs_tui.store.watermark import STATE_PREFIX

_STAMP = "%Y%m%dT%H%M%S%f"
_COUNTER = re.compile(r" AUTO_INCREMENT=\d+")


@dataclass(frozen=True)
class Definition:
    key: str
    captured: datetime  # timezone-aware UTC
    sql: str


def definitions_prefix(table_name: str) -> str:
    return f"{STATE_PREFIX}schemas/{table_name}/"


def normalized(sql: str) -> str:
    """The definition without the table's AUTO_INCREMENT counter."""
    return _COUNTER.sub("", sql.strip())


def _digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def _captured(key: str) -> datetime:
    return datetime.strptime(key.rsplit("/", 1)[1].split("-")[0], _STAMP).replace(tzinfo=UTC)


def save_definition(store: ObjectStore, table_name: str, sql: str) -> str | None:
    """Store `sql` when it is not the newest stored definition; the new key, or None."""
    sql = normalized(sql)
    digest = _digest(sql)
    keys = [info.key for info in store.list(definitions_prefix(table_name)) if info.key.endswith(".sql")]
    if keys and keys[-1].endswith(f"-{digest}.sql"):
        return None
    key = f"{definitions_prefix(table_name)}{datetime.now(UTC).strftime(_STAMP)}-{digest}.sql"
    store.put_bytes(key, sql.encode() + b"\n")
    return key


def definition_at(store: ObjectStore, table_name: str, moment: datetime | None = None) -> Definition | None:
    """The newest definition captured at or before `moment` (UTC; None: the newest of all); the
    oldest one when all are later; None when none is stored."""
    keys = [info.key for info in store.list(definitions_prefix(table_name)) if info.key.endswith(".sql")]
    if not keys:
        return None
    chosen = keys[-1]
    if moment is not None:
        chosen = next((key for key in reversed(keys) if _captured(key) <= moment), keys[0])
    found = store.get_bytes(chosen)
    if found is None:  # removed while we looked: the caller falls back as if none were stored
        return None
    return Definition(chosen, _captured(chosen), found[0].decode())
