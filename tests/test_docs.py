"""Every CLI command must be documented in docs/cli.md (a heading naming it)."""

from __future__ import annotations

from typing import Any

import typer.main

from prefkit.cli import app
from tests.conftest import REPO


def _commands(group: Any, prefix: str = "prefkit") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}"
        out.append(full)
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, full))
    return out


def test_every_command_is_documented() -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    commands = _commands(group)
    assert commands, "no commands registered"
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [c for c in commands if f"`{c}`" not in text]
    assert not missing, f"undocumented commands in docs/cli.md: {missing}"


def test_every_command_has_help() -> None:
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    for name, cmd in group.commands.items():
        assert cmd.help or cmd.short_help, f"command {name} has no help text"
