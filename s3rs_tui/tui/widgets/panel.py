"""A bordered dashboard panel: aligned label/value rows, and below them an optional live widget
(a sparkline, a progress bar). Every panel of the dashboard is one of these. When the labels
leave too little room for the values (long field names in a narrow terminal), each value goes
under its label instead of being folded into a few columns."""

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

MIN_VALUE_COLUMNS = 12  # below this, values go under their labels


def side_by_side(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="italic", no_wrap=True)
    grid.add_column(style="bold", overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def stacked(rows: list[tuple[str, str]]) -> Group:
    def pair(label: str, value: str) -> tuple:
        return Text(label, style="italic"), Padding(Text(value, style="bold"), (0, 0, 0, 2))

    return Group(*(part for label, value in rows for part in pair(label, value)))


class Panel(Vertical):
    def __init__(self, title: str, *, id: str, extra: Widget | None = None):
        super().__init__(id=id, classes="panel")
        self.border_title = title
        self.extra = extra
        self.shown: list[tuple[str, str]] | None = None
        self.drawn_at: tuple[list, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="rows")
        if self.extra is not None:
            yield self.extra

    def show(self, rows: list[tuple[str, str]]) -> None:
        """Show these rows; nothing is redrawn when they did not change (cheap for the engine)."""
        if rows != self.shown:
            self.shown = rows
            self.draw()

    def draw(self) -> None:
        rows, width = self.shown or [], self.content_region.width
        if (rows, width) == self.drawn_at:
            return
        self.drawn_at = (rows, width)
        label = max((len(label) for label, _ in rows), default=0)
        narrow = width and width - label - 1 < MIN_VALUE_COLUMNS
        self.query_one(".rows", Static).update(stacked(rows) if narrow else side_by_side(rows))

    def on_resize(self) -> None:
        if self.shown is not None:
            self.draw()
