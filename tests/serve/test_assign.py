"""Assignment policies and the Bradley–Terry fit behind the active policy and the admin
leaderboard (prefkit.rank: one code path with `prefkit rank`)."""

from __future__ import annotations

import uuid

import numpy as np

from prefkit.serve.assign import bt_scores, choose, uncertainty
from tests.serve.conftest import (
    admin_headers,
    bearer,
    create_campaign,
    invite,
    make_client,
    next_task,
)


def _battles(n: int, k: int, seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    rng = np.random.default_rng(seed)
    true = np.linspace(-1.5, 1.5, k)
    names = [f"m{i}" for i in range(k)]
    ma, mb, out = [], [], []
    for _ in range(n):
        i, j = rng.choice(k, 2, replace=False)
        p = 1 / (1 + np.exp(-(true[i] - true[j])))
        ma.append(names[i])
        mb.append(names[j])
        out.append("a" if rng.random() < p else "b")
    return names, ma, mb, out


def test_bt_matches_choix_mle() -> None:
    """Decisive battles: the maximum-likelihood strengths of choix (an independent
    implementation, MM iterations to convergence)."""
    import choix

    names, ma, mb, out = _battles(3000, 6, 0)
    idx = {m: i for i, m in enumerate(names)}
    data = [
        (idx[a], idx[b]) if o == "a" else (idx[b], idx[a])
        for a, b, o in zip(ma, mb, out, strict=True)
    ]
    ours = bt_scores(ma, mb, out, names)
    ref = choix.mm_pairwise(len(names), data, max_iter=5000, tol=1e-10)
    np.testing.assert_allclose(ours - ours.mean(), ref - ref.mean(), atol=1e-4)


def test_ties_count_half_like_prefkit_rank() -> None:
    """With ties, the scores are exactly what `prefkit.rank`'s default fit gives."""
    from prefkit.rank.bt import fit
    from prefkit.rank.data import aggregate, battles

    names, ma, mb, out = _battles(500, 4, 1)
    out = ["tie" if i % 5 == 0 else o for i, o in enumerate(out)]
    ours = bt_scores(ma, mb, out, names)
    f = fit(aggregate(battles(ma, mb, out, items=names)))
    np.testing.assert_allclose(ours, f.theta, atol=1e-9)


def test_unbeaten_and_unseen_models_stay_finite() -> None:
    s = bt_scores(["x", "x", "x"], ["y", "y", "y"], ["a", "a", "a"], ["x", "y", "z"])
    assert np.all(np.isfinite(s)) and s[0] > s[2] == 0.0 > s[1]
    assert np.all(bt_scores([], [], [], ["x", "y"]) == 0.0)
    # one model only in battles against itself: nothing to rank yet
    assert np.all(bt_scores(["x"], ["x"], ["a"], ["x", "y"]) == 0.0)


def test_active_prefers_uncertain_pairs() -> None:
    scores = np.array([2.0, -2.0, 0.1, 0.0])
    u = uncertainty(np.array([0, 2, 0]), np.array([1, 3, 3]), scores)
    assert np.argmax(u) == 1 and u[0] < 0.1
    k = choose("active", [10, 11, 12], [0, 1, 2], [0, 0, 0], 0, 3, list(u))
    assert k == 1
    # least judged: fewest assignments first, then campaign order
    assert choose("least_judged", [10, 11, 12], [0, 1, 2], [2, 1, 1], 0, 3) == 1
    # round robin: annotators start at different offsets
    starts = {choose("round_robin", list(range(20)), list(range(20)), [0] * 20, a, 20) for a in range(4)}  # fmt: skip
    assert len(starts) == 4
    assert choose("least_judged", [], [], [], 0, 0) is None


def test_admin_leaderboard_is_prefkit_rank_on_the_export(sqlite_url: str) -> None:
    """The leaderboard in the campaign statistics equals `prefkit rank`'s fit of the export."""
    import io

    import pyarrow.parquet as pq

    from prefkit.rank.bt import fit
    from prefkit.rank.data import aggregate, battles_from_table

    models = ["m-alpha", "m-beta", "m-gamma"]
    rows = [
        {"prompt": f"q{i}", "response_a": f"A{i}", "response_b": f"B{i}",
         "model_a": models[i % 3], "model_b": models[(i + 1) % 3]}
        for i in range(12)
    ]  # fmt: skip
    answers = ["a", "b", "tie", "a", "a", "both_bad", "b", "a", "tie", "a", "b", "a"]
    with make_client(sqlite_url) as c:
        camp = create_campaign(c, rows, overlap=1)
        tok = invite(c, camp["id"], "al")["token"]
        for ans in answers:
            t = next_task(c, tok)
            body = {"idempotency_key": uuid.uuid4().hex, "item_id": t["item_id"], "outcome": ans}
            assert c.post("/api/votes", json=body, headers=bearer(tok)).status_code == 200
        st = c.get(f"/api/campaigns/{camp['id']}/stats", headers=admin_headers()).json()
        ex = c.get(f"/api/campaigns/{camp['id']}/export", headers=admin_headers())
    f = fit(aggregate(battles_from_table(pq.read_table(io.BytesIO(ex.content)))))
    want = dict(zip(f.items, f.theta.tolist(), strict=True))
    got = {m["model"]: m["score"] for m in st["leaderboard"]}
    assert got.keys() == want.keys()
    for m in got:
        assert abs(got[m] - want[m]) < 1e-9
    assert [m["battles"] for m in st["leaderboard"]] == [8, 8, 8]


def test_active_arena_assignment_is_prefkit_selects_criterion(sqlite_url: str) -> None:
    """A live arena campaign with the active policy serves next a model pair that
    `prefkit select`'s selector (`prefkit.select.active.arena_item_gains`) values most given
    the votes so far."""
    from prefkit.select.active import arena_item_gains

    names = ["m0", "m1", "m2", "m3"]
    rows = [{"prompt": f"question-{i}{j}{k}", "response_a": f"A{i}{j}{k}",
             "response_b": f"B{i}{j}{k}", "model_a": names[i], "model_b": names[j]}
            for i in range(4) for j in range(i + 1, 4) for k in range(3)]  # fmt: skip
    strength = {"m0": 2.0, "m1": 1.0, "m2": 0.9, "m3": -1.0}
    ma: list[str] = []
    mb: list[str] = []
    out: list[str] = []
    served: set[str] = set()
    with make_client(sqlite_url) as c:
        camp = create_campaign(c, rows, overlap=1, policy="active")
        tok = invite(c, camp["id"], "al")["token"]
        for step in range(10):
            t = next_task(c, tok)
            row = next(r for r in rows if r["prompt"] in t["prompt_html"])
            a, b = row["model_a"], row["model_b"]
            if step:
                left = [r for r in rows if r["prompt"] not in served]
                ca = np.array([names.index(r["model_a"]) for r in left], dtype=np.int64)
                cb = np.array([names.index(r["model_b"]) for r in left], dtype=np.int64)
                gain, _ = arena_item_gains(names, ma, mb, out, ca, cb)
                best = {(left[i]["model_a"], left[i]["model_b"])
                        for i in np.flatnonzero(gain >= gain.max() * (1 - 1e-9))}  # fmt: skip
                assert (a, b) in best, (step, a, b, best)
            served.add(row["prompt"])
            ans = "a" if strength[a] > strength[b] else "b"
            body = {"idempotency_key": uuid.uuid4().hex, "item_id": t["item_id"], "outcome": ans}
            assert c.post("/api/votes", json=body, headers=bearer(tok)).status_code == 200
            ma.append(a)
            mb.append(b)
            out.append(ans)
