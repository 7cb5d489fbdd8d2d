"""Helpers for the io tests: run the CLI in-process, read JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from prefkit.cli import app

runner = CliRunner()


def cli(*args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def inspect_json(path: Path, *extra: str) -> dict[str, Any]:
    res = cli("inspect", path, "--json", *extra)
    assert res.exit_code == 0, (res.output, res.exception)
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path
