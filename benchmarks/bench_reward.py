"""Reward models: embedding RM vs feature RM vs length baseline on held-out prompts (HH harmless,
PandaLM majority pairs), noisy-vs-cleaned training on the simulator, and scoring throughput of
the embedding RM vs raw sentence-transformers `encode` on the same texts (same run).

Run: .venv/bin/python benchmarks/bench_reward.py [--quick]   (prints Markdown for RESULTS.md)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def majority(table: pa.Table) -> pa.Table:
    """One row per PandaLM pair: the majority outcome of its annotators (no majority: dropped)."""
    meta = [dict(m or []) for m in table.column("meta").to_pylist()]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(meta):
        groups[m.get("pair_id", str(i))].append(i)
    keep: list[int] = []
    for rows in groups.values():
        votes = Counter(table.column("outcome")[i].as_py() for i in rows)
        top, c = votes.most_common(1)[0]
        if c * 2 > len(rows):
            keep.append(next(i for i in rows if table.column("outcome")[i].as_py() == top))
    return table.take(pa.array(sorted(keep)))


def fmt(m: dict[str, Any]) -> str:
    if m["accuracy"] is None:
        return "—"
    return f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def compare(name: str, table: pa.Table, cache: str, epochs: int) -> list[str]:
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.evaluate import evaluate_model
    from prefkit.reward.train import split_by_prompt, train

    tr, te = split_by_prompt(table, 0.2, seed=0)
    test = pairs_from_table(te)
    rows = []
    res: dict[str, Any] = {}
    for backend in ("features", "embed"):
        t0 = time.perf_counter()
        model = train(tr, backend, seed=0, epochs=epochs, cache_dir=cache).model
        res[backend] = evaluate_model(model, test)
        res[backend]["secs"] = time.perf_counter() - t0
    ev = res["features"]
    n = ev["model"]["accuracy"]["n"]
    rows.append(
        f"| {name} | {tr.num_rows}/{te.num_rows} | {n} | {fmt(res['embed']['model']['accuracy'])} "
        f"| {fmt(ev['model']['accuracy'])} | {fmt(ev['length_baseline']['accuracy'])} "
        f"| {fmt(ev['random_baseline']['accuracy'])} "
        f"| {fmt(res['embed']['model']['chosen_shorter'])} | {fmt(ev['model']['chosen_shorter'])} |"
    )
    return rows


def sim_noise(size: int) -> list[str]:
    from prefkit.audit.fix import apply_fix, parse_policy
    from prefkit.audit.run import run_audit
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.evaluate import evaluate_model
    from prefkit.reward.train import split_by_prompt, train
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    sim = simulate("noisy", size=size, seed=0)
    t = sim.tables[Kind.COMPARISONS]
    tr, te = split_by_prompt(t, 0.2, seed=0)
    # clean held-out labels: the simulator's true preference
    meta = [dict(m or []) for m in te.column("meta").to_pylist()]
    true = ["a" if float(m["quality_a"]) > float(m["quality_b"]) else "b" for m in meta]
    te = te.set_column(te.column_names.index("outcome"), "outcome", pa.array(true))
    flipped = set(sim.truth["flipped_ids"])
    by_truth = tr.filter(pa.array([i not in flipped for i in tr.column("id").to_pylist()]))
    audit = run_audit(tr, checks=("noise",))
    by_audit = apply_fix(tr, audit, parse_policy("noisy_label=drop")).table
    test = pairs_from_table(te)
    rows = []
    for backend in ("features",):
        base = evaluate_model(train(tr, backend, seed=0).model, test)["model"]["accuracy"]
        for name, fixed in (
            ("truth flipped_ids removed", by_truth),
            ("`audit --fix` noisy_label=drop", by_audit),
        ):
            acc = evaluate_model(train(fixed, backend, seed=0).model, test)["model"]["accuracy"]
            rows.append(
                f"| {backend} | {name} | {tr.num_rows} → {fixed.num_rows} | {len(test)} "
                f"| {fmt(base)} | {fmt(acc)} | {acc['accuracy'] - base['accuracy']:+.3f} |"
            )
    return rows


def throughput(n: int) -> str:
    from prefkit.reward.embed import load_encoder
    from prefkit.reward.models import EmbedModel, embed_input
    from prefkit.schema import Kind, messages_text
    from prefkit.simulate import simulate

    t = simulate("clean", size=n, seed=9).tables[Kind.COMPARISONS]
    prompts = [messages_text(p) for p in t.column("prompt").to_pylist()]
    resp = [messages_text(r) for r in t.column("response_a").to_pylist()]
    texts = [embed_input(p, r) for p, r in zip(prompts, resp, strict=True)]
    enc = load_encoder()
    enc.encode(texts[:64], batch_size=64)  # warm up
    model = EmbedModel(np.zeros(384), None, None, cache_dir=None)
    best_raw, best_rm = np.inf, np.inf
    for _ in range(2):
        t0 = time.perf_counter()
        enc.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        best_raw = min(best_raw, time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.score(prompts, resp, batch_size=64)
        best_rm = min(best_rm, time.perf_counter() - t0)
    return f"| {n} | {n / best_raw:.0f} | {n / best_rm:.0f} | {best_rm / best_raw:.2f}× |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["real", "sim", "speed"], default=None)
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="prefkit-emb-")
    out = ["", "## Reward models (issue 8) — `benchmarks/bench_reward.py`", ""]
    if args.only in (None, "real"):
        out += real(cache, args.quick)
    if args.only in (None, "sim"):
        out += sim_section(args.quick)
    if args.only in (None, "speed"):
        out += speed_section(args.quick)
    print("\n".join(out))


def real(cache: str, quick: bool) -> list[str]:
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    out = [
        f"Machine: {os.cpu_count()} CPUs, MiniLM on CPU. Accuracy on held-out prompts "
        "(prompt-grouped 80/20, seed 0; the RMs' own early-stopping split is inside the 80%), "
        "ties excluded, Wilson 95% CI.",
        "",
        "| data | train/test rows | test a/b rows | embed RM | feature RM | length "
        "| random | embed RM, chosen shorter | feature RM, chosen shorter |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    hh = read(DATA / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz").tables[
        Kind.COMPARISONS
    ]
    pl = majority(read(DATA / "pandalm_testset/data/testset-v1.json").tables[Kind.COMPARISONS])
    if quick:
        hh, pl = hh.slice(0, 600), pl.slice(0, 400)
    out += compare("HH harmless-base (test file)", hh, cache, 60)
    out += compare("PandaLM test set, majority of 3", pl, cache, 60)
    print("\n".join(out), file=sys.stderr)
    return out


def sim_section(quick: bool) -> list[str]:
    return [
        "",
        "Simulator `noisy` (label flips), feature RM: trained on the noisy training prompts vs "
        "the same rows cleaned (a) by removing the truth's `flipped_ids` (truth.json) and (b) "
        "by prefkit's own `audit` noise check + `--fix` policy `noisy_label=drop`; test = "
        "held-out prompts labelled by the simulator's true quality (clean).",
        "",
        "| model | cleaning | train rows | test rows | noisy | cleaned | difference |",
        "|---|---|---|---|---|---|---|",
        *sim_noise(2000 if quick else 8000),
    ]


def speed_section(quick: bool) -> list[str]:
    return [
        "",
        "Scoring throughput (texts/s, best of 2), embedding RM `score` vs raw "
        "sentence-transformers `encode` on the same texts, same run, batch 64, no cache:",
        "",
        "| texts | raw encode | prefkit embed RM | time ratio |",
        "|---|---|---|---|",
        throughput(300 if quick else 1000),
    ]


if __name__ == "__main__":
    main()
