"""Small helpers shared by the CLI modules of every stage (console, errors, JSON output)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NoReturn

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
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=json_default) + "\n")
    sys.stdout.flush()


def json_default(o: Any) -> Any:
    """`json.dumps` fallback: numpy scalars and arrays as Python values, anything else as str."""
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


def parse_value_maps(items: list[str] | None) -> dict[str, dict[str, str]]:
    """Parse repeated `--value-map field:raw=value` options (the last `=` separates)."""
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        if ":" not in item or "=" not in item:
            fail(f"--value-map expects field:raw=value, got {item!r}", code=2)
        field, rest = item.split(":", 1)
        raw, val = rest.rsplit("=", 1)
        out.setdefault(field, {})[raw] = val
    return out


def check_output(
    out: Path,
    inputs: Path | Iterable[Path | None] | None = None,
    kind: Literal["file", "dir"] = "file",
    empty: bool = False,
    overwrite: bool = False,
) -> None:
    """Refuse, before any work, an output that cannot be written or would replace an input:
    OUT is an input, a folder where a file goes (or a file where a folder goes), not
    writable, or (`empty`) a non-empty folder without `overwrite`. One line, exit 1."""
    ins = [inputs] if isinstance(inputs, Path) else [p for p in inputs or [] if p is not None]
    for inp in ins:
        if _same_file(out, inp):
            fail(f"{out}: OUT is the input {inp}; write the output to another path")
    if kind == "file" and out.is_dir():
        fail(f"{out}: is a folder; OUT must be a file path")
    if kind == "dir" and out.exists() and not out.is_dir():
        fail(f"{out}: is a file; OUT must be a folder")
    if empty and out.is_dir() and any(out.iterdir()) and not overwrite:
        fail(f"{out}: folder is not empty; pass --overwrite to replace its contents")
    if kind == "file" and out.exists() and not os.access(out, os.W_OK):
        fail(f"{out}: file is not writable")
    anc = out if kind == "dir" else out.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        fail(f"{out}: {anc} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=anc):
            pass
    except OSError as e:
        fail(f"{out}: cannot write in {anc} ({e.strerror or e})")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def is_usage_error(e: BaseException) -> bool:
    """A Click usage error (Typer may ship its own copy of Click): show() + exit_code."""
    return any(c.__name__ == "ClickException" for c in type(e).__mro__) and hasattr(e, "show")


def show_usage_error(e: Any) -> None:
    """Click's usage line and hint, then `error: <message>` (one wording everywhere); a
    group called without a command shows its help, as Click does."""
    ctx = getattr(e, "ctx", None)
    out = sys.stderr
    if type(e).__name__ == "NoArgsIsHelpError":
        e.show()
        return
    if ctx is None:
        out.write(f"error: {e.format_message()}\n")
        out.flush()
        return
    out.write(ctx.get_usage() + "\n")
    if ctx.command.get_help_option(ctx) is not None:
        out.write(f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.\n")
    out.write(f"error: {e.format_message()}\n")
    out.flush()


ENGINE_HELP = (
    "local | ray: where row-parallel work runs (default: PREFKIT_ENGINE, else local; ray joins "
    "RAY_ADDRESS, else starts a local cluster). docs/scale.md."
)


def engine_of(flag: str | None, connect: bool = True) -> str:
    """The engine named by `--engine` or `PREFKIT_ENGINE` (usage error when unknown); Ray is
    imported and joined only when chosen (and `connect`)."""
    from prefkit.engine import EngineError, resolve

    try:
        name = resolve(flag)
        if name == "ray" and connect:
            from prefkit.engine import ray_init

            ray_init()
    except EngineError as e:
        fail(str(e), code=2)
    return name
