"""Pieces every self-contained HTML report shares (audit, judge, explain, rank groups): the
inlined plotly.js, JSON that is safe inside a <script>, and the footer that draws the plots."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

# The reports' shared look (first used by the audit report).
STYLE = """<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:.2em 0} h2{font-size:1.25rem;margin-top:2em;border-bottom:1px solid #d6d9df;padding-bottom:.2em}
h3{font-size:1.02rem;margin:1.2em 0 .4em}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:1.35rem} .card span{color:#5a6272;font-size:.85rem}
table{border-collapse:collapse;background:#fff;font-size:.88rem;margin:6px 0}
td,th{border:1px solid #e1e4ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4}
.sev-error{color:#b42318;font-weight:600}.sev-warning{color:#b54708;font-weight:600}.sev-info{color:#475467}
pre{white-space:pre-wrap;word-break:break-word;margin:0;max-height:14em;overflow:auto;font-size:.82rem}
.plot{background:#fff;border:1px solid #e1e4ea;border-radius:8px;margin:8px 0;min-height:320px}
.ex{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:8px 12px;margin:8px 0}
.muted{color:#5a6272}
nav a{margin-right:12px}
.verdict{border-radius:10px;padding:12px 16px;margin:12px 0;border:1px solid #d6d9df;background:#fff}
.verdict-word{font-size:1.5rem;font-weight:700;text-transform:capitalize}
.v-healthy{border-left:8px solid #12b76a}.v-healthy .verdict-word{color:#067647}
.v-attention{border-left:8px solid #f79009}.v-attention .verdict-word{color:#b54708}
.v-unhealthy{border-left:8px solid #d92d20}.v-unhealthy .verdict-word{color:#b42318}
.v-empty{border-left:8px solid #98a2b3}
.headline{margin:.3em 0 .6em}
.st-ok{color:#067647;font-weight:600}.st-attention{color:#b54708;font-weight:600}.st-bad{color:#b42318;font-weight:600}
.small{font-size:.82rem}.note{background:#eef4ff;border:1px solid #c7d7fe;border-radius:6px;padding:6px 10px}
</style>
"""

# Ends every report template: closes <main> and draws each figure of `figs_json` into the
# element with its id.
PLOTS_FOOTER = """</main>
<script>
var FIGS = {{ figs_json }};
for (var i = 0; i < FIGS.length; i++) {
  var el = document.getElementById(FIGS[i].id);
  if (el) { Plotly.newPlot(el, FIGS[i].data, FIGS[i].layout, {displaylogo: false, responsive: true}); }
}
</script>
</body></html>
"""


def plotly_js() -> Markup:
    """plotly.js to inline in a <script> element (no `</script` inside it)."""
    from plotly.offline import get_plotlyjs

    return Markup(str(get_plotlyjs()).replace("</script", "<\\/script"))


def safe_json(obj: Any) -> Markup:
    """JSON that can stand inside a <script> element: no `<`, `>`, `&` or line separators."""
    s = json.dumps(obj, ensure_ascii=False, allow_nan=False, default=float)
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    s = s.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(s)
