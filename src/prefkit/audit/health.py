"""Is this dataset healthy? One verdict from the findings, with base rates to compare to.

Severity rule (every finding has one; `findings.SEVERITY_RULE`):

- `error` — certainly wrong data: deterministic evidence (a copied row, an empty response,
  both responses identical, the same annotator answering both ways, a prompt shared with the
  evaluation data);
- `warning` — likely wrong: statistical or heuristic evidence calibrated to be right most of
  the time (a probably flipped label, a spammer, a truncated response, mojibake, a near
  leak);
- `info` — worth a look, not wrong in itself (near-duplicate prompts and pairs, disputed
  items, several votes on a pair by unknown annotators).

The default report counts and `--fix` acts on errors and warnings only.

Verdict: each indicator is `ok`, `attention` or `bad` by the thresholds in `INDICATORS`;
the dataset is `unhealthy` if any indicator is bad, `needs attention` if any needs
attention, else `healthy`.
"""

from __future__ import annotations

from typing import Any

# Raw agreement of two human votes on the same pair in published preference data.
PUBLISHED_AGREEMENT: tuple[tuple[str, float], ...] = (
    ("HH-RLHF, crowdworkers vs researchers (Bai et al., 2022)", 0.63),
    ("MT-Bench human experts, ties counted (Zheng et al., 2023)", 0.63),
    ("AlpacaFarm human annotators (Dubois et al., 2023)", 0.66),
    ("InstructGPT labelers (Ouyang et al., 2022)", 0.73),
    ("InstructGPT held-out labelers (Ouyang et al., 2022)", 0.77),
)
AGREEMENT_RANGE = (
    min(v for _, v in PUBLISHED_AGREEMENT),
    max(v for _, v in PUBLISHED_AGREEMENT),
)

# indicator: (ok when value ≤ / ≥ this, bad beyond this, direction)
INDICATORS: dict[str, tuple[float, float, str]] = {
    "error_rows": (0.01, 0.10, "max"),
    "warning_rows": (0.05, 0.25, "max"),
    "spammer_votes": (0.0, 0.10, "max"),
    "leaked_rows": (0.0, 0.05, "max"),
    "agreement": (0.60, 0.50, "min"),
}


def _status(name: str, value: float, ci: list[float] | None = None) -> str:
    """`ok` / `attention` / `bad`; with an interval, only what the interval rules out."""
    ok, bad, direction = INDICATORS[name]
    if ci is not None and direction == "min":
        value = max(ci)  # below the threshold only when the whole interval is
    if direction == "max":
        return "ok" if value <= ok else ("bad" if value > bad else "attention")
    return "ok" if value >= ok else ("bad" if value < bad else "attention")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x < 0.1 else f"{100 * x:.0f}%"


def health(summary: dict[str, Any]) -> dict[str, Any]:
    """The verdict block of `summary.json` (`health`), from the other summary blocks."""
    n = int((summary.get("input") or {}).get("rows") or 0)
    fl = summary.get("flagged") or {}
    sev = fl.get("by_severity") or {}
    by_issue = fl.get("by_issue_default") or {}
    ind: list[dict[str, Any]] = []
    if n == 0:
        return {"verdict": "empty", "headline": "No rows to audit.", "indicators": []}

    def add(name: str, label: str, value: float, typical: str, note: str, ci: Any = None) -> None:
        ind.append(
            {
                "name": name,
                "label": label,
                "value": value,
                "ci": ci,
                "status": _status(name, value, ci),
                "typical": typical,
                "note": note,
            }
        )

    share: dict[str, float] = {}
    top: dict[str, str] = {}
    for level, label, typical in (
        ("error", "rows with errors (certainly wrong data)", "≤ 1% in a clean set"),
        ("warning", "rows with warnings only (likely wrong)", "≤ 5% in a clean set"),
    ):
        share[level] = sev.get(level, 0) / n
        counts = sorted(by_issue.get(level, {}).items(), key=lambda kv: -kv[1])
        top[level] = ", ".join(f"{k} {v}" for k, v in counts)
        add(f"{level}_rows", label, share[level], typical, top[level] or "none")
    err, warn, top_err, top_warn = share["error"], share["warning"], top["error"], top["warning"]
    agr = summary.get("agreement") or {}
    ra = agr.get("raw_agreement")
    lo, hi = AGREEMENT_RANGE
    if isinstance(ra, float):
        where = (
            "typical of human preference data"
            if lo - 0.03 <= ra <= hi + 0.05
            else ("below" if ra < lo else "above") + " the published range"
        )
        ci = agr.get("raw_agreement_ci")
        note = f"{ra:.2f} is {where}"
        if ci:
            note += f" (95% CI {ci[0]:.2f}–{ci[1]:.2f} over {agr.get('items_with_votes')} pairs)"
        if ra > 0.9:
            note += "; very high agreement: are the votes independent?"
        add(
            "agreement",
            "agreement of two votes on the same pair",
            ra,
            f"{lo:.2f}–{hi:.2f} in published sets",
            note,
            ci,
        )
    ann = summary.get("annotators") or {}
    spam_rows = int(ann.get("rows_flagged") or 0)
    if ann.get("annotators"):
        add(
            "spammer_votes",
            "votes by spammers",
            spam_rows / n,
            "0",
            ", ".join(ann.get("spammers") or []) or "none",
        )
    leak = summary.get("leakage") or {}
    leaked = int(leak.get("split_leak_rows") or 0) + int(leak.get("eval_leak_rows") or 0)
    if leak.get("splits") or "eval_leak_rows" in leak:
        add("leaked_rows", "rows whose prompt leaks across splits", leaked / n, "0", "")
    statuses = {i["status"] for i in ind}
    verdict = (
        "unhealthy"
        if "bad" in statuses
        else "needs attention"
        if "attention" in statuses
        else "healthy"
    )
    parts = [
        f"{_pct(err)} of rows have errors" + (f" ({top_err})" if top_err else ""),
        f"{_pct(warn)} have warnings" + (f" ({top_warn})" if top_warn else ""),
    ]
    if isinstance(ra, float):
        parts.append(
            f"two votes on a pair agree {ra:.2f} of the time ({lo:.2f}–{hi:.2f} is typical of "
            "human preference data)"
        )
    info = sev.get("info", 0)
    if info:
        parts.append(f"{info} more rows are worth a look (info)")
    return {
        "verdict": verdict,
        "headline": f"{verdict.capitalize()}: " + "; ".join(parts) + ".",
        "indicators": ind,
        "published_agreement": [{"set": s, "agreement": v} for s, v in PUBLISHED_AGREEMENT],
        "rule": (
            "unhealthy if any indicator is beyond its bad threshold, needs attention if any "
            "is outside its typical range, else healthy; thresholds: errors ≤ 1% ok / > 10% "
            "bad, warnings ≤ 5% / > 25%, spammer votes 0 / > 10%, leaked rows 0 / > 5%, "
            "agreement ≥ 0.60 / < 0.50 (judged by the upper end of its 95% interval)"
        ),
    }
