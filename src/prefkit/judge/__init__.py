"""LLM judges: an OpenAI-compatible client (async, cached, retried, budgeted), judge prompt
templates, `judge run` (pairwise / rubric / reference labelling in both orders), judge audits
against humans (position, verbosity and self-preference biases, agreement) and hybrid
routing of the pairs most worth a human label. See docs/judge.md.

Heavy imports stay inside the submodules: `import prefkit.judge` is cheap.
"""

from __future__ import annotations

__all__ = ["audit", "cache", "client", "parse", "route", "run", "templates"]
