"""The object store on a local folder, with the same atomicity and durability promises as S3.

Every write goes to a temp file in `root/.s3rs-tmp/` (same filesystem), is fsynced, then renamed
or hard-linked into place and the folder fsynced: after a crash a key holds its old content or its
new content, never a torn file. Compare-and-swap runs under an flock so processes cannot both win.
"""

import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from s3rs_tui.runtime.errors import S3rsError
from s3rs_tui.store.base import ObjectInfo

SCRATCH = ".s3rs-tmp"
_LOCK = ".lock"
_STALE_SECONDS = 3600
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)  # as S3 would say NoSuchKey


def disk_error(exc: OSError) -> S3rsError:
    """A local disk that failed under a run (full, over quota, read-only) as one line that says the
    way forward. Nothing is lost: every write here is atomic and the watermark trails the files."""
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    where = f" ({exc.filename})" if exc.filename else ""
    what = "the local disk is full" if full else f"local disk error: {exc.strerror or exc}"
    return S3rsError(f"{what}{where}: {'free space' if full else 'fix it'}, then rerun; the watermark "
                     "covers every stored file and nothing stored is damaged")


def _parts(key: str) -> list[str]:
    """Split a key into folder names, refusing anything that could land outside the store."""
    parts = key.split("/")
    if key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid store key {key!r}: use relative '/'-separated names without '..'")
    return parts


def _fsync_dir(folder: Path) -> None:
    """Make renames, links and unlinks in `folder` survive a power loss."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """Keys are files under `root/prefix`; the tag is the content's sha256."""

    def __init__(self, root: Path, prefix: str):
        self.root = Path(os.path.abspath(root))
        folder = prefix.strip("/")
        self.base = self.root.joinpath(*_parts(folder)) if folder else self.root
        self.url = str(self.base)
        self._scratch = self.root / SCRATCH
        self._ensure_dir(self._scratch)
        self._ensure_dir(self.base)
        self._remove_stale_temps()

    def scratch_dir(self) -> Path:
        return self._scratch

    def put_file(self, key: str, path: Path) -> int:
        final = self._path(key)
        self._ensure_dir(final.parent)
        _fsync_file(path)  # the rename must never expose data that is not on disk yet
        try:
            os.replace(path, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with open(path, "rb") as source:
                self._write_temp_then(final, lambda out: shutil.copyfileobj(source, out), os.replace)
            os.unlink(path)
        _fsync_dir(final.parent)
        return final.stat().st_size

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        with self._locked():
            self._write(final, data)

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except _ABSENT:
            return None
        return data, _tag(data)

    def get_tail(self, key: str, length: int) -> bytes | None:
        try:
            with open(self._path(key), "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - length))
                return handle.read()
        except _ABSENT:
            return None

    def download(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def create(self, key: str, data: bytes) -> str | None:
        final = self._path(key)
        self._ensure_dir(final.parent)
        try:
            self._write_temp_then(final, lambda out: out.write(data), os.link)
        except FileExistsError:
            return None
        _fsync_dir(final.parent)
        return _tag(data)

    def replace(self, key: str, data: bytes, tag: str) -> str | None:
        final = self._path(key)
        with self._locked():
            current = self.get_bytes(key)
            if current is None or current[1] != tag:
                return None
            self._write(final, data)
        return _tag(data)

    def delete(self, key: str) -> None:
        final = self._path(key)
        with self._locked():  # so a delete cannot slip between replace's compare and its write
            try:
                final.unlink()
            except _ABSENT:
                return
        _fsync_dir(final.parent)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        folder = prefix.rpartition("/")[0]
        start = self._path(folder) if folder else self.base
        found = []
        for dirpath, dirnames, filenames in os.walk(start):
            current = Path(dirpath)
            dirnames[:] = [name for name in dirnames if current / name != self._scratch]
            for name in filenames:
                key = (current / name).relative_to(self.base).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        for key in sorted(found):
            try:
                stat = (self.base / key).stat()
            except FileNotFoundError:  # deleted while we listed
                continue
            yield ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def _path(self, key: str) -> Path:
        path = self.base.joinpath(*_parts(key))
        if path == self._scratch or self._scratch in path.parents:
            raise ValueError(f"invalid store key {key!r}: {SCRATCH} is reserved")
        return path

    def _write(self, final: Path, data: bytes) -> None:
        self._ensure_dir(final.parent)
        self._write_temp_then(final, lambda out: out.write(data), os.replace)
        _fsync_dir(final.parent)

    def _write_temp_then(self, final: Path, fill: Callable[[BinaryIO], object],
                         place: Callable[[str, Path], None]) -> None:
        """Fill a durable temp file, then `place` it at `final` (os.replace or os.link)."""
        fd, temp = tempfile.mkstemp(dir=self._scratch, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            place(temp, final)
        finally:
            with suppress(FileNotFoundError):  # os.replace already moved it
                os.unlink(temp)

    def _ensure_dir(self, folder: Path) -> None:
        """mkdir -p that fsyncs each new folder's parent, so a crash cannot lose the folder."""
        missing = []
        while not folder.is_dir() and folder != folder.parent:
            missing.append(folder)
            folder = folder.parent
        for new in reversed(missing):
            with suppress(FileExistsError):
                new.mkdir()
            _fsync_dir(new.parent)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._scratch / _LOCK, "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _remove_stale_temps(self) -> None:
        """Temp files left by a crash; anything touched within the hour may still be in use."""
        cutoff = time.time() - _STALE_SECONDS
        for entry in os.scandir(self._scratch):
            try:
                if entry.name != _LOCK and entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except FileNotFoundError:  # another process cleaned it first
                pass
