"""The tables list: one row per table with its state (a word, coloured by kind: never colour
alone), the verify result when there is one, rows done, rows/min and last watermark. The row
under the cursor is the table the panels, keys and screens act on."""

from rich.text import Text
from textual.widgets import DataTable

from s3rs_tui.status.model import TableStatus
from s3rs_tui.tui.panel_rows import number, position, state

COLUMNS = ("table", "state", "rows", "rows/min", "watermark")

# one colour per kind of state (the shared vocabulary in the dashboard's status model)
STATE_STYLES = {
    **dict.fromkeys(("starting", "running", "extracting", "storing", "loading", "verifying"), "bold cyan"),
    **dict.fromkeys(("pausing", "paused", "stopping"), "bold magenta"),
    **dict.fromkeys(("done", "verified"), "bold green"),
    **dict.fromkeys(("differs", "stale"), "bold yellow"),
    **dict.fromkeys(("failed", "locked"), "bold red"),
}


def state_cell(status: TableStatus) -> Text:
    """`failed: load`, `differs: 3 ranges, 12 keys`, `verified (agrees)`: the state word, the
    failed phase, the verify result."""
    word, result = state(status), status.verify_result
    if result and status.state != "failed":
        word = result if result.startswith(status.state) else f"{status.state} ({result})"
    return Text(word, style=STATE_STYLES.get(status.state, ""))


class TablesList(DataTable):
    def __init__(self, *, id: str):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.border_title = "Tables"

    def on_mount(self) -> None:
        for column in COLUMNS:
            self.add_column(column, key=column)

    @property
    def selected(self) -> str | None:
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def show(self, statuses: dict[str, TableStatus]) -> None:
        for name, status in statuses.items():
            cells = {"table": name, "state": state_cell(status), "rows": number(status.job_rows),
                     "rows/min": number(status.rows_per_minute),
                     "watermark": position(status.watermark_timestamp, status.watermark_id)}
            if name not in self.rows:
                self.add_row(*cells.values(), key=name)
                continue
            for column, value in cells.items():
                if self.get_cell(name, column) != value:
                    self.update_cell(name, column, value, update_width=True)
