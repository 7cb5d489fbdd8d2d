"""`prefkit pairs --condition group|annotator [--personas FILE]`: pairs built within each group,
the group's description as the system message (Configurable Preference Tuning data)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefkit.build.pairs import build_pairs
from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import simulate
from tests.rank._data import invoke

PERSONAS = {
    "quality": "You value correct, complete answers.",
    "plain": "You prefer plain prose: no lists, headers, bold text or filler.",
    "formatted": "You prefer well-formatted answers with lists, headers and bold key points.",
}


def _grouped(tmp_path: Path) -> tuple[Path, pa.Table]:
    sim = simulate("pluralistic3", size=900, seed=2, annotators=9)
    t = sim.tables[Kind.COMPARISONS]
    group_of = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    metas = [
        [*(m or []), ("group", group_of[a])]
        for m, a in zip(
            t.column("meta").to_pylist(), t.column("annotator").to_pylist(), strict=True
        )
    ]
    t = t.set_column(
        t.column_names.index("meta"), "meta", pa.array(metas, t.schema.field("meta").type)
    )
    return save(t, tmp_path / "votes.parquet"), t


def test_pairs_condition_group_with_personas(tmp_path: Path) -> None:
    src, table = _grouped(tmp_path)
    personas = tmp_path / "personas.json"
    personas.write_text(json.dumps(PERSONAS))
    out = tmp_path / "pairs.parquet"
    code, err, stdout = invoke("pairs", str(src), str(out), "--condition", "group",
                               "--personas", str(personas), "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout.strip().splitlines()[-1])
    pairs = pq.read_table(out)
    group_of_row = [dict(m)["group"] for m in table.column("meta").to_pylist()]
    labels = pa.array(group_of_row)
    for g, desc in PERSONAS.items():
        # reference: the same builder on the group's rows alone
        ref = build_pairs(table.filter(pc.equal(labels, g)))
        mine = pairs.filter(pc.equal(pc.map_lookup(pairs.column("meta"), "condition", "first"), g))
        assert mine.num_rows == ref.table.num_rows == report["condition"]["groups"][g]["pairs_out"]
        for p in mine.column("prompt").to_pylist():
            assert p[0] == {"role": "system", "content": desc}
            assert sum(m["role"] == "system" for m in p) == 1
        assert sorted(mine.column("chosen").to_pylist(), key=str) == sorted(
            ref.table.column("chosen").to_pylist(), key=str
        )
    assert report["condition"]["field"] == "meta.group"
    assert report["condition"]["rows_without_group"] == 0
    assert pairs.num_rows == report["pairs_out"]


def test_pairs_condition_annotator_default_description_and_trl(tmp_path: Path) -> None:
    src, table = _grouped(tmp_path)
    out = tmp_path / "pairs.jsonl"
    code, err, _ = invoke("pairs", str(src), str(out), "--condition", "annotator", "--to", "trl")
    assert code == 0, err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    names = set(table.column("annotator").to_pylist())
    systems = {r["prompt"][0]["content"] for r in rows}
    assert systems <= {f"Preference profile: {a}" for a in names} and len(systems) > 1


def test_pairs_condition_bad_input(tmp_path: Path) -> None:
    src, _ = _grouped(tmp_path)
    personas = tmp_path / "p.json"
    personas.write_text(json.dumps({"quality": "x"}))
    code, err, _ = invoke("pairs", str(src), str(tmp_path / "o.parquet"), "--condition", "group",
                          "--personas", str(personas))  # fmt: skip
    assert code == 1 and "describes no group" in err and "\n" not in err.strip()
    code, err, _ = invoke(
        "pairs", str(src), str(tmp_path / "o.parquet"), "--personas", str(personas)
    )
    assert code == 2 and "--condition" in err
    code, err, _ = invoke("pairs", str(src), str(tmp_path / "o.parquet"), "--condition", "nokey")
    assert code == 1 and "nokey" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("group,description\nquality,\n")
    code, err, _ = invoke("pairs", str(src), str(tmp_path / "o.parquet"), "--condition", "group",
                          "--personas", str(bad))  # fmt: skip
    assert code == 1 and "row 1" in err and str(bad) in err
