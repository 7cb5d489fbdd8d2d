"""`prefkit rm eval --tie-threshold` and `--judge-model` through the real command (the judge
is a real HTTP server on loopback)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefkit._cli import CLIError
from prefkit.cli import app
from prefkit.io import save
from prefkit.schema import from_rows

runner = CliRunner()

# (length of response a, length of response b, human outcome)
PAIRS = [
    (40, 40, "tie"), (40, 44, "tie"), (40, 52, "tie"), (40, 90, "tie"),
    (80, 40, "a"), (50, 46, "a"), (30, 90, "a"), (120, 20, "a"),
    (20, 60, "b"), (60, 56, "b"), (90, 30, "b"), (33, 36, "b"),
]  # fmt: skip


def _file(tmp_path: Path) -> Path:
    rows = [
        {"prompt": f"question {k}", "response_a": "x" * a, "response_b": "y" * b, "outcome": o}
        for k, (a, b, o) in enumerate(PAIRS)
    ]
    return save(from_rows(rows, "comparisons"), tmp_path / "pairs.parquet")


def _tie_aware(threshold: float) -> float:
    """Independent reference: the length reward is log(1 + characters); a pair is called a tie
    when |Δ| < threshold, else for the longer side (docs/reward.md)."""
    right = 0
    for a, b, o in PAIRS:
        d = math.log1p(a) - math.log1p(b)
        call = "tie" if abs(d) < threshold else ("a" if d > 0 else "b")
        right += call == o
    return right / len(PAIRS)


def test_tie_threshold_decides_which_pairs_are_ties(tmp_path: Path) -> None:
    src = _file(tmp_path)
    got = {}
    for thr in (0.05, 0.2, 0.5, 1.2):
        r = runner.invoke(
            app, ["rm", "eval", "length", str(src), "--tie-threshold", str(thr), "--json"]
        )
        assert r.exit_code == 0, r.output
        res = json.loads(r.stdout)
        got[thr] = res["model"]["tie_aware"]["accuracy"]
        assert got[thr] == pytest.approx(_tie_aware(thr), abs=1e-12), thr
        assert res["model"]["tie_aware"]["n"] == len(PAIRS)
    assert got[0.05] != got[0.2] and got[0.5] != got[1.2]  # the threshold changes the calls
    r = runner.invoke(app, ["rm", "eval", "length", str(src), "--tie-threshold", "-1"])
    assert isinstance(r.exception, CLIError) and r.exception.code == 2
    assert "--tie-threshold" in str(r.exception)


class _Judge(BaseHTTPRequestHandler):
    """A chat-completions server that records the model name of every request and answers 5
    (ratings) or 'A' (pairwise)."""

    models: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).models.append(req["model"])
        ans = "A" if "[Response A]" in req["messages"][-1]["content"] else "5"
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ans}}],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def judge_url() -> Iterator[str]:
    _Judge.models = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_judge_model_is_the_model_asked(judge_url: str, tmp_path: Path) -> None:
    src = _file(tmp_path)
    out = tmp_path / "scored.jsonl"
    r = runner.invoke(
        app, ["rm", "score", "x", str(src), str(out), "--judge", judge_url, "--judge-model", "qwen-judge-7b"]
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == len(PAIRS)
    assert len(_Judge.models) == 2 * len(PAIRS) and set(_Judge.models) == {"qwen-judge-7b"}
    _Judge.models.clear()
    r = runner.invoke(
        app, ["rm", "eval", "x", str(src), "--judge", judge_url, "--judge-model", "other-judge", "--json"]
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(_Judge.models) == 2 * len(PAIRS) and set(_Judge.models) == {"other-judge"}
    # the judge always says "A": every pair flips with the order
    assert json.loads(r.stdout)["position_swap"]["consistency"] == 0.0
