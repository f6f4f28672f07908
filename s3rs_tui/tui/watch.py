"""`s3rs watch`: the dashboard on runs going on in other processes (a headless run under nohup or
systemd, or a dashboard in another terminal). It renders the status snapshots those runs write
(s3rs_tui.status.snapshot) and reads the store like the live dashboard, so a run whose process is
gone (stale) shows what is really stored, not what its last snapshot said. It starts nothing; it
can pause, resume and stop a live run through the state folder (s3rs_tui.status.control_file)."""

from pathlib import Path

from textual import work

from s3rs_tui.runtime.config import Settings
from s3rs_tui.status.control_file import send_request
from s3rs_tui.status.model import State
from s3rs_tui.status.snapshot import Snapshot, read_snapshots, status_dir
from s3rs_tui.tui.app import DashboardApp
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.messages import SnapshotsRead, StoreRead
from s3rs_tui.tui.store_info import STORE_REFRESH_SECONDS
from s3rs_tui.tui.widgets.log_pane import LogPane

POLL_SECONDS = 1.0
STEERING = ("pause_resume", "stop_run")


class WatchApp(DashboardApp):
    def __init__(self, settings: Settings, tables: list[str], log: RunLog, folder: Path | None = None,
                 control_folder: Path | None = None):
        super().__init__(settings, tables, log, read_only=True)
        self.folder = folder or status_dir()
        self.control_folder = control_folder
        self.only = list(tables)
        self.snapshots: dict[str, Snapshot] = {}
        self.shown_log: tuple = ()
        self.hinted = self.steerable = False

    def on_mount(self) -> None:  # DashboardApp.on_mount runs too (Textual calls each class's handler)
        self.poll()
        self.set_interval(POLL_SECONDS, self.poll)
        self.refresh_store()
        self.set_interval(STORE_REFRESH_SECONDS, self.refresh_store)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False, description="snapshot read")
    def poll(self) -> None:
        self.post_message(SnapshotsRead(read_snapshots(self.folder, self.only or None)))

    def on_snapshots_read(self, message: SnapshotsRead) -> None:
        for snapshot in message.snapshots:
            status, note = snapshot.status, snapshot.liveness()
            if note:
                status.state, status.error = State.STALE, note
                stored = self.watermarks.get(status.table)
                if stored is not None:  # the store is the truth about a run that is gone
                    status.watermark_timestamp, status.watermark_id = (stored.last_mysql_data_timestamp,
                                                                       stored.shown_id)
            self.statuses[status.table] = status
            self.snapshots[status.table] = snapshot
        steerable = self.live(self.selected) is not None
        if steerable != self.steerable:  # the footer shows p and x only while they can act
            self.steerable = steerable
            self.refresh_bindings()
        if not message.snapshots and not self.hinted:
            self.hinted = True
            self.log_file.write(f"no status snapshot in {self.folder} yet: every run writes one there "
                                "(s3rs sync, headless or not); this view updates when one appears")
        self.dirty = True

    def on_store_read(self, message: StoreRead) -> None:
        """The stored watermark for the Watermark panel; the state stays the snapshot's (a run
        going on elsewhere holds the lock: it is not "locked" for this view)."""
        message.prevent_default()  # not StoreInfo.on_store_read
        self.watermarks[message.table] = message.watermark
        self.dirty = True

    def live(self, table: str | None) -> Snapshot | None:
        """The selected run's snapshot when it is running now (not stale, not ended)."""
        snapshot = self.snapshots.get(table or "")
        status = self.statuses.get(table or "")
        if snapshot is None or status is None or status.state == "stale" or not status.active:
            return None
        return snapshot

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """p and x only for a live run (hidden otherwise: watch starts nothing)."""
        if action in STEERING:
            return self.live(self.selected) is not None
        return super().check_action(action, parameters)

    def action_pause_resume(self) -> None:
        snapshot = self.live(self.selected)
        if snapshot is None:
            return
        pausing = snapshot.status.state not in ("paused", "pausing")
        self._request(snapshot, "pause" if pausing else "resume")

    def action_stop_run(self) -> None:
        snapshot = self.live(self.selected)
        if snapshot is not None:
            self._request(snapshot, "stop")

    def _request(self, snapshot: Snapshot, action: str) -> None:
        send_request(snapshot.status.table, action, snapshot.pid, self.control_folder)
        self.log_file.write(f"{snapshot.status.table}: {action} requested from watch (process {snapshot.pid} "
                            "obeys between files)")
        self.query_one(LogPane).add([f"{snapshot.status.table}: {action} requested"])

    def repaint(self) -> None:
        """The Log pane shows the selected run's own log lines, as carried by its snapshot; it
        follows them though the snapshot keeps only the last LOG_LINES."""
        status = self.statuses.get(self.selected or "")
        if status is not None and (status.table, len(status.log), status.log[-1:]) != self.shown_log:
            self.query_one(LogPane).replace(status.log)
            self.shown_log = (status.table, len(status.log), status.log[-1:])
        super().repaint()
