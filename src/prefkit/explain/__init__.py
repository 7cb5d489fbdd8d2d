"""The explain stage: what a preference data set rewards, for whom, and how sure we are.

`prefkit explain IN --out DIR` (see docs/explain.md): interpretable feature effects (sparse
Bradley–Terry/Davidson, length-controlled, bootstrap intervals, stability selection), learned
directions over MiniLM embedding differences, principles tested by an LLM judge (ICAI), and
how annotators differ (hierarchical weights, PCA basis, clusters).
"""

from __future__ import annotations
