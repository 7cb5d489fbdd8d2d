"""Usage and output-path errors, for every command, through the real entry point
(`prefkit.cli.main`): a usage error is Click's usage line, `error: ...` and exit 2; an output
that cannot be written or would replace an input is one line `error: ...` and exit 1, with
the input left byte-identical; never a traceback."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from prefkit.cli import app, main
from prefkit.io.canonical import save
from prefkit.schema import Kind, from_rows


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["prefkit", *argv])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    cap = capsys.readouterr()
    err = cap.err + cap.out  # a group without its command prints its help on stdout
    code = e.value.code if isinstance(e.value.code, int) else 1
    return code, err


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if hasattr(cmd, "commands"):
            out.extend(_commands(cmd, (*prefix, name)))
    return out


COMMANDS = _commands(typer.main.get_command(app))


def test_commands_are_found() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"convert", "inspect", "pairs", "split", "rank", "audit", "rm train"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_rejects_an_unknown_option(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = run([*command, "--no-such-option"], capsys, monkeypatch)
    assert code == 2, err
    assert "Traceback" not in err
    assert "error: No such option: --no-such-option" in err
    assert "Usage:" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no-such-command"], "error: No such command 'no-such-command'"),
        (["simulate", "clean", "x", "--seed", "abc"], "error: Invalid value for '--seed'"),
        (["pairs"], "error: Missing argument 'IN'"),
        (["serve", "create"], "error: Missing argument"),
        (["rm"], "Usage:"),  # a group without its command: its help, exit 2
        (
            ["inspect", "x.jsonl", "--from", "nosuchformat"],
            "error: --from nosuchformat: unknown format",
        ),
        (
            ["inspect", "x.jsonl", "--map", "col=promptt"],
            "unknown field 'promptt'; fields: id, prompt",
        ),
        (["pairs", "x.jsonl", "o.jsonl", "--min-agreement", "2"], "error: --min-agreement must be"),
        (["pairs", "x.jsonl", "o.jsonl", "--min-margin", "-1"], "error: --min-margin must be"),
        (["pairs", "x.jsonl", "o.jsonl", "--margin", "nope"], "error: --margin must be one of"),
        (["split", "x.jsonl", "o", "--threshold", "0"], "error: --threshold must be in"),
        (["convert", "x.jsonl", "o.jsonl", "--to", "nope"], "error: --to nope: unknown format"),
        (["pairs", "x.jsonl", "o.jsonl", "--seed", "-1"], "error: Invalid value for '--seed'"),
        (["simulate", "clean", "o", "--votes", "0"], "error: --votes must be >= 1"),
        (["serve", "--port", "99999"], "error: Invalid value for '--port'"),
        (["align", "train", "x.jsonl", "--base", "b", "--batch-size", "0"], "'--batch-size'"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "x.jsonl").write_text(
        '{"prompt": "p", "response_a": "a", "response_b": "b", "outcome": "a"}\n', "utf-8"
    )
    monkeypatch.chdir(tmp_path)
    code, err = run(argv, capsys, monkeypatch)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------
# Output paths


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    rows = [
        {
            "prompt": f"q{i % 3}",
            "response_a": f"a{i}",
            "response_b": f"b{i}",
            "outcome": "ab"[i % 2],
        }
        for i in range(12)
    ]
    pq = save(from_rows(rows, Kind.COMPARISONS), tmp_path / "in.parquet")
    jl = tmp_path / "in.jsonl"
    jl.write_text(
        "".join(
            json.dumps(
                {"prompt": r["prompt"], "chosen": r["response_a"], "rejected": r["response_b"]}
            )
            + "\n"
            for r in rows
        ),
        "utf-8",
    )
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder\n", "utf-8")
    a_dir = tmp_path / "a_dir.parquet"
    a_dir.mkdir()
    return {"parquet": pq, "jsonl": jl, "file": a_file, "dir": a_dir}


def _unwritable(tmp: Path) -> Path:
    """A folder nobody may write in: /sys for root (permission bits do not stop root),
    else a folder without write permission."""
    if os.geteuid() == 0:
        return Path("/sys")
    d = tmp / "ro"
    d.mkdir()
    d.chmod(0o500)
    return d


# (argv with IN / OUT placeholders, what OUT must be)
FILE_OUTPUTS = [
    ["convert", "IN", "OUT"],
    ["pairs", "IN", "OUT"],
    ["aggregate", "IN", "OUT"],
    ["audit", "IN", "--fix", "OUT"],
    ["rm", "score", "length", "IN", "OUT"],
    ["serve", "export", "OUT", "--campaign", "1"],
    ["judge", "run", "IN", "OUT", "--model", "m"],
    ["judge", "route", "IN", "OUT", "--budget", "1"],
]
DIR_OUTPUTS = [
    ["convert", "IN", "OUT", "--to", "hf"],
    ["split", "IN", "OUT"],
    ["simulate", "clean", "OUT"],
    ["demo", "OUT"],
    ["audit", "IN", "--out", "OUT"],
    ["rank", "IN", "--out", "OUT"],
    ["rm", "train", "IN", "OUT"],
    ["align", "train", "IN", "--base", "nowhere", "--out", "OUT"],
    ["judge", "audit", "IN", "--out", "OUT"],
]


def _argv(template: list[str], inp: Path, out: Path) -> list[str]:
    return [str(inp) if a == "IN" else str(out) if a == "OUT" else a for a in template]


def _check_refused(
    argv: list[str],
    inputs: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    expect: str,
) -> None:
    before = {k: _digest(p) for k, p in inputs.items() if p.is_file()}
    code, err = run(argv, capsys, monkeypatch)
    assert code == 1, (argv, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and expect in lines[-1], (argv, err)
    assert {k: _digest(p) for k, p in inputs.items() if p.is_file()} == before


@pytest.mark.parametrize("template", FILE_OUTPUTS, ids=lambda t: " ".join(t[:2]))
def test_file_outputs_refuse_bad_paths(
    template: list[str],
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFKIT_DB", f"sqlite:///{tmp_path / 'x.db'}")
    inp = inputs["jsonl"] if template[0] == "pairs" else inputs["parquet"]
    if "IN" in template:  # OUT == IN
        _check_refused(_argv(template, inp, inp), inputs, capsys, monkeypatch, "OUT is the input")
    # OUT is a folder
    _check_refused(_argv(template, inp, inputs["dir"]), inputs, capsys, monkeypatch, "is a folder")
    # OUT cannot be written
    out = _unwritable(tmp_path) / "out.parquet"
    _check_refused(_argv(template, inp, out), inputs, capsys, monkeypatch, "cannot write")
    # OUT below a file
    _check_refused(
        _argv(template, inp, inputs["file"] / "out.parquet"),
        inputs,
        capsys,
        monkeypatch,
        "is a file, not a folder",
    )


@pytest.mark.parametrize("template", DIR_OUTPUTS, ids=lambda t: " ".join(t[:2]))
def test_folder_outputs_refuse_bad_paths(
    template: list[str],
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    inp = inputs["parquet"]
    # OUT is an existing file (or the input itself)
    _check_refused(
        _argv(template, inp, inputs["file"]),
        inputs,
        capsys,
        monkeypatch,
        "is a file; OUT must be a folder",
    )
    if "IN" in template:
        _check_refused(_argv(template, inp, inp), inputs, capsys, monkeypatch, "OUT is the input")
    out = _unwritable(tmp_path) / "out"
    _check_refused(_argv(template, inp, out), inputs, capsys, monkeypatch, "cannot write")


def test_hf_folder_must_be_empty_unless_overwrite(
    inputs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefkit.io.detect import read

    out = tmp_path / "hf"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n", "utf-8")
    argv = ["convert", str(inputs["parquet"]), str(out), "--to", "hf"]
    _check_refused(argv, inputs, capsys, monkeypatch, "folder is not empty; pass --overwrite")
    assert (out / "notes.txt").read_text("utf-8") == "mine\n"
    code, err = run([*argv, "--overwrite"], capsys, monkeypatch)
    assert code == 0, err
    assert read(out).table.num_rows == 12


def test_convert_same_file_does_not_touch_the_input(
    inputs: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the case of the issue: `prefkit convert x.jsonl x.jsonl` overwrote its input
    src = inputs["jsonl"]
    _check_refused(["convert", str(src), str(src)], inputs, capsys, monkeypatch, "OUT is the input")
    # and the same file under another name (a symlink)
    link = src.with_name("link.jsonl")
    link.symlink_to(src)
    _check_refused(
        ["convert", str(src), str(link)], inputs, capsys, monkeypatch, "OUT is the input"
    )
