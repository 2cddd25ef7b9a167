"""The Satgas alert delivery ledger: each alert once per recipient and channel.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Written out in full (no imports from the hub's code), like 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("digest_due_at", TS),
        sa.Column("delivery_id", sa.String(100)),
        sa.Column("view", JSON_DOC),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("dedupe_key", "recipient", "channel",
                                name="pk_alert_deliveries"),
        comment="Satgas alert deliveries: each alert once per recipient and channel, "
                "with outcome.",
    )
    op.create_index("ix_alert_deliveries_status_digest_due_at", "alert_deliveries",
                    ["status", "digest_due_at"])
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
