"""Exceptions that carry the documented exit code, so every command ends the same way, and the
advice that fits them (the dashboard's error dialog shows it: what to do next depends on the kind).

Exit codes: 0 done, 1 failed but safe to rerun, 2 bad usage/input/config, 3 table locked,
130 stopped by the operator.
"""


class S3rsError(Exception):
    """An error the operator should see as one line; `exit_code` is what the process returns."""

    exit_code = 1
    advice = "Safe to retry: the watermark covers exactly the stored files; press s to resume."


class ConfigError(S3rsError):
    """Invalid configuration or command-line input: nothing was changed."""

    exit_code = 2
    advice = "Fix the configuration or the table, then try again (o shows the config)."


class TableError(S3rsError):
    """The table cannot be backed up as asked (missing, no key, no cursor column...)."""

    exit_code = 2
    advice = ConfigError.advice


class WatermarkError(S3rsError):
    """The stored watermark is corrupt or unreadable; it is never overwritten silently."""

    exit_code = 2
    advice = "Fix the watermark, or replace it: watermark screen (w), set or force-reset."


class TableLockedError(S3rsError):
    """Another run holds the table's lock."""

    exit_code = 3
    advice = "Another run holds the table: wait for it, or break its lock if you know it is dead."


class TransientError(S3rsError):
    """A failure worth retrying (connection lost, S3 5xx or timeout); a rerun resumes."""

    exit_code = 1


class LoadError(S3rsError):
    """The warehouse load failed; the files stay stored and its ledger holds what was loaded."""

    advice = ("The backup is stored; only the load failed: fix the warehouse (see the message), then "
              "press s: the sync finds nothing new and loads the files not loaded yet.")


class VerifyDiffers(S3rsError):
    """`verify` compared MySQL and the warehouse and found rows that differ (exit 1)."""

    advice = ("Retrying changes nothing: the keys that differ are in the log. Make MySQL re-send those "
              "rows (touch their cursor column, or watermark screen w: set before them), sync, verify again.")


class RunTimedOut(S3rsError):
    """A run went past its time limit and stopped at a file boundary, watermark saved."""

    exit_code = 1


class StoppedByOperator(S3rsError):
    """Ctrl+C, SIGTERM or SIGHUP: the watermark covers exactly what is stored."""

    exit_code = 130
    advice = "Start the sync again (s) to resume from the watermark."
