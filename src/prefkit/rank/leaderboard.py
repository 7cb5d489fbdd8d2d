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
    n` (wins/losses/ties weighted, ties including both_bad), best first. Without intervals
    (`iv.method == "none"`) `ci_low`, `ci_high`, `rank_low` and `rank_high` are None."""
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
    has_ci = iv.method != "none"
    score = factor * f.theta + offset
    low, high = factor * iv.low + offset, factor * iv.high + offset
    rows: list[dict[str, Any]] = []
    for t, item in enumerate(f.items):
        c = index[item]
        rows.append(
            {
                "item": item,
                "score": float(score[t]),
                "ci_low": float(low[t]) if has_ci else None,
                "ci_high": float(high[t]) if has_ci else None,
                "rank": int(iv.rank[t]),
                "rank_low": int(iv.rank_low[t]) if has_ci else None,
                "rank_high": int(iv.rank_high[t]) if has_ci else None,
                "wins": float(wins[c]),
                "losses": float(losses[c]),
                "ties": float(ties[c]),
                "n": int(n[c]),
            }
        )
    for r in rows:
        for key in ("score", "ci_low", "ci_high"):
            if r[key] is not None and not math.isfinite(r[key]):
                raise RankInputError(f"non-finite {key} for {r['item']!r}: please report this")
    rows.sort(key=lambda r: (-r["score"], r["item"]))
    return Leaderboard(f.model, scale, rows, offset)


MATRIX_MAX_ITEMS = 1000  # win_probability.csv (items x items) is written up to this size
PLOT_MAX_ITEMS = 100  # index.html plots the top items only beyond this
HTML_TABLE_MAX_ROWS = 1000  # and lists at most this many rows (leaderboard.csv has all)


def write_outputs(
    out: Path,
    board: Leaderboard,
    f: Fit,
    summary: dict[str, Any],
    raw: Leaderboard | None = None,
) -> list[Path]:
    """leaderboard.csv (+ leaderboard_raw.csv with style control), win_probability.csv
    (P[row beats column]; tie_probability.csv for the tie models; up to `MATRIX_MAX_ITEMS`
    items, beyond which the items x items matrix would run to gigabytes: a note in
    `summary["notes"]` says so) and index.html."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [_csv(out / "leaderboard.csv", board.rows)]
    if raw is not None:
        paths.append(_csv(out / "leaderboard_raw.csv", raw.rows))
    k = len(f.items)
    if k <= MATRIX_MAX_ITEMS:
        pw, pt = win_probabilities(f)
        order = [f.items.index(r["item"]) for r in board.rows]
        names = [f.items[t] for t in order]
        paths.append(_matrix(out / "win_probability.csv", names, pw, order))
        if f.model != "bt":
            paths.append(_matrix(out / "tie_probability.csv", names, pt, order))
    else:
        summary.setdefault("notes", []).append(
            f"win_probability.csv not written: {k} items x {k} would be {k * k:,} cells "
            f"(limit {MATRIX_MAX_ITEMS} items); P(i beats j) follows from the logit scores in "
            "leaderboard.csv (--scale logit: sigmoid(score_i - score_j))"
        )
    paths.append(_html(out / "index.html", board, summary, raw))
    return paths


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["item"])
        w.writeheader()
        w.writerows(rows)
    return path


def _matrix(path: Path, names: Sequence[str], m: F64, order: list[int]) -> Path:
    """`item` column, then one column per item (rows and columns in leaderboard order),
    6 decimals, empty on the diagonal; written by Arrow's CSV writer (a 1,000 x 1,000
    matrix takes a fraction of a second)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    sub = np.round(m[np.ix_(order, order)], 6)
    cols = [pa.array(list(names), pa.string())]
    cols += [pa.array(sub[:, q], mask=np.isnan(sub[:, q])) for q in range(len(order))]
    pcsv.write_csv(pa.table(cols, names=["item", *names]), path)
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
    shown = rows[:PLOT_MAX_ITEMS]
    notes = list(summary.get("notes", []))
    if len(rows) > PLOT_MAX_ITEMS:
        notes.append(f"the plot shows the top {PLOT_MAX_ITEMS} of {len(rows)} items")
    if len(rows) > HTML_TABLE_MAX_ROWS:
        notes.append(
            f"the table lists the top {HTML_TABLE_MAX_ROWS} of {len(rows)} items; "
            "leaderboard.csv has all of them"
        )

    def low(r: dict[str, Any]) -> float:
        return float(r["score"] if r["ci_low"] is None else r["ci_low"])

    def high(r: dict[str, Any]) -> float:
        return float(r["score"] if r["ci_high"] is None else r["ci_high"])

    lo = min((low(r) for r in shown), default=0.0)
    hi = max((high(r) for r in shown), default=1.0)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    label_w, plot_w, step = 220, 520, 18
    width, height = label_w + plot_w + 20, 30 + step * len(shown)

    def sx(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    bars = [
        {
            "item": r["item"],
            "y": 12 + step * q,
            "x": sx(r["score"]),
            "x0": sx(low(r)),
            "x1": sx(high(r)),
        }
        for q, r in enumerate(shown)
    ]
    ticks = [{"x": sx(v), "label": f"{v:.0f}" if board.scale == "elo" else f"{v:.2f}"}
             for v in np.linspace(lo, hi, 5).tolist()]  # fmt: skip

    def fmt(v: Any) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.1f}" if board.scale == "elo" and abs(v) > 50 else f"{v:.3f}"
        return str(v)

    cut = HTML_TABLE_MAX_ROWS
    tables = [("Scores", rows[:cut])]
    if raw is not None:
        tables = [("Style-controlled", rows[:cut]), ("Raw (no style control)", raw.rows[:cut])]
    text = env.from_string(_PAGE).render(
        model=board.model,
        ties=summary.get("ties"),
        ci=summary.get("ci"),
        level=summary.get("level"),
        scale=board.scale,
        battles=summary.get("battles"),
        items=len(rows),
        notes=notes,
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
