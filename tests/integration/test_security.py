"""Who may do what, on a real broker started with ``netral broker start --secure``.

One secure broker (SASL_SSL, SCRAM-SHA-512, StandardAuthorizer, deny by default) on free ports in
a temporary state folder for the module; principals made with ``netral principals add``; every
client configured only through the NETRAL_KAFKA_* settings, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import SecretStr
from sqlalchemy import insert

from connectors.keys import add_key
from connectors.outbox import agency_engine, enqueue, outbox
from connectors.samples import random_nip, sample_reports
from hub.broker.local import LocalBroker, free_port
from hub.kafka_admin import cluster_size, wait_group_stable
from schemas.codec import AvroCodec
from schemas.errors import AuthorizationError, RetriableError
from schemas.kafka import KafkaConnection, kafka_failure
from schemas.models import CanonicalEvent
from schemas.topics import CASES, EVENTS, Agency, dlq_topic
from tests.factories import encode, report
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.waiting import poll_until
from tests.helpers import REPO, netral
from tests.unit.test_connectors_native import BAWASLU

pytestmark = pytest.mark.integration
DIST = REPO / ".netral" / "dist"
CODEC = AvroCodec()
STREAMS_PW = "streams-" + "s3cret-for-tests"
API_PW = "api-" + "s3cret-for-tests-x"


@dataclass
class Secure:
    home: Path
    bootstrap: str
    ca_file: str
    admin: KafkaConnection
    passwords: dict[str, str] = field(default_factory=dict)

    def conn(self, user: str, password: str | None = None) -> KafkaConnection:
        return KafkaConnection(
            bootstrap=self.bootstrap, security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512", username=user,
            password=SecretStr(password or self.passwords[user]), ca_file=self.ca_file,
            client_id=f"test-{user}")

    def env(self, user: str, password: str | None = None, **extra: str) -> dict[str, str]:
        """Only NETRAL_KAFKA_* settings: no access to the broker's state folder."""
        return {
            "NETRAL_KAFKA_BOOTSTRAP": self.bootstrap,
            "NETRAL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "NETRAL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "NETRAL_KAFKA_USERNAME": user,
            "NETRAL_KAFKA_PASSWORD": password or self.passwords[user],
            "NETRAL_KAFKA_CA_FILE": self.ca_file,
            **extra,
        }


def _generated_password(stdout: str) -> str:
    match = re.search(r"password \(shown once, store it safely\): (\S+)", stdout)
    assert match, stdout
    return match.group(1)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    home = tmp_path_factory.mktemp("secure-home")
    (home / "dist").symlink_to(DIST)
    env = {"NETRAL_HOME": str(home), "NETRAL_BROKER_PORT": "0"}
    try:
        started = netral("broker", "start", "--secure", env=env, check=True)
        assert "SASL_SSL" in started.stdout
        netral("topics", "create", env=env, check=True)  # as the admin (local state folder)
        broker = LocalBroker(home)
        admin = broker.admin_connection("test-admin")
        assert admin.ca_file
        sec = Secure(home, broker.bootstrap(), admin.ca_file, admin)
        out = netral("principals", "add", "--agency", "bawaslu", env=env, check=True).stdout
        sec.passwords["agency-bawaslu"] = _generated_password(out)
        assert "allow WRITE topic netral.raw.bawaslu" in out
        for service, pw in (("streams", STREAMS_PW), ("api", API_PW)):
            netral("principals", "add", "--service", service, "--password", pw, env=env,
                   check=True)
            sec.passwords[f"svc-{service}"] = pw
        yield sec
    finally:
        netral("broker", "stop", env=env)


def _relay(sec: Secure, user: str, db: str, agency: str = "bawaslu",
           **extra: str) -> subprocess.CompletedProcess[str]:
    return netral("connector", "run", "--agency", agency, "--database", db, "--once",
                  env=sec.env(user, **extra), timeout=120)


def test_broker_refuses_everyone_without_an_acl(secure: Secure) -> None:
    listed = netral("principals", "list", env={"NETRAL_HOME": str(secure.home)}, check=True)
    assert "User:agency-bawaslu" in listed.stdout and "User:svc-streams" in listed.stdout
    props = (secure.home / "broker" / "node-1" / "server.properties").read_text()
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "StandardAuthorizer" in props
    assert oct((secure.home / "broker" / "node-1" / "server.properties").stat().st_mode)[-3:] \
        == "600"


def test_agency_produces_to_its_own_raw_topic(secure: Secure, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bawaslu.db'}"
    engine = agency_engine(db)
    reports = sample_reports(3, seed=random.randrange(10**9))
    with engine.begin() as conn:
        for r in reports:
            enqueue(conn, r, CODEC)
    proc = _relay(secure, "agency-bawaslu", db)
    assert proc.returncode == 0, proc.stderr
    assert "sent 3 outbox rows" in proc.stdout
    wanted = {r.source_id.encode() for r in reports}
    records = asyncio.run(consume_until(
        secure.admin, ["netral.raw.bawaslu"],
        lambda rs: wanted <= {r.key for r in rs}, timeout_s=90))
    assert wanted <= {r.key for r in records}


def test_agency_writing_another_agencys_topic_is_one_clear_line(secure: Secure,
                                                                tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'rogue.db'}"
    engine = agency_engine(db)
    with engine.begin() as conn:  # a Bawaslu system trying to publish as BKN
        conn.execute(insert(outbox).values(topic="netral.raw.bkn", key="forged-1",
                                           value=b"forged", created_at=_now()))
    proc = _relay(secure, "agency-bawaslu", db)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    # aiokafka logs its own ERROR record before; the hub's answer is one line, the last
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("netral:")]
    assert len(lines) == 1 and proc.stderr.strip().endswith(lines[0]), proc.stderr
    line = lines[0]
    assert "Traceback" not in proc.stderr
    assert "not authorized" in line and "netral.raw.bkn" in line
    assert "User:agency-bawaslu" in line


def test_agency_reads_nothing(secure: Secure) -> None:
    conn = secure.conn("agency-bawaslu")

    async def read_cases() -> None:
        # no consumer group: the refusal is the topic's own (the metadata answer), not a group's
        consumer = AIOKafkaConsumer(CASES, **conn.aiokafka_kwargs(), group_id=None,
                                    request_timeout_ms=30000)
        try:
            await consumer.start()
            await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()

    with pytest.raises(KafkaError) as caught:
        asyncio.run(read_cases())
    assert type(caught.value).__name__ == "TopicAuthorizationFailedError", caught.value
    failure = kafka_failure(caught.value, conn, f"read {CASES}")
    assert isinstance(failure, AuthorizationError)
    assert "User:agency-bawaslu is not authorized for that topic" in str(failure)


def test_wrong_password_and_plaintext_cannot_connect(secure: Secure) -> None:
    wrong = netral("topics", "create",
                   env=secure.env("agency-bawaslu", "not-the-password-1"), timeout=120)
    assert wrong.returncode == 1
    assert "no Kafka session" in wrong.stderr and "User:agency-bawaslu" in wrong.stderr
    assert "Traceback" not in wrong.stderr, wrong.stderr
    assert wrong.stderr.strip().splitlines()[-1].startswith("netral: "), wrong.stderr
    with pytest.raises(RetriableError):
        asyncio.run(cluster_size(secure.conn("agency-bawaslu", "not-the-password-1")))
    # no TLS, no SASL: the TLS listener never completes a Kafka handshake
    with pytest.raises(RetriableError):
        asyncio.run(cluster_size(KafkaConnection(bootstrap=secure.bootstrap)))
    # SASL without TLS against the TLS listener
    plain_sasl = secure.conn("agency-bawaslu").model_copy(
        update={"security_protocol": "SASL_PLAINTEXT"})
    with pytest.raises(RetriableError):
        asyncio.run(cluster_size(plain_sasl))
    assert asyncio.run(cluster_size(secure.conn("agency-bawaslu"))) == 1


def test_rotated_password_takes_effect(secure: Secure) -> None:
    env = {"NETRAL_HOME": str(secure.home)}
    old, new = "kemenpanrb-old-pass-1", "kemenpanrb-new-pass-2"
    netral("principals", "add", "--agency", "kemenpanrb", "--password", old, env=env,
           check=True)
    assert asyncio.run(cluster_size(secure.conn("agency-kemenpanrb", old))) == 1
    rotated = netral("principals", "rotate", "--agency", "kemenpanrb", "--password", new,
                     env=env, check=True)
    assert "password of User:agency-kemenpanrb replaced" in rotated.stdout
    with pytest.raises(RetriableError):
        asyncio.run(cluster_size(secure.conn("agency-kemenpanrb", old)))
    assert asyncio.run(cluster_size(secure.conn("agency-kemenpanrb", new))) == 1
    # and the new identity still may write only its own topic
    asyncio.run(produce(secure.conn("agency-kemenpanrb", new), "netral.raw.kemenpanrb",
                        [(b"k", b"v", None)]))


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# -- the pipeline with security on -------------------------------------------------------------

@dataclass
class Pipeline:
    worker_log: Path
    api_url: str
    api_log: Path
    api_key: str


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"process died:\n{log.read_text(errors='replace')}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    poll_until(up, 90, lambda: f"{url} not up:\n{log.read_text(errors='replace')}", poll_s=0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def pipeline(secure: Secure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The real Faust worker as svc-streams and the real HTTP API as svc-api, both configured
    only by NETRAL_KAFKA_*; DEBUG logs captured to files for the personal-data check."""
    home = tmp_path_factory.mktemp("secure-pipeline")
    app_id = f"netral-streams-sec-{os.getpid()}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    worker_env = {**base, **secure.env("svc-streams", NETRAL_HOME=str(home / "w"),
                                       NETRAL_WORKER_APP_ID=app_id, NETRAL_LOG_LEVEL="DEBUG")}
    keys = home / "api-keys.yaml"
    api_key = add_key(keys, Agency.BAWASLU)
    port = free_port()
    api_env = {**base, **secure.env("svc-api", NETRAL_HOME=str(home / "a"),
                                    NETRAL_API_KEYS_FILE=str(keys), NETRAL_LOG_LEVEL="DEBUG")}
    worker_log, api_log = home / "worker.log", home / "api.log"
    with worker_log.open("wb") as wout, api_log.open("wb") as aout:
        worker = subprocess.Popen([sys.executable, "-m", "hub", "worker"], env=worker_env,
                                  cwd=REPO, stdout=wout, stderr=subprocess.STDOUT)
        api = subprocess.Popen([sys.executable, "-m", "hub", "api", "--port", str(port)],
                               env=api_env, cwd=REPO, stdout=aout, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 150
            while True:
                if worker.poll() is not None:
                    raise AssertionError("worker died:\n" + worker_log.read_text())
                try:
                    asyncio.run(wait_group_stable(secure.admin, app_id, timeout_s=3))
                    break
                except RetriableError:
                    assert time.monotonic() < deadline, worker_log.read_text()[-5000:]
            _wait_http(f"http://127.0.0.1:{port}/health", api, api_log)
            yield Pipeline(worker_log, f"http://127.0.0.1:{port}", api_log, api_key)
        finally:
            _stop(api)
            _stop(worker)
            text = worker_log.read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- worker log ---\n{text[-5000:]}")


def _events(records: list, wanted: set[str]) -> dict[str, CanonicalEvent]:
    out = {}
    for rec in records:
        ev = CanonicalEvent.from_avro(CODEC.decode(rec.value).value)
        if ev.event_id in wanted:
            out[ev.event_id] = ev
    return out


def test_normalize_worker_runs_green_as_the_streams_principal(secure: Secure,
                                                              pipeline: Pipeline) -> None:
    reports = [report() for _ in range(3)]
    asyncio.run(produce(secure.conn("agency-bawaslu"), "netral.raw.bawaslu",
                        [(r.source_id.encode(), encode(CODEC, r), None) for r in reports]))
    wanted = {f"bawaslu:{r.source_id}" for r in reports}
    records = asyncio.run(consume_until(secure.admin, [EVENTS],
                                        lambda rs: len(_events(rs, wanted)) == len(wanted),
                                        timeout_s=120))
    assert set(_events(records, wanted)) == wanted
    # a bad record still reaches the DLQ: the worker may write it
    mark = f"bad-{os.getpid()}-{time.time()}".encode()
    asyncio.run(produce(secure.conn("agency-bawaslu"), "netral.raw.bawaslu",
                        [(b"k", b"not avro at all", [("test.mark", mark)])]))
    letters = asyncio.run(consume_until(
        secure.admin, [dlq_topic("normalize")],
        lambda rs: any(dict(r.headers).get("test.mark") == mark for r in rs), timeout_s=120))
    assert any(dict(r.headers).get("test.mark") == mark for r in letters)


def test_http_api_sends_security_headers_and_closes_cors(pipeline: Pipeline) -> None:
    resp = httpx.get(f"{pipeline.api_url}/health", timeout=10,
                     headers={"Origin": "https://evil.example"})
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert "access-control-allow-origin" not in resp.headers
    pre = httpx.options(f"{pipeline.api_url}/v1/ingest/bawaslu", timeout=10, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 400 and "access-control-allow-origin" not in pre.headers
    # the dashboard's HTML may load its own scripts and styles and nothing else
    page = httpx.get(f"{pipeline.api_url}/dashboard", timeout=10, follow_redirects=True)
    assert page.headers["content-type"].startswith("text/html"), page.headers
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "https:" not in csp
    static = httpx.get(f"{pipeline.api_url}/static/htmx-2.0.11.min.js", timeout=10)
    assert static.status_code == 200 and static.headers.get("cache-control") != "no-store"


def test_no_nip_in_the_logs_of_a_secure_run(secure: Secure, pipeline: Pipeline,
                                            tmp_path: Path) -> None:
    rng = random.Random()
    nips = [random_nip(rng) for _ in range(4)]
    # 1. HTTP ingest (svc-api): two good records and one with an invalid NIP
    bad_nip = nips[0][:17]
    body = [
        {**BAWASLU, "id_laporan": f"sec-http-{i}-{os.getpid()}",
         "terlapor": {**BAWASLU["terlapor"], "nip": nip}}
        for i, nip in enumerate([nips[0], nips[1], bad_nip])]
    resp = httpx.post(f"{pipeline.api_url}/v1/ingest/bawaslu", content=json.dumps(body),
                      headers={"X-API-Key": pipeline.api_key}, timeout=60)
    assert resp.status_code == 207, resp.text
    # 2. the outbox relay (agency-bawaslu)
    db = f"sqlite:///{tmp_path / 'relay.db'}"
    engine = agency_engine(db)
    relayed = [report() for _ in range(2)]
    relayed = [r.model_copy(update={"accused": r.accused.model_copy(update={"nip": nip})})
               for r, nip in zip(relayed, nips[2:], strict=True)]
    with engine.begin() as conn:
        for r in relayed:
            enqueue(conn, r, CODEC)
    relay = _relay(secure, "agency-bawaslu", db, NETRAL_LOG_LEVEL="DEBUG")
    assert relay.returncode == 0, relay.stderr
    # 3. a record normalize must dead-letter for its NIP (gender digit 3)
    dlq_nip = nips[3][:14] + "3" + nips[3][15:]
    bad = report()
    bad = bad.model_copy(update={"accused": bad.accused.model_copy(update={"nip": nips[3]})})
    raw = encode(CODEC, bad, accused__nip=dlq_nip)
    asyncio.run(produce(secure.conn("agency-bawaslu"), "netral.raw.bawaslu",
                        [(bad.source_id.encode(), raw, None)]))
    wanted = {f"bawaslu:sec-http-0-{os.getpid()}", f"bawaslu:sec-http-1-{os.getpid()}",
              *(f"bawaslu:{r.source_id}" for r in relayed)}
    asyncio.run(consume_until(secure.admin, [EVENTS],
                              lambda rs: len(_events(rs, wanted)) == len(wanted),
                              timeout_s=120))
    asyncio.run(consume_until(
        secure.admin, [dlq_topic("normalize")],
        lambda rs: any(r.key == bad.source_id.encode() for r in rs), timeout_s=120))
    logs = {
        "worker": pipeline.worker_log.read_text(errors="replace"),
        "api": pipeline.api_log.read_text(errors="replace"),
        "relay": relay.stdout + relay.stderr,
        "broker": (secure.home / "broker" / "node-1" / "broker.log").read_text(
            errors="replace"),
    }
    assert "dlq normalize" in logs["worker"]  # the DLQ'd record was logged, by position only
    for name, text in logs.items():
        for nip in [*nips, bad_nip, dlq_nip]:
            assert nip not in text, f"NIP {nip} in the {name} log"


@pytest.fixture(scope="module")
def cors_api(secure: Secure, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[str, str]]:
    """The API app with one allowed origin, on loopback, publishing as svc-api; (url, key)."""


    from connectors.ingest import IngestLimits
    from connectors.keys import KeyStore
    from hub.api.app import create_app
    from tests.fixtures.threaded_server import serving

    keys = tmp_path_factory.mktemp("cors") / "api-keys.yaml"
    key = add_key(keys, Agency.BAWASLU)
    app = create_app(secure.conn("svc-api"), KeyStore.load(keys), IngestLimits(),
                     cors_origins=["https://satgas.example"])
    with serving(app) as url:
        yield url, key


def test_cors_opens_only_for_configured_origins(cors_api: tuple[str, str]) -> None:
    url = cors_api[0]
    ok = httpx.options(f"{url}/v1/ingest/bawaslu", timeout=10, headers={
        "Origin": "https://satgas.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://satgas.example"
    other = httpx.options(f"{url}/v1/ingest/bawaslu", timeout=10, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_a_streamed_body_over_the_cap_is_cut_off_with_413(cors_api: tuple[str, str]) -> None:
    url, key = cors_api
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer, 4 MiB in all
        for _ in range(64):
            yield b"[" + b" " * (64 * 1024 - 1)

    resp = httpx.post(f"{url}/v1/ingest/bawaslu", content=chunks(), timeout=30,
                      headers={"X-API-Key": key})
    assert resp.status_code == 413, resp.text
    assert "exceeds 1048576 bytes" in resp.json()["detail"]
    assert resp.headers["x-content-type-options"] == "nosniff"
    declared = httpx.post(f"{url}/v1/ingest/bawaslu", content=b"x" * (2 * 1024 * 1024),
                          timeout=30)
    assert declared.status_code == 413 and "exceeds 1048576" in declared.json()["detail"]


async def test_sql_sink_runs_as_its_own_principal(secure: Secure, tmp_path: Path) -> None:
    """svc-sql-sink: reads the record's topics in its group, dead-letters to netral.dlq.sql."""
    from sqlalchemy import func, select

    from sinks.sql import migrate
    from sinks.sql.engine import create_sql_engine
    from sinks.sql.runner import SqlRunnerConfig, SqlSinkRunner
    from sinks.sql.sink import SqlSink
    from sinks.sql.tables import cases
    from tests.fixtures.sql_records import case, uid
    from tests.fixtures.waiting import wait_until

    pw = "sql-sink-" + "s3cret-for-tests"
    proc = await asyncio.to_thread(
        netral, "principals", "add", "--service", "sql-sink", "--password", pw,
        env={"NETRAL_HOME": str(secure.home)}, check=True)
    assert "allow READ group netral-sql-sink*" in proc.stdout
    url = f"sqlite:///{tmp_path / 'record.db'}"
    migrate.upgrade(url)
    engine = create_sql_engine(url)
    codec = AvroCodec()
    key = uid("case").encode()
    good = case(key.decode(), 1)
    await produce(secure.admin, CASES, [
        (key, b"not avro", None),
        (key, codec.encode(good.avro_name, good.to_avro(), topic=CASES), None)])
    runner = SqlSinkRunner(SqlSink(engine), codec, SqlRunnerConfig(
        kafka=secure.conn("svc-sql-sink", pw), group_id=f"netral-sql-sink-{uid('g')}",
        poll_timeout_ms=200))
    await runner.start()
    task = asyncio.create_task(runner.run())

    async def stored() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(cases).where(
                cases.c.case_id == good.case_id)).scalar_one() == 1

    try:
        await wait_until(stored, 120, lambda: f"case not stored (stats {runner.stats})")
    finally:
        runner.request_stop()
        await asyncio.wait_for(task, timeout=30)
        await runner.stop()
        engine.dispose()
    letters = await consume_until(secure.admin, [dlq_topic("sql")],
                                  lambda rs: any(r.key == key for r in rs), timeout_s=60)
    assert [r.value for r in letters if r.key == key] == [b"not avro"]


async def test_siasn_adapter_runs_as_its_own_principal(secure: Secure) -> None:
    """svc-siasn-adapter: reads the orders, writes results in Kafka transactions (its own
    transactional id and group), and is the only hub principal besides the record to read them."""
    from sinks.siasn.client import HttpSiasnClient
    from sinks.siasn.runner import run_adapter
    from tests.fixtures.sql_records import uid
    from tests.integration.test_siasn_adapter import (
        client_config,
        has_results,
        make_orders,
        mock_siasn,
        produce_orders,
    )

    pw = "siasn-adapter-" + "s3cret-for-tests"
    await asyncio.to_thread(
        netral, "principals", "add", "--service", "siasn-adapter", "--password", pw,
        env={"NETRAL_HOME": str(secure.home)}, check=True)
    orders = make_orders(5, uid("sec"), seed=7)
    await produce_orders(secure.admin, "netral.orders.siasn", orders)
    conn = secure.conn("svc-siasn-adapter", pw)
    with mock_siasn() as mock:
        stop = asyncio.Event()
        async with HttpSiasnClient(client_config(mock)) as client:
            adapter = asyncio.create_task(run_adapter(
                conn, client, CODEC, f"netral-siasn-adapter-{uid('g')}", stop))
            try:
                await consume_until(secure.admin, ["netral.orders.siasn.results"],
                                    has_results({o.order_id for o in orders}), timeout_s=120)
            finally:
                stop.set()
                stats = await adapter
        effects = await mock.effects()
    assert stats.confirmed >= len(orders)
    assert {o.nip for o in orders} <= {e["nip"] for e in effects}
    # the stream workers may not read the orders (only the adapter and the SQL record do)
    streams = secure.conn("svc-streams")

    async def streams_reads_orders() -> None:
        # it may DESCRIBE the topic (it writes orders), so the refusal comes with the fetch
        consumer = AIOKafkaConsumer("netral.orders.siasn", **streams.aiokafka_kwargs(),
                                    group_id=None, request_timeout_ms=30000,
                                    auto_offset_reset="earliest")
        try:
            await consumer.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                assert not any(batch.values()), "svc-streams read an order"
        finally:
            await consumer.stop()

    with pytest.raises(KafkaError) as caught:
        await streams_reads_orders()
    assert type(caught.value).__name__ == "TopicAuthorizationFailedError"


def test_alerts_service_runs_as_its_own_principal(secure: Secure, tmp_path: Path) -> None:
    """`netral alerts run` as svc-alerts: joins its group, reads netral.alerts, dead-letters a
    poison record to netral.dlq.alerts; configured only by NETRAL_KAFKA_*."""
    from tests.fixtures.sql_records import uid

    pw = "alerts-" + "s3cret-for-tests-y"
    netral("principals", "add", "--service", "alerts", "--password", pw,
           env={"NETRAL_HOME": str(secure.home)}, check=True)
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"recipients:\n  - id: satgas-nasional\n    name: Satgas Nasional\n"
                      f"    scope: national\n    channels:\n      - type: webhook\n"
                      f"        url: http://127.0.0.1:{free_port()}/webhook\n"
                      f"        secret: env:TEST_ALERT_SECRET\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env = {**base, **secure.env("svc-alerts", pw, NETRAL_HOME=str(tmp_path),
                                NETRAL_ALERTS_ROUTES_FILE=str(routes),
                                NETRAL_ALERTS_GROUP_ID=f"netral-alerts-{uid('g')}"),
           "TEST_ALERT_SECRET": "security-test-secret-0123456789"}
    key = uid("poison").encode()
    log = tmp_path / "alerts.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "alerts", "run", "--migrate"],
                                env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            asyncio.run(produce(secure.admin, "netral.alerts", [(key, b"not an alert", None)]))
            try:
                letters = asyncio.run(consume_until(
                    secure.admin, [dlq_topic("alerts")],
                    lambda rs: any(r.key == key for r in rs), timeout_s=120))
            except AssertionError as err:
                raise AssertionError(f"{err}\n--- alerts log ---\n{log.read_text()}") from None
            assert any(r.key == key for r in letters)
        finally:
            _stop(proc)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_lag_runs_as_its_own_principal(secure: Secure, pipeline: Pipeline) -> None:
    """`netral lag` as svc-lag sees the worker's group (describe rights only)."""
    pw = "lag-" + "s3cret-for-tests-zz"
    netral("principals", "add", "--service", "lag", "--password", pw,
           env={"NETRAL_HOME": str(secure.home)}, check=True)
    app_id = f"netral-streams-sec-{os.getpid()}"
    r = report()  # the worker commits an offset on netral.raw.bawaslu once it processed this
    asyncio.run(produce(secure.conn("agency-bawaslu"), "netral.raw.bawaslu",
                        [(r.source_id.encode(), encode(CODEC, r), None)]))
    asyncio.run(consume_until(secure.admin, [EVENTS],
                              lambda rs: bool(_events(rs, {f"bawaslu:{r.source_id}"})),
                              timeout_s=120))
    deadline = time.monotonic() + 60
    while True:
        out = netral("lag", "--group", app_id, timeout=120,
                     env={**secure.env("svc-lag", pw), "COLUMNS": "250"})
        assert out.returncode == 0, out.stderr
        if app_id in out.stdout and "netral.raw.bawaslu" in out.stdout:
            break
        admin = netral("lag", "--group", app_id, timeout=120,
                       env={"NETRAL_HOME": str(secure.home), "COLUMNS": "250"}).stdout
        assert time.monotonic() < deadline, f"svc-lag sees:\n{out.stdout}\nadmin sees:\n{admin}"
    # describing is all it may do: writing is refused (already the idempotent producer's start)
    async def write() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**secure.conn("svc-lag", pw).aiokafka_kwargs(),
                                    enable_idempotence=True)
        try:
            await producer.start()
            await producer.send_and_wait("netral.raw.bawaslu", b"v", key=b"k")
        finally:
            await producer.stop()

    with pytest.raises(KafkaError):
        asyncio.run(write())
