"""Issue 17: can a per-prompt answer model improve the label-noise check's prior on `noisy`?

1. `--recurrence`: how often a response recurs within a prompt (the same prompt and
   response text in two or more distinct pairs) in `noisy` (3 votes per pair) and in the
   shared real sets — the condition for a per-prompt Bradley–Terry over distinct responses.
2. Per development seed (simulator `noisy`, 3 votes per pair, the annotators and noise
   checks of `run_audit`, metrics as `bench_noise_seeds.py`), the noise check with its
   prior (the feature model refitted on the votes-only posterior) corrected by a per-prompt
   Gaussian-process model of each prompt's responses, fitted out of fold (the check's own 5
   pair folds: a pair's votes never inform its own prior) on the prompt's other pairs:
   a response's utility = the feature model's + a prompt-level term with prior covariance
   τ²·k(r, r'); a pair's term is the difference of its responses' terms. Variants
   `MODE:KERNEL:TAU2`:
   - MODE `logit`: logistic likelihood on the votes-only posterior P(a is better) (Laplace,
     Newton), offset = the prior's logit recalibrated on those targets;
   - MODE `reg`: Gaussian likelihood on the votes-only posterior mean margin, offset = the
     prior's logit linearly regressed on it, noise variance = the residual variance;
   - KERNEL `idf`: cosine of the responses' word 1–2-gram presence vectors (the check's
     vocabulary), each n-gram weighted by log((P + 1) / (prompts holding it + 1));
     `plain`: unweighted cosine; `sent` / `sentidf`: the same over the responses' distinct
     sentences (split at . ! ? and line breaks) instead of n-grams; `exact`: 1 for the same
     response text, else 0 (votes of a recurring response pooled: the per-prompt
     Bradley–Terry over distinct responses).
   Prompts with fewer than 3 pairs keep the prior; each fold's fit uses at most 150 pairs of
   the prompt. `base` = the check unchanged. Also per variant: the correlation of the final
   prior's logit with the pair's true margin (2·Δquality + 0.5·Δlength/100,
   `bench_noise_rules.py --true-margin`), and with `--oracle` the same fit given the other
   pairs' TRUE margins as targets (`reg` only; a ceiling for the kernel, not a method).
3. `--audit-real ARGS`: `bench_audit_real.py ARGS` with the first variant's correction (on
   real data where responses recur within a prompt, e.g. PandaLM).

Development seeds are 10 and up; seeds 0-9 are the test's.

    .venv/bin/python benchmarks/bench_noise_prompt.py --recurrence
    .venv/bin/python benchmarks/bench_noise_prompt.py --seeds 11 22 --variants base reg:idf:0.1
    .venv/bin/python benchmarks/bench_noise_prompt.py --variants reg:exact:0.3 \
        --audit-real "--seeds 0 1 2 --datasets pandalm"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import prefkit.audit.noise as noise_mod  # noqa: E402
from prefkit.audit.frame import Frame  # noqa: E402
from prefkit.schema import Kind  # noqa: E402
from prefkit.simulate import simulate  # noqa: E402

MAX_TRAIN = 150
NEWTON = 8


def recurrence(name: str, table: pa.Table) -> dict[str, Any]:
    f = Frame.of(table)
    _, first = np.unique(f.item, return_index=True)
    p, a, b = f.prompt_code[first], f.a_code[first], f.b_code[first]
    key = np.concatenate([p, p]) * (len(f.texts) + 1) + np.concatenate([a, b])
    u, c = np.unique(key, return_counts=True)
    per_prompt = np.bincount(np.unique(p, return_inverse=True)[1])
    rec = np.isin(key, u[c >= 2]).reshape(2, -1).any(0)
    return {
        "data": name,
        "rows": f.n,
        "pairs": int(first.size),
        "prompts": int(per_prompt.size),
        "pairs_per_prompt": round(float(per_prompt.mean()), 2),
        "distinct_prompt_responses": int(u.size),
        "recurring_responses": int((c >= 2).sum()),
        "pairs_with_a_recurring_response": round(float(rec.mean()), 4),
    }


def _kernel_features(texts: pa.Array, vocab: Any, resp: Any, rprompt: Any, kernel: str) -> Any:
    from scipy.sparse import csr_matrix, diags, identity

    from prefkit.audit.features import ngram_matrix

    if kernel == "exact":
        return identity(resp.size, format="csr")
    if kernel.startswith("sent"):
        phi = _sentence_matrix(texts.take(pa.array(resp)))
    else:
        phi = ngram_matrix(texts.take(pa.array(resp)), vocab=vocab).astype(np.float64).tocsr()
    if kernel in ("idf", "sentidf"):
        _, pc = np.unique(rprompt, return_inverse=True)
        n_p = int(pc.max()) + 1
        pm = csr_matrix((np.ones(resp.size), (pc, np.arange(resp.size))), shape=(n_p, resp.size))
        pf = np.asarray(((pm @ phi) > 0).sum(0)).ravel()
        phi = phi @ diags(np.log((n_p + 1) / (pf + 1)))
    norm = np.sqrt(np.asarray(phi.multiply(phi).sum(1)).ravel())
    return diags(1.0 / np.maximum(norm, 1e-12)) @ phi


def _sentence_matrix(texts: pa.Array) -> Any:
    """Presence of each distinct sentence (split at . ! ? and line breaks, lower-cased, words
    only) per response."""
    import re

    from scipy.sparse import csr_matrix

    keys: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, t in enumerate(texts.to_pylist()):
        for sent in set(re.split(r"[.!?\n]+", (t or "").lower())):
            words = " ".join(re.findall(r"\w+", sent))
            if words:
                rows.append(i)
                cols.append(keys.setdefault(words, len(keys)))
    return csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(texts), max(len(keys), 1))
    ).tocsr()


def _logistic_offset(z: Any, y: Any) -> Any:
    from scipy.special import expit

    x = np.column_stack([np.ones(z.size), z])
    beta = np.array([0.0, 1.0])
    for _ in range(25):
        p = expit(x @ beta)
        h = x.T @ (x * (p * (1 - p) + 1e-9)[:, None]) + 1e-6 * np.eye(2)
        beta = beta + np.linalg.solve(h, x.T @ (y - p))
    return x @ beta


def prompt_prior(
    texts: pa.Array, vocab: Any, prompt: Any, ra: Any, rb: Any, fold: Any, z: Any, y: Any,
    mode: str, kernel: str, tau2: float, seed: int = 0,
) -> Any:  # fmt: skip
    """The corrected prior logit per pair (module docstring)."""
    from scipy.special import expit

    n = prompt.size
    rng = np.random.default_rng(seed)
    if mode == "reg":
        x1 = np.column_stack([np.ones(n), z])
        z = x1 @ np.linalg.lstsq(x1, y, rcond=None)[0]
    else:
        z = _logistic_offset(z, y)
    out = np.zeros(n)
    order = np.argsort(prompt, kind="stable")
    ps = prompt[order]
    starts = np.flatnonzero(np.concatenate([[True], ps[1:] != ps[:-1]]))
    ends = np.concatenate([starts[1:], [n]])
    groups = [(s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True) if e - s >= 3]
    if not groups:
        return z
    sel = np.concatenate([order[s:e] for s, e in groups])
    resp = np.unique(np.concatenate([ra[sel], rb[sel]]))
    rprompt = np.full(int(max(ra.max(), rb.max())) + 1, -1, dtype=np.int64)
    rprompt[ra[sel]] = prompt[sel]
    rprompt[rb[sel]] = prompt[sel]
    phi = _kernel_features(texts, vocab, resp, rprompt[resp], kernel)
    loc = np.full(rprompt.size, -1, dtype=np.int64)
    loc[resp] = np.arange(resp.size)
    for s, e in groups:
        idx = order[s:e]
        rs = np.unique(np.concatenate([ra[idx], rb[idx]]))
        ph = phi[loc[rs]]
        r = np.asarray((ph @ ph.T).todense())
        m = np.full(loc.size, -1, dtype=np.int64)
        m[rs] = np.arange(rs.size)
        ia, ib = m[ra[idx]], m[rb[idx]]
        kk = tau2 * (r[ia][:, ia] - r[ia][:, ib] - r[ib][:, ia] + r[ib][:, ib])
        fo = fold[idx]
        for k in np.unique(fo).tolist():
            te, tr = np.flatnonzero(fo == k), np.flatnonzero(fo != k)
            if tr.size < 2:
                continue
            if tr.size > MAX_TRAIN:
                tr = np.sort(rng.choice(tr, size=MAX_TRAIN, replace=False))
            ktt = kk[np.ix_(tr, tr)]
            zt, yt = z[idx[tr]], y[idx[tr]]
            if mode == "reg":  # GP regression, prior and noise variance in the same units
                a = np.linalg.solve(ktt + np.eye(tr.size), yt - zt)
                out[idx[te]] = kk[np.ix_(te, tr)] @ a
                continue
            f = np.zeros(tr.size)  # Laplace mode of the logistic GP (Newton)
            for _ in range(NEWTON):
                p = expit(zt + f)
                w = np.maximum(p * (1 - p), 1e-9)
                sw = np.sqrt(w)
                bb = w * f + (yt - p)
                bm = np.eye(tr.size) + sw[:, None] * ktt * sw[None, :]
                f = ktt @ (bb - sw * np.linalg.solve(bm, sw * (ktt @ bb)))
            out[idx[te]] = kk[np.ix_(te, tr)] @ (yt - expit(zt + f))
    return z + out


def true_margins(t: pa.Table) -> Any:
    import pyarrow.compute as pc

    meta = t.column("meta").combine_chunks()
    qa = np.asarray(pc.map_lookup(meta, "quality_a", "first").cast("float64"))
    qb = np.asarray(pc.map_lookup(meta, "quality_b", "first").cast("float64"))
    la = np.array([len(m[0]["content"]) for m in t.column("response_a").to_pylist()])
    lb = np.array([len(m[0]["content"]) for m in t.column("response_b").to_pylist()])
    return 2.0 * (qa - qb) + 0.5 * (la - lb) / 100.0


def residual(f: Frame, first: Any, z: Any, m_true: Any) -> dict[str, float]:
    """How much of the prior's error (the true margin's residual after a linear fit on the
    prior logit) the answer of a fact prompt explains: Δcorrect = whether each response
    states the fact's right answer (the simulator's own fact tables), a − b per pair."""
    import re

    from prefkit.simulate.world import _BOOKS, _CAPITALS, _ELEMENTS

    def pat(head: str, y: str) -> re.Pattern[str]:
        return re.compile(re.escape(head.lower()) + r"\W*" + re.escape(y.lower()) + r"\b")

    pats = [pat(f"capital of {x} is ", y) for x, y in _CAPITALS]
    pats += [pat(f"symbol for {x} is ", y) for x, y in _ELEMENTS]
    pats += [pat(f"{x} was written by ", y) for x, y in _BOOKS]
    texts = f.texts.to_pylist()
    right = np.array([any(p.search((t or "").lower()) for p in pats) for t in texts], float)
    lo, hi = np.minimum(f.a_code, f.b_code)[first], np.maximum(f.a_code, f.b_code)[first]
    dc = right[lo] - right[hi]
    fact_prompt = np.array(
        [bool(re.search(r"capital of|chemical symbol|who wrote", p.lower())) for p in
         f.prompts.to_pylist()]
    )[f.prompt_code[first]]  # fmt: skip
    r = m_true - np.polyval(np.polyfit(z, m_true, 1), z)
    x = np.column_stack([np.ones(r.size), dc])
    fit = np.linalg.lstsq(x[fact_prompt], r[fact_prompt], rcond=None)[0]
    after = r[fact_prompt] - x[fact_prompt] @ fit
    return {
        "fact_pairs_share": float(fact_prompt.mean()),
        "fact_pairs_answers_differ": float((dc[fact_prompt] != 0).mean()),
        "residual_var_fact": float(r[fact_prompt].var()),
        "residual_var_other": float(r[~fact_prompt].var()),
        "residual_var_fact_after_answer": float(after.var()),
        "true_margin_var": float(m_true.var()),
    }


def hook(
    variant: str, oracle: bool = False, margin_row: Any = None, seen: dict[str, float] | None = None
) -> Any:
    """A stand-in for `noise.lapse_model` that corrects the final fit's prior by `variant`
    (it reads fit_noise's locals: the pairs, folds, vocabulary and votes-only fit) and, given
    the true margin per row, records the prior's correlation with it in `seen`."""
    from scipy.special import expit, logit

    real = noise_mod.lapse_model
    seen = {} if seen is None else seen

    def hooked(*args: Any, prior_a: Any = None, **kw: Any) -> Any:
        fr = sys._getframe(1).f_locals  # fit_noise's: the final fit gets the refit prior
        if prior_a is None or "alone" not in fr or fr.get("ng") is None:
            return real(*args, prior_a=prior_a, **kw)
        f, rows, it, n_it = fr["f"], fr["rows"], fr["it"], fr["n_it"]
        first = np.zeros(n_it, dtype=np.int64)
        first[it[::-1]] = rows[::-1]
        z = logit(np.clip(prior_a, 1e-6, 1 - 1e-6))
        m_true = None
        if margin_row is not None:
            m_true = np.where(f.swapped[first], -margin_row[first], margin_row[first])
            seen["corr_prior_true_margin_before"] = float(np.corrcoef(z, m_true)[0, 1])
        if variant != "base":
            mode, kernel, tau2 = variant.split(":")
            alone = fr["alone"]
            y = m_true if oracle else (alone.margin if mode == "reg" else alone.posterior_a)
            z = prompt_prior(
                f.texts, fr["ng"].vocab, f.prompt_code[first],
                np.minimum(f.a_code, f.b_code)[first], np.maximum(f.a_code, f.b_code)[first],
                fr["fold_of"][first], z, np.asarray(y, dtype=np.float64), mode, kernel,
                float(tau2),
            )  # fmt: skip
            prior_a = expit(z)
        if m_true is not None:
            seen["corr_prior_true_margin"] = float(np.corrcoef(z, m_true)[0, 1])
            if variant == "base":
                seen.update(residual(f, first, z, m_true))
        return real(*args, prior_a=prior_a, **kw)

    return hooked


def run(seed: int, size: int, variant: str, oracle: bool) -> dict[str, Any]:
    """The noise check on `noisy` `seed` with the prior corrected by `variant`."""
    from benchmarks.bench_noise_seeds import measure

    real = noise_mod.lapse_model
    sim = simulate("noisy", size=size, seed=seed, votes_per_pair=3)
    seen: dict[str, float] = {}
    noise_mod.lapse_model = hook(variant, oracle, true_margins(sim.tables[Kind.COMPARISONS]), seen)
    try:
        out = measure(seed, size)
    finally:
        noise_mod.lapse_model = real
    return (
        {"variant": variant + (" (oracle targets)" if oracle else "")}
        | out
        | {k: round(v, 4) for k, v in seen.items()}
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--variants", nargs="+", default=["base", "reg:idf:0.1"])
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--recurrence", action="store_true")
    ap.add_argument(
        "--audit-real",
        default=None,
        metavar="ARGS",
        help="run bench_audit_real.py with these arguments (one string), the prior corrected "
        "by the first of --variants",
    )
    args = ap.parse_args()
    if args.audit_real is not None:
        from benchmarks import bench_audit_real

        noise_mod.lapse_model = hook(args.variants[0])
        sys.argv = ["bench_audit_real.py", *shlex.split(args.audit_real)]
        bench_audit_real.main()
        return
    if args.recurrence:
        from benchmarks.bench_audit_real import load

        sim = simulate("noisy", size=args.size, seed=10, votes_per_pair=3)
        print(json.dumps(recurrence("noisy seed 10", sim.tables[Kind.COMPARISONS])), flush=True)
        for name in ("hh", "pandalm", "finegrained"):
            print(json.dumps(recurrence(name, load(name))), flush=True)
    for seed in args.seeds:
        for v in args.variants:
            m = run(seed, args.size, v, args.oracle and v != "base")
            ok = (
                m["precision"] >= 0.8 and m["recall"] >= 0.6 and m["precision_at_recall_0.6"] >= 0.8
            )
            print(json.dumps(m | {"target_met": ok}), flush=True)


if __name__ == "__main__":
    main()
