"""Each check on small tables whose faults are planted by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from prefkit.audit.degenerate import find_degenerate
from prefkit.audit.duplicates import find_duplicates
from prefkit.audit.findings import FINDINGS_SCHEMA
from prefkit.audit.frame import Frame
from prefkit.audit.leakage import find_leakage
from prefkit.audit.minhash import signatures, similarity
from prefkit.schema import from_rows

rng = np.random.default_rng(0)
WORDS = [f"word{i}" for i in range(2000)]


def text(n: int) -> str:
    return " ".join(rng.choice(WORDS, n)) + "."


def row(i: int, **kw: object) -> dict[str, object]:
    r: dict[str, object] = {
        "id": f"r{i}",
        "prompt": f"question {i}: " + text(15),
        "response_a": text(40),
        "response_b": text(40),
        "outcome": "a",
    }
    r.update(kw)
    return r


def frame(rows: list[dict[str, object]]) -> Frame:
    return Frame.of(from_rows(rows, "comparisons"))


def test_minhash_estimates_jaccard() -> None:
    base = text(200).split()
    docs = [" ".join(base)]
    keep = [1.0, 0.9, 0.7, 0.5]
    for k in keep[1:]:
        m = int(len(base) * k)
        docs.append(" ".join(base[:m] + list(rng.choice(WORDS, len(base) - m))))
    sig = signatures(pa.array(docs))

    def shingles(s: str) -> set[bytes]:
        b = s.encode()
        starts = [0] + [i + 1 for i, c in enumerate(b) if c == 32]
        return {b[i : i + 8] for i in starts if i + 8 <= len(b)}

    for d in range(1, len(docs)):
        a, b = shingles(docs[0]), shingles(docs[d])
        true = len(a & b) / len(a | b)
        est = float(similarity(sig, np.array([0]), np.array([d]))[0])
        assert abs(est - true) < 0.2, (true, est)


def test_duplicates_exact_swapped_identical_contradiction_and_near() -> None:
    rows = [row(i) for i in range(40)]
    # exact duplicate: the same pair with a and b swapped and the outcome swapped with them
    rows.append(
        row(
            100,
            prompt=rows[0]["prompt"],
            response_a=rows[0]["response_b"],
            response_b=rows[0]["response_a"],
            outcome="b",
        )
    )
    # contradiction: same pair, same (unknown) annotator, opposite outcome
    rows.append(
        row(
            101,
            prompt=rows[1]["prompt"],
            response_a=rows[1]["response_a"],
            response_b=rows[1]["response_b"],
            outcome="b",
        )
    )
    # identical responses
    rows.append(row(102, response_b=rows[2]["response_a"], response_a=rows[2]["response_a"]))
    # near duplicate pair: a few words changed everywhere
    near = {
        k: str(rows[3][k]).replace(".", " extra.") for k in ("prompt", "response_a", "response_b")
    }
    rows.append(row(103, **near))
    # the same pair judged by a second annotator is a vote, not a duplicate
    rows.append(
        row(
            104,
            prompt=rows[4]["prompt"],
            response_a=rows[4]["response_a"],
            response_b=rows[4]["response_b"],
            annotator="other",
        )
    )
    res = find_duplicates(frame(rows), threshold=0.8)
    assert res.row_ids("exact_duplicate") == {"r0", "r100"}
    assert res.row_ids("contradiction") == {"r1", "r101"}
    assert res.row_ids("identical_responses") == {"r102"}
    assert res.row_ids("near_duplicate_pair") == {"r3", "r103"}
    assert "r104" not in res.row_ids() and "r4" not in res.row_ids()
    assert res.summary["exact_duplicate_rows"] == 1
    assert res.rows.schema.equals(FINDINGS_SCHEMA)
    scores = np.asarray(res.rows.column("score"))
    assert ((scores >= 0) & (scores <= 1)).all()


def test_degenerate_rows() -> None:
    long_cut = ("This is a sentence. " * 15) + "and then it stops in the middle of"
    rows = [row(i) for i in range(30)]
    rows += [
        row(200, response_a="   \n"),
        row(201, response_b=long_cut),
        row(202, response_a="The caf\u00c3\u00a9 is open. It\u00e2\u20ac\u2122s nice."),
        row(203, prompt="### Instruction:\n\n### Response:"),
        row(204, prompt="Summarize the following: {input}"),
    ]
    res = find_degenerate(frame(rows))
    assert res.row_ids("empty_response") == {"r200"}
    assert res.row_ids("truncated") == {"r201"}
    assert res.row_ids("encoding_debris") == {"r202"}
    assert res.row_ids("template_only") == {"r203", "r204"}


def test_length_cap_truncation() -> None:
    rows = [row(i) for i in range(50)]
    for i in range(5):
        rows.append(row(300 + i, response_a="x" * 500))
    res = find_degenerate(frame(rows))
    assert res.summary["length_cap"] == 500
    assert {f"r{300 + i}" for i in range(5)} <= res.row_ids("truncated")


def test_leakage_between_splits_and_against_eval() -> None:
    rows = [row(i, meta={"split": "train"}) for i in range(30)]
    rows += [row(50 + i, meta={"split": "test"}) for i in range(10)]
    rows[0]["prompt"] = rows[30]["prompt"]  # exact leak
    rows[1]["prompt"] = str(rows[31]["prompt"]).replace(".", " now.")  # near leak
    f = frame(rows)
    res = find_leakage(f, threshold=0.7)
    assert res.row_ids("split_leak") == {"r0", "r1"}
    ev = from_rows(
        [{"prompt": rows[5]["prompt"], "response_a": "x", "response_b": "y", "outcome": "a"}],
        "comparisons",
    )
    res2 = find_leakage(f, against=ev)
    assert res2.row_ids("eval_leak") == {"r5"}
    assert res2.summary["eval_leak_exact_rows"] == 1


def test_identity_only_data_runs() -> None:
    from prefkit.audit.run import run_audit

    rows = [
        {
            "model_a": f"m{i % 5}",
            "model_b": f"m{(i + 1) % 5}",
            "outcome": "a" if i % 3 else "b",
            "annotator": f"u{i % 4}",
        }
        for i in range(200)
    ]
    res = run_audit(from_rows(rows, "comparisons"))
    assert res.summary["input"]["has_text"] is False
    assert res.summary["degenerate"]["rows_flagged"] == 0


def test_unknown_check_is_refused() -> None:
    from prefkit.audit.run import run_audit

    with pytest.raises(ValueError, match="unknown check"):
        run_audit(from_rows([row(0)], "comparisons"), checks=["nope"])


def test_empty_and_all_tie_tables(tmp_path: object) -> None:
    from pathlib import Path

    from prefkit.audit.run import run_audit

    out = Path(str(tmp_path))
    res = run_audit(from_rows([], "comparisons"), out / "empty")
    assert res.summary["input"]["rows"] == 0 and len(res.rows) == 0
    assert (out / "empty" / "report.html").exists()
    ties = [row(i, outcome="tie", annotator=f"u{i % 2}") for i in range(40)]
    res = run_audit(from_rows(ties, "comparisons"))
    assert res.summary["bias"]["outcomes"]["tie"] == 40
    assert not res.checks["noise"].row_ids("noisy_label")  # a tie is never a flipped label
    assert res.summary["degenerate"]["length_cap"] is None
