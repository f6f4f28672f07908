"""Temporary folders owned by a live process, so the next run removes what a killed one left.

A run killed with SIGKILL (or by the OOM killer) cannot remove its scratch folder: a restore's
holds a copy of the table's files, so every such kill would leave gigabytes behind. Each folder
made here holds an `.owner` file that its process keeps locked (flock) while it lives; the kernel
drops the lock when the process dies, however it dies. Making a folder first removes the folders
of the same prefix whose `.owner` nobody holds. A folder without an `.owner` (being made, or not
ours) is left alone: the lock is taken before the file gets its name.
"""

import fcntl
import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO

OWNER = ".owner"


class OwnedFolder:
    """A fresh temporary folder `<parent>/<prefix>XXXXXXXX`, locked as ours until `remove()`."""

    def __init__(self, prefix: str, parent: Path | None = None):
        where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        remove_orphans(where, prefix)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=where))
        self._owner: IO[str] | None = open(self.path / f"{OWNER}.new", "w")  # noqa: SIM115 - held until remove()
        fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner.write(f"{os.getpid()}\n")
        self._owner.flush()
        os.rename(self.path / f"{OWNER}.new", self.path / OWNER)  # named once locked

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self.remove()


def remove_orphans(parent: Path, prefix: str) -> list[Path]:
    """Remove the owned folders `<parent>/<prefix>*` whose process is gone; the ones removed."""
    removed = []
    for folder in sorted(parent.glob(f"{glob.escape(prefix)}*")):
        try:
            owner = open(folder / OWNER, "rb")  # noqa: SIM115 - closed below, after the removal
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue  # not an owned folder (or not ours to touch)
        with owner:
            try:
                fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process lives
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
