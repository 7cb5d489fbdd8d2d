"""directional strength, per-annotator idempotency keys, campaign close, admin sessions

Revision ID: 0003
Revises: 0002

- `votes.strength` held "how much better" (0.34 / 0.67 / 1.0) for whichever side won, while
  the canonical `strength` is directional (1 = strongly prefers `a`, 0 = strongly prefers `b`).
  Stored values become canonical: a win of `a` with magnitude m -> 0.5 + m/2, a win of `b` ->
  0.5 - m/2, a tie -> 0.5, both-bad -> null. The value as submitted is kept in the vote's
  `answer` JSON as `legacy_strength`, so nothing is lost.
- Idempotency keys are unique per annotator (were unique over the whole database, which told
  one annotator whether another had used a key).
- `campaigns.closed_at` (closing a campaign), `campaigns.import_info` (reader, rows read,
  rejected rows), and the `admin_sessions` table (signed, expiring admin sessions, logout).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_VOTES = sa.table(
    "votes",
    sa.column("id", sa.Integer),
    sa.column("outcome", sa.String),
    sa.column("strength", sa.Float),
    sa.column("answer", sa.JSON),
)


def _votes_0002() -> sa.Table:
    """The votes table as revisions 0001 and 0002 left it."""
    return sa.Table(
        "votes",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotators.id"), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("strength", sa.Float(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("shown_first", sa.String(length=1), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=True),
        sa.Column("app_version", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", name="uq_votes_idempotency_key"),
        sa.Index("ix_votes_annotator_id", "annotator_id"),
        sa.Index("ix_votes_campaign_id", "campaign_id"),
        sa.Index("ix_votes_item_id", "item_id"),
        sa.Index("ix_votes_annotator_item", "annotator_id", "item_id"),
    )


def directional(outcome: str | None, magnitude: float) -> float | None:
    """The canonical strength of an old "how much better" value (see the module docstring)."""
    m = min(max(float(magnitude), 0.0), 1.0)
    if outcome == "a":
        return 0.5 + m / 2
    if outcome == "b":
        return 0.5 - m / 2
    if outcome == "tie":
        return 0.5
    return None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_VOTES.c.id, _VOTES.c.outcome, _VOTES.c.strength, _VOTES.c.answer).where(
            _VOTES.c.strength.is_not(None)
        )
    ).all()
    for vid, outcome, strength, answer in rows:
        conn.execute(
            _VOTES.update()
            .where(_VOTES.c.id == vid)
            .values(
                strength=directional(outcome, strength),
                answer={**(answer or {}), "legacy_strength": strength},
            )
        )
    op.add_column("campaigns", sa.Column("closed_at", sa.DateTime(), nullable=True))
    op.add_column("campaigns", sa.Column("import_info", sa.JSON(), nullable=True))
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sid_hash"),
    )
    if conn.dialect.name == "sqlite":
        # SQLite cannot drop a constraint: batch mode copies the table, from the table as
        # 0001/0002 made it (given here, so 0001's unnamed unique constraint has a name)
        with op.batch_alter_table("votes", copy_from=_votes_0002(), recreate="always") as b:
            b.drop_constraint("uq_votes_idempotency_key", type_="unique")
            b.create_unique_constraint("uq_vote_key", ["annotator_id", "idempotency_key"])
    else:
        op.drop_constraint("votes_idempotency_key_key", "votes", type_="unique")
        op.create_unique_constraint("uq_vote_key", "votes", ["annotator_id", "idempotency_key"])


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        with op.batch_alter_table("votes", recreate="always") as b:
            b.drop_constraint("uq_vote_key", type_="unique")
            b.create_unique_constraint("votes_idempotency_key_key", ["idempotency_key"])
    else:
        op.drop_constraint("uq_vote_key", "votes", type_="unique")
        op.create_unique_constraint("votes_idempotency_key_key", "votes", ["idempotency_key"])
    op.drop_table("admin_sessions")
    op.drop_column("campaigns", "import_info")
    op.drop_column("campaigns", "closed_at")
    rows = conn.execute(
        sa.select(_VOTES.c.id, _VOTES.c.strength, _VOTES.c.answer).where(
            _VOTES.c.strength.is_not(None)
        )
    ).all()
    for vid, strength, answer in rows:
        answer = dict(answer or {})
        legacy = answer.pop("legacy_strength", None)
        old = legacy if legacy is not None else abs(float(strength) - 0.5) * 2
        conn.execute(_VOTES.update().where(_VOTES.c.id == vid).values(strength=old, answer=answer))
