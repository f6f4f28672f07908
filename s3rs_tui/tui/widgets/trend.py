"""A sparkline that says its scale: one row of bars, one sample a column (newest on the right, so
one sample is one bar, not a full panel), scaled from 0 so a 15 MB wobble on 180 MB looks like
one; the scale, the samples' minimum and maximum and the unit go in the bottom border of the panel
holding it. One row high at any terminal size, so at 80x24 it costs a panel one row."""

from rich.text import Text
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def compact(value: float) -> str:
    """1,234 / 12.3k / 4.5M: short enough for an 80-column panel."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e4, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}" if value < limit * 100 else f"{value / limit:.0f}{suffix}"
    return f"{value:,.0f}"


def bars(values: list[float], top: float) -> str:
    """One character a value, its height the value's share of 0..top (blank for 0)."""
    return "".join(" " if value <= 0 else BARS[min(len(BARS) - 1, int(value / top * len(BARS)))]
                   for value in values)


class Trend(Widget):
    DEFAULT_CSS = """
    Trend { height: 1; }
    """

    def __init__(self, unit: str, *, floor: float = 1.0, id: str | None = None):
        """`floor`: the least top of the scale, so tiny values never fill the bars."""
        super().__init__(id=id)
        self.unit, self.floor = unit, floor
        self.values: list[float] = []

    def shown(self) -> list[float]:
        return self.values[-max(1, self.size.width):]

    def top(self) -> float:
        return max(max(self.shown(), default=0.0), self.floor)

    def scale(self) -> str:
        """`0–3.3M rows/min  min 1.2M max 3.3M`, without min and max where they do not fit."""
        shown = self.shown()
        if not shown:
            return f"no samples yet ({self.unit})"
        scale = f"0–{compact(self.top())} {self.unit}"
        extra = f"  min {compact(min(shown))} max {compact(max(shown))}"
        return scale + extra if len(scale + extra) + 4 <= self.size.width else scale

    def show(self, values: list[float]) -> None:
        if values != self.values:
            self.values = list(values)
            self.caption()
            self.refresh()

    def caption(self) -> None:
        if isinstance(self.parent, Widget):  # its panel
            self.parent.border_subtitle = self.scale()

    def on_resize(self) -> None:
        self.caption()

    def render(self) -> Text:
        return Text(bars(self.shown(), self.top()).rjust(self.size.width), style="bold")
