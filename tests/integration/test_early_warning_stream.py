"""Early warning on a real broker and a real Faust worker (the session's ``netral worker``, default
``NETRAL_EW_*``): canonical events and case records in, the expected alerts on netral.alerts
(keyed by region), nothing for what must not fire, no duplicates for a re-sent case, and poison
messages in netral.dlq.alerts while the stream goes on."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.samples import random_nip
from hub.kafka_admin import wait_group_stable
from hub.lag import PartitionLag, read_lag
from schemas.codec import AvroCodec
from schemas.dlq import DeadLetter
from schemas.errors import RetriableError
from schemas.kafka import KafkaConnection
from schemas.models import (
    Agency,
    Alert,
    CanonicalEvent,
    CaseRecord,
    CaseState,
    Election,
    EventType,
    MutationDetails,
    PersonRef,
    Position,
    RegionalHeadRole,
    RegionalOfficial,
)
from schemas.topics import ALERTS, CASES, EVENTS
from streams.processors.early_warning import subjects_topic_name
from streams.rules.calendar import default_calendar
from streams.rules.early_warning import (
    DEADLINE_AT_RISK,
    IKP_HIGH,
    IMUT_PASAL71,
    REPEAT_OFFENDER,
    SENIOR_OFFICIAL,
    SPIKE_AGENCY,
    SPIKE_REGION,
)
from streams.rules.early_warning.rules import agency_key, window_start
from streams.rules.lifecycle import local_date, stable_id
from tests.conftest import REPO
from tests.fixtures.kafka_tools import consume_until, produce
from tests.fixtures.waiting import wait_until
from tests.unit.test_rules_factories import _event, report

pytestmark = pytest.mark.integration
CODEC = AvroCodec()
DLQ = "netral.dlq.alerts"
HIGH = "32.73"  # Kota Bandung, Jawa Barat: IKP 77.04
QUIET = "33.01"  # Kabupaten Cilacap, Jawa Tengah: IKP 34.83
SPIKY = "64.72"  # Kota Samarinda: where the test's report spike happens


def _case(case_id: str, nip: str, *, region: str, position: Position, version: int = 1,
          state: CaseState = CaseState.REPORTED, next_deadline: date | None = None) -> CaseRecord:
    opened = datetime.now(UTC) - timedelta(days=3)
    return CaseRecord(
        case_id=case_id, version=version, election=Election.PILKADA_2024, state=state,
        person=PersonRef(nip=nip, name="Siti Rahayu", agency_name="Dinas Uji", position=position,
                         region_code=region),
        violation_type="SOCIAL_MEDIA", region_code=region, province_code=region[:2],
        incident_date=opened.date(), opened_at=opened, updated_at=opened,
        ppk_name="Bupati Uji", next_deadline=next_deadline)


def _mutation(request_id: str, nip: str, approval: str | None) -> CanonicalEvent:
    when = datetime.now(UTC) - timedelta(hours=1)
    return _event(
        Agency.KEMENDAGRI, request_id, EventType.MUTATION_REQUESTED, when,
        Election.PILKADA_2024, region_code=QUIET, nip=nip,
        person=PersonRef(nip=nip, name="Agus Salim", agency_name="Pemkab Cilacap",
                         region_code=QUIET),
        mutation=MutationDetails(
            request_id=request_id, requesting_official=RegionalOfficial(
                name="Pj Bupati Cilacap", role=RegionalHeadRole.BUPATI, acting=True),
            from_position="Kepala Dinas", to_position="Staf Ahli",
            requested_date=date(2024, 9, 2), mendagri_approval_ref=approval))


def _alerts(records: list) -> list[Alert]:
    return [Alert.from_avro(CODEC.decode(r.value).value) for r in records]


def test_alerts_for_events_and_cases_and_poison_in_the_dlq(stream_worker: dict[str, str],
                                                           kafka: KafkaConnection) -> None:
    tag = uuid.uuid4().hex[:8]
    rng = random.Random(tag)
    nip = random_nip(rng)
    now = datetime.now(UTC)
    today = local_date(now)
    cal = default_calendar()

    # a spike: 5 reports (the default NETRAL_EW_SPIKE_MIN_COUNT) about one agency in one day,
    # and a quieter agency with 4 that must not fire
    when = now - timedelta(minutes=30)
    spiky, calm = f"Dinas Uji Lonjakan {tag}", f"Dinas Uji Tenang {tag}"

    def rep(i: int, agency: str, label: str) -> CanonicalEvent:
        who = PersonRef(nip=random_nip(rng), name=f"ASN {i}", agency_name=agency,
                        position=Position.PELAKSANA, region_code=SPIKY)
        return report(f"ew-{tag}-{label}-{i}", when, ref=None, who=who, region=SPIKY)

    events = [rep(i, spiky, "s") for i in range(5)] + [rep(i, calm, "c") for i in range(4)]
    window = window_start(local_date(when), 1)

    # cases: A (JPT, high-IKP region, deadline 2 working days away), B (same NIP, quiet region)
    a, b = f"ew-{tag}-a", f"ew-{tag}-b"
    soon = cal.add_working_days(today, 2)
    case_a = _case(a, nip, region=HIGH, position=Position.JPT, state=CaseState.RECOMMENDED,
                   next_deadline=soon)
    case_b = _case(b, nip, region=QUIET, position=Position.FUNGSIONAL)
    sooner = cal.add_working_days(today, 1)
    case_a2 = case_a.model_copy(update={"version": 2, "next_deadline": sooner})

    def enc_event(ev: CanonicalEvent) -> tuple[bytes, bytes, None]:
        return ((ev.nip or ev.source_id).encode(),
                CODEC.encode(CanonicalEvent.avro_name, ev.to_avro(), topic=EVENTS), None)

    def enc_case(c: CaseRecord) -> tuple[bytes, bytes, None]:
        value = CODEC.encode(CaseRecord.avro_name, c.to_avro(), topic=CASES)
        return c.case_id.encode(), value, None

    marks = {f"ev-{tag}".encode(): EVENTS, f"case-{tag}".encode(): CASES}
    poison = os.urandom(48).replace(b"\xc3", b"\x01")
    unapproved, approved = f"imut-{tag}-1", f"imut-{tag}-2"
    asyncio.run(produce(kafka, EVENTS, [
        *(enc_event(e) for e in events),
        (b"poison", poison, [("test.mark", f"ev-{tag}".encode())]),
        enc_event(_mutation(unapproved, nip, None)),  # after the poison: the stream goes on
        enc_event(_mutation(approved, nip, "100.2.2.6/99/OTDA")),
    ]))
    asyncio.run(produce(kafka, CASES, [
        enc_case(case_a),
        (a.encode(), poison, [("test.mark", f"case-{tag}".encode())]),
        enc_case(case_b),
    ]))

    agency_subject = f"agency:{agency_key(None, spiky)}"
    expected = {
        stable_id(SPIKE_AGENCY, agency_subject, window): (SPIKE_AGENCY, None, SPIKY),
        stable_id(SPIKE_REGION, f"region:{SPIKY}", window): (SPIKE_REGION, None, SPIKY),
        stable_id(IMUT_PASAL71, unapproved): (IMUT_PASAL71, None, QUIET),
        stable_id(SENIOR_OFFICIAL, a, "JPT"): (SENIOR_OFFICIAL, a, HIGH),
        stable_id(IKP_HIGH, a, ""): (IKP_HIGH, a, HIGH),
        stable_id(DEADLINE_AT_RISK, a, soon): (DEADLINE_AT_RISK, a, HIGH),
        stable_id(REPEAT_OFFENDER, nip, 2): (REPEAT_OFFENDER, None, None),
    }

    def mine(rs: list) -> dict[str, Alert]:
        return {al.alert_id: al for al in _alerts(rs) if al.alert_id in expected}

    records = asyncio.run(consume_until(
        kafka, [ALERTS], lambda rs: len(mine(rs)) == len(expected), timeout_s=180))
    got = mine(records)
    for alert_id, (rule, case_id, region) in expected.items():
        alert = got[alert_id]
        assert alert.rule == rule
        if case_id:
            assert alert.case_id == case_id
        if region:
            assert alert.region_code == region
    repeat = got[stable_id(REPEAT_OFFENDER, nip, 2)]
    assert repeat.nip == nip and repeat.case_id in (a, b)
    # keyed by region code, for the Satgas of that region
    assert all(r.key == Alert.from_avro(CODEC.decode(r.value).value).region_code.encode()
               for r in records)

    # the poison messages, with their reason and source, in the stage's DLQ
    def letters(rs: list) -> dict[str, DeadLetter]:
        out = {}
        for r in rs:
            mark = dict(r.headers).get("test.mark")
            if mark in marks:
                out[marks[mark]] = DeadLetter.from_headers(r.headers)
                assert r.value == poison
        return out

    dlq = letters(asyncio.run(consume_until(kafka, [DLQ], lambda rs: len(letters(rs)) == 2,
                                            timeout_s=120)))
    for topic, letter in dlq.items():
        assert letter.stage == "alerts" and letter.source_topic == topic
        assert "not an Avro message" in letter.reason or "Avro" in letter.reason

    # case A again with a nearer deadline: one new deadline alert, no second senior/IKP alert
    asyncio.run(produce(kafka, CASES, [enc_case(case_a2)]))
    newer = stable_id(DEADLINE_AT_RISK, a, sooner)
    records = asyncio.run(consume_until(
        kafka, [ALERTS], lambda rs: newer in {al.alert_id for al in _alerts(rs)}, timeout_s=120))
    counts = Counter(al.alert_id for al in _alerts(records))
    assert counts[stable_id(SENIOR_OFFICIAL, a, "JPT")] == 1
    assert counts[stable_id(IKP_HIGH, a, "")] == 1
    # what must not fire: the calm agency (4 reports), the approved mutation, case B's region
    ids = set(counts)
    assert stable_id(SPIKE_AGENCY, f"agency:{agency_key(None, calm)}", window) not in ids
    assert stable_id(IMUT_PASAL71, approved) not in ids
    assert stable_id(IKP_HIGH, b, "") not in ids
    assert stable_id(SENIOR_OFFICIAL, b, "FUNGSIONAL") not in ids


@contextmanager
def _ew_worker(kafka: KafkaConnection, home: Path, app_id: str,
               **settings: str) -> Iterator[Path]:
    """``netral worker`` running only the early-warning stage (``NETRAL_WORKER_STAGES``), with
    its own ``NETRAL_EW_*``; yields the path of its log and stops it on exit. The other stages
    stay in the session's worker, so this one adds no normalize or cases output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRAL_")}
    env.update(NETRAL_KAFKA_BOOTSTRAP=kafka.bootstrap, NETRAL_HOME=str(home),
               NETRAL_WORKER_APP_ID=app_id, NETRAL_LOG_LEVEL="INFO",
               NETRAL_WORKER_STAGES="early-warning",
               **{f"NETRAL_EW_{k.upper()}": v for k, v in settings.items()})
    log_path = home / f"worker-{len(list(home.glob('worker-*.log')))}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "worker"],
                                env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise AssertionError("worker died at start:\n" + log_path.read_text())
                try:
                    asyncio.run(wait_group_stable(kafka, app_id, timeout_s=2))
                    break
                except RetriableError:
                    if time.monotonic() > deadline:
                        raise
            yield log_path
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-5000:]


async def _wait_committed(kafka: KafkaConnection, group: str, topic: str,
                          timeout_s: float = 60) -> None:
    """Until ``group`` has committed everything on ``topic`` (its lag there is 0)."""
    rows: list[PartitionLag] = []

    async def committed() -> bool:
        nonlocal rows
        snap = await read_lag(kafka, groups=[group])
        rows = [p for p in snap.partitions if p.topic == topic]
        return bool(rows) and all(p.lag == 0 for p in rows)

    await wait_until(committed, timeout_s, lambda: f"{group} has not committed {topic}: {rows}",
                     poll_s=0.5)


def test_state_survives_a_restart_and_the_timer_rechecks_deadlines(
        topics: KafkaConnection, tmp_path: Path) -> None:
    """A case stored by one worker is recovered from the table's changelog by the next one, whose
    deadline timer raises the alert no record asked for (its threshold now covers the case)."""
    tag = uuid.uuid4().hex[:8]
    app_id = f"netral-ew-test-{tag}"
    today = local_date(datetime.now(UTC))
    # 4 working days away: no alert under the default 3 (nor from the session worker, if any)
    deadline = default_calendar().add_working_days(today, 4)
    # FUNGSIONAL counts as senior for these workers only: their alerts cannot come from the
    # session's worker (default settings), which may be reading the same topics
    c = _case(f"ew-{tag}-r", random_nip(random.Random(tag)), region=QUIET,
              position=Position.FUNGSIONAL, state=CaseState.RECOMMENDED, next_deadline=deadline)
    senior = stable_id(SENIOR_OFFICIAL, c.case_id, "FUNGSIONAL")
    mine = {"senior_positions": '["FUNGSIONAL"]', "deadline_scan_s": "1"}
    at_risk = stable_id(DEADLINE_AT_RISK, c.case_id, deadline)

    def ids(rs: list) -> Counter[str]:
        return Counter(al.alert_id for al in _alerts(rs))

    with _ew_worker(topics, tmp_path, app_id, deadline_risk_working_days="3",
                    **mine) as first_log:
        value = CODEC.encode(CaseRecord.avro_name, c.to_avro(), topic=CASES)
        asyncio.run(produce(topics, CASES, [(c.case_id.encode(), value, None)]))
        seen = asyncio.run(consume_until(topics, [ALERTS], lambda rs: senior in ids(rs),
                                         timeout_s=120))
        # the senior alert and any deadline alert would be one transaction: none came
        assert at_risk not in ids(seen)
        # stopped only once its judge's offsets are committed: else the next worker judges
        # the record again, and its alert would come from the record, not from the timer
        asyncio.run(_wait_committed(topics, app_id, subjects_topic_name(app_id)))
    assert "deadline re-checks" not in first_log.read_text()

    with _ew_worker(topics, tmp_path, app_id, deadline_risk_working_days="5",
                    **mine) as second_log:
        seen = asyncio.run(consume_until(topics, [ALERTS], lambda rs: at_risk in ids(rs),
                                         timeout_s=120))
        assert re.search(r"early warning: \d+ deadline re-checks", second_log.read_text())
        # the next case proves the stream still runs; the recovered case is not new again
        nxt = c.model_copy(update={"case_id": f"ew-{tag}-n", "next_deadline": None})
        value = CODEC.encode(CaseRecord.avro_name, nxt.to_avro(), topic=CASES)
        asyncio.run(produce(topics, CASES, [(nxt.case_id.encode(), value, None)]))
        follow = stable_id(SENIOR_OFFICIAL, nxt.case_id, "FUNGSIONAL")
        seen = asyncio.run(consume_until(topics, [ALERTS], lambda rs: follow in ids(rs),
                                         timeout_s=120))
    counts = ids(seen)
    assert counts[at_risk] == 1 and counts[senior] == 1
