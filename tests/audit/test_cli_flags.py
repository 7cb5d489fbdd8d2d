"""`prefkit audit --near-dup-threshold` and `--embeddings` through the real command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io.canonical import save
from prefkit.schema import Kind, from_rows

runner = CliRunner()


def _audit(*args: str) -> dict[str, Any]:
    r = runner.invoke(app, ["audit", *args, "--json"])
    assert r.exit_code == 0, r.output
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def _shingles(text: str) -> set[str]:
    """8-byte word shingles (docs/audit.md): every word here has >= 8 letters, so a shingle
    is a word's first 8 letters."""
    return {w[:8] for w in text.split()}


def test_near_dup_threshold_decides_which_prompts_are_near_duplicates(tmp_path: Path) -> None:
    """20 families of two prompts of 30 long words that differ in 6 words: true Jaccard
    similarity 24/36 = 0.67 (computed below from the shingle sets). At threshold 0.4 every
    family is a near-duplicate cluster, at 0.9 none is."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    rows, sims = [], []
    for fam in range(20):
        words = ["".join(rng.choice(letters, size=int(rng.integers(9, 13)))) for _ in range(36)]
        first = " ".join(words[:30])
        second = " ".join(words[:24] + words[30:])
        sims.append(
            len(_shingles(first) & _shingles(second)) / len(_shingles(first) | _shingles(second))
        )
        for k, prompt in enumerate((first, second)):
            rows.append(
                {
                    "id": f"f{fam}-{k}",
                    "prompt": prompt,
                    "response_a": f"answer {fam} {k} one",
                    "response_b": f"answer {fam} {k} two",
                    "outcome": "a" if (fam + k) % 2 else "b",
                }
            )
    assert min(sims) == max(sims) == pytest.approx(24 / 36)
    src = save(from_rows(rows, Kind.COMPARISONS), tmp_path / "c.parquet")
    low = _audit(str(src), "--checks", "duplicates", "--near-dup-threshold", "0.4")["duplicates"]
    high = _audit(str(src), "--checks", "duplicates", "--near-dup-threshold", "0.9")["duplicates"]
    assert low["threshold"] == 0.4 and high["threshold"] == 0.9
    assert low["near_duplicate_prompt_clusters"] == 20 and low["near_duplicate_prompt_rows"] == 40
    assert high["near_duplicate_prompt_clusters"] == 0 and high["near_duplicate_prompt_rows"] == 0
    r = runner.invoke(app, ["audit", str(src), "--near-dup-threshold", "1.5"])
    assert r.exit_code != 0 and "--near-dup-threshold" in str(r.exception)


@pytest.mark.slow
@pytest.mark.train
def test_embeddings_add_minilm_to_the_noise_model(tmp_path: Path) -> None:
    """`--embeddings` fits the label-noise feature model with MiniLM embedding differences as
    extra columns: its out-of-fold AUC is the library's with `embeddings=True` (which encodes
    with the real MiniLM) and differs from the run without."""
    from prefkit.audit.features import style
    from prefkit.audit.frame import Frame
    from prefkit.audit.minhash import signatures
    from prefkit.audit.noise import fit_noise
    from prefkit.simulate import simulate

    table = simulate("noisy", size=150, seed=3).tables[Kind.COMPARISONS]
    src = save(table, tmp_path / "noisy.parquet")
    plain = _audit(str(src), "--checks", "noise")["noise"]["feature_model"]
    emb = _audit(str(src), "--checks", "noise", "--embeddings")["noise"]["feature_model"]
    f = Frame.of(table)
    ref = fit_noise(f, style(f, signatures(f.prompts), signatures(f.texts)), embeddings=True)
    assert any(n.startswith("emb") for n in ref.features)  # MiniLM really ran
    assert emb["auc_out_of_fold"] == pytest.approx(ref.auc, abs=1e-9)
    assert emb["auc_out_of_fold"] != pytest.approx(plain["auc_out_of_fold"], abs=1e-6)
