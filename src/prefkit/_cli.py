"""Small helpers shared by the CLI modules of every stage (console, errors, JSON output)."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console

console = Console(stderr=True, highlight=False)


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit code `code` (1 bad input, 2 usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise CLIError(message, code)


def report_rejects(src: Any, rejects: list[Any], shown: int = 3) -> None:
    """Say how many rows the reader rejected, with the first few reasons (file, line, field),
    and how to get all of them; `rejects` are `prefkit.io.base.Reject`s."""
    if not rejects:
        return
    from rich.markup import escape

    console.print(f"[yellow]{len(rejects)} row(s) rejected by the reader[/yellow]")
    for r in rejects[:shown]:
        console.print(f"  {escape(r.message())}", soft_wrap=True)
    console.print(
        f"  every rejected row with its reason: prefkit convert {escape(str(src))} "
        "OUT.parquet (writes OUT.parquet.rejects.jsonl)",
        soft_wrap=True,
    )


def print_json(obj: Any) -> None:
    """Machine-readable output: one JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=_default) + "\n")
    sys.stdout.flush()


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def parse_mapping(items: list[str] | None, option: str = "--map") -> dict[str, str]:
    """Parse repeated `key=value` options."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            fail(f"{option} expects key=value, got {item!r}", code=2)
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def require_extra(modules: tuple[str, ...], extra: str, what: str) -> None:
    """Fail (exit 1, one line) unless every module imports, naming the missing ones and the
    pip command that installs them."""
    import importlib

    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        fail(
            f"{what} needs {' and '.join(missing)} (not installed); install the [{extra}] "
            f"extra: pip install 'prefkit[{extra}]'"
        )
