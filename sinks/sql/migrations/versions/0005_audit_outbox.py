"""The outbox of the access log to ``netral.audit``: one row per ``audit_log`` entry.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``audit_log`` stays insert-only (its triggers refuse UPDATE), so the relay's "published" marker
lives in its own table, written with each entry and updated once the broker acknowledged it.
Entries logged before this revision are queued too, so none is missing from the topic.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_outbox",
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(36), nullable=False),
        sa.Column("published_at", TS),
        sa.Column("kafka_partition", sa.Integer()),
        sa.Column("kafka_offset", sa.BigInteger()),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_log.id"],
                                name="fk_audit_outbox_audit_id_audit_log"),
        sa.PrimaryKeyConstraint("audit_id", name="pk_audit_outbox"),
        sa.UniqueConstraint("entry_id", name="uq_audit_outbox_entry_id"),
        comment="Outbox of audit_log to netral.audit: one row per entry, written with it; the "
                "relay marks it published (audit_log itself stays insert-only).",
    )
    op.create_index("ix_audit_outbox_published_at", "audit_outbox", ["published_at"])
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM audit_log ORDER BY id")).scalars().all()
    if ids:
        bind.execute(sa.text("INSERT INTO audit_outbox (audit_id, entry_id) VALUES (:a, :e)"),
                     [{"a": i, "e": str(uuid.uuid4())} for i in ids])


def downgrade() -> None:
    op.drop_table("audit_outbox")
