"""What is wrong with a feedback dataset: one module per question, one result type.

`run_audit(table, out_dir=None, checks=CHECKS, against=None, progress=None) -> AuditResult`
runs the checks (duplicates, leakage, degenerate, bias, agreement, annotators, noise); each
returns a `Findings`. See docs/audit.md. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHECKS", "AuditResult", "Findings", "run_audit"]


def __getattr__(name: str) -> Any:
    if name in ("run_audit", "AuditResult", "CHECKS"):
        from prefkit.audit import run

        return getattr(run, name)
    if name == "Findings":
        from prefkit.audit.findings import Findings

        return Findings
    raise AttributeError(name)
