"""Exceptions that carry the documented exit code, so every command ends the same way.

Exit codes: 0 done, 1 failed but safe to rerun, 2 bad usage/input/config, 3 table locked,
130 stopped by the operator.
"""


class S3rsError(Exception):
    """An error the operator should see as one line; `exit_code` is what the process returns."""

    exit_code = 1


class ConfigError(S3rsError):
    """Invalid configuration or command-line input: nothing was changed."""

    exit_code = 2


class TableError(S3rsError):
    """The table cannot be backed up as asked (missing, no key, no cursor column...)."""

    exit_code = 2


class WatermarkError(S3rsError):
    """The stored watermark is corrupt or unreadable; it is never overwritten silently."""

    exit_code = 2


class TableLockedError(S3rsError):
    """Another run holds the table's lock."""

    exit_code = 3


class TransientError(S3rsError):
    """A failure worth retrying (connection lost, S3 5xx or timeout); a rerun resumes."""

    exit_code = 1


class RunTimedOut(S3rsError):
    """A run went past its time limit and stopped at a file boundary, watermark saved."""

    exit_code = 1


class StoppedByOperator(S3rsError):
    """Ctrl+C, SIGTERM or SIGHUP: the watermark covers exactly what is stored."""

    exit_code = 130
