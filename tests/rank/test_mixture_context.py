"""The prompt-context representation of `aggregate --method bt-mixture --context N` (and of
explain's annotator basis): groups that differ only in *when* they like a refusal are found
with it and not without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_rand_score

from prefkit.rank.mixture import mixture_table
from prefkit.schema import from_rows
from tests.rank._data import invoke

ACCESS = ["my neighbour's wifi", "a locked phone", "someone's email account", "a parked car",
          "a coworker's laptop", "my ex's social media", "a school's grading system",
          "a bank's customer database", "a hotel room safe", "a private server"]  # fmt: skip
FOOD = ["banana bread", "a vegetable curry", "pancakes", "tomato soup", "a lemon tart",
        "fried rice", "a mushroom risotto", "chocolate cookies", "a lentil stew", "focaccia"]  # fmt: skip


def test_context_recovers_groups_that_differ_only_by_prompt(tmp_path: Path) -> None:
    """Two camps with the same average taste for refusals: `cautious` prefers the refusal on
    break-in prompts and the answer on recipe prompts, `contrary` the reverse. Response
    features alone cannot tell the camps apart (every feature's effect averages out);
    refusal x prompt-embedding components can."""
    rng = np.random.default_rng(0)
    prompts = [(f"How can I get into {x} without permission?", 1.0) for x in ACCESS]
    prompts += [(f"Can you give me a recipe for {x}?", -1.0) for x in FOOD]
    # no word shared with any prompt: the prompt-overlap features stay the same on both topics
    refusals = ["Unable to do that, sorry.", "That would be unethical, so no.",
                "Not appropriate to share, sorry."]  # fmt: skip
    rows = []
    for w in range(12):
        camp = 1.0 if w < 6 else -1.0
        for n in range(60):
            text, kind = prompts[rng.integers(len(prompts))]
            answer = f"Sure. Step {n % 7 + 1}: start with the basics, then go on carefully."
            refusal = refusals[n % 3]
            a_refuses = bool(rng.random() < 0.5)
            p_refusal = 1.0 / (1.0 + np.exp(-3.0 * camp * kind))
            refusal_wins = bool(rng.random() < p_refusal)
            rows.append({
                "prompt": text, "annotator": f"w{w}",
                "response_a": refusal if a_refuses else answer,
                "response_b": answer if a_refuses else refusal,
                "outcome": "a" if refusal_wins == a_refuses else "b",
            })  # fmt: skip
    camp_of = {f"w{w}": w < 6 for w in range(12)}
    table = from_rows(rows, "comparisons")
    _, plain, _, _ = mixture_table(table, groups=2, items="response")
    ari_plain = adjusted_rand_score(
        [camp_of[a] for a in plain.column("annotator").to_pylist()],
        plain.column("group").to_pylist(),
    )
    src = tmp_path / "votes.parquet"
    pq.write_table(table, src)
    code, err, stdout = invoke(
        "aggregate", str(src), str(tmp_path / "g.parquet"), "--method", "bt-mixture",
        "--groups", "2", "--context", "auto", "--context-features", "refusal",
        "--cache-dir", str(tmp_path / "cache"), "--json",
    )  # fmt: skip
    assert code == 0, err
    ctx = json.loads(stdout.strip().splitlines()[-1])["context"]
    # held-out likelihood prefers the context columns over none
    assert ctx["components"] > 0 and not ctx["selection"][0]["chosen"]
    assert ctx["features"] == [f"refusal*ctx{j + 1}" for j in range(ctx["components"])]
    ann = pq.read_table(tmp_path / "annotators.parquet").to_pydict()
    ari = adjusted_rand_score([camp_of[a] for a in ann["annotator"]], ann["group"])
    assert ari == 1.0 and ari_plain < 0.5, (ari, ari_plain)
    # explain's annotator basis with the same representation (the embeddings are now cached)
    from prefkit.explain.run import ExplainOptions, explain_table

    res = explain_table(table, ExplainOptions(directions=0, context=2,
                        embed_cache=tmp_path / "cache"))  # fmt: skip
    people = res.summary["people"]
    assert people["context"]["columns"] == ["refusal*ctx1", "refusal*ctx2"]
    cl = {m["group"]: m["cluster"] for m in people["members"]}
    assert adjusted_rand_score([camp_of[a] for a in cl], list(cl.values())) == 1.0
    # bad input: one line, usage errors exit 2, an unknown feature exits 1 naming the choices
    code, err, _ = invoke("explain", str(src), "--out", str(tmp_path / "e"), "--context", "2",
                          "--context-features", " , ")  # fmt: skip
    assert code == 2 and "--context-features" in err
    code, err, _ = invoke("aggregate", str(src), str(tmp_path / "h.parquet"), "--method",
                          "bt-mixture", "--groups", "2", "--context", "2",
                          "--context-features", "sparkle", "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert code == 1 and "sparkle" in err and "refusal" in err and "\n" not in err.strip()
