"""Personal-data access log (append-only), purge runs (append-only) and purged cases.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Written out in full (no imports from the hub's code), like 0001. ``netral_append_only()`` is
the PostgreSQL function 0001 created.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
APPEND_ONLY = ("audit_log", "purges")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject_kind", sa.String(40), nullable=False),
        sa.Column("subject_id", sa.String(100)),
        sa.Column("remote_addr", sa.String(64)),
        sa.Column("request_id", sa.String(100)),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        comment="Personal-data access log (UU 27/2022): insert-only; triggers refuse UPDATE, "
                "DELETE.",
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject_kind_subject_id", "audit_log",
                    ["subject_kind", "subject_id"])
    op.create_index("ix_audit_log_principal", "audit_log", ["principal"])
    op.create_table(
        "purges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("older_than", TS, nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_purges"),
        comment="Each `netral purge` run: cutoff and how many rows lost their personal data.",
    )
    op.create_table(
        "purged_cases",
        sa.Column("case_id", sa.String(100), nullable=False),
        sa.Column("purged_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_purged_cases"),
        comment="Cases whose personal data was purged: a replay of the topics must not restore "
                "it.",
    )
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
        elif dialect == "postgresql":
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION netral_append_only()")


def downgrade() -> None:
    for table in ("purged_cases", "purges", "audit_log"):
        op.drop_table(table)
