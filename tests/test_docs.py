"""Every CLI command must be documented in docs/cli.md (a heading naming it), and every flag
documented there must be exercised by at least one test that names it literally."""

from __future__ import annotations

import re
from pathlib import Path
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


# a long option as docs/cli.md writes it: `--near-dup-threshold`, not the `--from-*` family
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w*-])")


def documented_flags(text: str) -> set[str]:
    return set(FLAG.findall(text))


def untested_flags(flags: set[str], test_sources: list[str]) -> list[str]:
    """Flags no test source names as a string literal (`"--flag"`, `'--flag'`, `"--flag=`)."""
    corpus = "\n".join(test_sources)
    return sorted(f for f in flags if not any(q in corpus for q in (f'"{f}"', f"'{f}'", f'"{f}=')))


def _test_sources() -> list[str]:
    here = Path(__file__).resolve()
    return [
        p.read_text(encoding="utf-8")
        for p in sorted((REPO / "tests").rglob("*.py"))
        if p.resolve() != here
    ]


def test_every_documented_flag_is_named_by_a_test() -> None:
    flags = documented_flags((REPO / "docs" / "cli.md").read_text(encoding="utf-8"))
    assert len(flags) > 60 and {"--json", "--near-dup-threshold", "--use-margins"} <= flags
    assert "--from-" not in flags and "--from" in flags
    missing = untested_flags(flags, _test_sources())
    assert not missing, f"flags documented in docs/cli.md that no test names: {missing}"


def test_the_flag_check_finds_a_missing_flag() -> None:
    doc = "prefkit x IN [--seen N] [--never-tested] [--from-*]; see `--seen`."
    assert documented_flags(doc) == {"--seen", "--never-tested"}
    sources = ['args = ["x", "--seen", "3"]', "# --never-tested in a comment does not count"]
    assert untested_flags(documented_flags(doc), sources) == ["--never-tested"]


def test_python_dash_m_prefkit_cli_runs_the_cli() -> None:
    """`python -m prefkit.cli` (how subprocess tests and the developer docs run the CLI from a
    source tree) is the real entry point: help on stdout, exit 2 on a usage error."""
    import subprocess
    import sys

    ok = subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0 and "simulate" in ok.stdout and "rank" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "rank"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
