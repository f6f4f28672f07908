"""Shell completion and --help, driven the way the shell and the operator drive them.

Completion goes through Click's protocol, as the script `s3rs --install-completion` installs does:
`_S3RS_COMPLETE=complete_bash` with COMP_WORDS/COMP_CWORD, in a subprocess of `python -m s3rs_tui`;
one test sources that very script in bash and reads COMPREPLY.
"""

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from s3rs_tui.cli import app

SECRET = "hunter2-never-on-screen"
TABLES = ("shop.orders", "shop.order_items", "settlement.settlement_normal_delivery_detail")


@pytest.fixture
def listener():
    """A port on 127.0.0.1 that records any connection: MySQL and S3 point here, so a completion
    that reached for either would be seen."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


def write_config(path: Path, port: int = 9) -> Path:
    sections = "".join(f'[tables."{name}"]\n' for name in TABLES)
    path.write_text(f'[mysql]\nhost = "127.0.0.1"\nport = {port}\ndatabase = "shop"\npassword = "{SECRET}"\n'
                    f'[s3]\nendpoint_url = "http://127.0.0.1:{port}"\nbucket = "b"\n{sections}')
    path.chmod(0o600)
    return path


def complete(*words: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """What bash gets from `s3rs` on Tab after `words` (the last one is the word being typed)."""
    environment = {name: value for name, value in os.environ.items() if name != "S3RS_CONFIG"}
    environment.update({"_S3RS_COMPLETE": "complete_bash", "COMP_WORDS": "\n".join(("s3rs", *words)),
                        "COMP_CWORD": str(len(words)), **(env or {})})
    return subprocess.run([sys.executable, "-m", "s3rs_tui"], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=60)


def offered(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == "", result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("command", [
    ["sync", "-t"], ["sync", "--table"], ["sync", "-t", "shop.orders", "-t"], ["progressive"],
    ["verify", "-t"], ["watermark", "get", "-t"], ["watermark", "set", "-t"], ["watermark", "reset", "-t"],
    ["watermark", "force-reset", "-t"], ["s3clean", "list", "-t"], ["s3clean", "clean", "--table"],
    ["ui", "-t"], ["watch", "-t"],
])
def test_every_table_option_completes_the_tables_of_the_config(tmp_path, listener, command):
    config = write_config(tmp_path / "prod.toml", listener.getsockname()[1])
    result = complete("--config", str(config), *command, "", cwd=tmp_path)
    assert sorted(offered(result)) == sorted(TABLES)
    assert SECRET not in result.stdout
    assert connections(listener) == 0


@pytest.mark.parametrize("typed, expected", [
    ("ord", ["orders", "order_items"]),            # bare names in [mysql] database stay bare
    ("shop.order_", ["shop.order_items"]),
    ("sett", ["settlement.settlement_normal_delivery_detail"]),
    ("settlement_n", []),                          # a bare name is valid only in [mysql] database
    ("settlement.", ["settlement.settlement_normal_delivery_detail"]),
    ("s", list(TABLES)),
    ("nothing", []),
])
def test_table_names_are_filtered_by_what_is_typed(tmp_path, typed, expected):
    config = write_config(tmp_path / "prod.toml")
    assert sorted(offered(complete("-c", str(config), "sync", "-t", typed, cwd=tmp_path))) == sorted(expected)


def test_the_config_in_force_is_s3rs_config_else_the_local_s3rs_toml(tmp_path):
    write_config(tmp_path / "s3rs.toml")
    assert sorted(offered(complete("verify", "-t", "", cwd=tmp_path))) == sorted(TABLES)
    other = tmp_path / "other.toml"
    other.write_text('[tables."crm.customers"]\n')
    result = complete("verify", "-t", "", cwd=tmp_path, env={"S3RS_CONFIG": str(other)})
    assert offered(result) == ["crm.customers"]
    # --config on the command line wins over both
    assert offered(complete("--config", str(other), "verify", "-t", "", cwd=tmp_path)) == ["crm.customers"]


@pytest.mark.parametrize("content", [
    None,                                            # no such file
    "[tables.\"shop.orders\"\n",                     # not TOML
    "[mysql]\nport = \"many\"\n[tables.\"shop.orders\"]\n",  # an invalid value
    "[nonsense]\n[tables.\"shop.orders\"]\n",        # an unknown section
    "tables = 3\n",
])
def test_a_broken_or_missing_config_completes_nothing_and_says_nothing(tmp_path, content):
    config = tmp_path / "broken.toml"
    if content is not None:
        config.write_text(content)
    result = complete("--config", str(config), "sync", "-t", "", cwd=tmp_path)
    assert offered(result) == []
    assert result.stdout.strip() == ""


def test_commands_and_options_complete(tmp_path):
    assert offered(complete("s", cwd=tmp_path)) == ["sync", "status", "s3clean"]
    assert offered(complete("watermark", "", cwd=tmp_path)) == ["get", "set", "reset", "force-reset", "list"]
    options = offered(complete("sync", "--", cwd=tmp_path))
    assert {"--table", "--all", "--dry-run", "--load-only", "--no-ui"} <= set(options)
    assert "--install-completion" in offered(complete("--", cwd=tmp_path))


# The shell named on the command line, not guessed from the parent processes (Typer's own switch for
# this): a test started without a shell above it (setsid, a service) would otherwise find none.
NAMED_SHELL = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def test_the_installed_bash_script_completes_table_names_in_bash(tmp_path):
    """The whole path: the script `--show-completion bash` prints, sourced in a real bash, calling
    an `s3rs` found on PATH, fills COMPREPLY with the config's tables."""
    shown = subprocess.run([sys.executable, "-m", "s3rs_tui", "--show-completion", "bash"],
                           capture_output=True, text=True, timeout=60, env=NAMED_SHELL)
    assert shown.returncode == 0, shown.stderr
    assert "_S3RS_COMPLETE=complete_bash" in shown.stdout and "complete -o default -F" in shown.stdout
    script = tmp_path / "s3rs.sh"
    script.write_text(shown.stdout)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "s3rs").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m s3rs_tui \"$@\"\n")
    (bin_dir / "s3rs").chmod(0o755)
    config = write_config(tmp_path / "prod.toml")
    line = f"source {shlex.quote(str(script))}; " \
           f"COMP_WORDS=(s3rs --config {shlex.quote(str(config))} sync -t ord); " \
           "COMP_CWORD=5; _s3rs_completion s3rs; printf '%s\\n' \"${COMPREPLY[@]}\""
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", line], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60,
                            env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["order_items", "orders"]


def test_install_completion_writes_into_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run([sys.executable, "-m", "s3rs_tui", "--install-completion", "bash"],
                            capture_output=True, text=True, timeout=60,
                            env={**NAMED_SHELL, "HOME": str(home)})
    assert result.returncode == 0, result.stderr
    installed = home / ".bash_completions" / "s3rs.sh"
    assert "_S3RS_COMPLETE=complete_bash" in installed.read_text()
    assert str(installed) in (home / ".bashrc").read_text()


def command_paths(group=None, prefix=()) -> list[tuple[str, ...]]:
    """Every command and group of the app, as the words after `s3rs`."""
    group = group or typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():
        paths.append((*prefix, name))
        if hasattr(command, "commands"):
            paths += command_paths(command, (*prefix, name))
    return paths


def test_the_app_has_the_commands_the_readme_documents():
    paths = {" ".join(path) for path in command_paths()}
    assert {"sync", "progressive", "verify", "config", "status", "demo", "ui", "watch", "watermark get",
            "watermark set", "watermark reset", "watermark force-reset", "watermark list", "s3clean list",
            "s3clean clean", "restore"} <= paths


@pytest.mark.parametrize("path", [(), *command_paths()], ids=lambda path: " ".join(path) or "s3rs")
def test_help_of_every_command_shows_examples(tmp_path, path):
    result = subprocess.run([sys.executable, "-m", "s3rs_tui", *path, "--help"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0, result.stderr
    lines = [line.strip(" │") for line in result.stdout.splitlines()]
    assert f"Usage: s3rs {' '.join(path)}".strip() in result.stdout
    assert "Examples" in lines
    examples = [line for line in lines[lines.index("Examples"):] if line.startswith("s3rs")]
    assert examples and examples[0].startswith(" ".join(("s3rs", *path))), result.stdout
