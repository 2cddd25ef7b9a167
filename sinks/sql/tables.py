"""The national record's tables (SQLAlchemy Core), as the migrations create them.

Enumerations are stored as their symbols in plain strings, not database enums, so a new symbol in
an ``.avsc`` needs no migration. Instants are aware UTC datetimes on both dialects
(:class:`UtcDateTime`). ``cases.record`` keeps the full :class:`~schemas.models.CaseRecord` as
JSON, so the API serves exactly what the stream decided while the columns serve filters and sorts.

These definitions are the target of ``alembic revision --autogenerate``; the schema itself changes
only through a migration (``sinks/sql/migrations``), never by ``create_all`` in production.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from schemas.models.types import MAX_ID, MAX_NAME, MAX_REF, MAX_TITLE

NIP_LEN = 18
REGION_LEN = 20
SYMBOL_LEN = 40

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so migrations (and SQLite batch mode) can refer to them."""

metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC instant on every dialect (SQLite has no time zones and drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the national record stores aware UTC instants")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument: Any = JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL (indexable, compact)."""

persons = Table(
    "persons",
    metadata,
    Column("nip", String(NIP_LEN), primary_key=True),
    Column("name", String(MAX_NAME), nullable=False),
    Column("agency", String(MAX_NAME), nullable=False),
    Column("agency_code", String(MAX_ID)),
    Column("position", String(SYMBOL_LEN)),
    Column("position_title", String(MAX_NAME)),
    Column("region", String(REGION_LEN)),
    # the case update this row was taken from: the newest case wins, a replay changes nothing
    Column("updated_at", UtcDateTime(), nullable=False),
    comment="Civil servants named in a case with a known NIP; the newest case's view wins.",
)

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(MAX_ID), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("election", String(SYMBOL_LEN), nullable=False),
    Column("state", String(SYMBOL_LEN), nullable=False),
    Column("nip", String(NIP_LEN), ForeignKey("persons.nip")),
    Column("person_name", String(MAX_NAME), nullable=False),
    Column("agency_name", String(MAX_NAME), nullable=False),
    Column("agency_code", String(MAX_ID)),
    Column("region_code", String(REGION_LEN), nullable=False),
    Column("province_code", String(2), nullable=False),
    Column("violation_type", String(SYMBOL_LEN), nullable=False),
    Column("violation_kind", String(SYMBOL_LEN)),
    # record.person.position, for filters and statistics (migration 0003)
    Column("position", String(SYMBOL_LEN)),
    Column("level", String(SYMBOL_LEN)),
    Column("ppk_name", String(MAX_NAME)),
    Column("ppk_agency_code", String(MAX_ID)),
    Column("incident_date", Date, nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("recommendation_deadline", Date),
    Column("next_deadline", Date),
    Column("escalation_step", SmallInteger, nullable=False),
    Column("blocked", Boolean, nullable=False),
    Column("record", JsonDocument, nullable=False),
    Index(None, "state"),
    Index(None, "province_code"),
    Index(None, "agency_name"),
    Index(None, "updated_at"),
    Index(None, "nip"),
    Index(None, "next_deadline"),
    Index(None, "position"),
    comment="One row per case: the highest version of its CaseRecord (netral.cases).",
)

case_transitions = Table(
    "case_transitions",
    metadata,
    Column("transition_id", String(MAX_ID), primary_key=True),
    # no foreign key to cases: a transition may arrive before its case (different topics)
    Column("case_id", String(MAX_ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("from_state", String(SYMBOL_LEN)),
    Column("to_state", String(SYMBOL_LEN), nullable=False),
    Column("cause_event_id", String(MAX_ID)),
    Column("at", UtcDateTime(), nullable=False),
    Column("rule", String(MAX_NAME), nullable=False),
    Index(None, "case_id", "version"),
    Index(None, "at"),
    comment="Audit trail (netral.case-events): insert-only; triggers refuse UPDATE and DELETE.",
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(MAX_ID), primary_key=True),
    Column("case_id", String(MAX_ID), nullable=False),
    Column("nip", String(NIP_LEN), nullable=False),
    Column("action", String(SYMBOL_LEN), nullable=False),
    Column("scope", String(SYMBOL_LEN), nullable=False),
    Column("reason", Text, nullable=False),
    Column("legal_basis", String(MAX_REF), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Index(None, "case_id"),
    Index(None, "nip"),
    comment="SIASN block/unblock orders (netral.orders.siasn); order_id: idempotency key.",
)

order_results = Table(
    "order_results",
    metadata,
    Column("order_id", String(MAX_ID), nullable=False),
    Column("outcome", String(SYMBOL_LEN), nullable=False),
    Column("case_id", String(MAX_ID), nullable=False),
    Column("nip", String(NIP_LEN), nullable=False),
    Column("action", String(SYMBOL_LEN), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("detail", Text),
    # one row per (order, outcome): the first report of an outcome is kept, repeats are no-ops
    PrimaryKeyConstraint("order_id", "outcome"),
    Index(None, "case_id"),
    comment="What SIASN did with each order (netral.orders.siasn.results).",
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(MAX_ID), primary_key=True),
    Column("rule", String(MAX_NAME), nullable=False),
    Column("severity", String(SYMBOL_LEN), nullable=False),
    Column("region_code", String(REGION_LEN), nullable=False),
    Column("province_code", String(2), nullable=False),
    Column("case_id", String(MAX_ID)),
    Column("nip", String(NIP_LEN)),
    Column("agency_name", String(MAX_NAME)),
    Column("title", String(MAX_TITLE), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("dedupe_key", String(MAX_REF), nullable=False),
    Index(None, "province_code"),
    Index(None, "at"),
    Index(None, "case_id"),
    comment="Early-warning alerts (netral.alerts).",
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    # one row per (alert, recipient, channel): the key that makes delivery once per recipient
    Column("dedupe_key", String(MAX_REF), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("alert_id", String(MAX_ID), nullable=False),
    # PENDING (claimed, being sent), QUEUED (waits for a digest), SENT, FAILED
    Column("status", String(SYMBOL_LEN), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("digest_due_at", UtcDateTime()),
    Column("delivery_id", String(MAX_ID)),
    # the recipient's (masked) view of a QUEUED alert, so a digest survives a restart
    Column("view", JsonDocument),
    Column("error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("dedupe_key", "recipient", "channel"),
    Index(None, "status", "digest_due_at"),
    Index(None, "alert_id"),
    comment="Satgas alert deliveries: each alert once per recipient and channel, with outcome.",
)

# The audit trail is append-only in the database itself, not only by convention of this code.
# The initial migration creates the same objects; these listeners cover metadata.create_all().
APPEND_ONLY_SQLITE = [
    f"CREATE TRIGGER case_transitions_no_{op.lower()} BEFORE {op} ON case_transitions "
    f"BEGIN SELECT RAISE(ABORT, 'case_transitions is append-only'); END"
    for op in ("UPDATE", "DELETE")
]
APPEND_ONLY_POSTGRESQL = [
    "CREATE OR REPLACE FUNCTION netral_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$",
    "CREATE TRIGGER case_transitions_append_only BEFORE UPDATE OR DELETE ON case_transitions "
    "FOR EACH ROW EXECUTE FUNCTION netral_append_only()",
]
for _sql in APPEND_ONLY_SQLITE:
    event.listen(case_transitions, "after_create", DDL(_sql).execute_if(dialect="sqlite"))
for _sql in APPEND_ONLY_POSTGRESQL:
    event.listen(case_transitions, "after_create", DDL(_sql).execute_if(dialect="postgresql"))

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    # who: the authenticated principal and the role it acted in
    Column("principal", String(MAX_ID), nullable=False),
    Column("role", String(SYMBOL_LEN), nullable=False),
    # what: e.g. read_case / read_person / list_cases, and the case id or person looked at
    Column("action", String(SYMBOL_LEN), nullable=False),
    Column("subject_kind", String(SYMBOL_LEN), nullable=False),
    Column("subject_id", String(MAX_ID)),
    # from where: client address and the request id that ties it to the access log
    Column("remote_addr", String(64)),
    Column("request_id", String(MAX_ID)),
    Column("detail", Text),
    Index(None, "at"),
    Index(None, "subject_kind", "subject_id"),
    Index(None, "principal"),
    comment="Personal-data access log (UU 27/2022): insert-only; triggers refuse UPDATE, DELETE.",
)

audit_outbox = Table(
    "audit_outbox",
    metadata,
    Column("audit_id", Integer, ForeignKey("audit_log.id"), primary_key=True),
    # the entry's id on the topic (a uuid: unique across databases sharing a cluster)
    Column("entry_id", String(36), nullable=False, unique=True),
    # set by the relay once netral.audit acknowledged the entry (acks=all), with where it went
    Column("published_at", UtcDateTime()),
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Index(None, "published_at"),
    comment="Outbox of audit_log to netral.audit: one row per entry, written with it; the relay "
            "marks it published (audit_log itself stays insert-only).",
)

purges = Table(
    "purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("older_than", UtcDateTime(), nullable=False),
    Column("cases", Integer, nullable=False),
    Column("persons", Integer, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("alerts", Integer, nullable=False),
    comment="Each `netral purge` run: cutoff and how many rows lost their personal data.",
)

purged_cases = Table(
    "purged_cases",
    metadata,
    Column("case_id", String(MAX_ID), primary_key=True),
    Column("purged_at", UtcDateTime(), nullable=False),
    comment="Cases whose personal data was purged: a replay of the topics must not restore it.",
)

for _table in (audit_log, purges):
    _name = _table.name
    for _verb in ("UPDATE", "DELETE"):
        event.listen(_table, "after_create", DDL(
            f"CREATE TRIGGER {_name}_no_{_verb.lower()} BEFORE {_verb} ON {_name} "
            f"BEGIN SELECT RAISE(ABORT, '{_name} is append-only'); END").execute_if(
                dialect="sqlite"))
    event.listen(_table, "after_create", DDL(
        f"CREATE TRIGGER {_name}_append_only BEFORE UPDATE OR DELETE ON {_name} "
        f"FOR EACH ROW EXECUTE FUNCTION netral_append_only()").execute_if(dialect="postgresql"))
