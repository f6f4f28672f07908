"""`s3rs watch`: the dashboard, read-only, on runs going on in other processes (a headless run
under nohup or systemd, or a dashboard in another terminal). It renders the status snapshots
those runs write (s3rs_tui.status.snapshot); it cannot start, pause or stop anything."""

from pathlib import Path

from textual import work

from s3rs_tui.config import Settings
from s3rs_tui.status.snapshot import read_snapshots, status_dir
from s3rs_tui.tui.app import DashboardApp
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.messages import SnapshotsRead
from s3rs_tui.tui.widgets.log_pane import LogPane

POLL_SECONDS = 1.0


class WatchApp(DashboardApp):
    def __init__(self, settings: Settings, tables: list[str], log: RunLog, folder: Path | None = None):
        super().__init__(settings, tables, log, read_only=True)
        self.folder = folder or status_dir()
        self.only = list(tables)
        self.shown_log: tuple[str, int] = ("", 0)
        self.hinted = False

    def on_mount(self) -> None:
        self.poll()
        self.set_interval(POLL_SECONDS, self.poll)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False, description="snapshot read")
    def poll(self) -> None:
        self.post_message(SnapshotsRead(read_snapshots(self.folder, self.only or None)))

    def on_snapshots_read(self, message: SnapshotsRead) -> None:
        for snapshot in message.snapshots:
            status, note = snapshot.status, snapshot.liveness()
            if note:
                status.state, status.error = "stale", note
            self.statuses[status.table] = status
        if not message.snapshots and not self.hinted:
            self.hinted = True
            self.log_file.write(f"no status snapshot in {self.folder} yet: every run writes one there "
                                "(s3rs sync, headless or not); this view updates when one appears")
        self.dirty = True

    def repaint(self) -> None:
        """The Log pane shows the selected run's own log lines, as carried by its snapshot."""
        status = self.statuses.get(self.selected or "")
        if status is not None and (status.table, len(status.log)) != self.shown_log:
            self.query_one(LogPane).replace(status.log)
            self.shown_log = (status.table, len(status.log))
        super().repaint()
