"""The tables list: one row per table with its state, rows done, rows/min and last watermark.
The row under the cursor is the table the panels, keys and screens act on."""

from textual.widgets import DataTable

from s3rs_tui.status.model import TableStatus
from s3rs_tui.tui.panel_rows import number, position

COLUMNS = ("table", "state", "rows", "rows/min", "watermark")


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
            cells = {"table": name, "state": status.state, "rows": number(status.rows),
                     "rows/min": number(status.rows_per_minute),
                     "watermark": position(status.watermark_timestamp, status.watermark_id)}
            if name not in self.rows:
                self.add_row(*cells.values(), key=name)
                continue
            for column, value in cells.items():
                if self.get_cell(name, column) != value:
                    self.update_cell(name, column, value, update_width=True)
