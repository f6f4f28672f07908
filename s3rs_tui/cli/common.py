"""Helpers shared by the commands: settings from the context, confirmations, JSON output."""

import json
import os
import sys
from typing import Any

import typer

from s3rs_tui.runtime.config import Settings, load_settings
from s3rs_tui.runtime.errors import ConfigError
from s3rs_tui.warehouse import check_config


def settings_from(ctx: typer.Context, require_file: bool = True) -> Settings:
    """The settings in force for this invocation (loaded once, after --config is known). Only
    `s3rs config` runs without a config file: anything else would quietly work on defaults."""
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = load_settings(root.params.get("config"), require_file=require_file)
        check_config(root.obj)  # the warehouse kind's own rules, as part of reading the config
        for warning in root.obj.warnings:
            typer.echo(f"s3rs: warning: {warning}", err=True)
    return root.obj


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, insist on --yes rather than guess."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} Not on a terminal: add --yes to confirm")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, default=str))


def on_terminal() -> bool:
    """A person is there: keys come in and the screen goes out to a terminal (so the dashboard
    opens; cron, nohup, CI and pipes get the headless log)."""
    streams = (sys.stdin, sys.stdout, sys.stderr)
    return all(stream is not None and stream.isatty() for stream in streams) and \
        os.environ.get("TERM", "") != "dumb"
