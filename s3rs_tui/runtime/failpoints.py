"""Named fail points: a process that stops and waits at one exact moment, so a test can SIGKILL it there.

`S3RS_FAILPOINT=after-upload` (or `after-upload:3`, the 3rd time that point is reached) makes the
process announce the point, then sleep forever: the test kills it with SIGKILL, which skips every
`finally`, rollback and lock release, as a real death does. The announcement is a line on stderr and,
when `S3RS_FAILPOINT_FILE` names a path, that file written atomically. The environment is read once,
at import; unset, `failpoint()` is one comparison.

Points (README "Faults and what happens"): mid-page, mid-file, after-upload, after-watermark,
after-copy, after-merge, lock-heartbeat, reconcile-stored, restore-batch.
"""

import os
import sys
import threading

_lock = threading.Lock()
_seen: dict[str, int] = {}


def _wanted(spec: str) -> tuple[str, int] | None:
    name, _, nth = spec.strip().partition(":")
    if nth and not nth.isdigit():
        sys.stderr.write(f"s3rs: S3RS_FAILPOINT={spec!r}: expected <point> or <point>:<n>\n")
        raise SystemExit(2)
    return (name, int(nth) if nth else 1) if name else None


_WANTED = _wanted(os.environ.get("S3RS_FAILPOINT", ""))
_MARKER = os.environ.get("S3RS_FAILPOINT_FILE", "")


def failpoint(name: str) -> None:
    """Stop here for good when S3RS_FAILPOINT names this point (and this is its n-th time)."""
    if _WANTED is None or _WANTED[0] != name:
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] != _WANTED[1]:
            return
        _announce(name, _WANTED[1])
    threading.Event().wait()  # until SIGKILL


def _announce(name: str, nth: int) -> None:
    line = f"s3rs failpoint {name}:{nth} reached (pid {os.getpid()})\n"
    sys.stderr.write(line)
    sys.stderr.flush()
    if _MARKER:
        temporary = f"{_MARKER}.{os.getpid()}.tmp"
        with open(temporary, "w") as marker:
            marker.write(line)
        os.replace(temporary, _MARKER)
