"""Broker readiness and topic creation, through aiokafka's admin client."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError

from schemas.errors import ConfigError, RetriableError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.topics import TopicSpec

TOPIC_ALREADY_EXISTS = 36
# Raw and DLQ topics accept records up to this size so that oversized input reaches the hub's
# validation (and its DLQ with a reason) instead of failing silently at the agency's producer.
LARGE_TOPIC_MAX_BYTES = 8 * 1024 * 1024


async def _brokers(conn: KafkaConnection) -> int:
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return len(cluster["brokers"])
    finally:
        await admin.close()


async def cluster_size(conn: KafkaConnection) -> int:
    """Number of brokers that answer a metadata request; raises RetriableError if none."""
    try:
        return await _brokers(conn)
    except (KafkaConnectionError, KafkaError, OSError) as err:
        raise RetriableError(f"broker at {conn.bootstrap} not answering: {err}") from err


async def brokers_for(conn: KafkaConnection, action: str) -> int:
    """Number of brokers that answer, asked before ``action``; a failure is one clear line
    (:func:`schemas.kafka.kafka_failure`: bad credentials, missing ACL, no session)."""
    try:
        return await _brokers(conn)
    except (KafkaError, OSError) as err:
        raise kafka_failure(err, conn, action) from None


def replication_for(brokers: int, replication: int | None, min_insync: int | None
                    ) -> tuple[int, int]:
    """The replication factor and min ISR topics are created with: what the operator set,
    else the cluster's own (RF min(3, brokers), min ISR RF - 1, at least 1). The worker made its
    journal's changelog with RF 1 on the fault suite's 3 brokers (whose hub topics had RF 3):
    the one broker it kills could hold the journal's only replica."""
    rf = replication if replication is not None else min(3, max(1, brokers))
    isr = min_insync if min_insync is not None else max(1, rf - 1)
    return rf, isr


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Silence a client library's connection errors while we poll on purpose (the caller
    reports the one error that matters)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


async def wait_ready(conn: KafkaConnection, timeout_s: float, brokers: int = 1) -> float:
    """Wait until ``brokers`` brokers answer metadata requests; returns seconds waited."""
    start = time.monotonic()
    last: Exception | None = None
    with quiet("aiokafka"):
        while time.monotonic() - start < timeout_s:
            try:
                if await cluster_size(conn) >= brokers:
                    return time.monotonic() - start
            except RetriableError as err:
                last = err
            await asyncio.sleep(0.25)
    raise RetriableError(f"no answer from {conn.bootstrap} after {timeout_s:.0f}s ({last})")


async def _check_fixed_partitions(admin: AIOKafkaAdminClient, specs: list[TopicSpec],
                                  settle_s: float = 15.0) -> None:
    """An existing topic whose partition count the design fixes must have exactly that many.

    A topic another process has just created lists no partitions until the brokers have its
    metadata (two workers starting together race to create it): that is waited for, up to
    ``settle_s``; any other count is a wrong topic at once."""
    fixed = {s.name: s.partitions for s in specs if s.partitions}
    deadline = time.monotonic() + settle_s
    while fixed:
        settling = {}
        for topic in await admin.describe_topics(list(fixed)):
            name, have = topic["topic"], len(topic.get("partitions", []))
            if have == 0 and time.monotonic() < deadline:
                settling[name] = fixed[name]
            elif have != fixed[name]:
                raise ConfigError(
                    f"topic {name} has {have} partitions but the cases stage needs "
                    f"{fixed[name]}: recreate it (locally: `netral broker reset --yes`)")
        fixed = settling
        if fixed:
            await asyncio.sleep(0.25)


@dataclass(frozen=True)
class TopicsReport:
    created: list[str]
    existing: list[str]
    altered: list[str] = field(default_factory=list)
    """Existing topics whose retention.ms was changed to the catalogue's (a retention setting)."""


def topic_configs(spec: TopicSpec, min_insync: int) -> dict[str, str]:
    """Every config the hub sets on a topic, exactly as created."""
    configs = spec.configs(min_insync)
    if spec.name.startswith(("netral.raw.", "netral.dlq.")):
        configs["max.message.bytes"] = str(LARGE_TOPIC_MAX_BYTES)
    return configs


async def _align_retention(admin: AIOKafkaAdminClient, specs: list[TopicSpec],
                           min_insync: int) -> list[str]:
    """Give existing topics the retention the catalogue says now (e.g. after an operator changed
    NETRAL_RAW_RETENTION_DAYS); returns the topics changed. AlterConfigs replaces a topic's
    whole config set, so it is sent with every config the hub sets, as at creation."""
    if not specs:
        return []
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs])
    have: dict[str, str | None] = {}
    for response in described:
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            entries = {e[0]: e[1] for e in resource[4]}
            have[resource[3]] = entries.get("retention.ms")
    stale = [s for s in specs if have.get(s.name) != topic_configs(s, min_insync)["retention.ms"]]
    if not stale:
        return []
    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, s.name, configs=topic_configs(s, min_insync))
         for s in stale])
    for response in responses:
        for code, message, _type, name in response.resources:
            if code != 0:
                raise RetriableError(f"could not set the retention of topic {name}: "
                                     f"{message} (code {code})")
    return sorted(s.name for s in stale)


async def create_topics(
    conn: KafkaConnection,
    specs: list[TopicSpec],
    *,
    partitions: int,
    replication: int,
    min_insync: int,
) -> TopicsReport:
    """Create every topic in ``specs`` that does not exist yet; existing ones are left alone."""
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=30000)
    try:
        await admin.start()
    except KafkaError as err:
        await admin.close()
        raise kafka_failure(err, conn, "create topics") from None
    try:
        present = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in present]
        new = []
        for spec in missing:
            new.append(NewTopic(spec.name, spec.partition_count(partitions), replication,
                                topic_configs=topic_configs(spec, min_insync)))
        await _check_fixed_partitions(admin, [s for s in specs if s.name in present])
        created: list[str] = []
        if new:
            response = await admin.create_topics(new)
            for name, code, message in _topic_errors(response):
                if code == 0:
                    created.append(name)
                elif code != TOPIC_ALREADY_EXISTS:
                    raise RetriableError(f"could not create topic {name}: {message} (code {code})")
        existing = sorted(s.name for s in specs if s.name not in created)
        altered = await _align_retention(admin, [s for s in specs if s.name in present],
                                         min_insync)
        return TopicsReport(created=sorted(created), existing=existing, altered=altered)
    finally:
        await admin.close()


def _topic_errors(response: object) -> list[tuple[str, int, str]]:
    errors = getattr(response, "topic_errors", None) or getattr(response, "topic_error_codes", [])
    out = []
    for entry in errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else ""
        out.append((name, code, message or ""))
    return out


async def group_members(conn: KafkaConnection, group_id: str) -> tuple[str, int]:
    """(state, member count) of a consumer group, e.g. ("Stable", 1)."""
    admin = AIOKafkaAdminClient(**conn.aiokafka_kwargs(), request_timeout_ms=5000)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group_id])
        for response in responses:
            for group in response.groups:
                # (error_code, group_id, state, protocol_type, protocol, members, ...)
                return str(group[2]), len(group[5])
        return "Dead", 0
    finally:
        await admin.close()


async def wait_group_stable(conn: KafkaConnection, group_id: str, timeout_s: float) -> float:
    """Wait until a group is Stable with at least one member; returns seconds waited."""
    start = time.monotonic()
    state = "unknown"
    while time.monotonic() - start < timeout_s:
        try:
            state, members = await group_members(conn, group_id)
            if state == "Stable" and members > 0:
                return time.monotonic() - start
        except (KafkaError, OSError) as err:
            state = f"unreachable ({err})"
        await asyncio.sleep(0.2)
    raise RetriableError(f"group {group_id} not Stable after {timeout_s:.0f}s (last: {state})")


FETCH_BYTES = 16 * 1024 * 1024


def reading_consumer(conn: KafkaConnection, *topics: str,
                     group: str | None = None) -> AIOKafkaConsumer:
    """A consumer of committed records from the earliest offset, committing nothing itself."""
    return AIOKafkaConsumer(
        *topics, **conn.aiokafka_kwargs(), group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
        max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=FETCH_BYTES * 4,
    )


async def drain(consumer: AIOKafkaConsumer) -> list[ConsumerRecord]:
    """Everything from the current positions up to the end offsets seen at the start."""
    while not consumer.assignment():  # the group join runs in the background after start()
        await asyncio.sleep(0.05)
    ends = await consumer.end_offsets(list(consumer.assignment()))
    out: list[ConsumerRecord] = []
    async def behind() -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return True
        return False

    while await behind():
        batch = await consumer.getmany(timeout_ms=1000)
        for tp, recs in batch.items():
            out.extend(r for r in recs if r.offset < ends[tp])
    return out


async def read_to_end(conn: KafkaConnection, *topics: str) -> list[ConsumerRecord]:
    """Every committed record of ``topics`` up to their end offsets now."""
    consumer = reading_consumer(conn, *topics)
    await consumer.start()
    try:
        return await drain(consumer)
    finally:
        await consumer.stop()
