"""`eval_matrix.html`: the matrix of `prefkit rm eval-matrix` as one self-contained page —
a heatmap per model (accuracy, interval and the length baseline in every cell), the same for
the difference to the length baseline, and the summary table. Plotly's JS is inlined once;
Jinja2 autoescapes every set name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>prefkit reward eval-matrix</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2em 0} h2{font-size:1.25rem;margin-top:2em;border-bottom:1px solid #d6d9df;padding-bottom:.2em}
table{border-collapse:collapse;background:#fff;font-size:.88rem;margin:6px 0}
td,th{border:1px solid #e1e4ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
.plot{background:#fff;border:1px solid #e1e4ea;border-radius:8px;margin:8px 0}
.muted{color:#5a6272} .bad{color:#b42318;font-weight:600}
</style></head><body><main>
<h1>Reward models off their training set</h1>
<p class="muted">Rows: training set; columns: evaluation set. Off the diagonal the model is
trained on all of the row's set; {% if folds %}on the diagonal {{ folds }}-fold prompt-grouped
cross-validation inside the set{% else %}no diagonal (--folds 0){% endif %}; row <b>others</b>: trained on every training set except the
column's. Accuracy on a/b rows (Δ = 0 counts ½) with Wilson 95% intervals; "len" is the
length baseline (longer wins) on the same rows. Disentangled models: nuisance groups
{{ groups }}. {{ boot }} bootstrap replicates, seed {{ seed }}.</p>
<h2>Summary</h2>
<table><tr><th>model</th><th>cells</th><th>mean accuracy</th><th>mean length baseline</th>
<th>model − length [95% CI]</th><th>below chance</th><th>significantly below</th></tr>
{% for r in summary %}<tr><td>{{ r.model }} ({{ r.kind }})</td><td class="n">{{ r.cells }}</td>
<td class="n">{{ r.acc }}</td><td class="n">{{ r.len }}</td><td class="n">{{ r.diff }}</td>
<td class="n">{{ r.below }}</td><td class="n">{{ r.sig }}</td></tr>{% endfor %}
</table>
{% if comparisons %}<h2>Disentangled vs plain</h2>
<table><tr><th>pair</th><th>cells</th><th>disentangled − plain [95% CI]</th>
<th>plain below chance</th><th>of those, disentangled also below</th></tr>
{% for c in comparisons %}<tr><td>{{ c.pair }}</td><td class="n">{{ c.cells }}</td>
<td class="n">{{ c.diff }}</td><td class="n">{{ c.plain_below }}</td>
<td class="n {{ 'bad' if c.also else '' }}">{{ c.also_text }}</td></tr>{% endfor %}
</table>{% endif %}
<h2>Sets</h2>
<table><tr><th>set</th><th>label</th><th>pairs</th><th>a/b pairs</th><th>files</th></tr>
{% for s in sets %}<tr><td>{{ s.name }}</td><td>{{ s.label }}</td><td class="n">{{ s.rows }}</td>
<td class="n">{{ s.decisive }}</td><td>{{ s.files }}</td></tr>{% endfor %}</table>
{% for f in figures %}<h2>{{ f.title }}</h2><div class="plot">{{ f.html }}</div>{% endfor %}
</main></body></html>
"""


def _fmt_diff(d: dict[str, Any]) -> str:
    if d.get("mean") is None:
        return "—"
    return f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"


def _heatmap(res: dict[str, Any], labels: dict[str, str], model: str, diff: bool) -> Any:
    import plotly.graph_objects as go

    rows, cols = res["rows"], res["eval"]
    cell = {(c["train"], c["eval"]): c for c in res["cells"]}
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for r in rows:
        zr: list[float | None] = []
        tr: list[str] = []
        for e in cols:
            c = cell.get((r, e))
            if c is None:
                zr.append(None)
                tr.append("")
                continue
            m = c["models"][model]
            if diff:
                d = m["minus_length"]
                zr.append(d["mean"])
                tr.append(f"{d['mean']:+.3f}<br>[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
            else:
                zr.append(m["accuracy"])
                tr.append(
                    f"{m['accuracy']:.3f}<br>[{m['ci_low']:.2f}, {m['ci_high']:.2f}]"
                    f"<br>len {c['length']['accuracy']:.3f}"
                )
        z.append(zr)
        text.append(tr)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[labels[e] for e in cols],
            y=[labels.get(r, r) for r in rows],
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            zmid=0.0 if diff else 0.5,
            zmin=-0.5 if diff else 0.0,
            zmax=0.5 if diff else 1.0,
            hovertemplate="train %{y}<br>eval %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        height=140 + 70 * len(rows),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": "evaluated on", "side": "top"},
        yaxis={"title": "trained on", "autorange": "reversed"},
    )
    return fig


def write_html(res: dict[str, Any], labels: dict[str, str], path: Path) -> Path:
    """Write the page; `labels` maps set names to the short names shown in the plots."""
    figures = []
    first = True
    for m in res["models"]:
        for diff in (False, True):
            fig = _heatmap(res, labels, m, diff)
            html = fig.to_html(full_html=False, include_plotlyjs=first)
            first = False
            title = f"{m}: " + ("accuracy − length baseline" if diff else "accuracy")
            figures.append({"title": title, "html": Markup(html)})
    summary = []
    for m, by_kind in res["summary"].items():
        for kind, s in by_kind.items():
            if not s["cells"]:
                continue
            summary.append(
                {
                    "model": m,
                    "kind": kind.replace("_", " "),
                    "cells": s["cells"],
                    "acc": f"{s['mean_accuracy']:.3f}",
                    "len": f"{s['mean_length_baseline']:.3f}",
                    "diff": _fmt_diff(s["minus_length"]),
                    "below": len(s["below_chance"]),
                    "sig": len(s["significantly_below_chance"]),
                }
            )
    comparisons = [
        {
            "pair": f"{c['disentangled']} vs {c['plain']} ({c['kind'].replace('_', ' ')})",
            "cells": c["minus_plain"]["cells"],
            "diff": _fmt_diff(c["minus_plain"]),
            "plain_below": c["plain_below_chance"],
            "also": bool(c["disentangled_also_below_chance"]),
            "also_text": ", ".join(
                f"{labels.get(x['train'], x['train'])} → {labels[x['eval']]} "
                f"({x['disentangled']:.3f})"
                for x in c["disentangled_also_below_chance"]
            )
            or "none",
        }
        for c in res["comparisons"]
    ]
    sets = [
        {
            "name": n,
            "label": labels[n],
            "rows": s["rows"],
            "decisive": s["decisive"] if s["decisive"] is not None else "—",
            "files": ", ".join(s["files"]),
        }
        for n, s in res["sets"].items()
    ]
    env = Environment(autoescape=True)
    text = env.from_string(_PAGE).render(
        folds=res["folds"],
        groups=", ".join(res["disentangle"]) or "none",
        boot=res["bootstrap"],
        seed=res["seed"],
        summary=summary,
        comparisons=comparisons,
        sets=sets,
        figures=figures,
    )
    path.write_text(text, encoding="utf-8")
    return path


def short_labels(names: list[str]) -> dict[str, str]:
    """Shortest unique trailing path parts of each set name, without data extensions
    (`…/LLMBar/Natural/dataset.json` → `Natural/dataset`)."""

    def strip(part: str) -> str:
        for ext in (".gz", ".parquet", ".jsonl", ".json", ".csv", ".tsv"):
            if part.endswith(ext):
                part = part[: -len(ext)]
        return part

    parts = {n: [strip(p) for p in Path(n).parts] or [n] for n in names}
    out: dict[str, str] = {}
    for k in range(1, max(len(p) for p in parts.values()) + 1 if parts else 1):
        labels = {n: "/".join(p[-k:]) for n, p in parts.items()}
        if len(set(labels.values())) == len(labels):
            out = labels
            break
    return out or {n: n for n in names}
