"""The national record: persons, cases, case transitions, SIASN orders and results, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written out in full (no imports from the hub's code), so this revision stays what it was when the
tables change later.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

APPEND_ONLY_SQLITE = [
    f"CREATE TRIGGER case_transitions_no_{op_.lower()} BEFORE {op_} ON case_transitions "
    f"BEGIN SELECT RAISE(ABORT, 'case_transitions is append-only'); END"
    for op_ in ("UPDATE", "DELETE")
]
APPEND_ONLY_POSTGRESQL = [
    "CREATE OR REPLACE FUNCTION netral_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$",
    "CREATE TRIGGER case_transitions_append_only BEFORE UPDATE OR DELETE ON case_transitions "
    "FOR EACH ROW EXECUTE FUNCTION netral_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("nip", sa.String(18), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("agency", sa.String(200), nullable=False),
        sa.Column("agency_code", sa.String(100)),
        sa.Column("position", sa.String(40)),
        sa.Column("position_title", sa.String(200)),
        sa.Column("region", sa.String(20)),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("nip", name="pk_persons"),
        comment="Civil servants named in a case with a known NIP; the newest case's view wins.",
    )
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("election", sa.String(40), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("nip", sa.String(18)),
        sa.Column("person_name", sa.String(200), nullable=False),
        sa.Column("agency_name", sa.String(200), nullable=False),
        sa.Column("agency_code", sa.String(100)),
        sa.Column("region_code", sa.String(20), nullable=False),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("violation_type", sa.String(40), nullable=False),
        sa.Column("violation_kind", sa.String(40)),
        sa.Column("level", sa.String(40)),
        sa.Column("ppk_name", sa.String(200)),
        sa.Column("ppk_agency_code", sa.String(100)),
        sa.Column("incident_date", sa.Date(), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("recommendation_deadline", sa.Date()),
        sa.Column("next_deadline", sa.Date()),
        sa.Column("escalation_step", sa.SmallInteger(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("record", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(["nip"], ["persons.nip"], name="fk_cases_nip_persons"),
        sa.PrimaryKeyConstraint("case_id", name="pk_cases"),
        comment="One row per case: the highest version of its CaseRecord (netral.cases).",
    )
    for column in ("state", "province_code", "agency_name", "updated_at", "nip", "next_deadline"):
        op.create_index(f"ix_cases_{column}", "cases", [column])
    op.create_table(
        "case_transitions",
        sa.Column("transition_id", sa.String(100), nullable=False),
        sa.Column("case_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(40)),
        sa.Column("to_state", sa.String(40), nullable=False),
        sa.Column("cause_event_id", sa.String(100)),
        sa.Column("at", TS, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("transition_id", name="pk_case_transitions"),
        comment="Audit trail (netral.case-events): insert-only; triggers refuse UPDATE and DELETE.",
    )
    op.create_index("ix_case_transitions_case_id_version", "case_transitions",
                    ["case_id", "version"])
    op.create_index("ix_case_transitions_at", "case_transitions", ["at"])
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(100), nullable=False),
        sa.Column("case_id", sa.String(100), nullable=False),
        sa.Column("nip", sa.String(18), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(200), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
        comment="SIASN block/unblock orders (netral.orders.siasn); order_id: idempotency key.",
    )
    op.create_index("ix_orders_case_id", "orders", ["case_id"])
    op.create_index("ix_orders_nip", "orders", ["nip"])
    op.create_table(
        "order_results",
        sa.Column("order_id", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("case_id", sa.String(100), nullable=False),
        sa.Column("nip", sa.String(18), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("order_id", "outcome", name="pk_order_results"),
        comment="What SIASN did with each order (netral.orders.siasn.results).",
    )
    op.create_index("ix_order_results_case_id", "order_results", ["case_id"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(40), nullable=False),
        sa.Column("region_code", sa.String(20), nullable=False),
        sa.Column("province_code", sa.String(2), nullable=False),
        sa.Column("case_id", sa.String(100)),
        sa.Column("nip", sa.String(18)),
        sa.Column("agency_name", sa.String(200)),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
        comment="Early-warning alerts (netral.alerts).",
    )
    for column in ("province_code", "at", "case_id"):
        op.create_index(f"ix_alerts_{column}", "alerts", [column])
    triggers = {"sqlite": APPEND_ONLY_SQLITE, "postgresql": APPEND_ONLY_POSTGRESQL}
    for sql in triggers.get(op.get_bind().dialect.name, []):
        op.execute(sql)


def downgrade() -> None:
    for table in ("alerts", "order_results", "orders", "case_transitions", "cases", "persons"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS netral_append_only()")
