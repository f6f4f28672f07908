"""A throwaway OpenSSH server on 127.0.0.1: the bastion of the tunnel tests.

Its own host key, one authorized key made here, a port of ours, its own sshd_config
(`sshd -D -e -f`), its pid file in its folder; forwarding only to 127.0.0.1. Stopped (and its
sessions ended) by the pids it started, never by name. Needs Debian's openssh-server.
"""

import contextlib
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from s3rs_tui.sandbox.mariadb import SandboxError, _alive, _binary, free_port

_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_ed25519
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding local
PermitOpen 127.0.0.1:*
StrictModes no
UsePAM no
PrintMotd no
LogLevel VERBOSE
"""


def _keygen(path: Path, passphrase: str = "") -> None:
    subprocess.run([_binary("ssh-keygen"), "-q", "-t", "ed25519", "-N", passphrase, "-C", "s3rs-test",
                    "-f", str(path)], check=True, capture_output=True)


@dataclass
class SSHServer:
    base_dir: Path
    port: int
    user: str
    client_key: Path       # private key the server accepts
    pid: int = 0

    @property
    def host_key_line(self) -> str:
        """The known_hosts line for this server."""
        kind, key = (self.base_dir / "host_ed25519.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def start(self) -> None:
        """Start (or start again, on the same port) and wait until it accepts connections."""
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation dir
        with open(self.base_dir / "sshd.log", "ab") as log:  # sshd keeps its own copy of the descriptor
            process = subprocess.Popen(
                [_binary("sshd"), "-D", "-e", "-f", str(self.base_dir / "sshd_config")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.pid = process.pid
        deadline = time.monotonic() + 20
        while "Server listening" not in (self.base_dir / "sshd.log").read_text(errors="replace")[-4000:]:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SandboxError(f"sshd did not start: {(self.base_dir / 'sshd.log').read_text()[-600:]}")
            time.sleep(0.05)

    def sessions(self) -> list[int]:
        """Pids of the processes serving connections (children of our sshd)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.pid:
                    found.append(int(entry.name))
        return found

    def signal_sessions(self, signum: int) -> list[int]:
        pids = self.sessions()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return pids

    def stop(self) -> None:
        """Stop our sshd and every session it serves."""
        sessions = self.sessions()
        for pid in [self.pid, *sessions]:
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        (self.base_dir / "sshd.log").write_text("")  # so start() waits for the next "Server listening"


def start_sshd(base_dir: Path, key_passphrase: str = "") -> SSHServer:
    """A server in `base_dir` (made fresh) for the current user, with a client key it accepts."""
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    _keygen(base_dir / "host_ed25519")
    _keygen(base_dir / "client_ed25519", key_passphrase)
    (base_dir / "authorized_keys").write_text((base_dir / "client_ed25519.pub").read_text())
    port = free_port()
    (base_dir / "sshd_config").write_text(_CONFIG.format(port=port, dir=base_dir))
    server = SSHServer(base_dir, port, pwd.getpwuid(os.geteuid()).pw_name, base_dir / "client_ed25519")
    server.start()
    return server
