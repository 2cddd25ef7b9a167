"""Kafka identities of the hub: who may do what, and applying it to a broker.

Each member of the hub is one SCRAM principal with the least rights its role needs. The role
matrix is data (:func:`grants_for`), pure and unit-tested; :class:`PrincipalAdmin` is the thin
part that creates credentials and ACLs through confluent-kafka's AdminClient (the hub's admin
principal, a super user of the broker, runs it). Everything not granted is denied: the broker
runs with ``allow.everyone.if.no.acl.found=false``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka.admin import AclBinding

from schemas.errors import ConfigError, HubError, RetriableError
from schemas.kafka import KafkaConnection
from schemas.topics import (
    ALERTS,
    AUDIT,
    CASE_EVENTS,
    CASES,
    COMMANDS,
    DEADLINE_TICKS,
    EVENTS,
    ORDERS_SIASN,
    ORDERS_SIASN_RESULTS,
    PURGE_COMMANDS,
    Agency,
    DlqStage,
    dlq_topic,
    raw_topic,
)

RAW_PREFIX = "netral.raw."
DLQ_PREFIX = "netral.dlq."
HUB_PREFIX = "netral."
GROUP_PREFIX = "netral"
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192


class Service(StrEnum):
    """The hub's own processes, each with its own principal."""

    STREAMS = "streams"
    SIASN_ADAPTER = "siasn-adapter"
    ALERTS = "alerts"
    API = "api"
    SQL_SINK = "sql-sink"
    LAG = "lag"


@dataclass(frozen=True)
class Grant:
    """One ALLOW ACL: ``operation`` on a resource named ``name`` (literal or prefix)."""

    resource: str  # "topic", "group" or "transactional_id"
    name: str
    operation: str  # "READ", "WRITE", "DESCRIBE", "CREATE", "ALL"
    prefixed: bool = False

    def describe(self) -> str:
        pattern = f"{self.name}*" if self.prefixed else self.name
        return f"{self.operation} {self.resource} {pattern}"


@dataclass(frozen=True)
class Names:
    """Consumer groups and transactional ids the services use (from the settings)."""

    streams_app_id: str = "netral-streams"
    siasn_group: str = "netral-siasn-adapter"
    sql_group: str = "netral-sql-sink"
    alerts_group: str = "netral-alerts"
    lag_group: str = "netral-lag"
    extra: dict[str, str] = field(default_factory=dict)


def principal_name(agency: Agency | None = None, service: Service | None = None) -> str:
    """The SCRAM user name of an agency or a service: ``agency-<code>`` / ``svc-<name>``."""
    if (agency is None) == (service is None):
        raise ConfigError("give exactly one of --agency or --service")
    if agency is not None:
        return f"agency-{Agency(agency).value}"
    return f"svc-{Service(str(service)).value}"


def _write(*topics: str) -> list[Grant]:
    return [g for t in topics for g in (Grant("topic", t, "WRITE"), Grant("topic", t, "DESCRIBE"))]


def _read(*topics: str) -> list[Grant]:
    return [g for t in topics for g in (Grant("topic", t, "READ"), Grant("topic", t, "DESCRIBE"))]


def _group(group: str) -> list[Grant]:
    return [Grant("group", group, "READ", prefixed=True)]


def _transactions(prefix: str) -> list[Grant]:
    return [Grant("transactional_id", prefix, "WRITE", prefixed=True),
            Grant("transactional_id", prefix, "DESCRIBE", prefixed=True)]


def _lag() -> list[Grant]:
    # the hub's groups are named netral-<service>, its topics netral.<name>
    return [Grant("topic", HUB_PREFIX, "DESCRIBE", prefixed=True),
            Grant("group", GROUP_PREFIX, "DESCRIBE", prefixed=True)]


def grants_for(agency: Agency | None = None, service: Service | None = None,
               names: Names | None = None) -> list[Grant]:
    """The least rights of one role (everything else is denied by the broker).

    - an agency writes only its own raw topic (idempotent producers need no more since
      Kafka 3.0, KIP-679) and reads nothing;
    - the stream workers read raw, events, cases (early warning), commands, SIASN results,
      deadline ticks and purge commands (``netral purge`` sends those as the admin), write
      events, cases, case events, orders, alerts, deadline ticks (the timer) and every DLQ, and
      own their app id's internal topics, consumer group and transactional ids (Faust uses
      ``<app id>-...`` for all three);
    - only the SIASN adapter reads ``netral.orders.siasn``;
    - the API writes (HTTP ingest) every raw topic, operator commands, the ingest DLQ and the
      consumer-lag alert, and describes topics and groups for the lag it exports; it alone
      writes ``netral.audit`` (its access log), and reads it back to recover after a crash;
    - the SQL sink reads the output topics it stores; the alert service reads alerts;
    - the lag tool only describes topics and groups (``netral.*`` topics, ``netral*`` groups).
    """
    return list(dict.fromkeys(_grants(agency, service, names or Names())))


def _grants(agency: Agency | None, service: Service | None, n: Names) -> list[Grant]:
    principal_name(agency, service)  # exactly one of the two
    if agency is not None:
        return _write(raw_topic(agency))
    match service:
        case Service.STREAMS:
            return [
                *[Grant("topic", RAW_PREFIX, op, prefixed=True) for op in ("READ", "DESCRIBE")],
                *_read(EVENTS, CASES, COMMANDS, ORDERS_SIASN_RESULTS, DEADLINE_TICKS,
                       PURGE_COMMANDS),
                *_write(EVENTS, CASES, CASE_EVENTS, ORDERS_SIASN, ALERTS, DEADLINE_TICKS),
                *[Grant("topic", DLQ_PREFIX, op, prefixed=True) for op in ("WRITE", "DESCRIBE")],
                Grant("topic", n.streams_app_id, "ALL", prefixed=True),  # Faust internal topics
                *_group(n.streams_app_id),
                *_transactions(n.streams_app_id),
            ]
        case Service.SIASN_ADAPTER:
            return [*_read(ORDERS_SIASN),
                    *_write(ORDERS_SIASN_RESULTS, ALERTS, dlq_topic(DlqStage.SIASN)),
                    *_group(n.siasn_group), *_transactions(n.siasn_group)]
        case Service.ALERTS:
            return [*_read(ALERTS), *_write(dlq_topic(DlqStage.ALERTS)), *_group(n.alerts_group)]
        case Service.API:  # ingest, review commands, the lag behind /metrics and its alert,
            # its access log (read back by the relay after a crash, see hub/audit_relay.py)
            return [*[Grant("topic", RAW_PREFIX, op, prefixed=True)
                      for op in ("WRITE", "DESCRIBE")],
                    *_write(COMMANDS, ALERTS, AUDIT, dlq_topic(DlqStage.INGEST)),
                    *_read(AUDIT), *_lag()]
        case Service.SQL_SINK:
            return [*_read(CASES, CASE_EVENTS, ORDERS_SIASN, ORDERS_SIASN_RESULTS, ALERTS),
                    *_write(dlq_topic(DlqStage.SQL)), *_group(n.sql_group)]
        case Service.LAG:
            return _lag()
    raise ConfigError(f"unknown service {service!r}")  # pragma: no cover (enum is exhaustive)


def new_password() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class PrincipalInfo:
    user: str
    mechanisms: list[str]
    grants: list[str]


class PrincipalAdmin:
    """Creates SCRAM credentials and ACLs on a broker as the hub's admin (confluent-kafka)."""

    def __init__(self, conn: KafkaConnection, timeout_s: float = 30.0) -> None:
        from confluent_kafka.admin import AdminClient

        self.conn = conn
        self.timeout_s = timeout_s
        # librdkafka's own INFO lines (e.g. BGQUEUE on close) would clutter the CLI's output
        self._admin = AdminClient({**conn.confluent_config(), "log_level": 4})

    def _wait(self, futures: Iterable[object], action: str) -> None:
        from confluent_kafka import KafkaException

        for fut in futures:
            try:
                fut.result(timeout=self.timeout_s)  # type: ignore[attr-defined]
            except KafkaException as err:
                raise _admin_failure(err, self.conn, action) from None

    def set_password(self, user: str, password: str) -> None:
        """Create or replace the user's SCRAM-SHA-512 credential (new logins use it at once)."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        if len(password) < 12:
            raise ConfigError("--password must be at least 12 characters")
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        futures = self._admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(user, info, password.encode())])
        self._wait(futures.values(), f"set the SCRAM credential of {user}")

    def grant(self, user: str, grants: list[Grant]) -> None:
        bindings = [_binding(user, g) for g in grants]
        self._wait(self._admin.create_acls(bindings).values(), f"create ACLs for {user}")

    def exists(self, user: str) -> bool:
        return user in self._scram_users()

    def _scram_users(self) -> dict[str, list[str]]:
        from confluent_kafka import KafkaException

        try:
            future = self._admin.describe_user_scram_credentials()
            assert not isinstance(future, dict)  # no user list given: one future for all users
            described = future.result(timeout=self.timeout_s)
        except KafkaException as err:
            raise _admin_failure(err, self.conn, "list SCRAM users") from None
        return {user: [str(c.mechanism.name) for c in desc.scram_credential_infos]
                for user, desc in described.items()}

    def list(self) -> list[PrincipalInfo]:
        """Every SCRAM user with the ACLs naming it."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import (
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        # None matches any name, principal and host (librdkafka's filter semantics)
        flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,  # type: ignore[arg-type]
                               None, None,  # type: ignore[arg-type]
                               AclOperation.ANY, AclPermissionType.ANY)
        try:
            acls = self._admin.describe_acls(flt).result(timeout=self.timeout_s)
        except KafkaException as err:
            raise _admin_failure(err, self.conn, "describe ACLs") from None
        by_user: dict[str, list[str]] = {}
        for acl in acls:
            pattern = "*" if acl.resource_pattern_type == ResourcePatternType.PREFIXED else ""
            by_user.setdefault(acl.principal.removeprefix("User:"), []).append(
                f"{acl.permission_type.name} {acl.operation.name} "
                f"{acl.restype.name.lower()} {acl.name}{pattern}")
        users = self._scram_users()
        return [PrincipalInfo(u, users.get(u, []), sorted(by_user.get(u, [])))
                for u in sorted(set(users) | set(by_user))]


def _binding(user: str, g: Grant) -> AclBinding:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    restype = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
               "transactional_id": ResourceType.TRANSACTIONAL_ID}[g.resource]
    pattern = ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL
    return AclBinding(restype, g.name, pattern, f"User:{user}", "*", AclOperation[g.operation],
                      AclPermissionType.ALLOW)


def _admin_failure(err: Exception, conn: KafkaConnection, action: str) -> HubError:
    kerr = err.args[0] if err.args else err
    name = kerr.name() if hasattr(kerr, "name") else type(err).__name__
    text = kerr.str() if hasattr(kerr, "str") else str(err)
    if "AUTHORIZATION" in str(name).upper():
        return ConfigError(f"Kafka refused to {action}: {conn.principal()} is not the hub's admin "
                           f"(run principals commands with the admin's credentials)")
    if "SECURITY_DISABLED" in str(name).upper() or "UNSUPPORTED_SASL" in str(name).upper():
        return ConfigError(f"the broker at {conn.bootstrap} has no SASL/ACLs enabled: start it "
                           f"with `netral broker start --secure` ({text})")
    return RetriableError(f"Kafka at {conn.bootstrap} failed to {action}: {name}: {text}")
