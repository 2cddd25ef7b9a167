"""The SIASN adapter against the mock SIASN (a real HTTP server on loopback) and a real broker.

Each test gets its own topics and consumer group, and a fresh mock, so ``/_test/effects`` counts
only what that test caused. Waits are conditions with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import SecretStr

from connectors.samples import random_nip
from hub.kafka_admin import create_topics
from hub.mock_siasn import MockConfig, create_app
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import ConfigError
from schemas.kafka import KafkaConnection
from schemas.models.enums import OrderAction, OrderOutcome, Severity
from schemas.models.hub import Alert, SiasnOrder, SiasnOrderResult
from schemas.topics import TopicSpec
from sinks.siasn.client import HttpSiasnClient, SiasnConfig
from sinks.siasn.runner import AdapterStats, AdapterTopics, RunnerOptions, run_adapter
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.threaded_server import ThreadedServer
from tests.fixtures.waiting import wait_until
from tests.helpers import REPO

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
ORDERS = 200
# ~5 s keeps CI fast; the fault suite runs the 60 s outage with
# NETRAL_TEST_SIASN_OUTAGE_S=60 (the test's deadlines grow with it).
OUTAGE_S = float(os.environ.get("NETRAL_TEST_SIASN_OUTAGE_S", "5"))


# -- the mock SIASN on a free loopback port -----------------------------------------------------
class MockSiasn:
    """The mock in a uvicorn server on a background thread; read back over HTTP like a test."""

    def __init__(self, config: MockConfig) -> None:
        self.server = ThreadedServer(create_app(config), "mock SIASN", lifespan="off")
        self.url = self.server.url

    def start(self) -> None:
        self.server.start(timeout_s=20)

    def stop(self) -> None:
        self.server.stop(timeout_s=10)

    async def get(self, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.get(path)
            response.raise_for_status()
            return response.json()

    async def post(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.post(path, params=params)
            response.raise_for_status()
            return response.json()

    async def effects(self) -> list[dict[str, Any]]:
        return list((await self.get("/_test/effects"))["effects"])


@contextmanager
def mock_siasn(**config: Any) -> Iterator[MockSiasn]:
    mock = MockSiasn(MockConfig(**config))
    mock.start()
    try:
        yield mock
    finally:
        mock.stop()


def client_config(mock: MockSiasn, **overrides: Any) -> SiasnConfig:
    """Fast retries for tests; same policy shape as production."""
    values: dict[str, Any] = {
        "base_url": mock.url, "client_id": "netral-dev",
        "client_secret": SecretStr("netral-dev-secret"), "username": "netral-operator",
        "password": SecretStr("netral-dev-password"), "timeout_s": 5.0, "max_attempts": 12,
        "backoff_initial_s": 0.02, "backoff_max_s": 0.3, "breaker_threshold": 5,
        "breaker_reset_s": 0.5, "max_hold_s": OUTAGE_S + 120,
    }
    values.update(overrides)
    return SiasnConfig(**values)


# -- Kafka helpers ------------------------------------------------------------------------------
async def make_topics(conn: KafkaConnection, unique: str) -> AdapterTopics:
    names = AdapterTopics(orders=f"test.{unique}.orders.siasn",
                          results=f"test.{unique}.orders.siasn.results",
                          dlq=f"test.{unique}.dlq.siasn", alerts=f"test.{unique}.alerts")
    specs = [TopicSpec(name=n, key="NIP", value="test", cleanup="delete",
                       retention_ms=24 * 3600 * 1000, writer="test")
             for n in (names.orders, names.results, names.dlq, names.alerts)]
    await create_topics(conn, specs, partitions=4, replication=1, min_insync=1)
    return names


def make_orders(n: int, unique: str, seed: int) -> list[SiasnOrder]:
    rng = random.Random(seed)
    nips: list[str] = []
    while len(nips) < n:
        nip = random_nip(rng)
        if nip not in nips:
            nips.append(nip)
    now = datetime.now(UTC)
    return [SiasnOrder(order_id=f"ord-{unique}-{i}", case_id=f"case-{unique}-{i}", nip=nip,
                       action=OrderAction.BLOCK,
                       reason="Tidak menindaklanjuti rekomendasi KASN dalam 14 hari",
                       issued_at=now) for i, nip in enumerate(nips)]


async def produce_orders(conn: KafkaConnection, topic: str, orders: list[SiasnOrder]) -> None:
    await produce(conn, topic, [
        (o.nip.encode(), CODEC.encode(SiasnOrder.avro_name, o.to_avro()), None) for o in orders])


def results_of(records: list[ConsumerRecord]) -> list[SiasnOrderResult]:
    return [SiasnOrderResult.from_avro(CODEC.decode(r.value).value) for r in records]


def has_results(order_ids: set[str]) -> Callable[[list[ConsumerRecord]], bool]:
    return lambda rs: order_ids <= {r.order_id for r in results_of(rs)}


async def committed_total(conn: KafkaConnection, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for p in range(4):  # make_topics creates 4 partitions
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


async def written_total(conn: KafkaConnection, topic: str) -> int:
    consumer = AIOKafkaConsumer(**conn.aiokafka_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(4)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def assert_exactly_once(effects: list[dict[str, Any]], orders: list[SiasnOrder]) -> None:
    per_nip = Counter(e["nip"] for e in effects)
    duplicates = {nip: n for nip, n in per_nip.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} NIPs blocked more than once"
    assert set(per_nip) == {o.nip for o in orders}
    assert len(effects) == len(orders)
    assert {e["action"] for e in effects} == {"BLOCK"}
    key_of = {o.nip: o.order_id for o in orders}
    assert all(e["idempotency_key"] == key_of[e["nip"]] for e in effects)


# -- (a) errors + an outage: exactly one effect per order ---------------------------------------
@pytest.mark.parametrize("outage_s", [OUTAGE_S])
async def test_200_blocks_through_errors_and_an_outage_take_effect_once(
        topics: KafkaConnection, unique: str, outage_s: float) -> None:
    names = await make_topics(topics, unique)
    orders = make_orders(ORDERS, unique, seed=11)
    await produce_orders(topics, names.orders, orders)
    with mock_siasn(error_rate=0.3, lost_reply_rate=0.05, latency_ms=3, seed=2024) as mock:
        stop = asyncio.Event()
        async with HttpSiasnClient(client_config(mock)) as client:
            adapter = asyncio.create_task(run_adapter(
                topics, client, CODEC, f"siasn-{unique}", stop,
                options=RunnerOptions(topics=names, batch_size=50, concurrency=8)))
            try:
                async def some_done() -> bool:
                    assert not adapter.done(), adapter
                    return len(await mock.effects()) >= 40

                await wait_until(some_done, 60, "first blocks at SIASN")
                await mock.post("/_test/outage", seconds=outage_s)
                at_outage = len(await mock.effects())
                records = await consume_until(topics, [names.results],
                                              has_results({o.order_id for o in orders}),
                                              timeout_s=outage_s + 180)
            finally:
                stop.set()
                stats: AdapterStats = await adapter
        effects = await mock.effects()
        mock_stats = await mock.get("/_test/stats")

    assert at_outage < ORDERS, "the outage began after the last block: it proved nothing"
    assert_exactly_once(effects, orders)
    results = results_of(records)
    assert len(results) == ORDERS, "one result per order, none twice"
    assert {r.outcome for r in results} == {OrderOutcome.CONFIRMED}
    assert max(r.attempts for r in results) > 1
    assert stats.failed == 0
    assert stats.confirmed == ORDERS
    assert mock_stats["outage_rejections"] > 0
    assert mock_stats["injected_errors"] > 0
    assert mock_stats["lost_replies"] > 0
    assert mock_stats["replays"] >= mock_stats["lost_replies"]  # each lost reply was re-asked
    assert client.stats.breaker_opened >= 1
    assert await committed_total(topics, names.orders, f"siasn-{unique}") == ORDERS


# -- (b) SIGKILL mid-run and restart: nothing changes --------------------------------------------
def spawn_adapter(conn: KafkaConnection, mock: MockSiasn, names: AdapterTopics, group: str,
                  home: Path) -> subprocess.Popen[bytes]:
    """The real ``siasn-adapter`` command in a subprocess (the CLI mounts the same function)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=conn.bootstrap, NETRAL_HOME=str(home),
               NETRAL_LOG_LEVEL="INFO", NETRAL_SIASN_URL=mock.url,
               NETRAL_SIASN_GROUP_ID=group, NETRAL_SIASN_BATCH_SIZE="20",
               NETRAL_SIASN_CONCURRENCY="2", NETRAL_SIASN_MAX_ATTEMPTS="12",
               NETRAL_SIASN_BACKOFF_INITIAL_S="0.02", NETRAL_SIASN_BACKOFF_MAX_S="0.3",
               NETRAL_SIASN_BREAKER_RESET_S="0.5", NETRAL_SIASN_TIMEOUT_S="5")
    log = (home / f"adapter-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "siasn-adapter", "--orders-topic", names.orders,
         "--results-topic",
         names.results, "--dlq", names.dlq, "--alerts-topic", names.alerts],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


async def test_adapter_killed_mid_run_and_restarted_changes_nothing(
        topics: KafkaConnection, unique: str, tmp_path: Path) -> None:
    names = await make_topics(topics, unique)
    orders = make_orders(ORDERS, unique, seed=12)
    await produce_orders(topics, names.orders, orders)
    group = f"siasn-kill-{unique}"
    with mock_siasn(error_rate=0.2, latency_ms=25, seed=99) as mock:
        first = spawn_adapter(topics, mock, names, group, tmp_path)
        try:
            async def mid_run() -> bool:
                assert first.poll() is None, _logs(tmp_path)
                return len(await mock.effects()) >= 50  # mid-batch (batches of 20)

            await wait_until(mid_run, 90, "the first adapter's blocks")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        at_kill = len(await mock.effects())
        second = spawn_adapter(topics, mock, names, group, tmp_path)
        try:
            records = await consume_until(topics, [names.results],
                                          has_results({o.order_id for o in orders}),
                                          timeout_s=180)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, _logs(tmp_path)
        effects = await mock.effects()
        mock_stats = await mock.get("/_test/stats")

    assert at_kill < ORDERS, "the adapter finished before the kill: the test proved nothing"
    assert_exactly_once(effects, orders)
    results = results_of(records)
    assert len(results) == ORDERS, "an aborted transaction's results are never visible"
    assert {r.outcome for r in results} == {OrderOutcome.CONFIRMED}
    assert mock_stats["injected_errors"] > 0
    assert await committed_total(topics, names.orders, group) == ORDERS


def _logs(home: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(home.glob("*.log")))


# -- (c) tokens: refreshed before expiry, and once more on a 401 ---------------------------------
async def test_tokens_are_refreshed_before_expiry_and_after_a_401(unique: str) -> None:
    orders = make_orders(2, unique, seed=13)
    with mock_siasn(gateway_token_ttl_s=3, sso_token_ttl_s=2) as mock:
        async with HttpSiasnClient(client_config(mock)) as client:
            async def refreshed_twice() -> bool:
                await client.status(orders[0].nip)
                return client.stats.sso_tokens >= 3 and client.stats.gateway_tokens >= 2

            await wait_until(refreshed_twice, 30, "two SSO token refreshes")
            assert (await mock.get("/_test/stats"))["unauthorized"] == 0, \
                "an expired token was sent: refresh came too late"

            await mock.post("/_test/revoke-tokens", kind="sso")  # e.g. SSO session killed
            reply = await client.block(orders[0])
            assert not reply.already_in_effect
            assert reply.attempts == 1  # the refresh happened inside the attempt
            assert client.stats.refreshed_on_401 == 1
            assert (await mock.get("/_test/stats"))["unauthorized"] == 1
            assert (await client.status(orders[0].nip)).blocked

        bad_sso = client_config(mock, password=SecretStr("wrong"))
        async with HttpSiasnClient(bad_sso) as client:
            with pytest.raises(ConfigError, match="SSO"):
                await client.block(orders[1])
        bad_gateway = client_config(mock, client_secret=SecretStr("wrong"))
        async with HttpSiasnClient(bad_gateway) as client:
            with pytest.raises(ConfigError, match="gateway"):
                await client.block(orders[1])
        effects = await mock.effects()
    assert [e["nip"] for e in effects] == [orders[0].nip]


# -- (d) an order that fails every retry: DLQ + alert, and the stream goes on -------------------
async def test_order_failing_all_retries_goes_to_dlq_with_an_alert(
        topics: KafkaConnection, unique: str) -> None:
    names = await make_topics(topics, unique)
    failing, healthy = make_orders(2, unique, seed=14)
    garbage_key = f"garbage-{unique}".encode()
    with mock_siasn() as mock:
        await mock.post("/_test/fail-writes", nip=failing.nip)
        await produce_orders(topics, names.orders, [failing, healthy])
        await produce(topics, names.orders, [(garbage_key, b'{"nip": "not avro"}', None)])
        stop = asyncio.Event()
        config = client_config(mock, max_attempts=3, breaker_threshold=2, breaker_reset_s=0.2)
        async with HttpSiasnClient(config) as client:
            adapter = asyncio.create_task(run_adapter(
                topics, client, CODEC, f"siasn-dlq-{unique}", stop,
                # one order at a time: the healthy order's success cannot reset the breaker's
                # count of the failing order's consecutive failures
                options=RunnerOptions(topics=names, concurrency=1)))
            try:
                records = await consume_until(
                    topics, [names.results, names.dlq, names.alerts],
                    lambda rs: len([r for r in rs if r.topic == names.dlq]) >= 2
                    and has_results({failing.order_id, healthy.order_id})(
                        [r for r in rs if r.topic == names.results])
                    and any(r.topic == names.alerts for r in rs),
                    timeout_s=60)
            finally:
                stop.set()
                stats = await adapter
        effects = await mock.effects()

    by_order = {r.order_id: r for r in results_of([r for r in records
                                                   if r.topic == names.results])}
    failed = by_order[failing.order_id]
    assert failed.outcome is OrderOutcome.FAILED
    assert failed.attempts == 3
    assert failed.detail and "after 3 attempts" in failed.detail
    assert by_order[healthy.order_id].outcome is OrderOutcome.CONFIRMED
    assert [e["nip"] for e in effects] == [healthy.nip]
    assert client.stats.breaker_opened >= 1
    assert client.stats.probes >= 1  # the held order probed SIASN before its last attempt

    letters = {r.key: r for r in records if r.topic == names.dlq}
    order_letter = letters[failing.nip.encode()]
    assert order_letter.value == CODEC.encode(SiasnOrder.avro_name, failing.to_avro())
    why = DeadLetter.from_headers(order_letter.headers)
    assert (why.stage, why.error_class, why.source_topic) == (
        "siasn", "SiasnOrderFailed", names.orders)
    junk = DeadLetter.from_headers(letters[garbage_key].headers)
    assert junk.error_class == "SerializationError"
    assert letters[garbage_key].value == b'{"nip": "not avro"}'

    alerts = [Alert.from_avro(CODEC.decode(r.value).value) for r in records
              if r.topic == names.alerts]
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.rule, alert.severity, alert.nip, alert.case_id) == (
        "siasn_order_failed", Severity.CRITICAL, failing.nip, failing.case_id)
    assert failing.nip not in alert.title  # masked in free text
    assert stats.failed == 1
    assert stats.dead_letters == 2
    assert await committed_total(topics, names.orders, f"siasn-dlq-{unique}") == 3


# -- (e) credentials no refresh can fix stop the adapter, committing nothing ----------------------
async def test_bad_credentials_stop_the_adapter_without_committing(
        topics: KafkaConnection, unique: str) -> None:
    names = await make_topics(topics, unique)
    orders = make_orders(3, unique, seed=15)
    await produce_orders(topics, names.orders, orders)
    group = f"siasn-badcreds-{unique}"
    with mock_siasn() as mock:
        config = client_config(mock, password=SecretStr("wrong"))
        async with HttpSiasnClient(config) as client:
            with pytest.raises(ConfigError, match="SSO"):
                await asyncio.wait_for(run_adapter(
                    topics, client, CODEC, group, asyncio.Event(),
                    options=RunnerOptions(topics=names)), timeout=60)
        assert await mock.effects() == []
    assert await committed_total(topics, names.orders, group) == 0
    # high watermarks: nothing was even written (not merely aborted) for untried orders
    assert await written_total(topics, names.results) == 0
    assert await written_total(topics, names.dlq) == 0
