"""The topic catalogue: every topic the hub owns, with its key, value and explicit configs.

Names here are the contract between the parts of the hub (architecture.md, "Topics"); the shell
creates the topics from this table, never by broker auto-creation.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

DAY_MS = 24 * 60 * 60 * 1000


class Agency(StrEnum):
    """The bodies that publish to the hub (one raw topic and one connector each)."""

    BAWASLU = "bawaslu"
    BKN = "bkn"
    KEMENDAGRI = "kemendagri"
    KEMENPANRB = "kemenpanrb"
    PPK = "ppk"


class DlqStage(StrEnum):
    """Processing stages that own a dead-letter topic ``netral.dlq.<stage>``."""

    INGEST = "ingest"
    NORMALIZE = "normalize"
    CASES = "cases"
    SIASN = "siasn"
    SQL = "sql"
    ALERTS = "alerts"


class TopicSpec(BaseModel):
    """One topic: what it carries and how the broker must keep it."""

    model_config = ConfigDict(frozen=True)

    name: str
    key: str
    value: str
    cleanup: str  # "delete" or "compact"
    retention_ms: int | None  # None: keep forever (compacted topics)
    writer: str
    partitions: int | None = None  # None: the operator's default (NETRAL_TOPIC_PARTITIONS)

    def partition_count(self, default: int) -> int:
        """How many partitions the topic is created with."""
        return self.partitions or default

    def configs(self, min_insync_replicas: int) -> dict[str, str]:
        """Broker-side topic configs, as strings, exactly as created."""
        configs = {
            "cleanup.policy": self.cleanup,
            "min.insync.replicas": str(min_insync_replicas),
        }
        configs["retention.ms"] = str(self.retention_ms) if self.retention_ms else "-1"
        return configs


def raw_topic(agency: Agency | str) -> str:
    """``netral.raw.<agency>``: an agency's own records, as its connector published them."""
    return f"netral.raw.{Agency(agency).value}"


def dlq_topic(stage: DlqStage | str) -> str:
    """``netral.dlq.<stage>``: what a stage could not process, with the reason in headers."""
    return f"netral.dlq.{DlqStage(stage).value}"


EVENTS = "netral.events"
CASES = "netral.cases"
CASE_EVENTS = "netral.case-events"
ORDERS_SIASN = "netral.orders.siasn"
ORDERS_SIASN_RESULTS = "netral.orders.siasn.results"
ALERTS = "netral.alerts"
COMMANDS = "netral.commands"
DEADLINE_TICKS = "netral.deadline-ticks"
PURGE_COMMANDS = "netral.commands.purge"
AUDIT = "netral.audit"

RAW_RETENTION_DAYS = 30
"""Default life of personal data in the raw topics (NETRAL_RAW_RETENTION_DAYS overrides it)."""
AUDIT_RETENTION_DAYS = 3650
"""Default life of the access log on ``netral.audit`` (NETRAL_AUDIT_RETENTION_DAYS overrides it)."""

CASE_STAGE_PARTITIONS = 1
"""The inputs of the cases processor (events, commands, SIASN results, deadline ticks) have one
partition: the national record needs one view of every person to join a name-only report to a
known NIP, and one total order of its inputs. National volume (thousands of cases per election)
is far below one worker's throughput; a second worker is a hot standby (README, design notes)."""


def catalogue(raw_retention_days: int = RAW_RETENTION_DAYS,
              audit_retention_days: int = AUDIT_RETENTION_DAYS) -> list[TopicSpec]:
    """Every topic of the hub, in the order the architecture lists them.

    The two retentions that are personal-data policy (UU 27/2022) come from the operator's
    settings: how long the raw topics keep what agencies sent, and how long the access log stays.
    """
    specs = [
        TopicSpec(
            name=raw_topic(a),
            key="source record id",
            value=f"raw {a.value} record",
            cleanup="delete",
            retention_ms=raw_retention_days * DAY_MS,
            writer=f"{a.value} connector",
        )
        for a in Agency
    ]
    specs += [
        TopicSpec(name=EVENTS, key="case key", value="CanonicalEvent", cleanup="delete",
                  retention_ms=90 * DAY_MS, writer="normalize",
                  partitions=CASE_STAGE_PARTITIONS),
        TopicSpec(name=CASES, key="case id", value="CaseRecord", cleanup="compact",
                  retention_ms=None, writer="cases processor"),
        TopicSpec(name=CASE_EVENTS, key="case id", value="CaseTransition", cleanup="delete",
                  retention_ms=3650 * DAY_MS, writer="cases processor"),
        TopicSpec(name=ORDERS_SIASN, key="NIP", value="SiasnOrder", cleanup="compact",
                  retention_ms=None, writer="cases processor"),
        TopicSpec(name=ORDERS_SIASN_RESULTS, key="NIP", value="SiasnOrderResult",
                  cleanup="delete", retention_ms=365 * DAY_MS, writer="SIASN adapter",
                  partitions=CASE_STAGE_PARTITIONS),
        TopicSpec(name=ALERTS, key="region", value="Alert", cleanup="delete",
                  retention_ms=365 * DAY_MS, writer="early warning"),
        TopicSpec(name=COMMANDS, key="case id", value="ReviewDecision", cleanup="delete",
                  retention_ms=3650 * DAY_MS, writer="API", partitions=CASE_STAGE_PARTITIONS),
        TopicSpec(name=DEADLINE_TICKS, key="issuer", value="DeadlineTick", cleanup="delete",
                  retention_ms=30 * DAY_MS, writer="deadline timer / `netral cases tick`",
                  partitions=CASE_STAGE_PARTITIONS),
        TopicSpec(name=PURGE_COMMANDS, key="command id", value="PurgeCommand",
                  cleanup="delete", retention_ms=3650 * DAY_MS, writer="`netral purge`",
                  partitions=CASE_STAGE_PARTITIONS),
        TopicSpec(name=AUDIT, key="access log entry id", value="AccessLogEntry",
                  cleanup="delete", retention_ms=audit_retention_days * DAY_MS,
                  writer="API (access-log relay)"),
    ]
    specs += [
        TopicSpec(name=dlq_topic(s), key="original key", value="original bytes",
                  cleanup="delete", retention_ms=30 * DAY_MS, writer=f"{s.value} stage")
        for s in DlqStage
    ]
    return specs
