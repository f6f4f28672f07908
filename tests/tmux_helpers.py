"""A private tmux server for tests that run the dashboard in a real, headless terminal (never the
tester's own tmux): `Tmux` (conftest's `tmux_session` fixture opens and closes them) and `pid_gone`.
"""

import subprocess
import time
import uuid

from cli_helpers import require_tool


class Tmux:
    """One private tmux server with one session running `command` (with `env` added).

    `environ` is the tmux server's own environment, which the command inherits (default: the
    test's); `cwd` the command's working folder (default: the test's)."""

    def __init__(self, command: list[str], env: dict[str, str], size=(120, 40), *,
                 environ: dict[str, str] | None = None, cwd=None):
        require_tool("tmux")
        self.socket, self.environ = f"s3rs-test-{uuid.uuid4().hex[:8]}", environ
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        shell = f"env {exports} {' '.join(str(part) for part in command)}"
        folder = ["-c", str(cwd)] if cwd else []
        self.run("new-session", "-d", "-s", "main", "-x", str(size[0]), "-y", str(size[1]), *folder, shell)

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=30, env=self.environ).stdout

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "main")

    def wait_for_text(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen()}")

    def pid(self) -> int:
        return int(self.run("list-panes", "-t", "main", "-F", "#{pane_pid}").split()[0])

    def close(self) -> None:
        self.run("kill-server")


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")  # a zombie has exited
    except FileNotFoundError:
        return True
