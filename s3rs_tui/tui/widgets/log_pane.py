"""The log pane: long lines wrap (a verify verdict after a long path stays on screen), the last
MAX_LINES are kept, and a filter shows all of them, only the problems, or one table's lines.
The filter is in the border, so a filtered pane never looks like a quiet run."""

import re
from collections import deque

from rich.text import Text
from textual import events
from textual.widgets import RichLog

MAX_LINES = 2000
FILTERS = ("all", "problems", "table")
PROBLEM = re.compile(r"\b(error|warning|failed|failure|retry|differs|refused|stale|locked)\b", re.IGNORECASE)


class LogPane(RichLog):
    def __init__(self, path: object, *, id: str):
        super().__init__(id=id, wrap=True, min_width=1, max_lines=MAX_LINES, auto_scroll=True, markup=False,
                         highlight=False)
        self.path = path
        self.kept: deque[str] = deque(maxlen=MAX_LINES)
        self.mode, self.table = "all", ""
        self.caption()

    def caption(self) -> str:
        """Says the filter in force in the border; returns what it shows."""
        shown = {"all": "all lines", "problems": "problems only", "table": f"{self.table} only"}[self.mode]
        self.border_title = f"Log  {self.path}"
        self.border_subtitle = f"{shown} · f filter · m maximise"
        return shown

    def passes(self, line: str) -> bool:
        if self.mode == "problems":
            return bool(PROBLEM.search(line))
        if self.mode == "table":
            return f" {self.table} " in f" {line} " or f" {self.table}:" in line
        return True

    def add(self, lines: list[str]) -> None:
        self.kept.extend(lines)
        self.show(lines)

    def show(self, lines) -> None:
        for line in lines:
            if self.passes(line):
                self.write(Text(line), expand=True)

    def replace(self, lines: list[str]) -> None:
        """Show only these lines (`watch`: the selected run's own log)."""
        self.kept.clear()
        self.kept.extend(lines)
        self.redraw()

    def cycle(self, table: str | None) -> str:
        """The next filter (all -> problems -> the selected table -> all); returns its caption."""
        self.mode = FILTERS[(FILTERS.index(self.mode) + 1) % len(FILTERS)]
        if self.mode == "table" and not table:
            self.mode = "all"
        self.table = table or ""
        shown = self.caption()
        self.redraw()
        return shown

    def redraw(self) -> None:
        self.clear()
        self.show(self.kept)

    def on_resize(self, _event: events.Resize) -> None:
        """Wrap again at the new width (a resized terminal, the pane maximised or put back)."""
        self.redraw()
