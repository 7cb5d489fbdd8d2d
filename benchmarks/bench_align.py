"""Prefix-shared (and packed) DPO batches vs TRL DPOTrainer's default batching.

Same tiny Llama (built from a config, BPE tokenizer trained on the data), same HH-RLHF
harmless pairs, same order, same loss (DPO sigmoid), one epoch of training each, in one run:

- ``trl``: stock ``trl.DPOTrainer`` (its collator: prompt repeated for chosen and rejected,
  right padding; its fused LM head);
- ``standard``: ``PrefkitDPOTrainer`` with the unshared layout (isolates the glue's cost);
- ``shared``: prefix-shared rows (prompt once, both responses after it, block mask);
- ``packed``: prefix-shared groups packed several to a row up to a token budget.

The headline is the prefix-sharing effect: ``standard`` vs ``shared``/``packed`` time on the
same trainer with the same LM head, so only the batch layout differs. Every side is trained
``--repeats`` times from the same initial weights, the order of the sides rotated each
repeat (so no side always runs first or last on a machine whose load drifts); the script
reports the median and the range of each time and of each ratio (ratios are taken within a
repeat).

Throughput is TRL-layout tokens per second: every method processes the same pairs, counted
as TRL counts them (prompt + chosen, prompt + rejected), so the ratio is the speed-up on the
same work. Wall and process CPU time (all threads) are both recorded: on a shared machine the
CPU time moves less with other jobs' load. Before timing, the loss of the first batch is
computed by TRL and by each prefkit layout from the same initial weights: they must agree to
1e-5.

    .venv/bin/python benchmarks/bench_align.py                # CPU, hidden 64, 256 pairs, 3 repeats
    .venv/bin/python benchmarks/bench_align.py --pairs 24     # small (make bench)
    .venv/bin/python benchmarks/bench_align.py --device cuda --hidden 512 --layers 8
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.align import _tiny  # noqa: E402


def _rows(n: int, tok: Any, max_tokens: int) -> list[dict[str, Any]]:
    out = []
    for r in _tiny.hh_rows():
        p = len(tok(r["prompt"])["input_ids"])
        c = len(tok(r["chosen"])["input_ids"])
        j = len(tok(r["rejected"])["input_ids"])
        if p + max(c, j) + 1 <= max_tokens:
            out.append({k: r[k] for k in ("prompt", "chosen", "rejected")})
        if len(out) >= n:
            break
    return out


def _args(out: str, bs: int, device: str, bf16: bool) -> Any:
    from trl import DPOConfig

    return DPOConfig(
        bf16=bf16,
        output_dir=out,
        per_device_train_batch_size=bs,
        num_train_epochs=1,
        learning_rate=1e-4,
        beta=0.1,
        max_length=None,
        report_to=[],
        logging_steps=1000,
        save_strategy="no",
        seed=0,
        use_cpu=device == "cpu",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=512, help="keep pairs that fit")
    ap.add_argument("--pack-tokens", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--bf16", action="store_true", help="bf16 autocast (TRL's default; slow on this CPU)"
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of every side (>= 1)")
    ap.add_argument("--sides", default="trl,standard,shared,packed")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    kinds = [k for k in ("trl", "standard", "shared", "packed") if k in a.sides.split(",")]
    if "standard" not in kinds or a.repeats < 1:
        ap.error("--sides must include standard (the reference of the headline); --repeats >= 1")

    import datasets
    import torch
    from trl import DPOTrainer

    from prefkit.align.train import trainer_class

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    texts = _tiny.texts_of(_tiny.hh_rows(600))
    tok = _tiny.tokenizer(texts, vocab=1000)
    rows = _rows(a.pairs, tok, a.max_tokens)
    ds = datasets.Dataset.from_list(rows)
    base = _tiny.model(tok, hidden=a.hidden, layers=a.layers).to(a.device)
    # a reference with other weights, so the first-batch loss is not trivially log 2
    other = _tiny.model(tok, hidden=a.hidden, layers=a.layers, seed=1).to(a.device)
    for m in (base, other):  # one attention-mask code path for policy and reference
        m.config.use_cache = False
    n_params = sum(p.numel() for p in base.parameters())
    cls = trainer_class()
    tmp = tempfile.mkdtemp()

    def make(kind: str, dtype: Any = torch.float32, data: Any = ds) -> Any:
        model, ref = copy.deepcopy(base).to(dtype), copy.deepcopy(other).to(dtype)
        args = _args(f"{tmp}/{kind}", a.batch_size, a.device, a.bf16 and dtype == torch.float32)
        if kind == "trl":
            return DPOTrainer(
                model=model, ref_model=ref, args=args, train_dataset=data, processing_class=tok
            )
        return cls(
            model=model,
            ref_model=ref,
            args=args,
            train_dataset=data,
            processing_class=tok,
            prefkit_loss="dpo",
            batching=kind,
            pack_tokens=a.pack_tokens,
            truncate_to=None,
        )

    # identical token ids in every layout (TRL tokenizes; prefkit's layouts reuse its ids)
    probe = {k: make(k) for k in kinds}
    t0 = probe[kinds[0]].train_dataset
    for k in kinds[1:]:
        tk = probe[k].train_dataset
        for col in ("prompt_ids", "chosen_ids", "rejected_ids"):
            assert tk[col] == t0[col], (k, col)
    del probe
    trl_tokens = sum(
        2 * len(p) + len(c) + len(r)
        for p, c, r in zip(t0["prompt_ids"], t0["chosen_ids"], t0["rejected_ids"], strict=True)
    )
    shared_tokens = sum(
        len(p) + len(c) + len(r)
        for p, c, r in zip(t0["prompt_ids"], t0["chosen_ids"], t0["rejected_ids"], strict=True)
    )
    # same loss on the first batch from the same weights, in float64 without autocast (TRL's
    # fused LM head still rounds to float32: ~4e-5 on sequence log-prob sums of ~-700)
    first = ds.select(range(a.batch_size))
    losses: dict[str, float] = {}
    with torch.no_grad():
        for k in kinds:
            tr = make(k, torch.float64, first)
            examples = [tr.train_dataset[i] for i in range(a.batch_size)]
            inputs = tr._prepare_inputs(tr.data_collator(examples))
            losses[k] = float(tr._compute_loss(tr.model, inputs, False))
    ref_side = "trl" if "trl" in kinds else "standard"
    diffs = {k: abs(losses[k] - losses[ref_side]) for k in kinds if k != ref_side}
    ok = all(d <= 1e-5 for d in diffs.values())

    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    orders = []
    for rep in range(a.repeats):
        order = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]
        orders.append(order)
        for k in order:
            tr = make(k)  # fresh weights and optimizer: every repeat trains from the start
            gc.collect()
            start, cpu0 = time.perf_counter(), time.process_time()
            out = tr.train()
            sec, cpu = time.perf_counter() - start, time.process_time() - cpu0
            runs[k].append(
                {
                    "seconds": sec,
                    "cpu_seconds": cpu,
                    "load_avg": os.getloadavg()[0],
                    "steps": tr.state.global_step,
                    "train_loss": out.training_loss,
                }
            )
            print(
                f"repeat {rep + 1}/{a.repeats} {k}: {sec:.1f} s wall, {cpu:.1f} s CPU "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            del tr

    def stats(xs: list[float]) -> dict[str, float]:
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}

    def ratios(base: str, k: str, key: str) -> dict[str, float]:
        """base time / k time, within each repeat: how much faster k is than base."""
        return stats([b[key] / r[key] for b, r in zip(runs[base], runs[k], strict=True)])

    results: dict[str, Any] = {}
    for k in kinds:
        secs = [r["seconds"] for r in runs[k]]
        results[k] = {
            "seconds": stats(secs),
            "cpu_seconds": stats([r["cpu_seconds"] for r in runs[k]]),
            "trl_tokens_per_s": stats([trl_tokens / x for x in secs]),
            "steps": runs[k][0]["steps"],
            "train_loss": [r["train_loss"] for r in runs[k]],
            "speedup_vs_standard": ratios("standard", k, "seconds"),
            "cpu_speedup_vs_standard": ratios("standard", k, "cpu_seconds"),
        }
        if "trl" in runs:
            results[k]["speedup_vs_trl"] = ratios("trl", k, "seconds")
            results[k]["cpu_speedup_vs_trl"] = ratios("trl", k, "cpu_seconds")
    summary = {
        "device": a.device,
        "params": n_params,
        "pairs": len(rows),
        "batch_size": a.batch_size,
        "repeats": a.repeats,
        "orders": orders,
        "trl_layout_tokens": trl_tokens,
        "shared_layout_tokens": shared_tokens,
        "first_batch_loss": losses,
        "loss_abs_diff_vs_" + ref_side: diffs,
        "loss_match_1e-5": ok,
        "results": results,
        "runs": runs,
        "torch_threads": torch.get_num_threads(),
        "load_avg": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    print(
        f"{a.device}: {len(rows)} HH harmless pairs, model {n_params:,} params, "
        f"batch {a.batch_size}; TRL-layout tokens {trl_tokens:,}, shared {shared_tokens:,} "
        f"({trl_tokens / shared_tokens:.2f}x fewer); {a.repeats} repeats, order rotated"
    )
    print(
        f"first-batch loss |Δ| vs {ref_side}: "
        + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
    )

    def rng(d: dict[str, float], fmt: str = ".2f", unit: str = "x") -> str:
        return f"{d['median']:{fmt}}{unit} [{d['min']:{fmt}}–{d['max']:{fmt}}]"

    for k in ("shared", "packed"):
        if k in results:
            print(
                f"prefix-sharing effect (same trainer, same head), {k} vs unshared: wall "
                f"{rng(results[k]['speedup_vs_standard'])}, CPU "
                f"{rng(results[k]['cpu_speedup_vs_standard'])}"
            )
    head = "| batching | wall s | CPU s | TRL-layout tokens/s (wall) | vs unshared (wall / CPU) |"
    print(head + (" vs TRL DPOTrainer (wall / CPU) |" if "trl" in kinds else "") + " train loss |")
    print("|---" * (7 if "trl" in kinds else 6) + "|")
    for k in kinds:
        r = results[k]
        vs_trl = (
            f"{rng(r['speedup_vs_trl'])} / {rng(r['cpu_speedup_vs_trl'])} | "
            if "speedup_vs_trl" in r
            else ""
        )
        print(
            f"| {k} | {rng(r['seconds'], '.1f', '')} | {rng(r['cpu_seconds'], '.1f', '')} | "
            f"{r['trl_tokens_per_s']['median']:,.0f} | {rng(r['speedup_vs_standard'])} / "
            f"{rng(r['cpu_speedup_vs_standard'])} | {vs_trl}{r['train_loss'][0]:.4f} |"
        )
    print("(median [min-max] over the repeats; ratios taken within each repeat)")
    if a.json:
        a.json.write_text(json.dumps(summary, indent=2, default=str))
    if not ok:
        sys.exit("loss mismatch above 1e-5")


if __name__ == "__main__":
    main()
