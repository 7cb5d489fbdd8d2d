"""Bad input, tried as a new user would: one-line reasons naming file, line and field; every
valid row kept; rejects in OUT.rejects.jsonl; --strict stops at the first bad row."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefkit.io.base import InputError, StrictError
from prefkit.io.canonical import load
from prefkit.io.detect import read
from tests.conftest import REPO
from tests.io._util import cli, write_jsonl

GOOD = {"input": "Say hi", "output_1": "Hi!", "output_2": "Go away.", "label": 1}


def _rows(n: int = 4) -> list[object]:
    return [{**GOOD, "input": f"Say hi #{i}"} for i in range(n)]


def _convert(src: Path, tmp_path: Path, *extra: str) -> tuple[object, list[dict[str, object]]]:
    out = tmp_path / "out.parquet"
    res = cli("convert", src, out, *extra)
    rej_path = Path(str(out) + ".rejects.jsonl")
    rejects = (
        [json.loads(x) for x in rej_path.read_text(encoding="utf-8").splitlines()]
        if rej_path.exists()
        else []
    )
    return res, rejects


def _kept(tmp_path: Path) -> list[str]:
    t = load(tmp_path / "out.parquet")
    return [p[0]["content"] for p in t.column("prompt").to_pylist()]


def test_truncated_json_line_keeps_valid_rows(tmp_path: Path) -> None:
    rows = _rows()
    text = json.dumps(rows[2])
    src = write_jsonl(tmp_path / "in.jsonl", [rows[0], rows[1], text[: len(text) // 2], rows[3]])
    res, rejects = _convert(src, tmp_path)
    assert res.exit_code == 0, res.output
    assert _kept(tmp_path) == ["Say hi #0", "Say hi #1", "Say hi #3"]
    assert len(rejects) == 1
    assert rejects[0]["line"] == 3 and rejects[0]["file"] == str(src)
    assert "invalid JSON" in rejects[0]["reason"]
    assert "1 rejected" in res.output


def test_truncated_json_array_salvages_complete_records(tmp_path: Path) -> None:
    text = json.dumps(_rows(), indent=1)
    src = tmp_path / "in.json"
    src.write_text(text[: len(text) - 40], encoding="utf-8")
    res = read(src)
    assert [p[0]["content"] for p in res.table.column("prompt").to_pylist()] == [
        "Say hi #0",
        "Say hi #1",
        "Say hi #2",
    ]
    assert len(res.rejects) == 1 and res.rejects[0].line == 4


def test_missing_field(tmp_path: Path) -> None:
    rows = _rows()
    bad = dict(rows[1])  # type: ignore[call-overload]
    del bad["output_2"]
    rows[1] = bad
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    res, rejects = _convert(src, tmp_path)
    assert res.exit_code == 0
    assert len(_kept(tmp_path)) == 3
    assert rejects == [
        {
            "file": str(src),
            "line": 2,
            "field": "output_2",
            "reason": "required field is missing",
            "raw": json.dumps(bad, ensure_ascii=False),
        }
    ]


def test_wrong_type(tmp_path: Path) -> None:
    rows = _rows()
    rows[0] = {**GOOD, "output_1": {"text": "nested"}}
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    res, rejects = _convert(src, tmp_path)
    assert res.exit_code == 0
    assert len(_kept(tmp_path)) == 3
    assert rejects[0]["line"] == 1 and rejects[0]["field"] == "output_1"
    assert "expected a string, got an object" in rejects[0]["reason"]


def test_unknown_outcome_value(tmp_path: Path) -> None:
    src = tmp_path / "battles.csv"
    src.write_text(
        "id,prompt,worker,winner,left,right\n1,1,w1,left,A,B\n2,1,w2,maybe,A,B\n3,1,w3,tie,A,B\n",
        encoding="utf-8",
    )
    res, rejects = _convert(src, tmp_path)
    assert res.exit_code == 0
    t = load(tmp_path / "out.parquet")
    assert t.column("outcome").to_pylist() == ["a", "tie"]
    assert rejects[0]["line"] == 3 and rejects[0]["field"] == "winner"
    assert "unknown outcome value 'maybe'" in rejects[0]["reason"]


def test_value_map_rescues_unknown_outcome(tmp_path: Path) -> None:
    src = tmp_path / "battles.csv"
    src.write_text("id,prompt,worker,winner,left,right\n2,1,w2,maybe,A,B\n", encoding="utf-8")
    res, rejects = _convert(src, tmp_path, "--value-map", "outcome:maybe=tie")
    assert res.exit_code == 0 and not rejects
    assert load(tmp_path / "out.parquet").column("outcome").to_pylist() == ["tie"]


def test_gz_that_is_not_gzip(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl.gz"
    src.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    res, _ = _convert(src, tmp_path)
    assert res.exit_code == 1
    assert isinstance(res.exception, InputError)
    assert str(res.exception) == f"{src}, line 1: file ends in .gz but is not gzip data"


def test_real_gzip_is_read(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(GOOD) + "\n")
    assert read(src).table.num_rows == 1


def test_empty_file(tmp_path: Path) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_bytes(b"")
    res, _ = _convert(src, tmp_path)
    assert res.exit_code == 1
    assert str(res.exception) == f"{src}, line 1: file is empty"


def test_strict_stops_at_first_bad_row(tmp_path: Path) -> None:
    rows = _rows()
    rows[2] = {**GOOD, "label": 7}
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    res, _ = _convert(src, tmp_path, "--strict")
    assert res.exit_code == 1
    assert isinstance(res.exception, StrictError)
    assert res.exception.line == 3 and res.exception.field == "label"
    assert not (tmp_path / "out.parquet").exists()


def test_no_valid_row_exits_1(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{**GOOD, "label": 9}, {**GOOD, "label": "x"}])
    res, rejects = _convert(src, tmp_path)
    assert res.exit_code == 1
    assert "no valid row (2 rejected)" in str(res.exception)
    assert len(rejects) == 2


def test_unknown_format_lists_readers_and_help(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [{"q": "a", "x": 1}])
    res, _ = _convert(src, tmp_path)
    assert res.exit_code == 1
    msg = str(res.exception)
    assert "unknown format (columns: q, x); tried canonical" in msg
    assert "hh-rlhf" in msg and "llmfao" in msg and "--from" in msg and "--map" in msg


def test_cli_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    src = tmp_path / "broken.json.gz"
    src.write_bytes(b"not gzip at all")
    proc = subprocess.run(
        [sys.executable, "-c", "from prefkit.cli import main; main()", "inspect", str(src)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert lines[-1].startswith("error:") and "not gzip" in " ".join(lines)


HUGE = r"""
import json, sys
from pathlib import Path
from prefkit.io.detect import read
import prefkit.io.readers  # noqa: F401


def status_kb(key):
    # VmHWM is this process's own peak RSS; ru_maxrss would include the pytest parent's
    # high-water mark, which Linux carries across fork and exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


base = status_kb("VmHWM")
res = read(Path(sys.argv[1]))
print(json.dumps({
    "rows": res.table.num_rows,
    "rejects": [[r.line, r.reason] for r in res.rejects],
    "base_kb": base,
    "peak_kb": status_kb("VmHWM"),
}))
"""


@pytest.mark.slow
def test_one_line_of_200_mb_stays_bounded(tmp_path: Path) -> None:
    src = tmp_path / "huge.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(GOOD) + "\n")
        fh.write('{"input": "x", "output_1": "')
        chunk = "y" * (1 << 20)
        for _ in range(200):
            fh.write(chunk)
        fh.write('", "output_2": "z", "label": 1}\n')
        fh.write(json.dumps({**GOOD, "input": "after"}) + "\n")
    assert src.stat().st_size > 200 * (1 << 20)
    proc = subprocess.run(
        [sys.executable, "-c", HUGE, str(src)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rows"] == 2  # the valid rows on both sides of the huge line
    assert len(out["rejects"]) == 1 and out["rejects"][0][0] == 2
    assert "over the" in out["rejects"][0][1]
    # the 200 MB line never sits in memory: reading adds well under its size to the peak RSS
    grown_kb = out["peak_kb"] - out["base_kb"]
    assert grown_kb < 100 * 1024, out
