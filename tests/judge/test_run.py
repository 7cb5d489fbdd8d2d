"""`prefkit judge run` against a real OpenAI-compatible HTTP server with scripted judges."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from tests.judge.conftest import Server, cli, error_line, start_server

from prefkit.io import save
from prefkit.io.canonical import load
from prefkit.io.detect import read
from prefkit.schema import Kind, from_rows, messages_text
from prefkit.simulate import simulate

N_PAIRS = 40


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = simulate("clean", size=N_PAIRS, seed=11).tables[Kind.COMPARISONS]
    return save(t, tmp_path_factory.mktemp("data") / "pairs.parquet")


def _rows(path: Path) -> list[dict[str, object]]:
    rows = read(path).table.to_pylist()
    for r in rows:
        r["meta"] = dict(r["meta"] or [])
    return rows


def _len(msgs: object) -> int:
    return len(messages_text(msgs))  # type: ignore[arg-type]


def _judge(server: Server, pairs: Path, out: Path, cache: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli("judge", "run", str(pairs), str(out), "--endpoint", server.url,
               "--cache", str(cache), "--json", *args)  # fmt: skip


def test_longer_judge_both_orders_cache_and_same_output(
    fresh_server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "votes.parquet"
    p = _judge(fresh_server, pairs_file, out, tmp_path / "cache", "--model", "longer")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    rows = _rows(out)
    assert len(rows) == N_PAIRS == summary["pairs"]
    for r in rows:
        la, lb = _len(r["response_a"]), _len(r["response_b"])
        want = "a" if la > lb else "b" if lb > la else "tie"
        assert r["outcome"] == want
        assert r["annotator"] == "judge:longer" and r["shown_first"] is None
        m = r["meta"]
        assert m["verdict_ab"] == m["verdict_ba"] == want and m["consistent"] == "true"
        assert m["template"] == "pairwise" and len(m["template_sha256"]) == 64
        assert int(m["calls"]) == 2 and int(m["tokens_in"]) > 0 and float(m["latency_s"]) > 0
        big, small = max(la, lb), min(la, lb)
        grade = 2 if big >= 1.5 * max(small, 1) else 1  # the server's rule
        assert r["strength"] == pytest.approx(0.5 + (grade / 4 if want == "a" else -grade / 4))
        assert "[a shown first]" in str(r["rationale"])
    assert summary["calls"]["made"] == 2 * N_PAIRS and summary["calls"]["cached"] == 0
    assert len(fresh_server.requests()) == 2 * N_PAIRS
    # a warm cache costs no call and gives the same file
    out2 = tmp_path / "again.parquet"
    p = _judge(fresh_server, pairs_file, out2, tmp_path / "cache", "--model", "longer")
    assert p.returncode == 0, p.stderr
    s2 = json.loads(p.stdout)
    assert s2["calls"]["made"] == 0 and s2["calls"]["cached"] == 2 * N_PAIRS
    assert len(fresh_server.requests()) == 2 * N_PAIRS
    assert load(out).equals(load(out2))


def test_position_biased_judge_and_keep_both(
    server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.jsonl"
    p = _judge(server, pairs_file, out, tmp_path / "c", "--model", "always-first")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["inconsistent"] == N_PAIRS and s["outcomes"]["tie"] == N_PAIRS
    out2 = tmp_path / "both.parquet"
    p = _judge(server, pairs_file, out2, tmp_path / "c", "--model", "always-first", "--keep-both")
    assert p.returncode == 0, p.stderr
    rows = _rows(out2)
    assert len(rows) == 2 * N_PAIRS
    assert all(r["outcome"] == r["shown_first"] for r in rows)  # P(first wins) = 1
    assert Counter(r["shown_first"] for r in rows) == {"a": N_PAIRS, "b": N_PAIRS}
    assert json.loads(p.stdout)["calls"]["made"] == 0  # same requests: all from the cache
    out3 = tmp_path / "noswap.parquet"
    p = _judge(server, pairs_file, out3, tmp_path / "c", "--model", "always-first", "--no-swap")
    assert p.returncode == 0, p.stderr
    rows = _rows(out3)
    assert len(rows) == N_PAIRS and {r["outcome"] for r in rows} == {"a"}
    assert {r["shown_first"] for r in rows} == {"a"}


def _malformed_rule(first_user_text: str, asked_again: bool) -> bool:
    """The fake server's rule: True when the answer carries no verdict."""
    h = int(hashlib.sha256(first_user_text.encode()).hexdigest(), 16)
    return h % 6 == 0 or (h % 3 == 0 and not asked_again)


def test_malformed_answers_are_asked_again_then_rejected(
    server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    from prefkit.judge.run import conversation_text
    from prefkit.judge.templates import load_template

    out = tmp_path / "v.parquet"
    p = _judge(server, pairs_file, out, tmp_path / "c", "--model", "malformed")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    # expected counts from the server's rule over the rendered user messages
    tmpl = load_template("pairwise")
    first_bad = never = lost_pairs = 0
    for r in _rows(pairs_file):
        a, b = messages_text(r["response_a"]), messages_text(r["response_b"])  # type: ignore[arg-type]
        lost = 0
        for x, y in ((a, b), (b, a)):
            msgs = tmpl.render(prompt=conversation_text(r["prompt"]), response_a=x, response_b=y)
            user = msgs[-1][1]
            first_bad += _malformed_rule(user, False)
            never += _malformed_rule(user, True)
            lost += _malformed_rule(user, True)
        lost_pairs += lost == 2
    assert first_bad > 0 and never > 0
    assert s["unparseable_first_answer"] == first_bad
    assert s["unparseable"] == never == s["rejected"]
    rej = [json.loads(x) for x in Path(str(out) + ".rejects.jsonl").read_text().splitlines()]
    assert len(rej) == never
    assert all("no verdict" in x["reason"] and "hard to say" in x["raw"] for x in rej)
    assert all(x["field"].startswith("judge:malformed (") and x["line"] >= 1 for x in rej)
    rows = _rows(out)
    assert sum(r["meta"]["consistent"] == "single" for r in rows) == s["single_order"]
    assert len(rows) == N_PAIRS - lost_pairs  # a pair with no verdict in either order is out
    assert s["single_order"] == never - 2 * lost_pairs


def test_rate_limits_and_5xx_are_retried_honouring_retry_after(
    server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    t = simulate("clean", size=8, seed=3).tables[Kind.COMPARISONS]
    f = save(t, tmp_path / "p.parquet")
    out = tmp_path / "v.parquet"
    p = _judge(server, f, out, tmp_path / "c", "--model", "ratelimited", "--concurrency", "4")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["calls"]["made"] == 16 and s["calls"]["retries"] == 16
    assert s["calls"]["waited_s"] >= 0.3  # Retry-After: 0.3 s, honoured
    assert s["outcomes"]["a"] + s["outcomes"]["b"] + s["outcomes"]["tie"] == 8
    p = _judge(server, f, tmp_path / "f.parquet", tmp_path / "c", "--model", "flaky")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["calls"]["retries"] == 16


def test_slow_responses_time_out_and_are_retried(server: Server, tmp_path: Path) -> None:
    t = simulate("clean", size=6, seed=2).tables[Kind.COMPARISONS]
    f = save(t, tmp_path / "p.parquet")
    p = _judge(server, f, tmp_path / "v.parquet", tmp_path / "c", "--model", "slow",
               "--timeout", "0.5", "--retries", "2")  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["calls"]["made"] == 12 and s["calls"]["retries"] >= 12


def test_server_crash_mid_run_then_resume_judges_nothing_twice(
    pairs_file: Path, tmp_path: Path
) -> None:
    # reference: one uninterrupted run
    ref_srv = start_server(tmp_path / "ref.log")
    try:
        p = _judge(ref_srv, pairs_file, tmp_path / "ref.parquet", tmp_path / "refcache",
                   "--model", "longer")  # fmt: skip
        assert p.returncode == 0, p.stderr
    finally:
        ref_srv.stop()
    from tests.judge.conftest import free_port

    port = free_port()
    log = tmp_path / "calls.log"
    crashing = start_server(log, "--crash-after", "31", port=port)
    out = tmp_path / "votes.parquet"
    p = _judge(crashing, pairs_file, out, tmp_path / "cache", "--model", "longer",
               "--retries", "1", "--concurrency", "4")  # fmt: skip
    crashing.stop()
    assert p.returncode == 1
    line = error_line(p)
    assert "re-run the same command to resume" in line
    partial = tmp_path / "votes.partial.parquet"
    assert partial.exists() and not out.exists()
    kept = load(partial).num_rows
    assert 0 < kept < N_PAIRS
    before = len(crashing.requests())
    assert before == 30  # the 31st request killed the server before it was logged
    again = start_server(log, port=port)
    try:
        p = _judge(again, pairs_file, out, tmp_path / "cache", "--model", "longer")
        assert p.returncode == 0, p.stderr
        s = json.loads(p.stdout)
    finally:
        again.stop()
    assert s["calls"]["cached"] == 30 and s["calls"]["made"] == 2 * N_PAIRS - 30
    assert out.exists() and not partial.exists()
    keys = [k for k, _ in again.requests()]
    assert len(keys) == 2 * N_PAIRS and len(set(keys)) == 2 * N_PAIRS  # nothing judged twice
    got, ref = load(out), load(tmp_path / "ref.parquet")
    strip = lambda t: [  # noqa: E731 - latency differs run to run
        {k: v for k, v in (r | {"meta": [kv for kv in r["meta"] if kv[0] != "latency_s"]}).items()}
        for r in t.to_pylist()
    ]
    assert strip(got) == strip(ref)


def test_panel_of_judges_then_dawid_skene(server: Server, pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "panel.parquet"
    p = _judge(server, pairs_file, out, tmp_path / "c", "--model", "longer", "--model",
               "always-first", "--model", "fair")  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = _rows(out)
    assert Counter(r["annotator"] for r in rows) == {
        "judge:longer": N_PAIRS, "judge:always-first": N_PAIRS, "judge:fair": N_PAIRS,
    }  # fmt: skip
    agg = tmp_path / "agg.parquet"
    p = cli("aggregate", str(out), str(agg), "--method", "dawid-skene", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pairs"] == N_PAIRS
    # a panel file does the same; its judges can use other templates
    panel = tmp_path / "panel.json"
    panel.write_text(json.dumps([{"model": "fair", "template": "mtbench", "endpoint": server.url},
                                 {"model": "longer"}]))  # fmt: skip
    p = _judge(server, pairs_file, tmp_path / "p2.parquet", tmp_path / "c", "--panel", str(panel))
    assert p.returncode == 0, p.stderr
    rows = _rows(tmp_path / "p2.parquet")
    fair = [r for r in rows if r["annotator"] == "judge:fair"]
    assert {r["meta"]["template"] for r in fair} == {"mtbench"}
    # the mtbench answers came with token logprobs: P(A) = 0.8 for the favoured side
    for r in fair:
        if r["outcome"] in ("a", "b"):
            assert r["strength"] == pytest.approx(0.8 if r["outcome"] == "a" else 0.2)


def test_logprobs_off_and_alpacaeval_template(
    server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.parquet"
    p = _judge(server, pairs_file, out, tmp_path / "c", "--model", "fair", "--template",
               "alpacaeval", "--no-logprobs")  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = _rows(out)
    for r in rows:
        la, lb = _len(r["response_a"]), _len(r["response_b"])
        if la != lb:
            assert r["outcome"] == ("a" if la > lb else "b")
        assert r["strength"] is None  # no logprobs asked, no grades in this format


def test_rubric_mode_gives_ratings_that_pairs_can_use(
    server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ratings.parquet"
    p = _judge(server, pairs_file, out, tmp_path / "c", "--model", "rater", "--mode", "rubric")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    t = load(out)
    aspects = ("helpfulness", "honesty", "instruction_following", "truthfulness")
    assert set(t.column("aspect").to_pylist()) == set(aspects)
    assert s["responses"] * 4 == t.num_rows
    for r in t.to_pylist():
        n = len(messages_text(r["response"]))
        assert r["score"] == max(1, min(5, 1 + n // 40))  # the server's rule
        assert r["scale_min"] == 1 and r["scale_max"] == 5
    p = _judge(server, pairs_file, tmp_path / "h.parquet", tmp_path / "c", "--model", "rater",
               "--mode", "rubric", "--aspects", "helpfulness", "--scale", "5")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert set(load(tmp_path / "h.parquet").column("aspect").to_pylist()) == {"helpfulness"}
    p = cli("pairs", str(out), str(tmp_path / "pairs.jsonl"), "--json")
    assert p.returncode == 0, p.stderr


def test_reference_mode_needs_a_reference(server: Server, tmp_path: Path) -> None:
    rows = [
        {"prompt": "2+2?", "response_a": "4, because two and two make four.", "response_b": "5",
         "outcome": "a", "meta": {"reference": "4", "pair_id": "x1"}},
        {"prompt": "Capital of France?", "response_a": "Paris", "response_b": "It is Lyon, I think.",
         "outcome": "a", "meta": {"pair_id": "x2"}},
    ]  # fmt: skip
    f = save(from_rows(rows, Kind.COMPARISONS), tmp_path / "ref.parquet")
    out = tmp_path / "v.parquet"
    p = _judge(server, f, out, tmp_path / "c", "--model", "fair", "--mode", "reference")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["pairs"] == 1 and s["rejected"] == 1
    rej = json.loads(Path(str(out) + ".rejects.jsonl").read_text().splitlines()[0])
    assert rej["field"] == "meta.reference" and rej["line"] == 2
    t = load(out)
    assert t.num_rows == 1 and t.column("outcome").to_pylist() == ["a"]
    p = _judge(server, f, tmp_path / "v2.parquet", tmp_path / "c", "--model", "fair", "--mode",
               "reference", "--reference-field", "pair_id")  # fmt: skip
    assert p.returncode == 0 and json.loads(p.stdout)["pairs"] == 2


def test_budget_guards_stop_and_resume(
    fresh_server: Server, pairs_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "v.parquet"
    p = _judge(fresh_server, pairs_file, out, tmp_path / "c", "--model", "longer",
               "--max-calls", "10")  # fmt: skip
    assert p.returncode == 1
    assert "--max-calls 10" in error_line(p)
    assert len(fresh_server.requests()) == 10
    assert load(tmp_path / "v.partial.parquet").num_rows <= 5
    p = _judge(fresh_server, pairs_file, out, tmp_path / "c", "--model", "longer",
               "--price-in", "1000", "--price-out", "1000", "--max-cost", "2.0")  # fmt: skip
    assert p.returncode == 1 and "--max-cost 2" in error_line(p)
    sent = len(fresh_server.requests()) - 10
    # what was paid stays under the budget: tokens are len(text)//4 per the server
    assert 0 < sent < 2 * N_PAIRS - 10
    p = _judge(fresh_server, pairs_file, out, tmp_path / "c", "--model", "longer")
    assert p.returncode == 0, p.stderr
    keys = [k for k, _ in fresh_server.requests()]
    assert len(keys) == len(set(keys)) == 2 * N_PAIRS
    assert load(out).num_rows == N_PAIRS


def test_api_key_from_env_is_sent_and_never_printed(pairs_file: Path, tmp_path: Path) -> None:
    secret = "sk-test-" + "x" * 24
    srv = start_server(tmp_path / "k.log", "--api-key", secret)
    try:
        args = ("judge", "run", str(pairs_file), str(tmp_path / "v.parquet"), "--endpoint",
                srv.url, "--model", "longer", "--cache", str(tmp_path / "c"))  # fmt: skip
        p = cli(*args, env={"OPENAI_API_KEY": "wrong"})
        assert p.returncode == 1
        line = error_line(p)
        assert "401" in line and "OPENAI_API_KEY" in line and "wrong" not in p.stderr
        p = cli(*args, "--api-key-env", "MY_JUDGE_KEY", env={"MY_JUDGE_KEY": secret})
        assert p.returncode == 0, p.stderr
        assert secret not in p.stderr + p.stdout
        cache_db = (tmp_path / "c" / "judge-cache.sqlite").read_bytes()
        assert secret.encode() not in cache_db
    finally:
        srv.stop()


def test_bad_input_one_line_each_exit_1(server: Server, pairs_file: Path, tmp_path: Path) -> None:
    from tests.judge.conftest import cli_process, free_port

    down = f"http://127.0.0.1:{free_port()}/v1"
    p = cli_process("judge", "run", str(pairs_file), str(tmp_path / "v.parquet"), "--endpoint", down,
            "--model", "longer", "--cache", str(tmp_path / "c"), "--retries", "1")  # fmt: skip
    assert p.returncode == 1 and "cannot connect" in error_line(p)
    p = _judge(server, pairs_file, tmp_path / "v.parquet", tmp_path / "c", "--model", "gpt-99")
    assert p.returncode == 1
    assert "model 'gpt-99' not found" in error_line(p)
    p = _judge(server, pairs_file, tmp_path / "v.parquet", tmp_path / "c", "--model", "empty")
    assert p.returncode == 1 and "empty answers" in error_line(p)
    bad = tmp_path / "bad.j2"
    bad.write_text("Compare {{ response_a }} and {{ response_b }} for {{ user_question }}.")
    p = _judge(server, pairs_file, tmp_path / "v.parquet", tmp_path / "c", "--model", "longer",
               "--template", str(bad))  # fmt: skip
    assert p.returncode == 1 and "{{ user_question }}" in error_line(p)
    broken = tmp_path / "broken.j2"
    broken.write_text("Compare {{ response_a }} and {% if %}")
    p = _judge(server, pairs_file, tmp_path / "v.parquet", tmp_path / "c", "--model", "longer",
               "--template", str(broken))  # fmt: skip
    assert p.returncode == 1 and "line 1" in error_line(p)
    assert not (tmp_path / "v.parquet").exists()
    # a panel where one judge is misnamed: the good judge's answers are kept and cached
    p = _judge(server, pairs_file, tmp_path / "v.parquet", tmp_path / "c2", "--model", "longer",
               "--model", "gtp-4o", "--concurrency", "1")  # fmt: skip
    assert p.returncode == 1 and "gtp-4o" in error_line(p)
    n0 = len(server.requests())
    p = _judge(server, pairs_file, tmp_path / "v.parquet", tmp_path / "c2", "--model", "longer")
    assert p.returncode == 0, p.stderr
    assert len(server.requests()) - n0 == json.loads(p.stdout)["calls"]["made"]
    assert json.loads(p.stdout)["calls"]["cached"] > 0


def test_usage_errors_exit_2(pairs_file: Path, tmp_path: Path) -> None:
    base = ("judge", "run", str(pairs_file), str(tmp_path / "v.parquet"))
    for extra in (
        ("--endpoint", "http://x/v1"),  # no model
        ("--endpoint", "http://x/v1", "--model", "m", "--mode", "pointwise"),
        ("--endpoint", "http://x/v1", "--model", "m", "--concurrency", "0"),
        ("--endpoint", "http://x/v1", "--model", "m", "--max-cost", "5"),  # no prices
        ("--endpoint", "http://x/v1", "--model", "m", "--no-swap", "--keep-both"),
        (
            "--model",
            "m",
        ),  # no endpoint
    ):
        p = cli(*base, *extra)
        assert p.returncode == 2, (extra, p.stderr)
        assert "Traceback" not in p.stderr


def test_input_without_texts_is_rejected_not_judged(server: Server, tmp_path: Path) -> None:
    rows = [
        {"prompt": "q", "response_a": "short", "response_b": "a much longer answer", "outcome": "b"},
        {"prompt": "q2", "response_a": None, "response_b": "x", "model_a": "m1", "model_b": "m2",
         "outcome": "a"},
    ]  # fmt: skip
    f = save(from_rows(rows, Kind.COMPARISONS), tmp_path / "in.parquet")
    out = tmp_path / "v.parquet"
    p = _judge(server, f, out, tmp_path / "c", "--model", "longer")
    assert p.returncode == 0, p.stderr
    rej = [json.loads(x) for x in Path(str(out) + ".rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rej] == [(2, "response_a")]
    assert load(out).column("outcome").to_pylist() == ["b"]
    assert isinstance(load(out), pa.Table)


def test_sampling_options_reach_the_endpoint(fresh_server: Server, tmp_path: Path) -> None:
    t = simulate("clean", size=5, seed=4).tables[Kind.COMPARISONS]
    f = save(t, tmp_path / "p.parquet")
    p = _judge(fresh_server, f, tmp_path / "v.parquet", tmp_path / "c", "--model", "longer",
               "--swap", "--logprobs", "--temperature", "0.7")  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = fresh_server.log_lines()
    assert (
        len(lines) == 10 and {x[2] for x in lines} == {"0.7"} and {x[4] for x in lines} == {"True"}
    )
    # max_tokens cuts the answers before the verdict: asked again, then rejected, all counted
    p = _judge(fresh_server, f, tmp_path / "w.parquet", tmp_path / "c", "--model", "longer",
               "--max-tokens", "2", "--no-logprobs")  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert {x[3] for x in fresh_server.log_lines()[10:]} == {"2"}
    assert {x[4] for x in fresh_server.log_lines()[10:]} == {"False"}
    assert s["rows_out"] == 0 and s["rejected"] == 10 and s["unparseable"] == 10
    # --from names the reader (here the canonical Parquet one)
    p = _judge(fresh_server, f, tmp_path / "x.parquet", tmp_path / "c", "--model", "longer",
               "--temperature", "0.7", "--from", "canonical")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["calls"]["made"] == 0  # same requests as the first run: cached


def test_ctrl_c_keeps_what_was_paid_and_resumes(pairs_file: Path, tmp_path: Path) -> None:
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    srv = start_server(tmp_path / "calls.log", "--delay", "0.3")
    try:
        args = ["judge", "run", str(pairs_file), str(tmp_path / "v.parquet"), "--endpoint",
                srv.url, "--model", "longer", "--cache", str(tmp_path / "c"),
                "--concurrency", "4"]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
        proc = subprocess.Popen(
            [sys.executable, "-c", "from prefkit.cli import main; main()", *args],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while len(srv.requests()) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted:" in err and "re-run the same command" in err and "Traceback" not in err
        assert not (tmp_path / "v.parquet").exists()
        sent = len(srv.requests())
        with sqlite3.connect(tmp_path / "c" / "judge-cache.sqlite") as db:
            cached = db.execute("select count(*) from calls").fetchone()[0]
        assert 0 < cached <= sent < 2 * N_PAIRS
        assert sent - cached <= 4  # only the requests in flight at Ctrl-C are lost
        p = cli(*args, "--json")
        assert p.returncode == 0, p.stderr
        s = json.loads(p.stdout)
        assert s["calls"]["cached"] == cached and s["calls"]["made"] == 2 * N_PAIRS - cached
        assert len(srv.requests()) == sent + s["calls"]["made"]
    finally:
        srv.stop()


def test_chunked_judging_equals_one_chunk(
    server: Server, pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pairs judged CHUNK_ITEMS at a time (memory: one chunk's prompts and answers) give the
    votes, rejects and counts of judging all at once, with two judges (one malformed: asked
    again, rejects); a budget holds across chunks."""
    import prefkit.judge.run as jr
    from prefkit.judge.cache import Cache
    from prefkit.judge.client import Budget, Client, Endpoint
    from prefkit.judge.templates import load_template

    table = load(pairs_file)
    url = server.url
    judges = [
        jr.Judge(Endpoint(url, m), load_template("pairwise")) for m in ("malformed", "longer")
    ]

    def run(chunk: int, cache: str, calls: int | None = None) -> jr.JudgeOutput:
        monkeypatch.setattr(jr, "CHUNK_ITEMS", chunk)
        client = Client(cache=Cache(tmp_path / cache), concurrency=1, budget=Budget(calls))
        return jr.judge_table(table, judges, client, jr.Options(), "pairs.parquet")

    def rows(t: pa.Table) -> list[dict[str, object]]:  # latency_s: measured, differs per run
        out = t.to_pylist()
        for r in out:
            r["meta"] = {k: v for k, v in (r["meta"] or []) if k != "latency_s"}
        return out

    whole, chunked = run(10_000, "c1"), run(7, "c2")
    assert rows(chunked.table) == rows(whole.table) and whole.table.num_rows > N_PAIRS
    assert chunked.rejects == whole.rejects and len(whole.rejects) > 0
    for k in ("pairs", "outcomes", "consistent", "inconsistent", "unparseable", "rows_out",
              "unparseable_first_answer", "with_strength", "rejected"):  # fmt: skip
        assert chunked.summary[k] == whole.summary[k], k
    # --max-calls covers every chunk (and the asking-again rounds) together
    short = run(7, "c4", 50)
    assert not short.complete and short.summary["budget_reached"]
    assert short.summary["calls"]["made"] == 50 and 0 < short.table.num_rows < whole.table.num_rows
