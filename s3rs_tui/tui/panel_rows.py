"""What each dashboard panel says about a table: (label, value) rows computed from TableStatus
and the stored watermark. Pure functions, so the live dashboard and `watch` read alike."""


from s3rs_tui.runtime.keys import Key
from s3rs_tui.status.model import TableStatus
from s3rs_tui.status.text import human_bytes
from s3rs_tui.store.watermark import Watermark

Rows = list[tuple[str, str]]


def number(value: float) -> str:
    return f"{value:,.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def position(timestamp: str | None, key: Key) -> str:
    return "-" if timestamp is None else f"{timestamp} / {key}"


def state(status: TableStatus) -> str:
    """The state word, with the phase that failed ("failed: load")."""
    if status.state == "failed" and status.failed_phase:
        return f"failed: {status.failed_phase}"
    return status.state


def rows_done(status: TableStatus) -> str:
    """Rows read by the job (all chunks of a progressive run), "~" before an estimated total."""
    total = status.expected_rows
    if not total and not status.job_rows:
        return "0"
    return f"{number(status.job_rows)} / {'' if status.total_is_exact else '~'}{number(total)}"


STALL_SECONDS = 2  # progress comes twice a second while rows flow: a longer silence is shown


def throughput(status: TableStatus, now: float | None = None) -> Rows:
    """Rates (none "now" while paused), the run's time, and how long since the engine last said
    something: between events the time goes on ticking, and a stall is a growing "last progress"."""
    rate_now = status.rate_now
    since = status.since_progress(now)
    silent = since if since is not None and since >= STALL_SECONDS else 0.0
    rows = [("now", "-" if rate_now is None else f"{number(rate_now)}/min"),  # rows: the panel's unit
            ("avg", f"{number(status.rows_per_minute)}/min"),
            ("for", duration(status.elapsed_seconds + silent))]
    if status.paused_seconds or status.state == "paused":
        rows.append(("paused", duration(status.paused_seconds + (silent if status.state == "paused" else 0))))
    if since is not None:
        rows.append(("last", f"progress {since:.0f}s ago" if silent else "progress just now"))
    return rows


def progress(status: TableStatus) -> Rows:
    share = status.progress
    rows = [("state", state(status)), ("rows", rows_done(status)),
            ("done", ("-" if share is None else f"{share:.0%}") + f", ETA {duration(status.eta_seconds)}")]
    if status.chunk:  # before the file: at 80x24 the chunk line is the one that must show
        rows.append(("chunk", status.chunk))
    if status.active and status.file_rows:
        rows.append(("file", f"{number(status.file_rows)} not stored yet"))
    if status.verify_result:
        rows.append(("verify", status.verify_result))
    if status.reconcile:  # short rows: the panel is a quarter of 80 columns
        rows.append(("ranges", status.reconcile))
        if status.reconcile_found:
            rows.append(("found", status.reconcile_found))
    return [*rows, ("note", status.error)] if status.error else rows


def memory(status: TableStatus, limit_mb: int) -> Rows:
    return [("RSS", f"{status.rss_mb:,.0f} / {limit_mb:,} MB"), ("peak", f"{status.peak_rss_mb:,.0f} MB")]


def storage(status: TableStatus) -> Rows:
    return [("files", number(status.files)), ("bytes", human_bytes(status.bytes)),
            ("last", status.last_file.rsplit("/", 1)[-1] or "-"), ("store", status.store_url or "-")]


def warehouse(status: TableStatus, kind: str) -> Rows:
    """Loaded counts are row versions: a row updated twice in MySQL is loaded (and merged) twice."""
    if kind == "none" and not status.load_state:
        return [("warehouse", "none configured")]
    return [("files", number(status.loaded_files)), ("row versions", number(status.loaded_rows)),
            ("last", status.last_load.rsplit("/", 1)[-1] or "-"), ("state", status.load_state or "-")]


def history(status: TableStatus) -> Rows:
    """The table's last runs, newest first: when it ended, outcome, rows, time."""
    if not status.last_runs:
        return [("runs", "none yet")]
    return [(run.get("ended_at", "-")[5:16], f"{run.get('outcome', '-')}, {number(run.get('rows', 0))} rows, "
                                             f"{duration(run.get('seconds'))}") for run in status.last_runs]


# The Watermark panel's short names for the document's fields (the watermark screen shows the real ones).
SHORT_NAMES = {"table_name": "table", "last_mysql_data_timestamp": "timestamp", "last_mysql_data_id": "id",
               "last_mysql_extraction_time": "extracted", "mysql_status": "status",
               "redshift_status": "wh status", "mysql_rows_extracted": "rows",
               "redshift_rows_loaded": "wh rows",
               "backup_strategy": "strategy", "s3_file_count": "files", "processed_s3_files": "loaded",
               "created_at": "created", "updated_at": "updated", "last_s3_file": "last file",
               "cursor_column": "cursor", "key_column": "key", "last_mysql_data_key": "ids"}


def document(stored: Watermark) -> Rows:
    """Every field of a watermark document, by its real name (a composite key's values only when
    there are some: most tables have a one-column key, in last_mysql_data_id)."""
    def shown(name: str, value: object) -> str:
        if name == "processed_s3_files" and isinstance(value, list):
            return f"{len(value)} files"
        if name == "ranges" and isinstance(value, list):
            return f"{len(value)} ({sum(bool(r['done']) for r in value)} done)"
        if name == "last_mysql_data_key" and isinstance(value, list):
            return ", ".join(str(part) for part in value)
        return "-" if value is None else str(value)

    return [(name, shown(name, value)) for name, value in stored.document().items()
            if name != "last_mysql_data_key" or value is not None]


def watermark(status: TableStatus, stored: Watermark | None) -> Rows:
    """Every field of the stored document; while a run goes, its position is the durable one of
    its last stored file (it moves with each file, before the next read of the document), and the
    position read so far, not durable yet, is a separate row."""
    reading = [("read to", position(status.position_timestamp, status.position_id))] \
        if status.active and status.file_rows else []
    if stored is None:
        live = [("timestamp", str(status.watermark_timestamp)), ("id", str(status.watermark_id))] \
            if status.active and status.watermark_timestamp is not None else []
        return live + reading + [("stored", "none yet: the next sync starts from the beginning")]
    key_field = "last_mysql_data_id" if stored.last_mysql_data_key is None else "last_mysql_data_key"
    moving = {"last_mysql_data_timestamp": str(status.watermark_timestamp),
              key_field: str(status.watermark_id)} \
        if status.active and status.watermark_timestamp is not None else {}
    return [(SHORT_NAMES.get(name, name), moving.get(name, value)) for name, value in document(stored)] \
        + reading
