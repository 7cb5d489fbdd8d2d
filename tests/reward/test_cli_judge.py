from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit._cli import CLIError
from prefkit.cli import app
from prefkit.io import save
from prefkit.schema import from_rows

runner = CliRunner()


class _Judge(BaseHTTPRequestHandler):
    """A chat-completions server whose verdicts depend on the text: it rates by length and, in
    pairwise mode, prefers the longer response but says 'A' whenever lengths are within 20%."""

    calls = 0

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers["Content-Length"])
        req = json.loads(self.rfile.read(n))
        assert self.path == "/v1/chat/completions"
        text = req["messages"][-1]["content"]
        type(self).calls += 1
        if "[Response A]" in text:
            a = text.split("[Response A]\n")[1].split("\n\n[Response B]")[0]
            b = text.split("[Response B]\n")[1]
            ans = "A" if len(a) >= 0.8 * len(b) else "B"
        else:
            ans = str(min(10, 1 + len(text.split("[Assistant]\n")[1]) // 10))
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
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_cli_train_score_eval(clean_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    r = runner.invoke(app, ["rm", "train", str(clean_file), str(out), "--seed", "1", "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model.json").read_text())
    assert card["backend"] == "features" and card["seed"] == 1
    assert card["data"]["digest"] and card["metrics"]["model"]["accuracy"]["n"] > 0
    scored = tmp_path / "scored.parquet"
    r = runner.invoke(app, ["rm", "score", str(out), str(clean_file), str(scored)])
    assert r.exit_code == 0, r.output
    t = pq.read_table(scored)
    assert {"reward_a", "reward_b"} <= set(t.column_names)
    assert t.column("reward_a").null_count == 0
    r = runner.invoke(app, ["rm", "eval", str(out), str(clean_file), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    for k in ("model", "length_baseline", "random_baseline"):
        assert res[k]["accuracy"]["n"] == res["model"]["accuracy"]["n"]
    assert res["model"]["accuracy"]["accuracy"] > res["random_baseline"]["accuracy"]["accuracy"]
    r = runner.invoke(app, ["rm", "eval", "length", str(clean_file)])
    assert r.exit_code == 0 and "chosen_shorter" in r.stdout


def test_cli_bad_model_dirs(clean_file: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["rm", "eval", str(tmp_path), str(clean_file)])
    assert isinstance(r.exception, CLIError) and "not a reward model directory" in str(r.exception)
    (tmp_path / "model.json").write_text(
        json.dumps(
            {
                "format": "prefkit-reward-model",
                "format_version": 1,
                "prefkit_version": "7.0.0",
                "backend": "features",
            }
        )
    )
    r = runner.invoke(
        app, ["rm", "score", str(tmp_path), str(clean_file), str(tmp_path / "o.parquet")]
    )
    assert isinstance(r.exception, CLIError) and "prefkit 7.0.0" in str(r.exception)
    r = runner.invoke(
        app, ["rm", "train", str(clean_file), str(tmp_path / "m"), "--backend", "trl"]
    )
    assert isinstance(r.exception, CLIError) and "--base" in str(r.exception)


def test_judge_scores_and_position_swap_over_http(judge_url: str, tmp_path: Path) -> None:
    rows = [
        {
            "prompt": "q1",
            "response_a": "short",
            "response_b": "a much longer answer here",
            "outcome": "b",
        },
        {
            "prompt": "q2",
            "response_a": "a long and detailed answer",
            "response_b": "tiny",
            "outcome": "a",
        },
        {"prompt": "q3", "response_a": "answer one!", "response_b": "answer two", "outcome": "b"},
        {"prompt": "q4", "response_a": "", "response_b": "non-empty reply", "outcome": "b"},
    ]
    f = save(from_rows(rows, "comparisons"), tmp_path / "pairs.parquet")
    out = tmp_path / "judged.jsonl"
    r = runner.invoke(app, ["rm", "score", "x", str(f), str(out), "--judge", judge_url])
    assert r.exit_code == 0, r.output
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["reward_b"] > g["reward_a"] for g in got] == [True, False, False, True]
    r = runner.invoke(app, ["rm", "eval", "x", str(f), "--judge", judge_url, "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    # q3 has near-equal lengths: the stub answers "A" in both orders -> inconsistent
    assert res["position_swap"]["consistency"] == 0.75
    assert res["model"]["accuracy"]["n"] == 4
