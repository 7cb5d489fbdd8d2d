"""The audit calibrated on real data: faults of known kind injected into the shared real
datasets, per check precision, recall and false-alarm rate, with 95% intervals over seeds.

Datasets (../shared/data, read with `prefkit.read`): HH-RLHF harmless-base test, PandaLM
(3 human votes per pair), LLMBar (LLMBar natural + adversarial and the processed FairEval,
LLMEval², MT-Bench sets), FineGrainedRLHF QA feedback (rankings of 4 answers, audited as the
6 comparisons each implies, as `prefkit audit` does), ICAI synthetic (the `mixed` file,
which holds the `aligned` and `orthogonal` files' rows, and the example).

Each dataset is split 80/20 by prompt into `meta.split` train/test (what a user trains on),
then, with a seed, on disjoint rows:

- 10% of decisive rows flipped (a ↔ b) — truth for `noisy_label`;
- 3% of rows copied (new id, every other field equal) — `exact_duplicate` (copy + original);
- 2% of rows copied with small edits to the prompt and both responses (one word dropped or
  repeated, case and punctuation changed) — `near_duplicate_pair` (copy + original);
- 2% of the test prompts leaked into train (a test row copied with `split=train`) —
  `split_leak` (the train copies);
- 2% of rows with one response cut at a random point (40–90% of its characters) —
  `truncated`;
- where annotators exist (PandaLM): two spam annotators voting at random on 30% of the
  pairs each — `spammer` (their rows).

A flipped or spam vote that meets a vote by the same annotator on the same pair (same
prompt and responses, either order) with the other winner makes a contradiction: those rows
are the truth for `contradiction` (PandaLM holds pairs whose responses are identical text
under different ids, e.g. two empty answers against the same third).

Per check: precision and recall against the injected truth, and the false-alarm rate = the
share of the rows no injection touched that the check flags. "Precision, new flags" counts
only the flags the uninjected data does not already raise (on the row itself or, for a copy,
on the row it copies): real faults of the published data then do not count against a check;
"false alarms not in the uninjected data" likewise. The same datasets without
injection (split only) give the share of a clean real dataset flagged by default (errors and
warnings). Label noise is compared with cleanlab on the audit's own out-of-fold
probabilities, in the same run (`benchmarks/bench_noise.py` describes the three ways).
Intervals: mean ± t(0.975, seeds − 1) · sd / √seeds.

    .venv/bin/python benchmarks/bench_audit_real.py [--seeds 0 1 2 3 4] [--datasets ...]
        [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_noise import cleanlab_best, crowdlab, pr, prec_at_recall  # noqa: E402
from prefkit.audit.duplicates import shingle_set  # noqa: E402
from prefkit.audit.frame import Frame, comparisons_from_rankings  # noqa: E402
from prefkit.audit.run import run_audit  # noqa: E402
from prefkit.io.detect import read  # noqa: E402
from prefkit.schema import Kind  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DATASETS: dict[str, list[str]] = {
    "hh": ["hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"],
    "pandalm": ["pandalm_testset/data/testset-v1.json"],
    "llmbar": ["llmbar/Dataset/LLMBar/**/dataset.json", "llmbar/Dataset/Processed/**/dataset.json"],
    "finegrained": ["finegrained_rlhf_qa_feedback/tasks/qa_feedback/data/dev_feedback.json"],
    # the mixed file holds the aligned and orthogonal files' rows (concatenated)
    "icai": [
        "icai_synthetic/data/processed/synthetic/synthetic_data_mixed_*.csv",
        "icai_synthetic/data/processed/example/example.csv",
    ],
}
FAULTS = {
    "noisy_label": "flip",
    "exact_duplicate": "dup",
    "near_duplicate_pair": "near",
    "near_duplicate_prompt": "near",
    "split_leak": "leak",
    "truncated": "trunc",
    "spammer": "spam",
    "contradiction": "flip",
}
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def load(name: str) -> pa.Table:
    tables = []
    for pattern in DATASETS[name]:
        for path in sorted(DATA.glob(pattern)):
            r = read(path)
            if Kind.COMPARISONS in r.tables:
                tables.append(r.tables[Kind.COMPARISONS])
            else:
                tables.append(comparisons_from_rankings(r.tables[Kind.RANKINGS]))
    return pa.concat_tables(tables).combine_chunks()


def _set(col: list[Any], idx: np.ndarray, value: Any) -> None:
    for i in idx.tolist():
        col[i] = value(i) if callable(value) else value


def _edit(text: str, rng: np.random.Generator) -> str:
    """A near-duplicate edit: one word dropped or repeated, first letter case flipped, final
    punctuation toggled."""
    words = text.split(" ")
    if len(words) >= 6:
        k = int(rng.integers(1, len(words) - 1))
        words = words[:k] + words[k + 1 :] if rng.random() < 0.5 else words[: k + 1] + words[k:]
    out = " ".join(words)
    if out[:1].isalpha():
        out = out[0].swapcase() + out[1:]
    return out[:-1] if out.endswith((".", "!", "?")) else out + "."


def _messages_edit(msgs: Any, rng: np.random.Generator) -> Any:
    if not msgs:
        return msgs
    last = dict(msgs[-1])
    last["content"] = _edit(str(last.get("content") or ""), rng)
    return [*msgs[:-1], last]


def _cut(msgs: Any, rng: np.random.Generator) -> Any:
    last = dict(msgs[-1])
    text = str(last.get("content") or "")
    last["content"] = text[: int(len(text) * rng.uniform(0.4, 0.9))].rstrip()
    return [*msgs[:-1], last]


def split_by_prompt(t: pa.Table, rng: np.random.Generator) -> list[dict[str, str]]:
    """meta with `split` = train/test, 80/20 by prompt."""
    f = Frame.of(t)
    test_prompt = rng.random(len(f.prompts)) < 0.2
    is_test = test_prompt[np.maximum(f.prompt_code, 0)]
    metas = [dict(m or []) for m in t.column("meta").to_pylist()]
    for m, te in zip(metas, is_test.tolist(), strict=True):
        m["split"] = "test" if te else "train"
    return metas


def prepare(t: pa.Table, seed: int) -> list[dict[str, Any]]:
    """Rows with an 80/20 split by prompt in `meta.split` and the a/b order of each row drawn
    at random (HH lists the chosen response first: left as is, every `b` would be a flip)."""
    rng = np.random.default_rng(seed)
    metas = split_by_prompt(t, rng)
    rows = t.to_pylist()
    swap = rng.random(len(rows)) < 0.5
    other = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}
    for r, m, sw in zip(rows, metas, swap.tolist(), strict=True):
        r["meta"] = m
        if sw:
            r["response_a"], r["response_b"] = r["response_b"], r["response_a"]
            r["model_a"], r["model_b"] = r["model_b"], r["model_a"]
            r["outcome"] = other[r["outcome"]]
            if r.get("strength") is not None:
                r["strength"] = 1 - r["strength"]
            if r.get("shown_first") in ("a", "b"):
                r["shown_first"] = other[r["shown_first"]]
    return rows


def _text(msgs: Any) -> str:
    return "\n".join(str(m.get("content") or "") for m in (msgs or []))


def _pair(r: dict[str, Any]) -> tuple[str, frozenset[str]]:
    return _text(r["prompt"]), frozenset((_text(r["response_a"]), _text(r["response_b"])))


def inject(
    t: pa.Table, seed: int
) -> tuple[pa.Table, dict[str, set[str]], set[str], dict[str, str]]:
    """The table with faults injected, the truth (issue -> row ids), the untouched ids and
    each added row's original (copy id -> the id of the row it copies).

    A near-duplicate copy makes every row of the original's pair a near-duplicate pair, and
    every row of the original's prompt a near-duplicate prompt: they are all in the truth."""
    rng = np.random.default_rng(seed + 1000)
    rows = prepare(t, seed)
    n = len(rows)
    order = rng.permutation(n)
    decisive = np.array([r["outcome"] in ("a", "b") for r in rows])
    has_text = np.array([bool(r["response_a"]) and bool(r["response_b"]) for r in rows], dtype=bool)
    long_resp = np.array(
        [
            any(
                len(str((m or [{}])[-1].get("content") or "")) >= 40
                for m in (r["response_a"], r["response_b"])
            )
            for r in rows
        ]
    )
    taken = np.zeros(n, dtype=bool)
    origin: dict[str, str] = {}

    def pick(k: int, ok: np.ndarray) -> np.ndarray:
        cand = [i for i in order.tolist() if ok[i] and not taken[i]]
        sel = np.asarray(cand[:k], dtype=np.int64)
        taken[sel] = True
        return sel

    truth: dict[str, set[str]] = {k: set() for k in FAULTS}
    flip = pick(int(round(0.10 * decisive.sum())), decisive)
    for i in flip.tolist():
        rows[i]["outcome"] = "b" if rows[i]["outcome"] == "a" else "a"
        truth["noisy_label"].add(rows[i]["id"])
    trunc = pick(int(round(0.02 * n)), long_resp & has_text)
    for i in trunc.tolist():
        sides = [
            s
            for s in ("response_a", "response_b")
            if len(str(rows[i][s][-1]["content"] or "")) >= 40
        ]
        side = sides[int(rng.integers(0, len(sides)))]
        rows[i][side] = _cut(rows[i][side], rng)
        truth["truncated"].add(rows[i]["id"])
    extra: list[dict[str, Any]] = []
    for i in pick(int(round(0.03 * n)), np.ones(n, dtype=bool)).tolist():
        extra.append(rows[i] | {"id": f"{rows[i]['id']}:dup"})
        truth["exact_duplicate"] |= {rows[i]["id"], f"{rows[i]['id']}:dup"}
    near_pairs: set[tuple[str, frozenset[str]]] = set()
    near_prompts: set[str] = set()
    for i in pick(int(round(0.02 * n)), has_text).tolist():
        r = rows[i]
        near_pairs.add(_pair(r))
        near_prompts.add(_text(r["prompt"]))
        meta = dict(r["meta"])
        if "pair_id" in meta:
            meta["pair_id"] += ":near"
        extra.append(
            r
            | {
                "id": f"{r['id']}:near",
                "prompt": _messages_edit(r["prompt"], rng),
                "response_a": _messages_edit(r["response_a"], rng),
                "response_b": _messages_edit(r["response_b"], rng),
                "meta": meta,
            }
        )
        truth["near_duplicate_pair"].add(f"{r['id']}:near")
        truth["near_duplicate_prompt"].add(f"{r['id']}:near")
    is_test = np.array([r["meta"]["split"] == "test" for r in rows])
    test_prompts = {str(r["prompt"]) for r, te in zip(rows, is_test, strict=True) if te}
    leak = pick(int(round(0.02 * len(test_prompts))), is_test)
    for i in leak.tolist():
        r = rows[i]
        extra.append(r | {"id": f"{r['id']}:leak", "meta": dict(r["meta"]) | {"split": "train"}})
        truth["split_leak"].add(f"{r['id']}:leak")
    if any(r["annotator"] for r in rows):
        items: dict[str, dict[str, Any]] = {}
        for r in rows:
            items.setdefault(str(r["meta"].get("pair_id") or r["id"]), r)
        keys = sorted(items)
        for s in range(2):
            for k in rng.choice(len(keys), size=int(0.3 * len(keys)), replace=False).tolist():
                r = items[keys[k]]
                rid = f"spam{s}:{keys[k]}"
                extra.append(
                    r
                    | {
                        "id": rid,
                        "annotator": f"spam{s}",
                        "outcome": "a" if rng.random() < 0.5 else "b",
                    }
                )
                truth["spammer"].add(rid)
                origin[rid] = r["id"]
    # a flipped or spam vote that meets another vote by the same annotator on the same pair
    # (same prompt and responses, either order) with the other winner is a contradiction the
    # injection made: the flipped row and its partners are the truth for `contradiction`
    injected = truth["noisy_label"] | truth["spammer"]
    same: dict[tuple[str, tuple[str, frozenset[str]]], list[dict[str, Any]]] = {}
    for r in rows + extra:
        if r["annotator"] and r["outcome"] in ("a", "b"):
            same.setdefault((r["annotator"], _pair(r)), []).append(r)
    for group in same.values():
        winners = {_text(r["response_" + r["outcome"]]) for r in group}
        if len(winners) > 1 and any(r["id"] in injected for r in group):
            truth["contradiction"] |= {r["id"] for r in group}
    for r in rows + extra:
        if _pair(r) in near_pairs:
            truth["near_duplicate_pair"].add(r["id"])
        if _text(r["prompt"]) in near_prompts:
            truth["near_duplicate_prompt"].add(r["id"])
    out = pa.Table.from_pylist(rows + extra, schema=t.schema)
    untouched = {rows[i]["id"] for i in range(n) if not taken[i]}
    for k in ("near_duplicate_pair", "near_duplicate_prompt", "exact_duplicate", "contradiction"):
        untouched -= truth[k]
    for r in extra:
        origin.setdefault(r["id"], r["id"].rsplit(":", 1)[0])  # :dup, :near, :leak copies
    # a spam vote copies its pair's row as it is after the cuts: a copy that carries a cut
    # response verbatim is a truncated row too
    cut = {r["id"]: r for r in rows if r["id"] in truth["truncated"]}
    for r in extra:
        o = cut.get(origin[r["id"]])
        if o is not None and all(_text(r[s]) == _text(o[s]) for s in ("response_a", "response_b")):
            truth["truncated"].add(r["id"])
    return out, truth, untouched, origin


def ci(values: list[float]) -> tuple[float, float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan"), float("nan")
    half = T_975.get(v.size - 1, 1.96) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def flags_by_issue(res: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in res.rows.select(["row_id", "issue"]).to_pylist():
        out.setdefault(r["issue"], set()).add(r["row_id"])
    return out


def _shingles(text: str) -> set[bytes]:
    """The check's shingles, none for a text MinHash cannot match (under 8 bytes)."""
    return shingle_set(text) if len(text.encode("utf-8")) >= 8 else set()


def _jac(x: set[bytes], y: set[bytes]) -> float:
    return len(x & y) / len(x | y) if x and y else 0.0


def verified_near_pairs(f: Frame, rows: np.ndarray, threshold: float) -> np.ndarray:
    """Which of `rows` truly are near-duplicate pairs by the check's definition, computed
    exactly (no MinHash): another distinct pair whose prompt and both responses (either
    order) have Jaccard similarity ≥ threshold over the same shingles. A flag on such a row
    is what the check is for, whether or not a fault was injected there."""
    pk = f.pair_key
    uniq, first = np.unique(pk, return_index=True)
    ptext = f.prompts.to_pylist()
    ttext = f.texts.to_pylist()
    psh: dict[int, set[bytes]] = {}
    tsh: dict[int, set[bytes]] = {}

    def sp(c: int) -> set[bytes]:
        if c not in psh:
            psh[c] = _shingles(ptext[c]) if c >= 0 else set()
        return psh[c]

    def st(c: int) -> set[bytes]:
        if c not in tsh:
            tsh[c] = _shingles(ttext[c]) if c >= 0 else set()
        return tsh[c]

    pcode = f.prompt_code[first]
    acode, bcode = f.a_code[first], f.b_code[first]
    near_prompts: dict[int, np.ndarray] = {}
    out = np.zeros(len(rows), dtype=bool)
    done: dict[int, bool] = {}
    for n, r in enumerate(rows.tolist()):
        u = int(np.searchsorted(uniq, pk[r]))
        if u not in done:
            p = int(pcode[u])
            if p not in near_prompts:
                codes = np.unique(pcode)
                near_prompts[p] = codes[
                    [_jac(sp(p), sp(int(c))) >= threshold for c in codes.tolist()]
                ]
            cand = np.flatnonzero(np.isin(pcode, near_prompts[p]))
            a, b = st(int(acode[u])), st(int(bcode[u]))
            hit = False
            for v in cand.tolist():
                if v == u:
                    continue
                x, y = st(int(acode[v])), st(int(bcode[v]))
                sim = max(min(_jac(a, x), _jac(b, y)), min(_jac(a, y), _jac(b, x)))
                if min(sim, _jac(sp(int(pcode[u])), sp(int(pcode[v])))) >= threshold:
                    hit = True
                    break
            done[u] = hit
        out[n] = done[u]
    return out


def measure(name: str, base: pa.Table, seed: int) -> dict[str, Any]:
    clean_res = run_audit(pa.Table.from_pylist(prepare(base, seed), schema=base.schema))
    pre = flags_by_issue(clean_res)  # what the published data already shows
    fl = clean_res.summary["flagged"]
    clean = {
        "share_default": fl["share"],
        "by_issue_default": {
            k: v for sv in ("error", "warning") for k, v in fl["by_issue_default"][sv].items()
        },
        "info_rows": fl["by_severity"]["info"],
        "verdict": clean_res.summary["health"]["verdict"],
    }
    t, truth, untouched, origin = inject(base, seed)
    t0 = time.perf_counter()
    res = run_audit(t)
    secs = time.perf_counter() - t0
    ids = np.asarray(res.row_ids.to_pylist())
    un = np.isin(ids, list(untouched))
    found: dict[str, Any] = {"rows": int(t.num_rows), "audit_s": secs, "checks": {}, "clean": clean}
    by_issue = flags_by_issue(res)
    f_inj = Frame.of(t)
    for issue in sorted(set(by_issue) | {k for k, v in truth.items() if v}):
        flagged = np.isin(ids, list(by_issue.get(issue, set())))
        # flagged already in the uninjected data: the row itself or the row a copy copies
        before = pre.get(issue, set())
        known = np.array([i in before or origin.get(i) in before for i in ids.tolist()])
        entry: dict[str, float] = {
            "false_alarm": float(flagged[un].mean()),
            "false_alarm_new": float((flagged & ~known)[un].mean()),
        }
        if truth.get(issue):
            y = np.isin(ids, list(truth[issue]))
            p, r_ = pr(flagged, y)
            p_new, _ = pr(flagged & ~known, y)
            entry |= {
                "precision": p if flagged.any() else float("nan"),
                "precision_new": p_new if (flagged & ~known).any() else float("nan"),
                "recall": r_,
            }
        if issue == "near_duplicate_pair":
            # a flag on an untouched row that IS a near-duplicate pair (exact Jaccard) is
            # the published data's near-duplicate, not a false alarm
            check = np.flatnonzero(flagged & un)
            true_near = verified_near_pairs(f_inj, check, res.summary["duplicates"]["threshold"])
            entry["false_alarm_verified"] = float((~true_near).sum() / max(int(un.sum()), 1))
            entry["untouched_flags_true_near"] = float(true_near.mean()) if len(check) else 1.0
        found["checks"][issue] = entry
    # label noise: the ranking, and cleanlab on the same out-of-fold probabilities
    y = np.isin(ids, list(truth["noisy_label"]))
    f = f_inj
    multi = len(f.annotators) >= 2 and res.summary["noise"]["votes_per_pair"] > 1.5
    noise = found["checks"].setdefault("noisy_label", {})
    noise["P@R0.5"] = prec_at_recall(res.noise_score, y, 0.5)
    noise["auc_feature_model"] = res.summary["noise"]["feature_model"]["auc_out_of_fold"]
    rows = np.flatnonzero(f.decisive & ~f.is_copy)
    labels = (f.outcome[rows] == 1).astype(int)
    p_a = np.asarray(res.p_a)
    cl = cleanlab_best(labels, np.column_stack([p_a, 1 - p_a])[rows], y[rows])
    found["cleanlab"] = {
        "precision": cl["P"],
        "recall": cl["R"],
        "P@R0.5": cl["P@R0.5"],
        "filter_by": cl["filter_by"],
    }
    if multi:
        cw = crowdlab(f, p_a, rows)
        cp, cr = pr(cw["flag"], y[rows])
        found["crowdlab"] = {
            "precision": cp,
            "recall": cr,
            "P@R0.5": prec_at_recall(cw["score"], y[rows], 0.5),
        }
    return found


def fmt(m: float, lo: float, hi: float, pct: bool = False) -> str:
    if not np.isfinite(m):
        return "—"
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.2f}")
    return f(m) if not np.isfinite(lo) else f"{f(m)} [{f(max(lo, 0))}, {f(min(hi, 1))}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results: dict[str, Any] = {}
    for name in args.datasets:
        base = load(name)
        runs = [measure(name, base, s) for s in args.seeds]
        results[name] = {"runs": runs, "rows": base.num_rows}
        clean = runs[0]["clean"]
        share = fmt(*ci([r["clean"]["share_default"] for r in runs]), pct=True)
        print(
            f"\n### {name}: {base.num_rows} rows; uninjected, flagged by default (errors + "
            f"warnings): {share} (seed {args.seeds[0]}: {clean['by_issue_default'] or 'nothing'}"
            f", verdict {clean['verdict']}); audit {np.mean([r['audit_s'] for r in runs]):.1f} s "
            "per injected run\n",
            flush=True,
        )
        print(
            "| check | precision | precision, new flags | recall | false-alarm rate "
            "| false alarms not in the uninjected data | false alarms, verified | P@R0.5 |"
        )
        print("|---|---|---|---|---|---|---|---|")
        issues = sorted({i for r in runs for i in r["checks"]})
        for issue in issues:
            vals = [r["checks"].get(issue, {}) for r in runs]
            cells = [
                fmt(*ci([v.get("precision", float("nan")) for v in vals])),
                fmt(*ci([v.get("precision_new", float("nan")) for v in vals])),
                fmt(*ci([v.get("recall", float("nan")) for v in vals])),
                fmt(*ci([v.get("false_alarm", 0.0) for v in vals]), pct=True),
                fmt(*ci([v.get("false_alarm_new", 0.0) for v in vals]), pct=True),
                fmt(*ci([v.get("false_alarm_verified", float("nan")) for v in vals]), pct=True),
                fmt(*ci([v.get("P@R0.5", float("nan")) for v in vals])),
            ]
            print(f"| {issue} | " + " | ".join(cells) + " |")
        for other in ("cleanlab", "crowdlab"):
            if other in runs[0]:
                vals = [r[other] for r in runs]
                label = (
                    f"noisy_label: cleanlab, same probabilities ({vals[0]['filter_by']})"
                    if other == "cleanlab"
                    else "noisy_label: cleanlab CROWDLAB (votes + same probabilities)"
                )
                print(
                    f"| {label} | {fmt(*ci([v['precision'] for v in vals]))} | — | "
                    f"{fmt(*ci([v['recall'] for v in vals]))} | — | — | — | "
                    f"{fmt(*ci([v['P@R0.5'] for v in vals]))} |"
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
