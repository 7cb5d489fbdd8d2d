"""The app's operations over the database (ORM only): campaigns, invitations, tasks, votes,
statistics. The HTTP layer (app.py) and the CLI call these."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prefkit import __version__
from prefkit.schema import OUTCOMES, Kind, kind_of, messages_text
from prefkit.serve import assign
from prefkit.serve.models import Annotator, Assignment, Campaign, Item, Vote, utcnow
from prefkit.serve.render import render_messages
from prefkit.serve.security import hash_token, new_token

QUESTION_TYPES = ("pairwise", "strength", "likert", "thumbs", "ranking", "rationale", "spans")
DEFAULT_QUESTIONS = ("pairwise", "strength", "rationale")
APP_VERSION = f"prefkit {__version__}"
_rng = random.SystemRandom()


class StoreError(ValueError):
    """A request the store refuses; `status` is the HTTP status to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Who:
    """An authenticated annotator (what the request handlers need, no ORM state)."""

    id: int
    campaign_id: int
    name: str
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    questions: tuple[str, ...] = DEFAULT_QUESTIONS
    guidelines: str = ""
    overlap: int = 1
    policy: str = "least_judged"
    aspects: tuple[str, ...] = ("helpfulness",)
    gold: dict[str, str] | None = None  # external item id -> known outcome
    gold_from_outcome: bool = False  # the input's outcomes are known answers (e.g. LLMBar)


def _check_spec(spec: CampaignSpec) -> None:
    bad = [q for q in spec.questions if q not in QUESTION_TYPES]
    if bad:
        raise StoreError(422, f"unknown question types {bad}; known: {list(QUESTION_TYPES)}")
    if spec.policy not in assign.POLICIES:
        raise StoreError(422, f"unknown policy {spec.policy!r}; known: {list(assign.POLICIES)}")
    if spec.overlap < 1:
        raise StoreError(422, "overlap must be >= 1")
    for k, v in (spec.gold or {}).items():
        if v not in OUTCOMES:
            raise StoreError(422, f"gold answer {v!r} for {k!r} is not one of {sorted(OUTCOMES)}")


def _grouped_responses(table: pa.Table) -> list[dict[str, Any]]:
    """Ratings/binary rows (one response each) grouped by prompt: prompts with k responses."""
    groups: dict[str, dict[str, Any]] = {}
    for r in table.to_pylist():
        g = groups.setdefault(
            r["prompt_id"],
            {"id": r["prompt_id"], "prompt": r["prompt"], "responses": [], "models": [],
             "meta": {"pair_id": r["prompt_id"]}},
        )  # fmt: skip
        g["responses"].append(r.get("response") or [])
        g["models"].append(r.get("model"))
    return [g for g in groups.values() if len(g["responses"]) >= 2]


def create_campaign(session: Session, table: pa.Table, spec: CampaignSpec) -> Campaign:
    """A campaign from a canonical table: comparisons (outcomes ignored unless
    `spec.gold_from_outcome`; a row's `meta.gold` or `spec.gold[pair_id]` marks a gold item),
    rankings, or ratings/binary rows grouped by prompt (prompts with k responses: pairs when
    every prompt has two, else ranking items)."""
    _check_spec(spec)
    kind = kind_of(table)
    if table.num_rows == 0:
        raise StoreError(422, "the table has no rows")
    if kind in (Kind.RATINGS, Kind.BINARY):
        rows = _grouped_responses(table)
        if not rows:
            raise StoreError(422, "no prompt has two or more responses to compare")
        if all(len(r["responses"]) == 2 for r in rows):
            kind = Kind.COMPARISONS
            rows = [
                {**r, "response_a": r["responses"][0], "response_b": r["responses"][1],
                 "model_a": r["models"][0], "model_b": r["models"][1]}
                for r in rows
            ]  # fmt: skip
        else:
            kind = Kind.RANKINGS
    elif kind in (Kind.COMPARISONS, Kind.RANKINGS):
        rows = table.to_pylist()
    else:
        raise StoreError(422, f"a campaign needs comparisons, rankings or ratings, got {kind.value}")  # fmt: skip
    has_models = False
    camp = Campaign(
        name=spec.name,
        kind=kind.value,
        questions=list(spec.questions),
        guidelines=spec.guidelines,
        overlap=spec.overlap,
        policy=spec.policy,
        aspects=list(spec.aspects),
        arena=0,
    )
    session.add(camp)
    session.flush()
    gold = spec.gold or {}
    for pos, r in enumerate(rows):
        meta = dict(r.get("meta") or [])
        ext = str(meta.get("pair_id") or r["id"])
        if kind is Kind.COMPARISONS:
            responses = [r["response_a"] or [], r["response_b"] or []]
            models = [r.get("model_a"), r.get("model_b")]
        else:
            responses = list(r.get("responses") or [])
            models = list(r.get("models") or [None] * len(responses))
        has_models = has_models or any(m is not None for m in models)
        g = gold.get(ext) or gold.get(str(r["id"])) or meta.get("gold")
        if g is None and spec.gold_from_outcome and kind is Kind.COMPARISONS:
            g = r.get("outcome")
        if g is not None and g not in OUTCOMES:
            raise StoreError(422, f"gold answer {g!r} of item {ext!r} is not an outcome")
        session.add(
            Item(
                campaign_id=camp.id,
                position=pos,
                external_id=ext,
                prompt=r.get("prompt") or [],
                responses=responses,
                models=models,
                gold=g,
                meta={**meta, "source_id": str(r["id"])},
            )
        )
    camp.arena = int(has_models)
    session.commit()
    return camp


def invite(
    session: Session, campaign_id: int, name: str, expires_in_s: float | None = None
) -> tuple[Annotator, str]:
    """A new annotator; returns it and its token (shown once, stored only as sha256)."""
    if session.get(Campaign, campaign_id) is None:
        raise StoreError(404, "no such campaign")
    token = new_token()
    expires = utcnow() + dt.timedelta(seconds=expires_in_s) if expires_in_s else None
    ann = Annotator(
        campaign_id=campaign_id, name=name, token_hash=hash_token(token), expires_at=expires
    )
    session.add(ann)
    session.commit()
    return ann, token


def annotator_by_token(session: Session, token: str | None) -> Who | None:
    """The annotator holding this token, or None (unknown, revoked or expired)."""
    if not token:
        return None
    return annotator_by_hash(session, hash_token(token))


def annotator_by_hash(session: Session, token_hash: str) -> Who | None:
    ann = session.scalars(select(Annotator).where(Annotator.token_hash == token_hash)).one_or_none()
    if ann is None or ann.revoked:
        return None
    who = Who(ann.id, ann.campaign_id, ann.name, ann.expires_at)
    return who if still_valid(who) else None


def still_valid(who: Who) -> bool:
    return who.expires_at is None or who.expires_at >= utcnow()


# --------------------------------------------------------------------------------------
# Tasks


def _latest_votes(session: Session, campaign_id: int) -> list[Vote]:
    """The current answer of each (annotator, item): its highest revision."""
    sub = (
        select(Vote.annotator_id, Vote.item_id, func.max(Vote.id).label("vid"))
        .where(Vote.campaign_id == campaign_id)
        .group_by(Vote.annotator_id, Vote.item_id)
        .subquery()
    )
    return list(session.scalars(select(Vote).join(sub, Vote.id == sub.c.vid)).all())


def _item_rows(session: Session, campaign_id: int) -> list[Any]:
    """Light item rows (id, position, gold, models) of a campaign, in campaign order."""
    return list(
        session.execute(
            select(Item.id, Item.position, Item.gold, Item.models)
            .where(Item.campaign_id == campaign_id)
            .order_by(Item.position)
        ).all()
    )


def _uncertainty(
    session: Session, camp: Campaign, items: list[Any], cands: list[Any]
) -> list[float]:
    """Outcome uncertainty of each candidate under the current votes: by a Bradley–Terry fit
    of the models for arena campaigns, else by the pair's own vote split (Laplace)."""
    votes = _latest_votes(session, camp.id)
    if camp.arena:
        names = sorted({m for it in items for m in it.models[:2] if m is not None})
        if not names:
            return [1.0] * len(cands)
        idx = {m: i for i, m in enumerate(names)}
        by_item = {it.id: it for it in items}
        w: list[int] = []
        lo: list[int] = []
        for v in votes:
            it = by_item.get(v.item_id)
            if it is None or v.outcome not in ("a", "b") or None in it.models[:2]:
                continue
            a, b = idx[it.models[0]], idx[it.models[1]]
            w.append(a if v.outcome == "a" else b)
            lo.append(b if v.outcome == "a" else a)
        s = assign.bt_scores(w, lo, len(names))
        pa_ = np.array([idx.get(it.models[0], 0) for it in cands], dtype=np.int64)
        pb_ = np.array([idx.get(it.models[1], 0) for it in cands], dtype=np.int64)
        return [float(x) for x in assign.uncertainty(pa_, pb_, s)]
    wins: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for v in votes:
        if v.outcome in ("a", "b"):
            wins[v.item_id][0 if v.outcome == "a" else 1] += 1
    out = []
    for it in cands:
        na, nb = wins[it.id]
        p = (na + 1) / (na + nb + 2)
        out.append(1.0 - abs(2 * p - 1))
    return out


def next_task(session: Session, ann: Who) -> Assignment | None:
    """The annotator's first unanswered assignment, else a new one by the campaign's policy
    (with the left/right order drawn at random and recorded). None when nothing is left."""
    answered = select(Vote.item_id).where(Vote.annotator_id == ann.id)
    open_ = session.scalars(
        select(Assignment)
        .where(Assignment.annotator_id == ann.id, Assignment.item_id.not_in(answered))
        .order_by(Assignment.seq)
        .limit(1)
    ).one_or_none()
    if open_ is not None:
        return open_
    camp = session.get(Campaign, ann.campaign_id)
    assert camp is not None
    for _ in range(5):
        mine = select(Assignment.item_id).where(Assignment.annotator_id == ann.id)
        counts = dict(
            session.execute(
                select(Assignment.item_id, func.count(Assignment.id))
                .join(Item, Item.id == Assignment.item_id)
                .where(Item.campaign_id == camp.id)
                .group_by(Assignment.item_id)
            ).all()
        )
        items = _item_rows(session, camp.id)
        given = set(session.scalars(mine).all())
        cands = [
            it
            for it in items
            if it.id not in given and (it.gold is not None or counts.get(it.id, 0) < camp.overlap)
        ]
        if not cands:
            return None
        unc = _uncertainty(session, camp, items, cands) if camp.policy == "active" else None
        n_items = len(items)
        k = assign.choose(
            camp.policy,
            [it.id for it in cands],
            [it.position for it in cands],
            [counts.get(it.id, 0) for it in cands],
            ann.id,
            n_items,
            unc,
        )
        if k is None:
            return None
        seq = (
            session.scalar(
                select(func.max(Assignment.seq)).where(Assignment.annotator_id == ann.id)
            )
            or 0
        ) + 1
        a = Assignment(
            annotator_id=ann.id,
            item_id=cands[k].id,
            seq=seq,
            shown_first=_rng.choice("ab"),
            assigned_at=utcnow(),
        )
        session.add(a)
        try:
            session.commit()
        except IntegrityError:  # a concurrent request of the same annotator won
            session.rollback()
            continue
        return a
    raise StoreError(503, "could not assign a task, try again")


def assignment_at(session: Session, ann: Who, seq: int) -> Assignment:
    a = session.scalars(
        select(Assignment).where(Assignment.annotator_id == ann.id, Assignment.seq == seq)
    ).one_or_none()
    if a is None:
        raise StoreError(404, "no such task")
    return a


def current_vote(session: Session, ann: Who, item_id: int) -> Vote | None:
    return session.scalars(
        select(Vote)
        .where(Vote.annotator_id == ann.id, Vote.item_id == item_id)
        .order_by(Vote.id.desc())
        .limit(1)
    ).one_or_none()


def progress(session: Session, ann: Who) -> dict[str, int]:
    done = session.scalar(
        select(func.count(func.distinct(Vote.item_id))).where(Vote.annotator_id == ann.id)
    )
    total = session.scalar(select(func.count(Item.id)).where(Item.campaign_id == ann.campaign_id))
    return {"done": int(done or 0), "total": int(total or 0)}


def task_view(session: Session, ann: Who, a: Assignment) -> dict[str, Any]:
    """What the page shows for one assignment: rendered (sanitised) HTML, left/right order,
    the questions, and the annotator's current answer if any."""
    item = session.get(Item, a.item_id)
    camp = session.get(Campaign, ann.campaign_id)
    assert item is not None and camp is not None
    vote = current_vote(session, ann, item.id)
    first = 0 if a.shown_first == "a" else 1
    order = [first, 1 - first] if len(item.responses) == 2 else list(range(len(item.responses)))
    return {
        "seq": a.seq,
        "item_id": item.id,
        "kind": camp.kind,
        "shown_first": a.shown_first,
        "left": "a" if first == 0 else "b",
        "right": "b" if first == 0 else "a",
        "prompt_html": render_messages(item.prompt),
        "responses_html": [render_messages(item.responses[i]) for i in order],
        "questions": camp.questions,
        "aspects": camp.aspects,
        "answer": _answer_of(vote) if vote is not None else None,
        "progress": progress(session, ann),
    }


def _answer_of(v: Vote) -> dict[str, Any]:
    return {
        "outcome": v.outcome,
        "strength": v.strength,
        "rationale": v.rationale,
        **{k: x for k, x in v.answer.items() if k not in ("outcome", "strength", "rationale")},
        "revision": v.revision,
    }


# --------------------------------------------------------------------------------------
# Votes


def vote_response(v: Vote) -> dict[str, Any]:
    return {
        "vote_id": v.id,
        "idempotency_key": v.idempotency_key,
        "item_id": v.item_id,
        "revision": v.revision,
        "outcome": v.outcome,
        "shown_first": v.shown_first,
        "created_at": v.created_at.isoformat(),
    }


# Statements of the vote path, built once (bound parameters; compiled form cached).
_ITEM_Q = (
    select(Item.campaign_id, Campaign.kind, Campaign.questions)
    .join(Campaign, Campaign.id == Item.campaign_id)
    .where(Item.id == bindparam("item"))
)
_MINE_ASG = (Assignment.annotator_id == bindparam("ann")) & (
    Assignment.item_id == bindparam("item")
)
_STATE_Q = select(
    select(func.max(Vote.revision))
    .where(Vote.annotator_id == bindparam("ann"), Vote.item_id == bindparam("item"))
    .scalar_subquery(),
    select(Assignment.shown_first).where(_MINE_ASG).scalar_subquery(),
    select(Assignment.assigned_at).where(_MINE_ASG).scalar_subquery(),
)
_INSERT = insert(Vote).returning(Vote.id)


def _by_key(session: Session, key: str, ann: Who) -> dict[str, Any] | None:
    v = session.scalars(select(Vote).where(Vote.idempotency_key == key)).one_or_none()
    if v is None:
        return None
    if v.annotator_id != ann.id:
        raise StoreError(409, "idempotency key already used")
    return vote_response(v)


def submit_vote(session: Session, ann: Who, payload: dict[str, Any]) -> dict[str, Any]:
    """Record an answer once per idempotency key: a retry returns the first response.

    The fast path is three statements: item + campaign, (assignment, last revision), insert;
    a key seen before fails the unique constraint and its stored response is returned."""
    key = str(payload["idempotency_key"])
    item_id = int(payload["item_id"])
    found = session.execute(_ITEM_Q, {"item": item_id}).one_or_none()
    if found is None or found[0] != ann.campaign_id:
        prior = _by_key(session, key, ann)
        if prior is not None:
            return prior
        raise StoreError(404, "no such item in your campaign")
    _, kind, questions = found
    outcome = payload.get("outcome")
    if kind == Kind.COMPARISONS.value and "pairwise" in questions and outcome is None:
        raise StoreError(422, "outcome is required")
    if kind == Kind.RANKINGS.value and "ranking" in questions:
        n = len(session.scalar(select(Item.responses).where(Item.id == item_id)) or [])
        ranking = payload.get("ranking")
        if not ranking or len(ranking) != n:
            raise StoreError(422, f"ranking needs {n} ranks")
    last, shown, assigned_at = session.execute(_STATE_Q, {"ann": ann.id, "item": item_id}).one()
    if shown is None:
        shown = payload.get("shown_first")
    now = utcnow()
    elapsed = payload.get("elapsed_ms")
    if elapsed is None and assigned_at is not None and not last:
        elapsed = int((now - assigned_at).total_seconds() * 1000)
    answer = {
        k: payload[k]
        for k in ("likert", "thumbs", "ranking", "spans")
        if payload.get(k) is not None
    }
    values = {
        "idempotency_key": key,
        "campaign_id": ann.campaign_id,
        "annotator_id": ann.id,
        "item_id": item_id,
        "revision": int(last or 0) + 1,
        "outcome": outcome,
        "strength": payload.get("strength"),
        "rationale": payload.get("rationale"),
        "answer": answer,
        "shown_first": shown,
        "started_at": assigned_at,
        "created_at": now,
        "elapsed_ms": elapsed,
        "app_version": APP_VERSION,
    }
    try:
        vid = session.execute(_INSERT, values).scalar_one()
        session.commit()
    except IntegrityError:  # this key was used before (a retry), maybe concurrently
        session.rollback()
        prior = _by_key(session, key, ann)
        if prior is None:
            raise
        return prior
    return {
        "vote_id": vid,
        "idempotency_key": key,
        "item_id": item_id,
        "revision": values["revision"],
        "outcome": outcome,
        "shown_first": shown,
        "created_at": now.isoformat(),
    }


def my_votes(session: Session, ann: Who) -> list[dict[str, Any]]:
    """The annotator's own answers (every revision, history kept)."""
    rows = session.scalars(select(Vote).where(Vote.annotator_id == ann.id).order_by(Vote.id)).all()
    return [{**vote_response(v), "strength": v.strength, "rationale": v.rationale} for v in rows]


# --------------------------------------------------------------------------------------
# Export and statistics


def export_table(session: Session, campaign_id: int) -> pa.Table:
    """The campaign's current answers as canonical comparisons (one row per annotator and
    item: the latest revision), with annotator name and `shown_first`."""
    from prefkit.schema import from_rows

    camp = session.get(Campaign, campaign_id)
    if camp is None:
        raise StoreError(404, "no such campaign")
    votes = _latest_votes(session, campaign_id)
    items = {it.id: it for it in session.scalars(select(Item).where(Item.campaign_id == camp.id))}
    names = {
        a.id: a.name
        for a in session.scalars(select(Annotator).where(Annotator.campaign_id == camp.id))
    }
    rows = []
    for v in sorted(votes, key=lambda v: v.id):
        it = items[v.item_id]
        if len(it.responses) != 2 or v.outcome is None:
            continue
        meta = {
            "pair_id": it.external_id,
            "campaign": camp.name,
            "item_id": str(it.id),
            "vote_id": str(v.id),
            "revision": str(v.revision),
            "idempotency_key": v.idempotency_key,
            "created_at": v.created_at.isoformat(),
            "app_version": v.app_version,
        }
        if v.elapsed_ms is not None:
            meta["elapsed_ms"] = str(v.elapsed_ms)
        for k, x in v.answer.items():
            meta[k] = str(x)
        rows.append(
            {
                "id": f"{camp.id}-{v.annotator_id}-{it.id}",
                "prompt": it.prompt,
                "annotator": names.get(v.annotator_id),
                "source": camp.name,
                "rationale": v.rationale,
                "meta": meta,
                "response_a": it.responses[0],
                "response_b": it.responses[1],
                "model_a": it.models[0],
                "model_b": it.models[1],
                "outcome": v.outcome,
                "strength": v.strength,
                "shown_first": v.shown_first,
            }
        )
    return from_rows(rows, Kind.COMPARISONS)


def trl_rows(table: pa.Table) -> list[dict[str, str]]:
    """TRL preference rows (prompt, chosen, rejected) from decided votes; ties and both-bad
    are not preferences and are left out."""
    out = []
    for r in table.to_pylist():
        if r["outcome"] not in ("a", "b"):
            continue
        a, b = messages_text(r["response_a"]), messages_text(r["response_b"])
        chosen, rejected = (a, b) if r["outcome"] == "a" else (b, a)
        out.append({"prompt": messages_text(r["prompt"]), "chosen": chosen, "rejected": rejected})
    return out


def stats(session: Session, campaign_id: int) -> dict[str, Any]:
    """Progress per annotator, agreement, gold accuracy, time per task, leaderboard."""
    camp = session.get(Campaign, campaign_id)
    if camp is None:
        raise StoreError(404, "no such campaign")
    anns = list(session.scalars(select(Annotator).where(Annotator.campaign_id == camp.id)))
    items = {it.id: it for it in session.scalars(select(Item).where(Item.campaign_id == camp.id))}
    votes = _latest_votes(session, camp.id)
    revisions = dict(
        session.execute(
            select(Vote.annotator_id, func.count(Vote.id))
            .where(Vote.campaign_id == camp.id)
            .group_by(Vote.annotator_id)
        ).all()
    )
    per: dict[int, list[Vote]] = defaultdict(list)
    for v in votes:
        per[v.annotator_id].append(v)
    annotators: list[dict[str, Any]] = []
    for a in anns:
        vs = per.get(a.id, [])
        gold = [v for v in vs if items[v.item_id].gold is not None]
        times = [v.elapsed_ms for v in vs if v.elapsed_ms is not None]
        annotators.append(
            {
                "id": a.id,
                "name": a.name,
                "done": len(vs),
                "submissions": int(revisions.get(a.id, 0)),
                "gold_seen": len(gold),
                "gold_accuracy": (
                    sum(v.outcome == items[v.item_id].gold for v in gold) / len(gold)
                    if gold
                    else None
                ),
                "median_ms": float(np.median(times)) if times else None,
            }
        )
    by_item: dict[int, list[str]] = defaultdict(list)
    for v in votes:
        if v.outcome is not None:
            by_item[v.item_id].append(v.outcome)
    for row in annotators:
        row["agree_with_others"] = _agree_with_others(per.get(row["id"], []), by_item)
    return {
        "campaign": {"id": camp.id, "name": camp.name, "items": len(items)},
        "votes": len(votes),
        "annotators": annotators,
        "agreement": agreement(list(by_item.values())),
        "leaderboard": leaderboard(votes, items) if camp.arena else [],
    }


def _agree_with_others(mine: list[Vote], by_item: dict[int, list[str]]) -> float | None:
    """How often this annotator's answer is among the most frequent answers of the *other*
    annotators on the same item (items with at least one other vote); None if none."""
    hits = n = 0
    for v in mine:
        if v.outcome is None:
            continue
        others = list(by_item.get(v.item_id, []))
        others.remove(v.outcome)
        if not others:
            continue
        counts = {o: others.count(o) for o in set(others)}
        top = max(counts.values())
        hits += counts.get(v.outcome, 0) == top
        n += 1
    return hits / n if n else None


def agreement(groups: list[list[str]]) -> dict[str, Any]:
    """Raw pairwise agreement and Fleiss' κ (from prefkit.audit.agreement) over items with
    two or more votes; ties and both-bad are categories of their own."""
    cats = ["a", "b", "tie", "both_bad"]
    multi = [g for g in groups if len(g) >= 2]
    if not multi:
        return {"items": 0, "raw": None, "fleiss_kappa": None}
    counts = np.array([[g.count(c) for c in cats] for g in multi], dtype=np.float64)
    n = counts.sum(1)
    raw = float(np.mean((counts * (counts - 1)).sum(1) / (n * (n - 1))))
    kappa: float | None
    try:
        from prefkit.audit.agreement import fleiss_kappa

        kappa = float(fleiss_kappa(counts))
        if not np.isfinite(kappa):
            kappa = None
    except ImportError:  # pragma: no cover - the audit stage is optional
        kappa = None
    return {"items": len(multi), "raw": raw, "fleiss_kappa": kappa}


def leaderboard(votes: list[Vote], items: dict[int, Item]) -> list[dict[str, Any]]:
    """Bradley–Terry scores of the models from decided votes (ties count half each way)."""
    names = sorted({m for it in items.values() for m in it.models[:2] if m is not None})
    idx = {m: i for i, m in enumerate(names)}
    w: list[int] = []
    lo: list[int] = []
    games = np.zeros(len(names))
    for v in votes:
        it = items[v.item_id]
        ma, mb = it.models[0], it.models[1]
        if ma is None or mb is None or v.outcome not in ("a", "b", "tie"):
            continue
        a, b = idx[ma], idx[mb]
        games[[a, b]] += 1
        if v.outcome == "tie":
            w += [a, b]
            lo += [b, a]
        else:
            w.append(a if v.outcome == "a" else b)
            lo.append(b if v.outcome == "a" else a)
    s = assign.bt_scores(w, lo, len(names))
    order = np.argsort(-s)
    return [{"model": names[i], "score": float(s[i]), "battles": int(games[i])} for i in order]


def progress_of_campaign(session: Session, campaign_id: int) -> dict[str, int]:
    items = session.scalar(select(func.count(Item.id)).where(Item.campaign_id == campaign_id))
    votes = session.scalar(select(func.count(Vote.id)).where(Vote.campaign_id == campaign_id))
    anns = session.scalar(
        select(func.count(Annotator.id)).where(Annotator.campaign_id == campaign_id)
    )
    return {"items": int(items or 0), "submissions": int(votes or 0), "annotators": int(anns or 0)}
