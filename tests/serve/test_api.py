"""The JSON API against SQLite and a real PostgreSQL: campaigns, tasks, votes, idempotency,
history, export, statistics."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pyarrow.parquet as pq
import pytest

from prefkit.schema import Kind, validate
from tests.serve.conftest import (
    admin_headers,
    bearer,
    create_campaign,
    invite,
    items_table,
    make_client,
    next_task,
    pair_rows,
)


def vote(client: Any, tok: str, item_id: int, outcome: str, key: str | None = None, **kw: Any) -> Any:  # fmt: skip
    body = {"idempotency_key": key or uuid.uuid4().hex, "item_id": item_id, "outcome": outcome, **kw}  # fmt: skip
    return client.post("/api/votes", json=body, headers=bearer(tok))


def test_campaign_flow_votes_history_export(db_url: str) -> None:
    with make_client(db_url) as c:
        camp = create_campaign(c, pair_rows(6), overlap=2, gold={"p0": "a"})
        assert camp["items"] == 6 and camp["arena"] is True
        alice = invite(c, camp["id"], "alice")
        bob = invite(c, camp["id"], "bob")
        seen: dict[str, list[str]] = {}
        answers = ["a", "b", "tie", "both_bad", "a", "b"]
        for ann in (alice, bob):
            t = bearer(ann["token"])
            for k in range(6):
                task = c.get("/api/task/next", headers=t).json()
                assert task["done"] is False and task["seq"] == k + 1
                assert task["shown_first"] in ("a", "b")
                assert task["left"] == task["shown_first"]
                assert task["progress"] == {"done": k, "total": 6}
                # an unanswered task is handed out again, not a new one
                assert c.get("/api/task/next", headers=t).json()["item_id"] == task["item_id"]
                strength = {"a": 0.75, "b": 0.25, "tie": 0.5}.get(answers[k])
                r = vote(c, ann["token"], task["item_id"], answers[k], strength=strength)
                assert r.status_code == 200, r.text
                assert r.json()["shown_first"] == task["shown_first"]
                seen.setdefault(ann["name"], []).append(task["shown_first"])
            assert c.get("/api/task/next", headers=t).json()["done"] is True
        # overlap 2: every item judged by both; a third annotator gets only the gold item
        carol = invite(c, camp["id"], "carol")
        t3 = c.get("/api/task/next", headers=bearer(carol["token"])).json()
        assert t3["done"] is False
        gold_id = c.get("/api/tasks/1", headers=bearer(alice["token"])).json()["item_id"]
        assert t3["item_id"] == gold_id  # p0, the first item, is gold
        assert vote(c, carol["token"], t3["item_id"], "a").status_code == 200
        seen["carol"] = [t3["shown_first"]]
        assert c.get("/api/task/next", headers=bearer(carol["token"])).json()["done"] is True
        # go back and change an answer: history kept, export has the latest
        t = bearer(alice["token"])
        first = c.get("/api/tasks/1", headers=t).json()
        assert first["answer"]["outcome"] == "a" and first["answer"]["revision"] == 1
        r = vote(c, alice["token"], first["item_id"], "tie")
        assert r.json()["revision"] == 2
        again = c.get("/api/tasks/1", headers=t).json()
        assert again["answer"]["outcome"] == "tie"
        mine = c.get("/api/votes/mine", headers=t).json()
        assert len(mine) == 7 and [v["outcome"] for v in mine if v["item_id"] == first["item_id"]] == ["a", "tie"]  # fmt: skip
        # export
        r = c.get(f"/api/campaigns/{camp['id']}/export?format=parquet", headers=admin_headers())
        assert r.status_code == 200
        table = pq.read_table(io.BytesIO(r.content))
        validate(table)
        assert table.num_rows == 13
        rows = table.to_pylist()
        assert {r["annotator"] for r in rows} == {"alice", "bob", "carol"}
        a_rows = sorted((r for r in rows if r["annotator"] == "alice"), key=lambda r: int(dict(r["meta"])["item_id"]))  # fmt: skip
        assert [r["outcome"] for r in a_rows] == ["tie", "b", "tie", "both_bad", "a", "b"]  # fmt: skip
        assert sorted(r["shown_first"] for r in rows) == sorted(
            seen["alice"] + seen["bob"] + seen["carol"]
        )
        # strength is directional: 0.75 with a, 0.25 with b, 0.5 with a tie, none with both-bad
        want = {"a": 0.75, "b": 0.25, "tie": 0.5, "both_bad": None}
        assert all(r["strength"] == want[r["outcome"]] for r in rows if r["annotator"] == "bob")
        assert all(dict(r["meta"])["app_version"].startswith("prefkit") for r in rows)
        jl = c.get(f"/api/campaigns/{camp['id']}/export?format=jsonl", headers=admin_headers())
        assert len(jl.text.strip().splitlines()) == 13
        trl = c.get(f"/api/campaigns/{camp['id']}/export?format=trl", headers=admin_headers())
        n_decided = sum(r["outcome"] in ("a", "b") for r in rows)
        assert len(trl.text.strip().splitlines()) == n_decided
        # stats: gold accuracy of alice on p0 (changed to tie -> wrong), bob (a -> right)
        st = c.get(f"/api/campaigns/{camp['id']}/stats", headers=admin_headers()).json()
        by = {a["name"]: a for a in st["annotators"]}
        assert by["alice"]["done"] == 6 and by["alice"]["submissions"] == 7
        assert by["carol"]["gold_seen"] == 1 and by["carol"]["gold_accuracy"] == 1.0
        # alice and bob answered alike except p0, where alice changed to tie (bob, carol: a)
        assert by["alice"]["agree_with_others"] == 5 / 6 and by["bob"]["agree_with_others"] == 1.0
        assert by["alice"]["gold_accuracy"] == 0.0  # p0 changed from a to tie
        assert all(a["median_ms"] is not None and a["median_ms"] >= 0 for a in st["annotators"])
        assert st["agreement"]["items"] == 6 and 0.0 <= st["agreement"]["raw"] <= 1.0
        assert {m["model"] for m in st["leaderboard"]} == {"m-alpha", "m-beta", "m-gamma"}
        gold_item = next(r for r in rows if r["meta"] and dict(r["meta"])["pair_id"] == "p0" and r["annotator"] == "bob")  # fmt: skip
        assert by["bob"]["gold_accuracy"] == (1.0 if gold_item["outcome"] == "a" else 0.0)


def test_idempotent_retry_returns_same_response(db_url: str) -> None:
    with make_client(db_url) as c:
        camp = create_campaign(c, pair_rows(3))
        ann = invite(c, camp["id"], "alice")
        task = c.get("/api/task/next", headers=bearer(ann["token"])).json()
        key = uuid.uuid4().hex
        first = vote(c, ann["token"], task["item_id"], "b", key=key)
        for _ in range(3):
            again = vote(c, ann["token"], task["item_id"], "b", key=key)
            assert again.status_code == 200 and again.json() == first.json()
        votes = c.get(f"/api/campaigns/{camp['id']}/votes", headers=admin_headers()).json()
        assert len(votes) == 1
        # keys are per annotator: bob's vote with the same key is his own, and tells him
        # nothing about alice's
        bob = invite(c, camp["id"], "bob")
        bt = next_task(c, bob["token"])
        r = vote(c, bob["token"], bt["item_id"], "a", key=key)
        assert r.status_code == 200 and r.json()["vote_id"] != first.json()["vote_id"]


def test_bad_votes_are_refused(db_url: str) -> None:
    with make_client(db_url) as c:
        camp = create_campaign(c, pair_rows(2))
        ann = invite(c, camp["id"], "alice")
        task = c.get("/api/task/next", headers=bearer(ann["token"])).json()
        assert vote(c, ann["token"], task["item_id"], "left").status_code == 422
        assert vote(c, ann["token"], task["item_id"], "a", strength=3).status_code == 422
        r = c.post("/api/votes", json={"idempotency_key": uuid.uuid4().hex, "item_id": task["item_id"]}, headers=bearer(ann["token"]))  # fmt: skip
        assert r.status_code == 422
        assert vote(c, ann["token"], 10_000, "a").status_code == 404


@pytest.mark.parametrize("policy", ["round_robin", "least_judged", "active"])
def test_policies_respect_overlap(sqlite_url: str, policy: str) -> None:
    with make_client(sqlite_url) as c:
        camp = create_campaign(c, pair_rows(9), overlap=2, policy=policy)
        counts: dict[int, int] = {}
        for i in range(4):
            tok = invite(c, camp["id"], f"a{i}")["token"]
            while True:
                task = c.get("/api/task/next", headers=bearer(tok)).json()
                if task["done"]:
                    break
                counts[task["item_id"]] = counts.get(task["item_id"], 0) + 1
                assert vote(c, tok, task["item_id"], "a").status_code == 200
        assert len(counts) == 9 and max(counts.values()) <= 2 and sum(counts.values()) == 18


def test_campaign_from_file_and_validation(sqlite_url: str, tmp_path: Any) -> None:
    from prefkit.io.canonical import save
    from prefkit.schema import Kind, from_rows

    path = tmp_path / "pairs.parquet"
    save(from_rows([{**r, "outcome": "a"} for r in pair_rows(4)], Kind.COMPARISONS), path)
    with make_client(sqlite_url, import_dir=tmp_path) as c:
        r = c.post("/api/campaigns", json={"name": "f", "path": "pairs.parquet"}, headers=admin_headers())  # fmt: skip
        assert r.status_code == 201 and r.json()["items"] == 4
        assert r.json()["import"]["rejected"] == 0 and r.json()["import"]["rows_in"] == 4
        bad = {"name": "x", "rows": pair_rows(2), "questions": ["pairwise", "vibes"]}
        assert c.post("/api/campaigns", json=bad, headers=admin_headers()).status_code == 422
        missing = {"name": "x", "path": "nope.parquet"}
        assert c.post("/api/campaigns", json=missing, headers=admin_headers()).status_code == 422


def test_rankings_campaign_takes_ranking_answers(sqlite_url: str, tmp_path: Any) -> None:
    from sqlalchemy.orm import Session

    from prefkit.serve import store

    table = items_table([{"prompt": "p", "responses": ["x", "y", "z"], "models": ["m1", "m2", "m3"]}])  # fmt: skip
    with make_client(sqlite_url) as c:
        with Session(c.app.state.engine) as s:
            camp = store.create_campaign(
                s, table, store.CampaignSpec(name="r", questions=("ranking", "rationale"))
            )
            cid = camp.id
        tok = invite(c, cid, "alice")["token"]
        task = c.get("/api/task/next", headers=bearer(tok)).json()
        assert len(task["responses_html"]) == 3
        body = {"idempotency_key": uuid.uuid4().hex, "item_id": task["item_id"]}
        assert c.post("/api/votes", json={**body, "ranking": [1, 2]}, headers=bearer(tok)).status_code == 422  # fmt: skip
        assert c.post("/api/votes", json={**body, "ranking": [1, 2, 4]}, headers=bearer(tok)).status_code == 422  # fmt: skip
        assert c.post("/api/votes", json={**body, "ranking": [1, 2, 3], "outcome": "a"}, headers=bearer(tok)).status_code == 422  # fmt: skip
        r = c.post("/api/votes", json={**body, "ranking": [2, 1, 3]}, headers=bearer(tok))
        assert r.status_code == 200
        assert c.get("/api/tasks/1", headers=bearer(tok)).json()["answer"]["ranking"] == [2, 1, 3]
        # the export is a canonical rankings table that prefkit reads back
        ex = c.get(f"/api/campaigns/{cid}/export?format=parquet", headers=admin_headers())
        rows = pq.read_table(io.BytesIO(ex.content))
        assert validate(rows) == Kind.RANKINGS
        assert rows.column("ranks").to_pylist() == [[2, 1, 3]]
        assert rows.column("models").to_pylist() == [["m1", "m2", "m3"]]
        trl = c.get(f"/api/campaigns/{cid}/export?format=trl", headers=admin_headers())
        assert trl.status_code == 422 and "ranking" in trl.json()["detail"]
        jl = c.get(f"/api/campaigns/{cid}/export?format=jsonl", headers=admin_headers())
    # both formats read back through `prefkit inspect` as one rankings row
    from typer.testing import CliRunner

    from prefkit.cli import app

    for name, content in (("r.parquet", ex.content), ("r.jsonl", jl.content)):
        path = tmp_path / name
        path.write_bytes(content)
        res = CliRunner().invoke(app, ["inspect", str(path), "--json"])
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout.strip().splitlines()[-1])
        assert summary["rows"] == 1 and summary["rejected"] == 0, summary
        assert summary["kind"] == "rankings", summary


def test_openapi_documents_the_votes_api(sqlite_url: str) -> None:
    with make_client(sqlite_url) as c:
        spec = c.get("/openapi.json").json()
        assert "/api/votes" in spec["paths"] and "/api/campaigns/{cid}/export" in spec["paths"]
        assert "idempotency_key" in spec["components"]["schemas"]["VoteIn"]["properties"]
        assert c.get("/docs").status_code == 404  # no CDN-loading Swagger page


def test_campaign_from_real_llmbar_file_with_gold(sqlite_url: str) -> None:
    """A real file read by prefkit.io (LLMBar, 100 pairs with known answers) as gold items;
    gold accuracy counts exactly the answers that match the file."""
    from prefkit.io.detect import read
    from tests.conftest import DATA

    path = DATA / "llmbar" / "Dataset" / "LLMBar" / "Natural" / "dataset.json"
    truth = read(path).table.to_pylist()
    with make_client(sqlite_url, import_dir=DATA) as c:
        rel = str(path.relative_to(DATA))
        r = c.post("/api/campaigns", json={"name": "llmbar", "path": rel, "gold_from_outcome": True}, headers=admin_headers())  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["items"] == len(truth) == 100
        tok = invite(c, r.json()["id"], "alice")["token"]
        right = 0
        for k in range(8):
            task = c.get("/api/task/next", headers=bearer(tok)).json()
            assert "gold" not in task  # known answers are never sent to annotators
            row = truth[task["seq"] - 1]  # least-judged walks the file in order
            answer = row["outcome"] if k % 2 == 0 else ("b" if row["outcome"] == "a" else "a")
            right += answer == row["outcome"]
            assert vote(c, tok, task["item_id"], answer).status_code == 200
        st = c.get(f"/api/campaigns/{r.json()['id']}/stats", headers=admin_headers()).json()
        alice = st["annotators"][0]
        assert alice["gold_seen"] == 8 and alice["gold_accuracy"] == right / 8 == 0.5


def test_ratings_grouped_by_prompt_become_items(sqlite_url: str) -> None:
    from sqlalchemy.orm import Session

    from prefkit.schema import Kind, from_rows
    from prefkit.serve import store
    from prefkit.serve.items import items_from_canonical

    rows = [
        {"prompt": f"p{i}", "response": f"r{i}-{j}", "model": f"m{j}", "score": float(j)}
        for i in range(3)
        for j in range(3)
    ] + [{"prompt": "lonely", "response": "only one", "score": 1.0}]
    with make_client(sqlite_url) as c, Session(c.app.state.engine) as s:
        items, rejects = items_from_canonical(from_rows(rows, Kind.RATINGS), "r.jsonl")
        # the lonely prompt is a reject with its line and reason, not silently dropped
        assert [(r.line, r.field) for r in rejects] == [(10, "prompt")]
        camp = store.create_campaign(s, items, store.CampaignSpec(name="r", questions=("ranking",)))
        assert camp.kind == "rankings"
        assert store.progress_of_campaign(s, camp.id)["items"] == 3
        two = [r for r in rows if r["response"].endswith(("-0", "-1"))]
        items2, _ = items_from_canonical(from_rows(two, Kind.RATINGS), "two.jsonl")
        camp2 = store.create_campaign(s, items2, store.CampaignSpec(name="p"))
        assert camp2.kind == "comparisons" and camp2.arena == 1


def test_upload_campaign_file(sqlite_url: str) -> None:
    from tests.conftest import DATA

    path = DATA / "llmbar" / "Dataset" / "LLMBar" / "Natural" / "dataset.json"
    with make_client(sqlite_url) as c:
        form = {"name": "up", "overlap": "2", "policy": "active", "gold_from_outcome": "true"}
        with path.open("rb") as fh:
            r = c.post("/api/campaigns/upload", data=form, files={"file": ("dataset.json", fh)}, headers=admin_headers())  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["items"] == 100 and r.json()["policy"] == "active"
        bad = c.post("/api/campaigns/upload", data={"name": "x"}, files={"file": ("x.jsonl", b"not json\n")}, headers=admin_headers())  # fmt: skip
        assert bad.status_code == 422 and "x.jsonl" in bad.json()["detail"]
        tok = invite(c, r.json()["id"], "al")["token"]
        up = c.post("/api/campaigns/upload", data=form, files={"file": ("d.json", b"[]")}, headers=bearer(tok))  # fmt: skip
        assert up.status_code == 403
