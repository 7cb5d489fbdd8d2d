"""Leaderboards: fitted strengths + intervals -> records on the logit or Elo scale, anchoring,
and the files `prefkit rank --out` writes (leaderboard.csv, win_probability.csv, index.html).

Scales: `logit` = natural-log strengths centred at mean 0; `elo` = 1000 + 400/ln(10) per
logit. `anchor=(item, score)` shifts every score and interval by the same constant so that
`item` gets `score`: the intervals keep their width (anchoring is a change of origin, not a
new reference item whose own uncertainty would be added to everyone else's).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from prefkit.rank.bt import Fit, win_probabilities
from prefkit.rank.ci import Intervals
from prefkit.rank.data import Counts, RankInputError, record

F64 = NDArray[np.float64]
Scale = Literal["elo", "logit"]
ELO_PER_LOGIT = 400.0 / math.log(10.0)
ELO_BASE = 1000.0


@dataclass(frozen=True)
class Leaderboard:
    model: str
    scale: Scale
    rows: list[dict[str, Any]]  # sorted by score, best first
    offset: float  # score = scale_factor * theta + offset


def parse_anchor(spec: str | None) -> tuple[str, float] | None:
    """`ITEM=SCORE` -> (item, score); the item name may itself contain '='."""
    if spec is None:
        return None
    if "=" not in spec:
        raise RankInputError(f"--anchor expects ITEM=SCORE, got {spec!r}")
    item, score = spec.rsplit("=", 1)
    try:
        value = float(score)
    except ValueError:
        raise RankInputError(f"--anchor {spec!r}: {score!r} is not a number") from None
    if not math.isfinite(value):
        raise RankInputError(f"--anchor {spec!r}: the score must be finite")
    return item.strip(), value


def leaderboard(
    f: Fit,
    iv: Intervals,
    counts: Counts,
    scale: Scale = "elo",
    anchor: tuple[str, float] | None = None,
) -> Leaderboard:
    """Records `item, score, ci_low, ci_high, rank, rank_low, rank_high, wins, losses, ties,
    n` (wins/losses/ties weighted, ties including both_bad), best first."""
    if scale not in ("elo", "logit"):
        raise RankInputError(f"unknown scale {scale!r}: elo or logit")
    factor = ELO_PER_LOGIT if scale == "elo" else 1.0
    offset = ELO_BASE if scale == "elo" else 0.0
    if anchor is not None:
        name, value = anchor
        if name not in f.items:
            raise RankInputError(f"--anchor: unknown item {name!r} (not in the leaderboard)")
        offset = value - factor * float(f.theta[f.items.index(name)])
    index = {s: t for t, s in enumerate(counts.items)}
    wins, losses, ties, n = record(counts)
    rows: list[dict[str, Any]] = []
    for t, item in enumerate(f.items):
        c = index[item]
        rows.append(
            {
                "item": item,
                "score": factor * float(f.theta[t]) + offset,
                "ci_low": factor * float(iv.low[t]) + offset,
                "ci_high": factor * float(iv.high[t]) + offset,
                "rank": int(iv.rank[t]),
                "rank_low": int(iv.rank_low[t]),
                "rank_high": int(iv.rank_high[t]),
                "wins": float(wins[c]),
                "losses": float(losses[c]),
                "ties": float(ties[c]),
                "n": int(n[c]),
            }
        )
    for r in rows:
        for key in ("score", "ci_low", "ci_high"):
            if not math.isfinite(r[key]):
                raise RankInputError(f"non-finite {key} for {r['item']!r}: please report this")
    rows.sort(key=lambda r: (-r["score"], r["item"]))
    return Leaderboard(f.model, scale, rows, offset)


def write_outputs(
    out: Path,
    board: Leaderboard,
    f: Fit,
    summary: dict[str, Any],
    raw: Leaderboard | None = None,
) -> list[Path]:
    """leaderboard.csv (+ leaderboard_raw.csv with style control), win_probability.csv
    (P[row beats column]; tie_probability.csv for the tie models) and index.html."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [_csv(out / "leaderboard.csv", board.rows)]
    if raw is not None:
        paths.append(_csv(out / "leaderboard_raw.csv", raw.rows))
    pw, pt = win_probabilities(f)
    order = [f.items.index(r["item"]) for r in board.rows]
    paths.append(_matrix(out / "win_probability.csv", [f.items[t] for t in order], pw, order))
    if f.model != "bt":
        paths.append(_matrix(out / "tie_probability.csv", [f.items[t] for t in order], pt, order))
    paths.append(_html(out / "index.html", board, summary, raw))
    return paths


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["item"])
        w.writeheader()
        w.writerows(rows)
    return path


def _matrix(path: Path, names: Sequence[str], m: F64, order: list[int]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["item", *names])
        for a, name in zip(order, names, strict=True):
            w.writerow([name] + ["" if a == b else f"{m[a, b]:.6f}" for b in order])
    return path


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prefkit leaderboard</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:14px}td,th{padding:3px 8px;border-bottom:1px solid #ddd}
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#a60}
</style></head><body>
<h1>Leaderboard</h1>
<p>model <b>{{ model }}</b>, ties <b>{{ ties }}</b>, intervals <b>{{ ci }}</b>
(level {{ level }}), scale <b>{{ scale }}</b>; {{ battles }} battles, {{ items }} items.</p>
{% for n in notes %}<p class="note">{{ n }}</p>{% endfor %}
<svg width="{{ width }}" height="{{ height }}" role="img" aria-label="scores with intervals">
{% for r in bars %}
<text x="{{ label_w - 6 }}" y="{{ r.y + 4 }}" text-anchor="end" font-size="12">{{ r.item }}</text>
<line x1="{{ r.x0 }}" x2="{{ r.x1 }}" y1="{{ r.y }}" y2="{{ r.y }}" stroke="#888" stroke-width="2"/>
<circle cx="{{ r.x }}" cy="{{ r.y }}" r="4" fill="#1f77b4"/>
{% endfor %}
{% for t in ticks %}<text x="{{ t.x }}" y="{{ height - 4 }}" font-size="11"
text-anchor="middle">{{ t.label }}</text>{% endfor %}
</svg>
{% for title, rows in tables %}
<h2>{{ title }}</h2>
<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in rows %}<tr>{% for c in columns %}<td class="{{ 'n' if c != 'item' else '' }}">
{{ fmt(r[c]) }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
</body></html>
"""


def _html(path: Path, board: Leaderboard, summary: dict[str, Any], raw: Leaderboard | None) -> Path:
    from jinja2 import Environment

    env = Environment(autoescape=True)
    rows = board.rows
    lo = min((r["ci_low"] for r in rows), default=0.0)
    hi = max((r["ci_high"] for r in rows), default=1.0)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    label_w, plot_w, step = 220, 520, 18
    width, height = label_w + plot_w + 20, 30 + step * len(rows)

    def sx(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    bars = [
        {
            "item": r["item"],
            "y": 12 + step * q,
            "x": sx(r["score"]),
            "x0": sx(r["ci_low"]),
            "x1": sx(r["ci_high"]),
        }
        for q, r in enumerate(rows)
    ]
    ticks = [{"x": sx(v), "label": f"{v:.0f}" if board.scale == "elo" else f"{v:.2f}"}
             for v in np.linspace(lo, hi, 5).tolist()]  # fmt: skip

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if board.scale == "elo" and abs(v) > 50 else f"{v:.3f}"
        return str(v)

    tables = [("Scores", rows)]
    if raw is not None:
        tables = [("Style-controlled", rows), ("Raw (no style control)", raw.rows)]
    text = env.from_string(_PAGE).render(
        model=board.model,
        ties=summary.get("ties"),
        ci=summary.get("ci"),
        level=summary.get("level"),
        scale=board.scale,
        battles=summary.get("battles"),
        items=len(rows),
        notes=summary.get("notes", []),
        bars=bars,
        ticks=ticks,
        width=width,
        height=height,
        label_w=label_w,
        tables=tables,
        columns=list(rows[0]) if rows else [],
        fmt=fmt,
    )
    path.write_text(text, encoding="utf-8")
    return path
