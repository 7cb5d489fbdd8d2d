"""The app's operations over the database (ORM only): campaigns and their lifecycle,
invitations, admin sessions, tasks, votes, export, statistics. The HTTP layer (app.py) and
the CLI call these."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prefkit import __version__
from prefkit.io.readers.unlabelled import iter_item_rows
from prefkit.schema import OUTCOMES, Kind, messages_text
from prefkit.serve import assign
from prefkit.serve.models import (
    AdminSession,
    Annotator,
    Assignment,
    Campaign,
    Item,
    Vote,
    utcnow,
)
from prefkit.serve.render import render_messages
from prefkit.serve.security import hash_token, new_token

QUESTION_TYPES = ("pairwise", "strength", "likert", "thumbs", "ranking", "rationale", "spans")
DEFAULT_QUESTIONS = ("pairwise", "strength", "rationale")
LIKERT = (1, 5)  # the Likert scale of the page and the votes API
APP_VERSION = f"prefkit {__version__}"
_rng = random.SystemRandom()


class StoreError(ValueError):
    """A request the store refuses; `status` is the HTTP status to answer, `detail` a sentence
    or (422) FastAPI-style `[{"loc", "msg", "type"}]`, or (409) a dict naming both versions."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else json.dumps(detail, default=str))
        self.status = status
        self.detail = detail


def invalid(field: str, msg: str) -> StoreError:
    """422 naming the request field, in the shape of FastAPI's validation errors."""
    return StoreError(422, [{"loc": ["body", *field.split(".")], "msg": msg, "type": "value_error"}])  # fmt: skip


@dataclass(frozen=True)
class Who:
    """An authenticated annotator (what the request handlers need, no ORM state)."""

    id: int
    campaign_id: int
    name: str
    expires_at: dt.datetime | None = None
    closed: bool = False  # the campaign is closed


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


def check_spec(spec: CampaignSpec) -> None:
    bad = [q for q in spec.questions if q not in QUESTION_TYPES]
    if bad:
        raise StoreError(422, f"unknown question types {bad}; known: {list(QUESTION_TYPES)}")
    if spec.policy not in assign.POLICIES:
        raise StoreError(422, f"unknown policy {spec.policy!r}; known: {list(assign.POLICIES)}")
    if spec.overlap < 1:
        raise StoreError(422, "overlap must be >= 1")
    if not spec.aspects or any(":" in a or not a.strip() for a in spec.aspects):
        raise StoreError(422, "aspects must be one or more non-empty names without ':'")
    for k, v in (spec.gold or {}).items():
        if v not in OUTCOMES:
            raise StoreError(422, f"gold answer {v!r} for {k!r} is not one of {sorted(OUTCOMES)}")


def questions_for(kind: Kind, questions: tuple[str, ...]) -> list[str]:
    """A pair campaign always asks `pairwise`; a ranking campaign always asks `ranking` and
    never `pairwise`/`strength` (they are questions about two responses)."""
    qs = [q for q in dict.fromkeys(questions)]
    if kind is Kind.COMPARISONS:
        return ["pairwise", *[q for q in qs if q not in ("pairwise", "ranking")]]
    return ["ranking", *[q for q in qs if q not in ("pairwise", "strength", "ranking")]]


def create_campaign(
    session: Session, items: pa.Table, spec: CampaignSpec, import_info: dict[str, Any] | None = None
) -> Campaign:  # fmt: skip
    """A campaign from an items table (`prefkit.io.readers.unlabelled.ITEMS`; see
    `prefkit.serve.items`): pairs when every item has two responses, else ranking items.
    Outcomes become gold answers only with `spec.gold_from_outcome`; a row's `meta.gold` or
    `spec.gold[pair_id or id]` marks a gold item too."""
    check_spec(spec)
    if items.num_rows == 0:
        raise StoreError(422, "no item to judge")
    rows = list(iter_item_rows(items))
    kind = Kind.COMPARISONS if all(len(r["responses"]) == 2 for r in rows) else Kind.RANKINGS
    gold = spec.gold or {}
    prepared = []
    for r in rows:
        meta = r["meta"]
        ext = str(meta.get("pair_id") or r["id"])[:200]
        g = gold.get(ext) or gold.get(str(r["id"])) or meta.get("gold")
        if g is None and spec.gold_from_outcome and kind is Kind.COMPARISONS:
            g = r["outcome"]
        if g is not None and g not in OUTCOMES:
            raise StoreError(422, f"gold answer {g!r} of item {ext!r} is not an outcome")
        if g is not None and kind is not Kind.COMPARISONS:
            raise StoreError(422, f"item {ext!r}: gold answers are for pairs, not ranking items")
        prepared.append((r, ext, g))
    camp = Campaign(
        name=spec.name,
        kind=kind.value,
        questions=questions_for(kind, spec.questions),
        guidelines=spec.guidelines,
        overlap=spec.overlap,
        policy=spec.policy,
        aspects=list(spec.aspects),
        arena=int(any(m is not None for r in rows for m in r["models"])),
        import_info=import_info,
    )
    session.add(camp)
    session.flush()
    session.execute(
        insert(Item),
        [
            {
                "campaign_id": camp.id,
                "position": pos,
                "external_id": ext,
                "prompt": r["prompt"] or [],
                "responses": r["responses"],
                "models": r["models"],
                "gold": g,
                "meta": {**r["meta"], "source_id": str(r["id"])},
            }
            for pos, (r, ext, g) in enumerate(prepared)
        ],
    )
    session.commit()
    return camp


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    camp = session.get(Campaign, campaign_id)
    if camp is None:
        raise StoreError(404, "no such campaign")
    return camp


def set_closed(session: Session, campaign_id: int, closed: bool) -> Campaign:
    """Close a campaign (no new tasks; votes answered 409) or reopen it."""
    camp = get_campaign(session, campaign_id)
    camp.closed_at = (camp.closed_at or utcnow()) if closed else None
    session.commit()
    return camp


# --------------------------------------------------------------------------------------
# Annotators and admin sessions


def invite(
    session: Session, campaign_id: int, name: str, expires_in_s: float | None = None
) -> tuple[Annotator, str]:
    """A new annotator; returns it and its token (shown once, stored only as sha256)."""
    get_campaign(session, campaign_id)
    token = new_token()
    expires = utcnow() + dt.timedelta(seconds=expires_in_s) if expires_in_s else None
    ann = Annotator(
        campaign_id=campaign_id, name=name, token_hash=hash_token(token), expires_at=expires
    )
    session.add(ann)
    session.commit()
    return ann, token


def annotator_json(a: Annotator) -> dict[str, Any]:
    return {
        "id": a.id,
        "campaign_id": a.campaign_id,
        "name": a.name,
        "created_at": a.created_at.isoformat(),
        "expires_at": a.expires_at.isoformat() if a.expires_at else None,
        "revoked": bool(a.revoked),
    }


def annotators(session: Session, campaign_id: int) -> list[Annotator]:
    get_campaign(session, campaign_id)
    return list(
        session.scalars(
            select(Annotator).where(Annotator.campaign_id == campaign_id).order_by(Annotator.id)
        )
    )


def revoke(session: Session, annotator_id: int, campaign_id: int | None = None) -> Annotator:
    """Revoke an invitation: its token is refused from the next request on (votes kept)."""
    ann = session.get(Annotator, annotator_id)
    if ann is None or (campaign_id is not None and ann.campaign_id != campaign_id):
        raise StoreError(404, "no such annotator" + (" in this campaign" if campaign_id else ""))
    ann.revoked = 1
    session.commit()
    return ann


_WHO_Q = (
    select(
        Annotator.id,
        Annotator.campaign_id,
        Annotator.name,
        Annotator.expires_at,
        Annotator.revoked,
        Campaign.closed_at,
    )
    .join(Campaign, Campaign.id == Annotator.campaign_id)
    .where(Annotator.token_hash == bindparam("h"))
)


def annotator_by_token(session: Session, token: str | None) -> Who | None:
    """The annotator holding this token, or None (unknown, revoked or expired)."""
    if not token:
        return None
    return annotator_by_hash(session, hash_token(token))


def annotator_by_hash(session: Session, token_hash: str) -> Who | None:
    """One indexed query per request: revocation, expiry and closing act at once."""
    row = session.execute(_WHO_Q, {"h": token_hash}).one_or_none()
    if row is None or row.revoked:
        return None
    if row.expires_at is not None and row.expires_at < utcnow():
        return None
    return Who(row.id, row.campaign_id, row.name, row.expires_at, row.closed_at is not None)


def start_admin_session(session: Session, sid: str, expires_at: dt.datetime) -> None:
    session.add(AdminSession(sid_hash=hash_token(sid), expires_at=expires_at))
    session.commit()


def admin_session_active(session: Session, sid: str) -> bool:
    row = session.scalars(
        select(AdminSession).where(AdminSession.sid_hash == hash_token(sid))
    ).one_or_none()
    return row is not None and row.ended_at is None and row.expires_at > utcnow()


def end_admin_session(session: Session, sid: str) -> None:
    row = session.scalars(
        select(AdminSession).where(AdminSession.sid_hash == hash_token(sid))
    ).one_or_none()
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        session.commit()


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


def _model_battles(votes: list[Vote], models: dict[int, list[Any]]) -> tuple[list[str], list[str], list[str]]:  # fmt: skip
    """(model_a, model_b, outcome) of the votes on pairs whose two models are known."""
    ma: list[str] = []
    mb: list[str] = []
    out: list[str] = []
    for v in votes:
        m = models.get(v.item_id)
        if m is None or len(m) != 2 or None in m or v.outcome not in OUTCOMES:
            continue
        ma.append(m[0])
        mb.append(m[1])
        out.append(str(v.outcome))
    return ma, mb, out


def _uncertainty(
    session: Session, camp: Campaign, items: list[Any], cands: list[Any]
) -> list[float]:
    """Value of one more vote on each candidate: for arena campaigns `prefkit select`'s
    active criterion (`interval`: the chance of misordering neighbours in a ranking drawn from
    the Bradley–Terry posterior of the votes so far, outcome uncertainty as tie-break), else
    the pair's own vote split (Laplace)."""
    votes = _latest_votes(session, camp.id)
    if camp.arena:
        names = sorted({m for it in items for m in it.models[:2] if m is not None})
        if not names:
            return [1.0] * len(cands)
        idx = {m: i for i, m in enumerate(names)}
        from prefkit.select.active import arena_item_gains

        ma, mb, res = _model_battles(votes, {it.id: it.models for it in items})
        pa_ = np.array([idx.get(it.models[0], 0) for it in cands], dtype=np.int64)
        pb_ = np.array([idx.get(it.models[1], 0) for it in cands], dtype=np.int64)
        gain, unc = arena_item_gains(names, ma, mb, res, pa_, pb_)
        top = float(gain.max()) if gain.size else 0.0
        # the interval gain decides; the outcome uncertainty breaks near-ties
        return [
            float(g / top if top > 0 else 0.0) + 1e-3 * float(u)
            for g, u in zip(gain, unc, strict=True)
        ]
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
    (with the left/right order drawn at random and recorded). None when nothing is left or
    the campaign is closed."""
    if ann.closed:
        return None
    answered = select(Vote.item_id).where(Vote.annotator_id == ann.id)
    open_ = session.scalars(
        select(Assignment)
        .where(Assignment.annotator_id == ann.id, Assignment.item_id.not_in(answered))
        .order_by(Assignment.seq)
        .limit(1)
    ).one_or_none()
    if open_ is not None:
        return open_
    camp = get_campaign(session, ann.campaign_id)
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
        k = assign.choose(
            camp.policy,
            [it.id for it in cands],
            [it.position for it in cands],
            [counts.get(it.id, 0) for it in cands],
            ann.id,
            len(items),
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
    camp = get_campaign(session, ann.campaign_id)
    assert item is not None
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
        "closed": camp.closed_at is not None,
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


# The vote path's context in one statement (bound parameters; compiled form cached): the
# item's campaign, questions and state, the assignment of this annotator, the last revision.
_CTX_Q = (
    select(
        Item.campaign_id,
        Campaign.kind,
        Campaign.questions,
        Campaign.aspects,
        Campaign.closed_at,
        Assignment.shown_first,
        Assignment.assigned_at,
        select(func.max(Vote.revision))
        .where(Vote.annotator_id == bindparam("ann"), Vote.item_id == bindparam("item"))
        .scalar_subquery(),
    )
    .join(Campaign, Campaign.id == Item.campaign_id)
    .outerjoin(
        Assignment,
        (Assignment.item_id == Item.id) & (Assignment.annotator_id == bindparam("ann")),
    )
    .where(Item.id == bindparam("item"))
)
_INSERT = insert(Vote).returning(Vote.id)
ANSWER_KEYS = ("likert", "thumbs", "ranking", "spans")
OPTIONAL_QUESTIONS = ("strength", "rationale", *ANSWER_KEYS)  # a field named as its question


def _check_strength(outcome: str | None, s: float | None) -> None:
    """`strength` is canonical and directional: 1 = strongly prefers a, 0.5 = no preference,
    0 = strongly prefers b; it must agree with the outcome."""
    if s is None:
        return
    if outcome == "a" and not s > 0.5:
        raise invalid("strength", f"{s} does not prefer a, but the outcome is a (strength is directional: 1 = strongly prefers a, 0 = strongly prefers b)")  # fmt: skip
    if outcome == "b" and not s < 0.5:
        raise invalid("strength", f"{s} does not prefer b, but the outcome is b (strength is directional: 1 = strongly prefers a, 0 = strongly prefers b)")  # fmt: skip
    if outcome == "tie" and s != 0.5:
        raise invalid("strength", "a tie has strength 0.5 (no preference) or null")
    if outcome in ("both_bad", None):
        raise invalid("strength", f"no strength with outcome {outcome}")


def _check_answer(
    p: dict[str, Any], kind: str, questions: list[str], aspects: list[str],
    responses: Callable[[], list[Any]],
) -> None:  # fmt: skip
    """Every answer against the item and the campaign's questions (422 naming the field)."""
    for q in OPTIONAL_QUESTIONS:
        if p.get(q) is not None and q not in questions:
            raise invalid(q, f"{q} is not a question of this campaign (questions: {', '.join(questions)})")  # fmt: skip
    outcome = p.get("outcome")
    if kind == Kind.COMPARISONS.value:
        if outcome is None:
            raise invalid("outcome", "an answer to a pair needs an outcome")
        _check_strength(outcome, p.get("strength"))
        sides: tuple[str, ...] = ("a", "b")
    else:
        if outcome is not None:
            raise invalid("outcome", "a ranking item takes a ranking, not an outcome")
        n = len(responses())
        ranking = p.get("ranking")
        if not ranking or len(ranking) != n:
            raise invalid("ranking", f"ranking needs {n} ranks, one per response")
        if max(ranking) > n:
            raise invalid("ranking", f"ranks are 1..{n} (1 = best; ties share a rank)")
        sides = tuple(str(i) for i in range(n))
    for side in p.get("thumbs") or {}:
        if side not in sides:
            raise invalid("thumbs", f"{side!r} is not a response of this item ({', '.join(sides)})")  # fmt: skip
    for key in p.get("likert") or {}:
        aspect, side = key.rsplit(":", 1)
        if aspect not in aspects or side not in sides:
            raise invalid("likert", f"{key!r} is not aspect:response with aspect in {aspects} and response in {list(sides)}")  # fmt: skip
    spans = p.get("spans") or []
    if spans:
        texts = responses()
        for k, sp in enumerate(spans):
            side = sp["response"]
            if side not in sides:
                raise invalid(f"spans.{k}.response", f"{side!r} is not a response of this item")  # fmt: skip
            i = sides.index(side) if kind == Kind.COMPARISONS.value else int(side)
            length = len(messages_text(texts[i]))
            if sp["end"] > length:
                raise invalid(f"spans.{k}.end", f"{sp['end']} is past the end of response {side} ({length} characters)")  # fmt: skip


def _as_sent(p: dict[str, Any], item_id: int) -> dict[str, Any]:
    """The parts of a vote that make it the same answer (not its timing)."""
    return {
        "item_id": item_id,
        "outcome": p.get("outcome"),
        "strength": p.get("strength"),
        "rationale": p.get("rationale"),
        **{k: p[k] for k in ANSWER_KEYS if p.get(k) is not None},
    }


def _as_stored(v: Vote) -> dict[str, Any]:
    return {
        "item_id": v.item_id,
        "outcome": v.outcome,
        "strength": v.strength,
        "rationale": v.rationale,
        **{k: v.answer[k] for k in ANSWER_KEYS if v.answer.get(k) is not None},
    }


def _replay(session: Session, ann: Who, key: str, sent: dict[str, Any]) -> dict[str, Any] | None:
    """The first response for a key this annotator used before (a retry), None for a new key;
    409 naming both versions when the key was used for a different answer."""
    v = session.scalars(
        select(Vote).where(Vote.annotator_id == ann.id, Vote.idempotency_key == key)
    ).one_or_none()
    if v is None:
        return None
    stored = _as_stored(v)
    if json.dumps(stored, sort_keys=True) != json.dumps(sent, sort_keys=True):
        raise StoreError(
            409,
            {
                "message": "this idempotency key was already used for a different answer; "
                "send a new key for a new answer",
                "idempotency_key": key,
                "stored": stored,
                "sent": sent,
            },
        )
    return vote_response(v)


def submit_vote(session: Session, ann: Who, payload: dict[str, Any]) -> dict[str, Any]:
    """Record an answer once per (annotator, idempotency key): a retry returns the first
    response, the same key with another answer is 409. Only for a task the server assigned
    to this annotator; the order shown is the one recorded at assignment.

    The fast path is two statements: the context (item, campaign, assignment, last revision)
    and the insert; a key seen before fails the unique constraint and is replayed."""
    key = str(payload["idempotency_key"])
    item_id = int(payload["item_id"])
    ctx = session.execute(_CTX_Q, {"ann": ann.id, "item": item_id}).one_or_none()
    if ctx is None or ctx[0] != ann.campaign_id:
        raise StoreError(404, "no such item in your campaign")
    _, kind, questions, aspects, closed_at, shown, assigned_at, last = ctx
    sent = _as_sent(payload, item_id)
    if closed_at is not None:
        prior = _replay(session, ann, key, sent)
        if prior is not None:
            return prior
        raise StoreError(409, "the campaign is closed: no more votes")
    if shown is None:
        raise StoreError(403, f"item {item_id} was not assigned to you (GET /api/task/next)")

    def responses() -> list[Any]:
        return list(session.scalar(select(Item.responses).where(Item.id == item_id)) or [])

    _check_answer(payload, kind, questions, aspects, responses)
    now = utcnow()
    elapsed = payload.get("elapsed_ms")
    if elapsed is None and assigned_at is not None and not last:
        elapsed = min(int((now - assigned_at).total_seconds() * 1000), 2**31 - 1)
    values = {
        "idempotency_key": key,
        "campaign_id": ann.campaign_id,
        "annotator_id": ann.id,
        "item_id": item_id,
        "revision": int(last or 0) + 1,
        "outcome": payload.get("outcome"),
        "strength": payload.get("strength"),
        "rationale": payload.get("rationale"),
        "answer": {k: payload[k] for k in ANSWER_KEYS if payload.get(k) is not None},
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
        prior = _replay(session, ann, key, sent)
        if prior is None:
            raise
        return prior
    return {
        "vote_id": vid,
        "idempotency_key": key,
        "item_id": item_id,
        "revision": values["revision"],
        "outcome": values["outcome"],
        "shown_first": shown,
        "created_at": now.isoformat(),
    }


def my_votes(session: Session, ann: Who) -> list[dict[str, Any]]:
    """The annotator's own answers (every revision, history kept)."""
    rows = session.scalars(select(Vote).where(Vote.annotator_id == ann.id).order_by(Vote.id)).all()
    return [{**vote_response(v), "strength": v.strength, "rationale": v.rationale} for v in rows]


# --------------------------------------------------------------------------------------
# Export and statistics


def _meta_value(x: Any) -> str:
    """A meta value as canonical tables keep it: strings as they are, the rest as JSON."""
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, sort_keys=True)


def export_table(session: Session, campaign_id: int) -> pa.Table:
    """The campaign's current answers (one row per annotator and item: the latest revision)
    as canonical comparisons (pair campaigns) or rankings (ranking campaigns), with
    annotator, `shown_first`, directional `strength`, and every other answer in `meta`."""
    from prefkit.schema import from_rows

    camp = get_campaign(session, campaign_id)
    votes = _latest_votes(session, campaign_id)
    items = {it.id: it for it in session.scalars(select(Item).where(Item.campaign_id == camp.id))}
    names = {a.id: a.name for a in annotators(session, camp.id)}
    kind = Kind(camp.kind)
    rows = []
    for v in sorted(votes, key=lambda v: v.id):
        it = items[v.item_id]
        meta = {str(k): _meta_value(x) for k, x in (it.meta or {}).items()}
        meta.update(
            {
                "pair_id": it.external_id,
                "campaign": camp.name,
                "item_id": str(it.id),
                "vote_id": str(v.id),
                "revision": str(v.revision),
                "idempotency_key": v.idempotency_key,
                "created_at": v.created_at.isoformat(),
                "app_version": v.app_version,
            }
        )
        if v.elapsed_ms is not None:
            meta["elapsed_ms"] = str(v.elapsed_ms)
        for k, x in v.answer.items():
            if not (kind is Kind.RANKINGS and k == "ranking"):
                meta[k] = _meta_value(x)
        row: dict[str, Any] = {
            "id": f"{camp.id}-{v.annotator_id}-{it.id}",
            "prompt": it.prompt,
            "annotator": names.get(v.annotator_id),
            "source": camp.name,
            "rationale": v.rationale,
            "meta": meta,
        }
        if kind is Kind.COMPARISONS:
            row.update(
                response_a=it.responses[0], response_b=it.responses[1],
                model_a=it.models[0], model_b=it.models[1], outcome=v.outcome,
                strength=v.strength, shown_first=v.shown_first,
            )  # fmt: skip
        else:
            row.update(responses=it.responses, models=it.models, ranks=v.answer["ranking"])
        rows.append(row)
    return from_rows(rows, kind)


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
    camp = get_campaign(session, campaign_id)
    anns = annotators(session, camp.id)
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
    rows: list[dict[str, Any]] = []
    for a in anns:
        vs = per.get(a.id, [])
        gold = [v for v in vs if items[v.item_id].gold is not None]
        times = [v.elapsed_ms for v in vs if v.elapsed_ms is not None]
        rows.append(
            {
                "id": a.id,
                "name": a.name,
                "revoked": bool(a.revoked),
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
    for row in rows:
        row["agree_with_others"] = _agree_with_others(per.get(row["id"], []), by_item)
    return {
        "campaign": {
            "id": camp.id,
            "name": camp.name,
            "items": len(items),
            "closed": camp.closed_at is not None,
        },  # fmt: skip
        "votes": len(votes),
        "annotators": rows,
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
    """Bradley–Terry scores of the models (natural log, mean 0) by `prefkit.rank` with its
    defaults (ties and both-bad half a win each way): what `prefkit rank` gives on the
    export."""
    names = sorted({m for it in items.values() for m in it.models[:2] if m is not None})
    ma, mb, out = _model_battles(votes, {i: it.models for i, it in items.items()})
    s = assign.bt_scores(ma, mb, out, names)
    games: dict[str, int] = defaultdict(int)
    for a, b in zip(ma, mb, strict=True):
        if a != b:
            games[a] += 1
            games[b] += 1
    order = np.argsort(-s, kind="stable")
    return [{"model": names[i], "score": float(s[i]), "battles": games[names[i]]} for i in order]


def progress_of_campaign(session: Session, campaign_id: int) -> dict[str, int]:
    items = session.scalar(select(func.count(Item.id)).where(Item.campaign_id == campaign_id))
    votes = session.scalar(select(func.count(Vote.id)).where(Vote.campaign_id == campaign_id))
    anns = session.scalar(
        select(func.count(Annotator.id)).where(Annotator.campaign_id == campaign_id)
    )
    return {"items": int(items or 0), "submissions": int(votes or 0), "annotators": int(anns or 0)}
