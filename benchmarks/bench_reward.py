"""Reward models (issues 8 and 19): embedding RM vs feature RM vs length baseline on held-out
prompts (HH harmless-base, PandaLM majority pairs; LLMBar as a check on data the features were
not designed on), noisy-vs-cleaned training on the simulator, scoring throughput of the
embedding RM vs raw sentence-transformers `encode` (same run); and (issue 19) the off-diagonal
matrix over six public sets — the command `prefkit rm eval-matrix` itself, with its defaults
and all four models — and the simulator with a planted length bias.

Run: .venv/bin/python benchmarks/bench_reward.py [--only real|sim|speed|matrix|sim-length]
[--cache-dir DIR] (prints Markdown for benchmarks/RESULTS.md on stdout; progress on stderr).
Embeddings are cached in --cache-dir (default: a temporary folder), so a second run only trains
and evaluates. The issue-8 parts (`real`, `sim`) train plain models (`disentangle="none"`), as
their tables in RESULTS.md were measured; `matrix` runs the command with its defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HH = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"
PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"
LLMBAR_NATURAL = (
    "LLMBar/Natural",
    "Processed/FairEval",
    "Processed/LLMEval^2",
    "Processed/MT-Bench",
)
LLMBAR_ADVERSARIAL = tuple(
    f"LLMBar/Adversarial/{k}" for k in ("Neighbor", "GPTInst", "GPTOut", "Manual")
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt(m: dict[str, Any]) -> str:
    if m["accuracy"] is None:
        return "—"
    return f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def correct(delta: np.ndarray, outcome: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from prefkit.reward.evaluate import decisive_correct

    c, mask = decisive_correct(delta, outcome)
    return c, mask


def paired_diff(c1: np.ndarray, c2: np.ndarray, rng: np.random.Generator) -> str:
    """Mean of c1 − c2 over the same rows with a paired bootstrap 95% CI (2,000 resamples)."""
    d = c1 - c2
    idx = rng.integers(0, d.size, size=(2000, d.size))
    boots = d[idx].mean(axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"


def load_real() -> dict[str, pa.Table]:
    from prefkit.build.pairs import pairs_from_votes
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    hh = read(HH).tables[Kind.COMPARISONS]
    votes = read(PANDALM).tables[Kind.COMPARISONS]
    pl = pairs_from_votes(votes, "majority", ties="keep").table  # = prefkit pairs --from-votes
    out = {"HH harmless-base (test file)": hh, "PandaLM, majority of 3 (ties kept)": pl}
    # not used when the features were designed: a check that they carry over
    llmbar = DATA / "llmbar" / "Dataset"
    for name, parts in (
        ("LLMBar Natural + FairEval, LLMEval², MT-Bench (human labels)", LLMBAR_NATURAL),
        ("LLMBar Adversarial (built to fool surface cues)", LLMBAR_ADVERSARIAL),
    ):
        tables = [read(llmbar / q / "dataset.json").tables[Kind.COMPARISONS] for q in parts]
        out[name] = pa.concat_tables(tables, promote_options="default")
    return out


def fit_both(train_t: pa.Table, cache: str) -> dict[str, Any]:
    from prefkit.reward.train import train

    out: dict[str, Any] = {}
    for backend in ("features", "embed"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out[backend] = train(
                train_t, backend, seed=0, cache_dir=cache, disentangle="none"
            ).model
        log(f"  trained {backend} in {time.perf_counter() - t0:.1f}s")
    return out


def real(cache: str) -> list[str]:
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.evaluate import evaluate_model
    from prefkit.reward.train import split_by_prompt

    rng = np.random.default_rng(0)
    split_rows = []
    cv_rows = []
    for name, table in load_real().items():
        log(f"{name}: {table.num_rows} rows")
        # (1) one prompt-grouped 80/20 split (prefkit.build.splits, seed 0)
        tr, te = split_by_prompt(table, 0.2, seed=0)
        models = fit_both(tr, cache)
        test = pairs_from_table(te)
        ev = {b: evaluate_model(m, test) for b, m in models.items()}
        e, f = ev["embed"], ev["features"]
        split_rows.append(
            f"| {name} | {tr.num_rows}/{te.num_rows} | {e['model']['accuracy']['n']} "
            f"| {fmt(e['model']['accuracy'])} | {fmt(f['model']['accuracy'])} "
            f"| {fmt(f['length_baseline']['accuracy'])} | {fmt(f['random_baseline']['accuracy'])} "
            f"| {fmt(e['model']['chosen_shorter'])} | {fmt(f['model']['chosen_shorter'])} "
            f"| {fmt(e['model']['tie_aware'])} | {e['model']['ece']:.3f} |"
        )
        # (2) 5-fold prompt-grouped cross-validation: every row is scored once, out of fold
        pid = table.column("prompt_id").to_pylist()
        fold = np.array(
            [int(hashlib.blake2b(p.encode(), digest_size=4).hexdigest(), 16) % 5 for p in pid]
        )
        per: dict[str, list[np.ndarray]] = {"embed": [], "features": [], "length": []}
        for k in range(5):
            tr_k = table.filter(pa.array(fold != k))
            te_k = pairs_from_table(table.filter(pa.array(fold == k)))
            ms = fit_both(tr_k, cache)
            la = np.log1p([len(x) for x in te_k.a]) - np.log1p([len(x) for x in te_k.b])
            for b, m in ms.items():
                c, mask = correct(
                    m.score(te_k.prompts, te_k.a) - m.score(te_k.prompts, te_k.b), te_k.outcome
                )
                per[b].append(c[mask])
            c, mask = correct(la, te_k.outcome)
            per["length"].append(c[mask])
        cat = {b: np.concatenate(v) for b, v in per.items()}
        n = cat["embed"].size

        def wilson(c: np.ndarray) -> str:
            from prefkit.reward.evaluate import accuracy_ci

            return fmt(accuracy_ci(c))

        cv_rows.append(
            f"| {name} | {n} | {wilson(cat['embed'])} | {wilson(cat['features'])} "
            f"| {wilson(cat['length'])} | {paired_diff(cat['embed'], cat['features'], rng)} "
            f"| {paired_diff(cat['features'], cat['length'], rng)} |"
        )
        log(split_rows[-1])
        log(cv_rows[-1])
    return [
        "Held-out prompts, one prompt-grouped 80/20 split (`prefkit.build.splits`, seed 0; each "
        "RM's own early-stopping/L2 validation split is inside the 80%). Accuracy on a/b rows "
        "(ties excluded) with Wilson 95% CIs; tie-aware accuracy and ECE for the embed RM.",
        "",
        "| data | train/test rows | test a/b rows | embed RM | feature RM | length | random "
        "| embed, chosen shorter | feature, chosen shorter | embed tie-aware | embed ECE |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *split_rows,
        "",
        "5-fold prompt-grouped cross-validation (folds by a hash of `prompt_id`): every pair "
        "scored once by models that never saw its prompt. Accuracy with Wilson 95% CIs; "
        "differences on the same rows with paired-bootstrap 95% CIs.",
        "",
        "| data | a/b rows | embed RM | feature RM | length | embed − feature | feature − length |",
        "|---|---|---|---|---|---|---|",
        *cv_rows,
    ]


def sim(
    size: int, n_seeds: int = 5, backend: str = "features", cache: str | None = None
) -> list[str]:
    from prefkit.audit.fix import apply_fix, parse_policy
    from prefkit.audit.run import run_audit
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.evaluate import evaluate_model
    from prefkit.reward.train import split_by_prompt, train
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    s = simulate("noisy", size=size, seed=0)
    t = s.tables[Kind.COMPARISONS]
    tr, te = split_by_prompt(t, 0.2, seed=0)
    # clean held-out labels: the simulator's true preference (quality_a vs quality_b)
    meta = [dict(m or []) for m in te.column("meta").to_pylist()]
    # one row per pair (3 votes per pair would count each test pair three times)
    seen: set[str] = set()
    keep = []
    for i, m in enumerate(meta):
        if m["quality_a"] != m["quality_b"] and m["pair_id"] not in seen:
            seen.add(m["pair_id"])
            keep.append(i)
    te = te.take(pa.array(keep))
    true = ["a" if float(meta[i]["quality_a"]) > float(meta[i]["quality_b"]) else "b" for i in keep]
    te = te.set_column(te.column_names.index("outcome"), "outcome", pa.array(true))
    te = te.set_column(
        te.column_names.index("strength"), "strength", pa.nulls(te.num_rows, pa.float64())
    )
    test = pairs_from_table(te)
    flipped = set(s.truth["flipped_ids"])
    by_truth = tr.filter(pa.array([i not in flipped for i in tr.column("id").to_pylist()]))
    t0 = time.perf_counter()
    audit = run_audit(tr)
    by_audit = apply_fix(tr, audit, parse_policy("noisy_label=drop")).table
    log(
        f"audit + fix on {tr.num_rows} rows: {time.perf_counter() - t0:.1f}s, kept {by_audit.num_rows}"
    )
    rng = np.random.default_rng(1)
    rows = []
    seeds = range(n_seeds)  # the seed picks each RM's internal validation split (L2 choice)

    def fit_eval(table: pa.Table, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            m = train(table, backend, seed=seed, cache_dir=cache, disentangle="none").model
        c, mask = correct(
            m.score(test.prompts, test.a) - m.score(test.prompts, test.b), test.outcome
        )
        return c[mask], evaluate_model(m, test, scores=None)["model"]["accuracy"]

    base = [fit_eval(tr, k) for k in seeds]
    for name, fixed in (
        ("`audit --fix` (all checks; noisy_label=drop)", by_audit),
        ("truth.json `flipped_ids` removed", by_truth),
    ):
        got = [fit_eval(fixed, k) for k in seeds]
        diffs = [float((g[0] - b[0]).mean()) for g, b in zip(got, base, strict=True)]
        pooled_c = np.concatenate([g[0] for g in got])
        pooled_b = np.concatenate([b[0] for b in base])
        rows.append(
            f"| {backend} RM | {name} | {tr.num_rows} → {fixed.num_rows} | {got[0][1]['n']} "
            f"| {fmt(base[0][1])} | {fmt(got[0][1])} | {paired_diff(pooled_c, pooled_b, rng)} "
            f"| {', '.join(f'{d:+.3f}' for d in diffs)} |"
        )
        log(rows[-1])
    return [
        f"Simulator `noisy` (size {size}, seed 0: ~10% flipped labels, spammers, position and "
        f"length bias, 3 votes per pair). {backend} RM trained on the noisy training prompts vs "
        "the same rows cleaned (a) by prefkit's own `audit` + `--fix` with policy "
        "`noisy_label=drop` (library calls `run_audit`, `apply_fix`) and (b) by removing the "
        "truth's `flipped_ids`. Test = held-out prompts (prompt-grouped 80/20), one row per pair, "
        "labelled by the "
        "simulator's true quality (clean labels). Accuracies: training seed 0 (Wilson 95% CI); "
        f"difference: cleaned − noisy on the same test rows, pooled over training seeds "
        f"0..{n_seeds - 1} (each seed = another internal validation split and L2 choice), "
        "paired bootstrap 95% CI (test-row resampling only), and per seed.",
        "",
        "| model | cleaning | train rows | test rows | noisy-trained (seed 0) | cleaned-trained "
        "(seed 0) | difference (pooled) | difference per seed |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def speed(n: int, rounds: int, with_cache: bool = True) -> list[str]:
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
    raw: list[float] = []
    ours: list[float] = []
    cold: list[float] = []
    cpu_raw: list[float] = []
    cpu_ours: list[float] = []
    warm = float("nan")

    def timed(fn: Any) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w0, time.process_time() - c0

    for r in range(rounds):  # interleaved, so load changes hit both sides alike
        w, c = timed(
            lambda: enc.encode(
                texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
            )
        )
        raw.append(w)
        cpu_raw.append(c)
        w, c = timed(lambda: model.score(prompts, resp, batch_size=64))
        ours.append(w)
        cpu_ours.append(c)
        if with_cache:
            with tempfile.TemporaryDirectory() as d:
                model.cache_dir = d
                cold.append(timed(lambda: model.score(prompts, resp, batch_size=64))[0])
                warm = timed(lambda: model.score(prompts, resp, batch_size=64))[0]
                model.cache_dir = None
        log(
            f"round {r}: raw {raw[-1]:.1f}s (cpu {cpu_raw[-1]:.1f}), rm {ours[-1]:.1f}s (cpu {cpu_ours[-1]:.1f})"
        )
    ratio = [o / w for o, w in zip(ours, raw, strict=True)]
    ratio_cpu = [o / w for o, w in zip(cpu_ours, cpu_raw, strict=True)]
    lines = [
        f"Scoring throughput, {n} simulated prompt+response texts, batch 64, {rounds} interleaved "
        "rounds: raw `SentenceTransformer.encode` (same MiniLM, same texts, normalized) vs "
        "`EmbedModel.score` (content hashing, truncation count, encode, head), no cache. "
        "Wall time is at the mercy of the other jobs on the machine; CPU time (this process, "
        "all threads) is the steadier comparison.",
        "",
        "| side | texts/s wall (best) | texts/s wall (median) | CPU s (median) |",
        "|---|---|---|---|",
        f"| raw encode | {n / min(raw):.1f} | {n / float(np.median(raw)):.1f} | {float(np.median(cpu_raw)):.1f} |",
        f"| prefkit embed RM | {n / min(ours):.1f} | {n / float(np.median(ours)):.1f} | {float(np.median(cpu_ours)):.1f} |",
        "",
        f"Ratio prefkit / raw: wall {float(np.median(ratio)):.2f}× (median; rounds "
        f"{', '.join(f'{x:.2f}' for x in ratio)}), best-vs-best {min(ours) / min(raw):.2f}×; "
        f"CPU {float(np.median(ratio_cpu)):.2f}× (rounds {', '.join(f'{x:.2f}' for x in ratio_cpu)}).",
    ]
    if with_cache:
        lines.append(
            f"With an on-disk cache: cold (every vector written) {n / float(np.median(cold)):.1f} "
            f"texts/s wall (median); warm (all hits) {n / warm:.0f} texts/s."
        )
    return lines


MATRIX_SETS = (
    ("HH harmless", "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"),
    ("PandaLM majority", None),  # built with `prefkit pairs --from-votes majority --ties keep`
    ("LLMBar Natural", "llmbar/Dataset/LLMBar/Natural"),
    ("LLMBar Adversarial", "llmbar/Dataset/LLMBar/Adversarial"),
    (
        "ICAI synthetic",
        "icai_synthetic/data/processed/synthetic/synthetic_data_mixed_vqvtb_adcbg.csv",
    ),
    ("FineGrained pairs", "finegrained_rlhf_qa_feedback/tasks/qa_feedback/data/dev_feedback.json"),
)
PREFKIT = [sys.executable, "-c", "from prefkit.cli import main; main()"]


def matrix(cache: str, out_dir: str, models: str, disentangle: str, boot: int) -> list[str]:
    """`prefkit rm eval-matrix` over the six shared sets, run as a user runs it."""
    work = Path(out_dir)
    work.mkdir(parents=True, exist_ok=True)
    pl = work / "pandalm_majority.parquet"
    subprocess.run(
        [*PREFKIT, "pairs", str(PANDALM), str(pl), "--from-votes", "majority", "--ties", "keep"],
        check=True,
        capture_output=True,
    )
    paths = [str(pl) if rel is None else str(DATA / rel) for _, rel in MATRIX_SETS]
    names = dict(zip(paths, [n for n, _ in MATRIX_SETS], strict=True))
    cmd = [
        *PREFKIT,
        "rm",
        "eval-matrix",
        "--train",
        *paths,
        "--models",
        models,
        "--disentangle",
        disentangle,
        "--bootstrap",
        str(boot),
        "--cache-dir",
        cache,
        "--out",
        str(work / "matrix"),
        "--json",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    res = json.loads(proc.stdout)
    log(f"eval-matrix: {wall:.0f}s")
    return matrix_markdown(res, names, wall, models, disentangle, boot)


def matrix_markdown(
    res: dict[str, Any], names: dict[str, str], wall: float, models: str, dis: str, boot: int
) -> list[str]:
    short = {**names, "others": "all other sets"}
    cell = {(c["train"], c["eval"]): c for c in res["cells"]}

    def acc(m: dict[str, Any]) -> str:
        return f"{m['accuracy']:.3f} [{m['ci_low']:.2f}, {m['ci_high']:.2f}]"

    def diff(d: dict[str, Any]) -> str:
        return f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"

    lines = [
        f"`prefkit rm eval-matrix --train <6 sets> --models {models} --disentangle {dis} "
        f"--bootstrap {boot} --cache-dir C --out O --json` (defaults otherwise: 5-fold "
        f"prompt-grouped CV on the diagonal, seed 0); wall {wall:.0f} s including training "
        "every model (embeddings from the cache).",
        "",
        "| set | files | pairs | a/b pairs |",
        "|---|---|---|---|",
    ]
    for n, s in res["sets"].items():
        files = ", ".join(f"`{Path(f).relative_to(DATA)}`" if str(f).startswith(str(DATA))
                          else "`prefkit pairs testset-v1.json --from-votes majority --ties keep`"
                          for f in s["files"])  # fmt: skip
        lines.append(f"| {names[n]} | {files} | {s['rows']} | {s['decisive']} |")
    cols = res["eval"]
    for m in res["models"]:
        lines += [
            "",
            f"**{m}**: accuracy [Wilson 95%] / length baseline on the same rows "
            "(rows: trained on; diagonal: 5-fold CV; last row: every other set at once).",
            "",
            "| trained on \\ evaluated on | " + " | ".join(names[c] for c in cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for r in res["rows"]:
            vals = []
            for c in cols:
                x = cell.get((r, c))
                if x is None:
                    vals.append("—")
                    continue
                a = x["models"][m]
                mark = "**" if x["kind"] != "diagonal" and a["accuracy"] < 0.5 else ""
                vals.append(f"{mark}{acc(a)}{mark} / {x['length']['accuracy']:.3f}")
            lines.append(f"| {short[r]} | " + " | ".join(vals) + " |")
    lines += [
        "",
        "Bold: below chance off the diagonal. Summary (mean over cells; the interval "
        f"resamples every evaluation set's rows, {boot} replicates, shared by its column):",
        "",
        "| model | cells | mean accuracy | mean length baseline | model − length [95% CI] "
        "| below chance (significantly) |",
        "|---|---|---|---|---|---|",
    ]
    for m, by_kind in res["summary"].items():
        for kind in ("off_diagonal", "leave_one_out", "diagonal"):
            s = by_kind[kind]
            if not s["cells"]:
                continue
            lines.append(
                f"| {m} ({kind.replace('_', ' ')}) | {s['cells']} | {s['mean_accuracy']:.3f} "
                f"| {s['mean_length_baseline']:.3f} | {diff(s['minus_length'])} "
                f"| {len(s['below_chance'])} ({len(s['significantly_below_chance'])}) |"
            )
    lines += [
        "",
        "| disentangled vs plain | cells | disentangled − plain [95% CI] | plain below chance "
        "| of those, disentangled also below chance |",
        "|---|---|---|---|---|",
    ]
    for c in res["comparisons"]:
        also = ", ".join(
            f"{short[x['train']]} → {names[x['eval']]} ({x['plain']:.3f} → {x['disentangled']:.3f})"
            for x in c["disentangled_also_below_chance"]
        )
        lines.append(
            f"| {c['disentangled']} vs {c['plain']} ({c['kind'].replace('_', ' ')}) "
            f"| {c['minus_plain']['cells']} | {diff(c['minus_plain'])} "
            f"| {c['plain_below_chance']} | {len(c['disentangled_also_below_chance'])}: "
            f"{also or 'none'} |"
        )
    return lines


def _within_prompt_corr(prompts: list[str], score: np.ndarray, quality: np.ndarray) -> float:
    """Pearson correlation of prompt-centred rewards with prompt-centred true utility: a
    Bradley–Terry reward is identified only within a prompt (pairs never cross prompts)."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p, []).append(i)
    cs, cq, keep = np.zeros(len(score)), np.zeros(len(score)), np.zeros(len(score), bool)
    for ix in groups.values():
        if len(ix) > 1:
            cs[ix], cq[ix] = score[ix] - score[ix].mean(), quality[ix] - quality[ix].mean()
            keep[ix] = True
    return float(np.corrcoef(cs[keep], cq[keep])[0, 1])


def sim_length(size: int, biases: list[float], seeds: int) -> list[str]:
    """Simulator `clean` with every annotator's verbosity bias set to `length_bias` (log-odds
    per 100 characters); true utility of every held-out response known."""
    from scipy.stats import spearmanr

    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.train import split_by_prompt, train
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    specs = ("none", "length", "length,style")
    lines = [
        f"Simulator `clean`, {size} comparisons per seed, every annotator with a planted "
        "verbosity bias `length_bias` (log-odds per 100 characters of len(a) − len(b)); 70/30 "
        "prompt-grouped split; the feature RM trained on the 70% (`prefkit.reward.train.train`, "
        "`disentangle` = none / length / length,style, seed = simulation seed); scored on every "
        "held-out response, compared with its true utility (`meta.quality_a|b`). Within prompt: "
        "Pearson of prompt-centred reward vs prompt-centred utility (what a Bradley–Terry "
        "reward identifies); pooled: Spearman over all responses. `len~q`: within-prompt "
        "correlation of log length with true utility in that world (how much length is "
        "really worth there).",
        "",
        "| length_bias | seed | len~q | plain: within / pooled | length: within / pooled "
        "| length,style: within / pooled | length − plain (within) |",
        "|---|---|---|---|---|---|---|",
    ]
    for lb in biases:
        gains = []
        for seed in range(seeds):
            t = simulate("clean", size=size, seed=seed, length_bias=lb).tables[Kind.COMPARISONS]
            tr, te = split_by_prompt(t, 0.3, seed=0)
            q = pairs_from_table(te)
            truth: dict[tuple[str, str], float] = {}
            for i, m in enumerate(dict(x or []) for x in te.column("meta").to_pylist()):
                truth[(q.prompts[i], q.a[i])] = float(m["quality_a"])
                truth[(q.prompts[i], q.b[i])] = float(m["quality_b"])
            prompts = [k[0] for k in truth]
            resp = [k[1] for k in truth]
            qual = np.array(list(truth.values()))
            lq = _within_prompt_corr(prompts, np.log1p([len(r) for r in resp]), qual)
            got = {}
            for spec in specs:
                sc = train(tr, "features", seed=seed, disentangle=spec).model.score(prompts, resp)
                got[spec] = (_within_prompt_corr(prompts, sc, qual), float(spearmanr(sc, qual)[0]))
            gains.append(got["length"][0] - got["none"][0])
            lines.append(
                f"| {lb} | {seed} | {lq:+.3f} | "
                + " | ".join(f"{got[s][0]:.3f} / {got[s][1]:.3f}" for s in specs)
                + f" | {gains[-1]:+.3f} |"
            )
            log(lines[-1])
        lines.append(
            f"| {lb} | mean | | | | | {np.mean(gains):+.3f} (higher in {sum(g > 0 for g in gains)}"
            f" of {seeds} seeds) |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--only", choices=["real", "sim", "speed", "matrix", "sim-length"], default=None
    )
    ap.add_argument("--matrix-out", default=None, help="folder for the matrix files")
    ap.add_argument("--matrix-models", default="features,disentangled,embed,embed-disentangled")
    ap.add_argument("--matrix-disentangle", default="length,style")
    ap.add_argument("--matrix-bootstrap", type=int, default=2000)
    ap.add_argument("--sim-length-size", type=int, default=8000)
    ap.add_argument("--sim-length-biases", default="1.0,2.0")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--sim-size", type=int, default=8000)
    ap.add_argument("--sim-seeds", type=int, default=5)
    ap.add_argument("--sim-backends", default="features,embed")
    ap.add_argument("--speed-texts", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-cache-pass", action="store_true", help="skip the cold/warm cache pass")
    args = ap.parse_args()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="prefkit-emb-")
    out: list[str] = []
    if args.only in (None, "real"):
        out += real(cache) + [""]
    if args.only in (None, "sim"):
        for b in args.sim_backends.split(","):
            out += sim(args.sim_size, args.sim_seeds, b, cache) + [""]
    if args.only in (None, "speed"):
        out += speed(args.speed_texts, args.rounds, not args.no_cache_pass) + [""]
    if args.only in (None, "matrix"):
        out += matrix(
            cache,
            args.matrix_out or tempfile.mkdtemp(prefix="prefkit-matrix-"),
            args.matrix_models,
            args.matrix_disentangle,
            args.matrix_bootstrap,
        ) + [""]
    if args.only in (None, "sim-length"):
        biases = [float(b) for b in args.sim_length_biases.split(",")]
        out += sim_length(args.sim_length_size, biases, args.sim_seeds)
    print("\n".join(out))


if __name__ == "__main__":
    main()
