"""Learned directions: the sparse dictionaries recover planted atoms, the SAE respects the
a/b antisymmetry, c-TF-IDF counts as BERTopic defines it, and the whole command embeds
(cached), learns, names (scripted LLM) and reports directions."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefkit.explain.directions import ctfidf, learn
from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import simulate
from tests.judge.conftest import Server, cli


def _planted_atoms(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    atoms = np.linalg.qr(rng.normal(size=(24, 6)))[0].T  # 6 orthonormal atoms in R^24
    codes = np.zeros((n, 6))
    for i in range(n):
        j = rng.choice(6, size=2, replace=False)
        codes[i, j] = rng.choice([-1, 1], size=2) * rng.uniform(0.5, 2.0, size=2)
    return atoms, codes @ atoms + 0.01 * rng.normal(size=(n, 24))


@pytest.mark.parametrize("method", ["sae", "dictionary"])
def test_dictionaries_recover_planted_atoms(method: str) -> None:
    atoms, d = _planted_atoms(3000, 0)
    dic = learn(d, 6, 2, method, seed=1)
    cos = np.abs(atoms @ dic.atoms.T)
    assert (cos.max(axis=1) > 0.95).all(), np.round(cos.max(axis=1), 3)
    assert dic.explained > 0.9
    assert ((dic.codes != 0).sum(axis=1) <= 2).all()


def test_sae_codes_flip_sign_when_a_and_b_swap() -> None:
    _, d = _planted_atoms(500, 2)
    dic = learn(d, 6, 2, "sae", seed=0)
    np.testing.assert_allclose(dic.encode(-d), -dic.encode(d), atol=1e-12)
    np.testing.assert_allclose(dic.encode(d), dic.codes, atol=1e-6)


def test_ctfidf_by_hand() -> None:
    docs = [
        "steps list steps items list steps",
        "sorry cannot help sorry refuse",
        "steps sorry weather weather",
    ]
    got = ctfidf(docs, top=10)
    # BERTopic's c-TF-IDF over the words that occur in at least 2 classes' text (min_df=2):
    # tf per class normalised by the class's word count, times log(1 + A / f_w)
    tok = [re.findall(r"[a-z']+", d) for d in docs]
    df = Counter(w for t in tok for w in set(t))
    vocab = {w for w, c in df.items() if c >= 2}
    counts = [Counter(w for w in t if w in vocab) for t in tok]
    size = [sum(c.values()) for c in counts]
    avg = sum(size) / len(size)
    freq = Counter()
    for c in counts:
        freq.update(c)
    for k, c in enumerate(counts):
        want = {w: c[w] / size[k] * np.log1p(avg / freq[w]) for w in c}
        assert dict(got[k]) == pytest.approx(want)


@pytest.mark.slow
def test_directions_end_to_end_cached_and_named(llm: Server, tmp_path: Path) -> None:
    t = simulate("planted", size=150, seed=8).tables[Kind.COMPARISONS]
    src = save(t, tmp_path / "p.parquet")
    cache = tmp_path / "emb"
    out = tmp_path / "o1"
    p = cli("explain", str(src), "--out", str(out), "--directions", "8", "--rounds", "20",
            "--cache-dir", str(cache), "--endpoint", llm.url, "--model", "principled",
            "--judge-cache", str(tmp_path / "jc"), "--principles", str(_one(tmp_path)),
            "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)["directions"]
    assert d["method"] == "sae" and 1 <= d["active"] <= 8 and d["embeddings_cached"] == 0
    assert d["named_by"] == "principled"
    for r in d["rows"]:
        assert r["ci_low"] <= r["coef"] <= r["ci_high"]
        assert r["name"] and r["name"].startswith("mentions ")
        for ex in r["examples"]:
            assert ex["high"] != ex["low"] or ex["activation"] == 0
    rows = [
        r for r in pq.read_table(out / "effects.parquet").to_pylist() if r["type"] == "direction"
    ]
    assert len(rows) == d["active"] and all(r["words_high"] is not None for r in rows)
    html = (out / "report.html").read_text()
    assert "plot-directions" in html and d["rows"][0]["name"] in html
    # the second run reads every embedding from the cache, with the other method
    p2 = cli("explain", str(src), "--out", str(tmp_path / "o2"), "--directions", "8",
             "--rounds", "20", "--cache-dir", str(cache), "--method", "dictionary", "--json")  # fmt: skip
    assert p2.returncode == 0, p2.stderr
    d2 = json.loads(p2.stdout)["directions"]
    assert d2["method"] == "dictionary" and d2["embeddings_cached"] == 2 * t.num_rows


def _one(tmp_path: Path) -> Path:
    f = tmp_path / "p.txt"
    f.write_text("Select the response that is longer.\n")
    return f
