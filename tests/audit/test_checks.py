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
from prefkit.audit.minhash import candidate_pairs, signatures, similarity
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


def test_lsh_pairs_verified_band_by_band_equal_verifying_every_candidate() -> None:
    """`keep_at` keeps only the verified pairs while the bands are walked (bounded memory):
    the same pairs, in the same order, as filtering every candidate afterwards."""
    base = [text(60) for _ in range(40)]
    docs: list[str] = []
    for b in base:  # each base text with edits of several sizes: pairs on both sides of 0.8
        words = b.split()
        for k in (1.0, 0.95, 0.85, 0.7, 0.5):
            m = int(len(words) * k)
            docs.append(" ".join(words[:m] + list(rng.choice(WORDS, len(words) - m))))
    sig = signatures(pa.array(docs))
    i, j = candidate_pairs(sig, 12)
    sim = similarity(sig, i, j)
    vi, vj = candidate_pairs(sig, 12, keep_at=0.8)
    assert 0 < vi.size < i.size  # some candidates fail, some pass
    np.testing.assert_array_equal(vi, i[sim >= 0.8])
    np.testing.assert_array_equal(vj, j[sim >= 0.8])


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


def same_pair(i: int, rows: list[dict[str, object]], swap: bool = False, **kw: object) -> dict:
    """A row on the pair of rows[i] (a and b swapped when `swap`)."""
    src = rows[i]
    a, b = ("response_b", "response_a") if swap else ("response_a", "response_b")
    return row(
        kw.pop("n"),  # type: ignore[arg-type]
        prompt=src["prompt"],
        response_a=src[a],
        response_b=src[b],
        **kw,
    )


def test_duplicates_are_copies_of_a_vote_and_contradictions_need_one_annotator() -> None:
    rows = [row(i) for i in range(40)]
    rows[5]["annotator"] = "ann1"
    rows[6]["annotator"] = "ann1"
    rows[6]["rationale"] = "a is more polite"
    rows[7]["meta"] = {"worker": "w7", "ts": "2024-01-01T10:00"}
    rows += [
        # an anonymous copy: every field equal, same order -> exact duplicate (warning)
        same_pair(0, rows, n=100),
        # the pair shown swapped, outcome swapped with it, nobody named: a second vote
        same_pair(1, rows, swap=True, n=101, outcome="b"),
        # the same pair, no annotator, opposite outcome: disagreement, not a contradiction
        same_pair(2, rows, n=102, outcome="b"),
        # identical responses
        row(103, response_b=rows[3]["response_a"], response_a=rows[3]["response_a"]),
        # near duplicate pair: a word added everywhere
        row(
            104,
            **{
                k: str(rows[4][k]).replace(".", " extra.")
                for k in ("prompt", "response_a", "response_b")
            },
        ),
        # the same known annotator both ways on the same pair, shown swapped: contradiction
        same_pair(5, rows, swap=True, n=105, outcome="a", annotator="ann1"),
        # a copy of a named vote with its rationale, even shown swapped: exact duplicate (error)
        same_pair(
            6, rows, swap=True, n=106, outcome="b", annotator="ann1", rationale="a is more polite"
        ),
        # same worker, other timestamp in meta: a second vote, not a copy
        same_pair(7, rows, n=107, meta={"worker": "w7", "ts": "2024-01-02T09:00"}),
        # same meta: a copy
        same_pair(7, rows, n=108, meta={"worker": "w7", "ts": "2024-01-01T10:00"}),
        # another rationale, no annotator: another expert's vote
        same_pair(8, rows, n=109, rationale="b misses the point"),
        # the same annotator, opposite answers on two aspects: not a contradiction
        same_pair(9, rows, n=110, annotator="ann2", aspect="harmlessness", outcome="b"),
        same_pair(9, rows, n=111, annotator="ann2", aspect="helpfulness", outcome="a"),
    ]
    res = find_duplicates(frame(rows), threshold=0.8)
    sev = {(r["row_id"], r["issue"]): r["severity"] for r in res.rows.to_pylist()}
    assert res.row_ids("exact_duplicate") == {"r0", "r100", "r6", "r106", "r7", "r108"}
    assert sev[("r100", "exact_duplicate")] == "warning"  # nothing tells two votes apart
    assert sev[("r106", "exact_duplicate")] == "error"  # annotator + rationale: a copy
    assert sev[("r108", "exact_duplicate")] == "error"  # meta (worker, timestamp): a copy
    assert res.row_ids("contradiction") == {"r5", "r105"}
    assert res.row_ids("identical_responses") == {"r103"}
    assert res.row_ids("near_duplicate_pair") == {"r4", "r104"}
    assert sev[("r104", "near_duplicate_pair")] == "info"
    for i in (1, 101, 2, 102, 107, 8, 109, 110, 111):
        assert f"r{i}" not in res.row_ids(), i
    assert res.summary["exact_duplicate_rows"] == 3  # copies beyond the first of each group
    assert res.summary["pairs_with_votes_by_unknown_annotators"] == 4  # pairs 1, 2, 7, 8
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
    for i in range(8):  # eight different responses cut at the same 500 characters
        cut = text(120)[:499] + "w"
        rows.append(row(300 + i, response_a=cut))
    # one response repeated ten times (ten annotators judged it) is not a cap
    rows += [row(400 + i, response_b="y " * 300) for i in range(10)]
    res = find_degenerate(frame(rows))
    assert res.summary["length_cap"] == 500
    assert {f"r{300 + i}" for i in range(8)} == res.row_ids("truncated")


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


def test_benchmark_verifies_near_duplicate_pairs_exactly() -> None:
    """bench_audit_real's exact check (no MinHash) that a flagged pair is a near duplicate:
    another distinct pair whose prompt and both responses, either order, are ≥ 0.8 Jaccard."""
    from benchmarks.bench_audit_real import verified_near_pairs

    rows = [row(i) for i in range(12)]

    def edit(r: dict[str, object], keys: tuple[str, ...], words: int) -> dict[str, str]:
        out = {}
        for k in keys:
            w = str(r[k]).split(" ")
            out[k] = " ".join(w[: len(w) - words] + [f"new{j}" for j in range(words)])
        return out

    both = ("prompt", "response_a", "response_b")
    rows += [
        row(100, **edit(rows[1], both, 1)),  # one word changed everywhere: near duplicate
        # the same, shown swapped
        row(
            101,
            prompt=edit(rows[2], both, 1)["prompt"],
            response_a=edit(rows[2], both, 1)["response_b"],
            response_b=edit(rows[2], both, 1)["response_a"],
        ),
        row(102, **edit(rows[3], both, 12)),  # a third of each response replaced: not one
        row(103, prompt=rows[4]["prompt"]),  # same prompt, new responses: not one
        dict(rows[5], id="r104"),  # the same pair again (a second vote): not a near duplicate
    ]
    f = frame(rows)
    got = verified_near_pairs(f, np.arange(len(rows)), 0.8)
    ids = [str(r["id"]) for r in rows]
    assert {i for i, g in zip(ids, got, strict=True) if g} == {"r1", "r100", "r2", "r101"}
