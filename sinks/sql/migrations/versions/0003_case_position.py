"""The named person's position as a column of ``cases``, for the monitoring API's filters and
statistics (a JSON path over every row was the slowest part of ``/v1/stats``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written out in full (no imports from the hub's code), like 0001. Existing rows are backfilled
from ``record.person.position``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("position", sa.String(40)))
        batch.create_index("ix_cases_position", ["position"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE cases SET position = record->'person'->>'position'")
    else:
        op.execute("UPDATE cases SET position = json_extract(record, '$.person.position')")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_position")
        batch.drop_column("position")
