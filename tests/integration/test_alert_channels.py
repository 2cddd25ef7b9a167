"""Satgas alert channels end to end: a real broker, a real SQLite ledger, the local webhook
receiver (a real HTTP server on loopback, checking signatures), and a real SMTP server (aiosmtpd).

Each test gets its own topics, consumer group, database, receiver and SMTP server; waits are
conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from hub.alerts_receiver import ReceiverConfig, create_receiver_app, secrets_of
from hub.broker.local import free_port
from hub.kafka_admin import create_topics
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.kafka import KafkaConnection
from schemas.models.enums import Severity
from schemas.models.hub import Alert
from schemas.topics import TopicSpec
from sinks.alerts.channels import RetryPolicy, SmtpConfig
from sinks.alerts.digest import Throttle
from sinks.alerts.dispatcher import AlertDispatcher
from sinks.alerts.ledger import DeliveryLedger
from sinks.alerts.routes import Routes, parse_routes
from sinks.alerts.runner import AlertsRunner, AlertsRunnerConfig, build_senders
from sinks.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from sinks.sql import migrate
from sinks.sql.engine import create_sql_engine
from sinks.sql.sink import RecordMeta, SqlSink
from sinks.sql.tables import alert_deliveries
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.sql_records import case, random_nip
from tests.fixtures.threaded_server import ThreadedServer, loopback_socket, url_of
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
NAME = "Drs. Asep Suryana, M.Si."
FAST = RetryPolicy(max_attempts=4, initial_s=0.05, max_s=0.2, timeout_s=5.0)


def now() -> datetime:
    return datetime.now(UTC)


# -- real servers ---------------------------------------------------------------------------------
class Receiver:
    """``netral alerts receiver``'s app in uvicorn on a background thread."""

    def __init__(self, out: Path) -> None:
        self.sock = loopback_socket()  # the URL goes into the routes before the app exists
        self.url = url_of(self.sock)
        self.out = out
        self.server: ThreadedServer | None = None

    def start(self, routes: Routes, fail_first: int = 0) -> None:
        app = create_receiver_app(ReceiverConfig(secrets=secrets_of(routes), out_file=self.out,
                                                 fail_first=fail_first))
        self.server = ThreadedServer(app, "receiver", sock=self.sock, lifespan="off")
        self.server.start(timeout_s=20)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout_s=10)
        self.sock.close()

    async def state(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.get("/_received")
            response.raise_for_status()
            return dict(response.json())

    async def received(self) -> list[dict[str, Any]]:
        return list((await self.state())["received"])


class MailBox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, MailBox]]:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def routes_for(receiver_url: str, unique: str) -> str:
    return f"""
recipients:
  - id: nasional
    name: Satgas Netralitas ASN Nasional
    scope: national
    channels:
      - {{type: webhook, url: "{receiver_url}/webhook/nasional", secret: nasional-secret-{unique}}}
      - {{type: email, to: [nasional@satgas.example]}}
  - id: jabar
    name: Satgas Jawa Barat
    scope: province
    province: "32"
    channels:
      - {{type: webhook, url: "{receiver_url}/webhook/jabar", secret: jabar-secret-{unique}}}
      - {{type: chat, url: "{receiver_url}/botTEST/sendMessage", chat_id: -10032}}
  - id: jatim
    name: Satgas Jawa Timur
    scope: province
    province: "35"
    channels:
      - {{type: webhook, url: "{receiver_url}/webhook/jatim", secret: jatim-secret-{unique}}}
  - id: garut
    name: BKPSDM Kabupaten Garut
    scope: agency
    agency: Pemerintah Kabupaten Garut
    channels:
      - {{type: email, to: [bkpsdm@garut.example]}}
"""


# -- the pieces, per test -------------------------------------------------------------------------
class Rig:
    """Topics, database, receiver, SMTP server and routes of one test."""

    def __init__(self, kafka: KafkaConnection, tmp_path: Path, unique: str,
                 smtp_port: int, box: MailBox, database_url: str | None = None) -> None:
        self.kafka = kafka
        self.unique = unique
        self.topic = f"test.{unique}.alerts"
        self.dlq = f"test.{unique}.dlq.alerts"
        self.url = database_url or f"sqlite:///{tmp_path / 'netral.db'}"
        migrate.upgrade(self.url)
        self.engine: Engine = create_sql_engine(self.url, busy_timeout_ms=300)
        self.receiver = Receiver(tmp_path / "received.jsonl")
        self.routes = parse_routes(routes_for(self.receiver.url, unique))
        self.smtp = SmtpConfig(host="127.0.0.1", port=smtp_port,
                               mail_from="netral@hub.example")
        self.box = box

    async def make_topics(self) -> None:
        specs = [TopicSpec(name=n, key="region", value="test", cleanup="delete",
                           retention_ms=24 * 3600 * 1000, writer="test")
                 for n in (self.topic, self.dlq)]
        await create_topics(self.kafka, specs, partitions=2, replication=1, min_insync=1)

    async def send(self, alerts: list[Alert]) -> None:
        await produce(self.kafka, self.topic, [
            (a.region_code.encode(), CODEC.encode(Alert.avro_name, a.to_avro(),
                                                  topic=self.topic), None) for a in alerts])

    def ledger_rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(alert_deliveries)))

    def store_case(self, case_id: str, nip: str) -> None:
        sink = SqlSink(self.engine)
        sink.add(case(case_id, 1, nip=nip), RecordMeta("t", 0, 0))
        sink.flush_sync()

    @asynccontextmanager
    async def runner(self, *, group: str | None = None, threshold: int = 100,
                     window_s: float = 60.0, policy: RetryPolicy = FAST
                     ) -> AsyncIterator[AlertsRunner]:
        """A started runner consuming in the background; stopped (digests flushed) on exit."""
        async with httpx.AsyncClient() as http:
            dispatcher = AlertDispatcher(
                self.routes, DeliveryLedger(self.engine, now),
                build_senders(self.routes, http=http, smtp=self.smtp, policy=policy, clock=now),
                Throttle(threshold, timedelta(seconds=window_s)), now, concurrency=8)
            runner = AlertsRunner(dispatcher, CODEC, AlertsRunnerConfig(
                kafka=self.kafka, group_id=group or f"test-alerts-{self.unique}",
                topic=self.topic, dlq=self.dlq, poll_timeout_ms=200))
            await runner.start()
            task = asyncio.create_task(runner.run())
            try:
                yield runner
            finally:
                runner.request_stop()
                await asyncio.wait_for(task, timeout=60)
                await runner.stop()


@pytest.fixture
async def rig(kafka: KafkaConnection, tmp_path: Path, unique: str) -> AsyncIterator[Rig]:
    with smtp_server() as (port, box):
        r = Rig(kafka, tmp_path, unique, port, box)
        await r.make_topics()
        yield r
        r.receiver.stop()
        r.engine.dispose()


@pytest.fixture
async def rig_on_each_db(kafka: KafkaConnection, tmp_path: Path, unique: str,
                         database_url: str) -> AsyncIterator[Rig]:
    """The same, with the ledger on SQLite and on PostgreSQL."""
    with smtp_server() as (port, box):
        r = Rig(kafka, tmp_path, unique, port, box, database_url)
        await r.make_topics()
        yield r
        r.receiver.stop()
        r.engine.dispose()


def make_alert(region: str, *, severity: Severity = Severity.WARNING, agency: str | None = None,
               case_id: str | None = None, nip: str | None = None,
               detail: str = "The PPK has not acted.") -> Alert:
    aid = f"al-{uuid.uuid4().hex[:10]}"
    return Alert(alert_id=aid, rule="deadline.ppk.soon", severity=severity, region_code=region,
                 province_code=region[:2], case_id=case_id, nip=nip, agency_name=agency,
                 title=f"PPK deadline in 2 working days ({aid})", detail=detail, at=now(),
                 dedupe_key=f"deadline.ppk.soon:{aid}")


def per_recipient(received: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(recipient or 'chat', alert id) -> how many times it arrived."""
    out: Counter[tuple[str, str]] = Counter()
    for line in received:
        body = line["body"]
        if line["kind"] == "webhook" and body["type"] == "netral.alert":
            out[(line["recipient"], body["alert"]["alert_id"])] += 1
        elif line["kind"] == "webhook":
            for a in body["alerts"]:
                out[(line["recipient"], a["alert_id"])] += 1
        else:
            out[("chat", body["text"].split("(")[1].split(")")[0])] += 1
    return out


# -- tests ----------------------------------------------------------------------------------------
async def test_routing_masking_signatures_and_mail(rig: Rig) -> None:
    rig.receiver.start(rig.routes)
    nip = random_nip()
    case_id = f"case-{rig.unique}"
    rig.store_case(case_id, nip)  # the national record knows the person's name
    garut = make_alert("32.05", severity=Severity.CRITICAL, agency="Pemerintah Kabupaten Garut",
                       case_id=case_id, nip=nip,
                       detail=f"{NAME} (NIP {nip}) is still unsanctioned.")
    jatim = make_alert("35.78")
    aceh = make_alert("11.01")
    await rig.send([garut, jatim, aceh])
    async with rig.runner():
        async def arrived() -> bool:
            return len(await rig.receiver.received()) >= 6 and len(rig.box.messages) >= 4
        await wait_until(arrived, 90, "webhooks, chat and mails")
    got = per_recipient(await rig.receiver.received())
    assert got == Counter({("nasional", garut.alert_id): 1, ("nasional", jatim.alert_id): 1,
                          ("nasional", aceh.alert_id): 1, ("jabar", garut.alert_id): 1,
                          ("jatim", jatim.alert_id): 1, ("chat", garut.alert_id): 1})
    lines = await rig.receiver.received()
    assert all(line["verified"] for line in lines if line["kind"] == "webhook")
    by = {(line.get("recipient", "chat"), (line["body"].get("alert") or {}).get("alert_id")): line
          for line in lines}
    clear = by[("nasional", garut.alert_id)]["body"]["alert"]
    masked = by[("jabar", garut.alert_id)]["body"]["alert"]
    assert clear["nip"] == nip and NAME in clear["detail"] and not clear["masked"]
    assert masked["nip"] == nip[:4] + "*" * 11 + nip[-3:]
    assert nip not in masked["detail"] and "Asep" not in masked["detail"]
    assert "D. A. S. M. S." in masked["detail"]
    chat = next(line for line in lines if line["kind"] == "chat")["body"]
    assert chat["chat_id"] == -10032 and chat["parse_mode"] == "HTML"
    assert nip not in chat["text"] and "Asep" not in chat["text"]

    assert sorted(to for to, _ in rig.box.messages) == [["bkpsdm@garut.example"]] + [
        ["nasional@satgas.example"]] * 3  # every alert to the nation, the agency's to Garut
    mails = {tuple(to): msg for to, msg in rig.box.messages if garut.alert_id in msg["Subject"]}
    assert set(mails) == {("nasional@satgas.example",), ("bkpsdm@garut.example",)}
    for to, msg in mails.items():
        assert msg.get_content_type() == "multipart/alternative"
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert plain is not None and html is not None
        text, markup = plain.get_content(), html.get_content()
        assert garut.alert_id in text and "<html>" in markup
        if to == ("bkpsdm@garut.example",):  # an agency: masked
            assert nip not in text + markup and "Asep" not in text + markup
        else:
            assert nip in text and "Asep Suryana" in text
    rows = rig.ledger_rows()
    assert len(rows) == 3 * 2 + 2 + 1 + 1 and {r.status for r in rows} == {"SENT"}
    assert all(r.attempts == 1 for r in rows)

    # the receiver refuses a forged or tampered delivery
    body = (b'{"type":"netral.alert","sent_at":"' + now().isoformat().encode() + b'"}')
    async with httpx.AsyncClient(base_url=rig.receiver.url) as http:
        forged = await http.post("/webhook/jabar", content=body, headers={
            SIGNATURE_HEADER: "sha256=" + "0" * 64, TIMESTAMP_HEADER: "1"})
    assert forged.status_code == 401
    assert forged.json()["error"] == "signature does not match the body"


async def test_repeats_restarts_and_replays_deliver_nothing_twice(rig_on_each_db: Rig) -> None:
    rig = rig_on_each_db
    rig.receiver.start(rig.routes)
    first = make_alert("32.73")
    await rig.send([first, first])  # the same alert produced twice

    async def count(n: int) -> bool:
        return len(await rig.receiver.received()) >= n
    group = f"test-alerts-{rig.unique}"
    async with rig.runner(group=group) as runner:
        await wait_until(lambda: count(3), 60, "first alert: nasional, jabar, chat")
        await wait_until(lambda: _done(runner, 2), 30, "both copies consumed")
    second = make_alert("32.73")
    await rig.send([second, first])  # and once more after the stop
    async with rig.runner(group=group) as runner:  # restart, same group
        await wait_until(lambda: count(6), 60, "second alert after the restart")
        await wait_until(lambda: _done(runner, 2), 30, "restart consumed the new records")
        assert runner.dispatcher.stats.duplicates == 4  # `first` again, on its 4 channels
        assert runner.dispatcher.metrics.registry.get_sample_value(
            "netral_alert_repeats_skipped_total") == 4
    async with rig.runner(group=f"replay-{rig.unique}") as runner:  # a replay from offset 0
        await wait_until(lambda: _done(runner, 4), 60, "replay consumed every record")
        assert runner.dispatcher.stats.sent == 0
    got = per_recipient(await rig.receiver.received())
    assert got == Counter({(r, a.alert_id): 1 for r in ("nasional", "jabar", "chat")
                           for a in (first, second)})
    assert len(rig.ledger_rows()) == 2 * 4
    assert sorted(str(m["Subject"]).split("(")[1][:-1] for _, m in rig.box.messages) == sorted(
        [first.alert_id, second.alert_id])  # the national mail, once each


async def _done(runner: AlertsRunner, records: int) -> bool:
    return runner.stats.records >= records


async def test_a_burst_past_the_threshold_becomes_one_digest(rig: Rig) -> None:
    rig.receiver.start(rig.routes)
    burst = [make_alert("35.78") for _ in range(5)]
    await rig.send(burst)
    async with rig.runner(threshold=2, window_s=4.0) as runner:
        async def digested() -> bool:
            return runner.dispatcher.stats.digests_sent >= 2  # nasional's and jatim's
        await wait_until(digested, 60, "the digests at the window end")
        assert runner.dispatcher.stats.queued == 3 * 3  # nasional webhook + email, jatim
    lines = await rig.receiver.received()
    singles = [line for line in lines if line["body"]["type"] == "netral.alert"]
    digests = [line for line in lines if line["body"]["type"] == "netral.alert.digest"]
    assert Counter(line["recipient"] for line in singles) == {"nasional": 2, "jatim": 2}
    assert Counter(line["recipient"] for line in digests) == {"nasional": 1, "jatim": 1}
    assert all(d["body"]["count"] == 3 for d in digests)
    assert per_recipient(lines) == Counter({(r, a.alert_id): 1 for r in ("nasional", "jatim")
                                            for a in burst})
    digest_mail = [m for _, m in rig.box.messages if "digest" in str(m["Subject"])]
    assert len(digest_mail) == 1 and len(rig.box.messages) == 3
    rows = rig.ledger_rows()
    assert len(rows) == 15 and {r.status for r in rows} == {"SENT"}


async def test_queued_digests_go_out_on_shutdown(rig: Rig) -> None:
    rig.receiver.start(rig.routes)
    await rig.send([make_alert("35.78") for _ in range(3)])
    async with rig.runner(threshold=1, window_s=3600) as runner:
        await wait_until(lambda: _done(runner, 3), 60, "the burst consumed")
        assert runner.dispatcher.stats.digests_sent == 0
        queued = [r for r in rig.ledger_rows() if r.status == "QUEUED"]
        assert len(queued) == 2 * 3 and all(r.view["masked"] == (r.recipient != "nasional")
                                            for r in queued)
    digests = [line for line in await rig.receiver.received()
               if line["body"]["type"] == "netral.alert.digest"]
    assert sorted(line["recipient"] for line in digests) == ["jatim", "nasional"]
    assert {r.status for r in rig.ledger_rows()} == {"SENT"}


async def test_poison_messages_go_to_the_dlq_and_the_stream_goes_on(rig: Rig) -> None:
    rig.receiver.start(rig.routes)
    good = make_alert("35.78")
    bad = make_alert("35.78").to_avro()
    bad["province_code"] = "32"  # Avro-valid, but not the province of 35.78
    await produce(rig.kafka, rig.topic, [
        (b"35", b"not avro at all", None),
        (b"35", CODEC.encode(Alert.avro_name, bad, topic=rig.topic), None),
    ])
    await rig.send([good])
    async with rig.runner():
        async def delivered() -> bool:
            return len(await rig.receiver.received()) >= 2
        await wait_until(delivered, 60, "the good alert after the poison")
    letters = await consume_until(rig.kafka, [rig.dlq], lambda recs: len(recs) >= 2)
    reasons = [DeadLetter.from_headers(rec.headers) for rec in letters]
    assert sorted(r.error_class for r in reasons) == ["InvalidMessage", "SerializationError"]
    assert any("province_code" in r.reason for r in reasons)
    assert {r.stage for r in reasons} == {"alerts"}
    assert {rec.value for rec in letters} >= {b"not avro at all"}
    assert per_recipient(await rig.receiver.received()) == Counter(
        {("nasional", good.alert_id): 1, ("jatim", good.alert_id): 1})


async def test_a_failing_webhook_is_retried_then_recorded_failed(rig: Rig) -> None:
    rig.receiver.start(rig.routes, fail_first=10_000)  # every webhook and chat call: 503
    a, b = make_alert("32.05"), make_alert("32.05")
    await rig.send([a, b])
    async with rig.runner() as runner:
        await wait_until(lambda: _done(runner, 2), 90, "both alerts consumed past the failures")
    sample = runner.dispatcher.metrics.registry.get_sample_value
    assert sample("netral_alert_deliveries_total", {"recipient": "jabar", "channel": "chat",
                                                    "kind": "alert", "outcome": "failed"}) == 2
    assert sample("netral_alert_delivery_attempts_total",
                  {"recipient": "jabar", "channel": "chat"}) == 2 * FAST.max_attempts
    assert sample("netral_alert_deliveries_total", {"recipient": "nasional", "channel": "email",
                                                    "kind": "alert", "outcome": "sent"}) == 2
    rows = {(r.dedupe_key, r.recipient, r.channel): r for r in rig.ledger_rows()}
    for alert in (a, b):
        for recipient, channel in (("nasional", "webhook"), ("jabar", "webhook"),
                                   ("jabar", "chat")):
            row = rows[(alert.dedupe_key, recipient, channel)]
            assert row.status == "FAILED" and row.attempts == FAST.max_attempts
            assert "HTTP 503" in row.error
        mail = rows[(alert.dedupe_key, "nasional", "email")]
        assert mail.status == "SENT" and mail.attempts == 1  # the email is not held back
    state = await rig.receiver.state()
    assert state["requests"] == 2 * 3 * FAST.max_attempts and state["received"] == []
    assert len(rig.box.messages) == 2


async def test_a_transient_failure_is_retried_to_success(rig: Rig) -> None:
    rig.receiver.start(rig.routes, fail_first=2)
    alert = make_alert("11.01")  # nasional only: one webhook, one mail
    await rig.send([alert])
    async with rig.runner():
        async def arrived() -> bool:
            return len(await rig.receiver.received()) >= 1
        await wait_until(arrived, 60, "the webhook after two 503s")
    row = next(r for r in rig.ledger_rows() if r.channel == "webhook")
    assert row.status == "SENT" and row.attempts == 3


async def test_a_locked_ledger_holds_the_batch_and_nothing_is_lost_or_doubled(rig: Rig) -> None:
    rig.receiver.start(rig.routes)
    blocker = sqlite3.connect(rig.url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        alert = make_alert("11.01")
        await rig.send([alert])
        async with rig.runner() as runner:
            async def retried() -> bool:
                return runner.stats.ledger_retries >= 2
            await wait_until(retried, 60, "the runner retrying the locked ledger")
            assert await rig.receiver.received() == []
            blocker.execute("ROLLBACK")

            async def arrived() -> bool:
                return len(await rig.receiver.received()) >= 1 and len(rig.box.messages) >= 1
            await wait_until(arrived, 60, "the alert once the ledger is back")
    finally:
        blocker.close()
    assert per_recipient(await rig.receiver.received()) == Counter({("nasional",
                                                                     alert.alert_id): 1})
    assert len(rig.box.messages) == 1
    assert {(r.channel, r.status) for r in rig.ledger_rows()} == {("webhook", "SENT"),
                                                                 ("email", "SENT")}
