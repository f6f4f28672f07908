"""What each dashboard panel says about a table: (label, value) rows computed from TableStatus
and the stored watermark. Pure functions, so the live dashboard and `watch` read alike."""

from dataclasses import asdict

from s3rs_tui.cli.common import human_bytes
from s3rs_tui.status.model import TableStatus
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


def position(timestamp: str | None, key: object) -> str:
    return "-" if timestamp is None else f"{timestamp} / {key}"


def throughput(status: TableStatus) -> Rows:
    return [("now", f"{number(status.rows_per_minute_now)} rows/min"),
            ("avg", f"{number(status.rows_per_minute)} rows/min"),
            ("for", duration(status.elapsed_seconds))]


def progress(status: TableStatus) -> Rows:
    share = status.progress
    rows = [("state", status.state), ("rows", f"{number(status.rows)} / ~{number(status.estimated_rows)}"),
            ("done", ("-" if share is None else f"{share:.0%}") + f", ETA {duration(status.eta_seconds)}")]
    if status.chunk:  # a progressive run: its chunk, and all its chunks' rows
        rows += [("chunk", status.chunk),
                 ("all", f"{number(status.chunk_rows + (status.rows if status.active else 0))}"
                         f" / ~{number(status.chunk_estimate)}")]
    return [*rows, ("note", status.error)] if status.error else rows


def memory(status: TableStatus, limit_mb: int) -> Rows:
    return [("RSS", f"{status.rss_mb:,.0f} / {limit_mb:,} MB"), ("peak", f"{status.peak_rss_mb:,.0f} MB")]


def storage(status: TableStatus) -> Rows:
    return [("files", number(status.files)), ("bytes", human_bytes(status.bytes)),
            ("last", status.last_file.rsplit("/", 1)[-1] or "-"), ("store", status.store_url or "-")]


def warehouse(status: TableStatus, kind: str) -> Rows:
    if kind == "none" and not status.load_state:
        return [("warehouse", "none configured")]
    return [("files", number(status.loaded_files)), ("rows", number(status.loaded_rows)),
            ("last", status.last_load.rsplit("/", 1)[-1] or "-"), ("state", status.load_state or "-")]


# The Watermark panel's short names for the document's fields (the watermark screen shows the real ones).
SHORT_NAMES = {"table_name": "table", "last_mysql_data_timestamp": "timestamp", "last_mysql_data_id": "id",
               "last_mysql_extraction_time": "extracted", "mysql_status": "status",
               "redshift_status": "wh status", "mysql_rows_extracted": "rows",
               "redshift_rows_loaded": "wh rows",
               "backup_strategy": "strategy", "s3_file_count": "files", "processed_s3_files": "loaded",
               "created_at": "created", "updated_at": "updated", "last_s3_file": "last file",
               "cursor_column": "cursor", "key_column": "key"}


def document(stored: Watermark) -> Rows:
    """Every field of a watermark document, by its real name."""
    def shown(name: str, value: object) -> str:
        if name == "processed_s3_files" and isinstance(value, list):
            return f"{len(value)} files"
        return "-" if value is None else str(value)

    return [(name, shown(name, value)) for name, value in asdict(stored).items()]


def watermark(status: TableStatus, stored: Watermark | None) -> Rows:
    """Every field of the stored document; while a run goes, its position is the live one (it moves
    with each file, before the next read of the document)."""
    if stored is None:
        live = [("timestamp", str(status.watermark_timestamp)), ("id", str(status.watermark_id))]
        nothing = ("stored", "none yet: the next sync starts from the beginning")
        return [*live, nothing] if status.active else [nothing]
    moving = {"last_mysql_data_timestamp": str(status.watermark_timestamp),
              "last_mysql_data_id": str(status.watermark_id)} if status.active else {}
    return [(SHORT_NAMES.get(name, name), moving.get(name, value)) for name, value in document(stored)]
