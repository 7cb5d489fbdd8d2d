"""Personalised feature reward models: `prefkit rm train --personalize`, `rm score/eval
--group`, `rm adapt`, on the simulator's `pluralistic3` groups (known truth: each annotator's
group and its taste for formatting), through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from benchmarks.bench_pluralistic import with_true_group

from prefkit.io import read, save
from prefkit.reward.features import response_features
from prefkit.reward.personal import DEFAULT_TAU, MIN_ROWS, fit_offset
from prefkit.schema import messages_text
from prefkit.simulate import simulate


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefkit.cli", *args], capture_output=True, text=True, timeout=600
    )


def _ok(*args: str) -> subprocess.CompletedProcess[str]:
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Training votes (seed 0) and held-out votes (seed 1: other prompts, other annotators,
    same three groups), each row's true group in meta.group; one trained personalised model."""
    d = tmp_path_factory.mktemp("personal")
    train = with_true_group(simulate("pluralistic3", size=3000, seed=0, annotators=20))
    test = with_true_group(simulate("pluralistic3", size=3000, seed=1, annotators=10))
    paths = {"train": save(train, d / "train.parquet"), "test": save(test, d / "test.parquet")}
    for g in ("quality", "plain", "formatted"):
        sub = test.filter(pc.equal(_groups(test), g))
        paths[g] = save(sub, d / f"test_{g}.parquet")
    paths["model"] = d / "model"
    _ok("rm", "train", str(paths["train"]), str(paths["model"]), "--personalize", "group")
    return paths


def _groups(t: pa.Table) -> pa.Array:
    return pa.array([dict(m)["group"] for m in t.column("meta").to_pylist()])


def _accuracy(model: Path, data: Path, *extra: str) -> float:
    r = _ok("rm", "eval", str(model), str(data), "--json", *extra)
    return float(json.loads(r.stdout)["model"]["accuracy"]["accuracy"])


@pytest.mark.slow
def test_card_records_groups_their_sizes_and_the_prior(world: dict[str, Path]) -> None:
    card = json.loads((world["model"] / "model.json").read_text())
    pers = card["personalize"]
    assert pers["by"] == "group"
    assert {g["name"] for g in pers["groups"]} == {"quality", "plain", "formatted"}
    # sizes: the training rows of each group, counted here from the raw file and the card's
    # own split (every training row is in exactly one group)
    assert sum(g["rows"] for g in pers["groups"]) == card["data"]["train_rows"]
    sizes = {g["name"]: g["rows"] for g in pers["groups"]}
    assert sizes["quality"] > sizes["plain"] > sizes["formatted"]  # shares 50/30/20%
    assert pers["tau"] in [p["tau"] for p in pers["tau_path"]]
    assert pers["tau"] == min(pers["tau_path"], key=lambda p: p["val_log_loss"])["tau"]
    assert card["disentangle"]["groups"] == []  # auto + --personalize: no nuisance heads
    n_features = len(np.load(world["model"] / "features.npz")["beta"])
    assert all(len(g["offset"]) == n_features for g in pers["groups"])


@pytest.mark.slow
def test_worst_group_accuracy_above_the_pooled_models(world: dict[str, Path]) -> None:
    pooled = {g: _accuracy(world["model"], world[g]) for g in ("quality", "plain", "formatted")}
    personal = {
        g: _accuracy(world["model"], world[g], "--group", g)
        for g in ("quality", "plain", "formatted")
    }
    assert min(personal.values()) > min(pooled.values()), (pooled, personal)
    # the minority groups with opposite tastes are the ones the pooled model serves worst
    assert personal["formatted"] > pooled["formatted"]
    assert personal["plain"] > pooled["plain"]


@pytest.mark.slow
def test_score_group_uses_pooled_head_plus_offset(world: dict[str, Path], tmp_path: Path) -> None:
    card = json.loads((world["model"] / "model.json").read_text())
    z = np.load(world["model"] / "features.npz")
    off = np.asarray(
        next(g for g in card["personalize"]["groups"] if g["name"] == "plain")["offset"]
    )
    out = tmp_path / "scored.parquet"
    _ok("rm", "score", str(world["model"]), str(world["plain"]), str(out), "--group", "plain")
    t = pq.read_table(out)
    prompts = [messages_text(p) for p in t.column("prompt").to_pylist()]
    x, _ = response_features(
        prompts, [messages_text(r) for r in t.column("response_a").to_pylist()]
    )
    expect = ((x - z["mean"]) / z["std"]) @ (z["beta"] + off)
    np.testing.assert_allclose(t.column("reward_a").to_numpy(), expect, rtol=1e-9, atol=1e-9)
    # an unknown group: the pooled head, said on stderr
    out2 = tmp_path / "pooled.parquet"
    r = _ok("rm", "score", str(world["model"]), str(world["plain"]), str(out2), "--group", "nobody")
    assert "'nobody' is not in" in r.stderr and "pooled head" in r.stderr
    np.testing.assert_allclose(
        pq.read_table(out2).column("reward_a").to_numpy(),
        ((x - z["mean"]) / z["std"]) @ z["beta"],
        rtol=1e-9,
        atol=1e-9,
    )


@pytest.mark.slow
def test_adapt_from_20_votes_beats_pooled_for_a_far_user(
    world: dict[str, Path], tmp_path: Path
) -> None:
    test = read(world["formatted"]).table
    ann = sorted(set(test.column("annotator").to_pylist()))[0]
    mine = test.filter(pc.equal(test.column("annotator"), ann))
    assert mine.num_rows >= 120
    votes = save(mine.slice(0, 20), tmp_path / "user_votes.parquet")
    rest = save(mine.slice(20), tmp_path / "user_rest.parquet")
    out = tmp_path / "adapted"
    r = _ok("rm", "adapt", str(world["model"]), str(votes), str(out), "--group", "me", "--json")
    entry = json.loads(r.stdout)
    assert entry["name"] == "me" and entry["rows"] == 20
    card = json.loads((out / "model.json").read_text())
    assert [g["name"] for g in card["personalize"]["groups"]][-1] == "me"
    adapted = _accuracy(out, rest, "--group", "me")
    pooled = _accuracy(out, rest)
    assert adapted > pooled + 0.05, (adapted, pooled)


def test_adapt_offset_is_the_map_estimate() -> None:
    """fit_offset against a closed-form check: at the optimum the gradient of the penalised
    log-likelihood, Σ w (σ(z) − y) d + τ δ, vanishes; and τ → ∞ leaves the pooled head."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(200, 4))
    beta = np.array([1.0, -0.5, 0.0, 0.2])
    y = (rng.random(200) < 1 / (1 + np.exp(-d @ np.array([-1.0, 0.5, 1.0, 0.2])))).astype(float)
    w = np.ones(200)
    delta = fit_offset(d, y, w, beta, 3.0)
    z = d @ (beta + delta)
    grad = d.T @ (1 / (1 + np.exp(-z)) - y) + 3.0 * delta
    assert np.abs(grad).max() < 1e-3
    assert np.abs(fit_offset(d, y, w, beta, 1e9)).max() < 1e-5


def test_adapt_an_unpersonalised_model_uses_the_default_prior(
    clean_file: Path, tmp_path: Path
) -> None:
    model = tmp_path / "m"
    _ok("rm", "train", str(clean_file), str(model), "--disentangle", "none")
    t = read(clean_file).table.slice(0, 30)
    votes = save(t, tmp_path / "votes.parquet")
    r = _ok("rm", "adapt", str(model), str(votes), str(tmp_path / "m2"), "--json")
    card = json.loads((tmp_path / "m2" / "model.json").read_text())
    assert card["personalize"]["tau"] == DEFAULT_TAU
    assert json.loads(r.stdout)["name"] == "votes"  # several annotators: the file stem
    assert "not trained with --personalize" in card["personalize"]["tau_chosen_by"]


def test_bad_input_one_line_exit_1(clean_file: Path, tmp_path: Path) -> None:
    r = _run("rm", "train", str(clean_file), str(tmp_path / "m"), "--personalize", "nosuch")
    assert r.returncode == 1, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "'nosuch'" in err[0] and "Traceback" not in r.stderr
    # one group: every row has the same source
    r = _run("rm", "train", str(clean_file), str(tmp_path / "m"), "--personalize", "source")
    assert r.returncode == 1, r.stderr
    assert "nothing to personalise" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "m" / "model.json").exists()
    r = _run("rm", "train", str(clean_file), str(tmp_path / "m"), "--personalize", "annotator",
             "--backend", "trl", "--base", str(tmp_path))  # fmt: skip
    assert r.returncode == 2 and "--personalize" in r.stderr
    r = _run("rm", "score", "length", str(clean_file), str(tmp_path / "s.parquet"), "--group", "x")
    assert r.returncode == 2 and "--group" in r.stderr


def test_few_votes_group_is_reported_and_pooled(clean_table: pa.Table, tmp_path: Path) -> None:
    """A group with fewer than MIN_ROWS votes gets no offset: listed in `pooled_only`."""
    metas = [[*(m or []), ("group", "big" if i >= MIN_ROWS - 1 else "tiny")]
             for i, m in enumerate(clean_table.column("meta").to_pylist())]  # fmt: skip
    t = clean_table.set_column(clean_table.column_names.index("meta"), "meta",
                               pa.array(metas, clean_table.schema.field("meta").type))  # fmt: skip
    t2 = t.set_column(t.column_names.index("meta"), "meta", pa.array(
        [[*m[:-1], ("group", "big" if i % 2 else "other") if i >= MIN_ROWS - 1 else m[-1]]
         for i, m in enumerate(metas)], t.schema.field("meta").type))  # fmt: skip
    src = save(t2, tmp_path / "v.parquet")
    _ok("rm", "train", str(src), str(tmp_path / "m"), "--personalize", "group")
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    pooled = card["personalize"]["pooled_only"]
    assert [p["group"] for p in pooled] == ["tiny"]
    assert pooled[0]["rows"] < MIN_ROWS and "pooled head" in pooled[0]["reason"]
    assert all(np.isfinite(g["offset"]).all() for g in card["personalize"]["groups"])


def test_pandalm_annotators_are_shrunk_to_the_pool(data_dir: Path, tmp_path: Path) -> None:
    """Real data: PandaLM's three annotators label every pair and rank the models alike
    (docs/pluralistic.md), so cross-validation should pick a strong prior and small offsets."""
    src = data_dir / "pandalm_testset" / "data" / "testset-v1.json"
    raw = json.loads(src.read_text())
    annotators = sorted(k for k in raw[0] if k.startswith("annotator"))
    assert all(all(r.get(a) is not None for a in annotators) for r in raw)
    out = tmp_path / "m"
    r = _ok("rm", "train", str(src), str(out), "--personalize", "annotator")
    assert "personalised by annotator: 3 groups" in r.stderr.replace("\n", " ")
    card = json.loads((out / "model.json").read_text())
    pers = card["personalize"]
    assert sorted(g["name"] for g in pers["groups"]) == annotators
    rows = {g["rows"] for g in pers["groups"]}  # every pair in the split carries all 3 votes
    assert len(rows) == 1 and 3 * rows.pop() == card["data"]["train_rows"]
    assert pers["tau"] >= 30, pers["tau_path"]
    beta = np.load(out / "features.npz")["beta"]
    for g in pers["groups"]:
        assert np.linalg.norm(g["offset"]) < 0.5 * np.linalg.norm(beta)
    assert [v["group"] for v in pers["validation"]] == [g["name"] for g in pers["groups"]]


@pytest.mark.slow
def test_eval_by_group_worst_group_and_vote_split(world: dict[str, Path], tmp_path: Path) -> None:
    """`rm eval --by group` on held-out votes: each row scored by its group's head, per-group
    accuracy equal to `--group G` on that group's rows alone, the pooled head beside it, the
    worst group the lowest; the vote-split log-loss equals scikit-learn's on every vote with
    the pair's predicted split (the mean of its voters' own-head probabilities)."""
    from scipy.special import expit
    from sklearn.metrics import log_loss

    r = _ok("rm", "eval", str(world["model"]), str(world["test"]), "--by", "group", "--json",
            "--min-votes", "10")  # fmt: skip
    res = json.loads(r.stdout)
    g = res["groups"]
    assert g["by"] == "group" and g["personalised"] and g["min_votes"] == 10
    names = ("quality", "plain", "formatted")
    assert set(g["model"]["per_group"]) == set(names)
    for name in names:
        own = _accuracy(world["model"], world[name], "--group", name)
        pooled = _accuracy(world["model"], world[name])
        assert g["model"]["per_group"][name]["accuracy"] == pytest.approx(own, abs=1e-12)
        assert g["pooled_model"]["per_group"][name]["accuracy"] == pytest.approx(pooled, abs=1e-12)
    for k in ("model", "pooled_model"):
        per = g[k]["per_group"]
        worst = g[k]["worst_group"]
        assert worst["accuracy"] == min(v["accuracy"] for v in per.values())
        assert per[worst["group"]]["accuracy"] == worst["accuracy"]
    assert g["model"]["worst_group"]["accuracy"] > g["pooled_model"]["worst_group"]["accuracy"]
    # vote split, recomputed from `rm score --group` of each group's rows
    p_pair: dict[str, list[float]] = {}
    votes: list[tuple[str, int, int]] = []  # (pair, 1 if the pair's first response won)
    first: dict[str, str] = {}
    for name in names:
        out = tmp_path / f"{name}.parquet"
        _ok("rm", "score", str(world["model"]), str(world[name]), str(out), "--group", name)
        t = pq.read_table(out)
        for meta, a, b, o, ra, rb in zip(
            t.column("meta").to_pylist(), t.column("response_a").to_pylist(),
            t.column("response_b").to_pylist(), t.column("outcome").to_pylist(),
            t.column("reward_a").to_pylist(), t.column("reward_b").to_pylist(), strict=True,
        ):  # fmt: skip
            if o not in ("a", "b"):
                continue
            pid, ta, tb = dict(meta)["pair_id"], messages_text(a), messages_text(b)
            ref = first.setdefault(pid, min(ta, tb))
            p = float(expit(ra - rb)) if ta == ref else float(expit(rb - ra))
            p_pair.setdefault(pid, []).append(p)
            votes.append((pid, int((o == "a") == (ta == ref)), 0))
    multi = {k for k, v in p_pair.items() if len(v) >= 2}
    y = [v for k, v, _ in votes if k in multi]
    q = [float(np.mean(p_pair[k])) for k, _, _ in votes if k in multi]
    vs = res["vote_split"]["model"]
    assert vs["votes"] == len(y) and vs["pairs"] == len(multi)
    assert vs["log_loss"] == pytest.approx(log_loss(y, q, labels=[0, 1]), rel=1e-9)
    assert vs["log_loss_floor"] <= vs["log_loss"] < vs["log_loss_constant"]
    # the personalised heads predict the split of votes better than the pooled head
    assert vs["log_loss"] < res["vote_split"]["pooled_model"]["log_loss"]


def test_eval_by_bad_input(clean_file: Path) -> None:
    r = _run("rm", "eval", "length", str(clean_file), "--by", "nosuch")
    assert r.returncode == 1 and "'nosuch'" in r.stderr and "Traceback" not in r.stderr
    r = _run("rm", "eval", "length", str(clean_file), "--by", "source")
    assert r.returncode == 1 and "nothing to compare" in r.stderr, r.stderr
    r = _run("rm", "eval", "length", str(clean_file), "--by", "annotator", "--min-votes", "0")
    assert r.returncode == 2


@pytest.mark.slow
def test_embed_head_personalised_scores_and_adapts(tmp_path: Path) -> None:
    """`--backend embed --personalize group`: each group's offset covers the MiniLM weights
    and the feature column; `rm score --group` equals the encoder's embeddings times the
    pooled weights plus the offset, recomputed here; `rm adapt` fits a new user on the
    card's embedding scale."""
    from prefkit.reward.embed import embed_texts
    from prefkit.reward.models import FeatureModel, embed_input

    t = with_true_group(simulate("pluralistic3", size=300, seed=3, annotators=6))
    src = save(t, tmp_path / "v.parquet")
    cache, model = str(tmp_path / "cache"), tmp_path / "m"
    _ok("rm", "train", str(src), str(model), "--backend", "embed", "--personalize", "group",
        "--epochs", "5", "--cache-dir", cache)  # fmt: skip
    card = json.loads((model / "model.json").read_text())
    pers = card["personalize"]
    z = np.load(model / "embed_head.npz")
    width = len(z["w_emb"]) + len(z["w_feat"])
    assert len(z["w_emb"]) == 384 and len(pers["scale"]) == width
    assert {g["name"] for g in pers["groups"]} == {"quality", "plain", "formatted"}
    assert all(len(g["offset"]) == width for g in pers["groups"])
    assert all(v == 1.0 for v in pers["scale"][384:])  # features: already standardized
    off = np.asarray(next(g for g in pers["groups"] if g["name"] == "plain")["offset"])
    out = tmp_path / "s.parquet"
    _ok("rm", "score", str(model), str(src), str(out), "--group", "plain")
    s = pq.read_table(out)
    prompts = [messages_text(p) for p in s.column("prompt").to_pylist()]
    resp = [messages_text(r) for r in s.column("response_a").to_pylist()]
    e = embed_texts([embed_input(p, r) for p, r in zip(prompts, resp, strict=True)],
                    cache_dir=cache).astype(np.float64)  # fmt: skip
    x = FeatureModel.load(model).design(prompts, resp)
    expect = e @ (z["w_emb"] + off[:384]) + x @ (z["w_feat"] + off[384:])
    np.testing.assert_allclose(s.column("reward_a").to_numpy(), expect, rtol=1e-6, atol=1e-6)
    # a new user from 20 of one annotator's votes
    ann = t.column("annotator").to_pylist()
    who = max(set(ann), key=ann.count)
    rows = [i for i, a in enumerate(ann) if a == who][:20]
    votes = save(t.take(pa.array(rows, pa.int64())), tmp_path / "new.parquet")
    r = _ok("rm", "adapt", str(model), str(votes), str(tmp_path / "m2"), "--json")
    entry = json.loads(r.stdout)
    assert entry["name"] == who and entry["rows"] == 20 and len(entry["offset"]) == width
    assert np.linalg.norm(entry["offset"]) > 0
