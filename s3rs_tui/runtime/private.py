"""Files only their owner may read or write: state, snapshots and logs name hosts, tables and
positions, and a log may hold a driver's message quoting data."""

import os
from pathlib import Path
from typing import IO

_FLAGS = {"a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC}


def open_private(path: Path, mode: str = "a", **options) -> IO:
    """open() for "a"/"w" (text) or "ab"/"wb": created 0600, and an older file made 0600 too."""
    fd = os.open(path, _FLAGS[mode[0]], 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode, **options)
