"""Small helpers for the rank tests: battles written as CSV the LLMFAO reader reads."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PREFKIT = [sys.executable, "-m", "prefkit.cli"]


def llmfao_csv(path: Path, battles: Sequence[tuple[str, str, str]]) -> Path:
    """(left, right, winner) rows, winner in left/right/tie (or anything, to test errors)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "model_x", "model_y", "worker", "winner", "left", "right"])
        for n, (a, b, o) in enumerate(battles):
            w.writerow([n, n % 7, 0, 1, n % 5, o, a, b])
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from prefkit.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )


def invoke(*args: str) -> tuple[int, str, str]:
    """Run a command in-process: (exit code, error message, stdout)."""
    from typer.testing import CliRunner

    from prefkit._cli import CLIError
    from prefkit.cli import app

    res = CliRunner().invoke(app, list(args))
    exc = res.exception
    if isinstance(exc, CLIError):
        return exc.code, str(exc), res.stdout
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return res.exit_code, res.output if res.exit_code else "", res.stdout
