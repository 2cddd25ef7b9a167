"""The second half of ``make demo``: the national record, escalation and blocks at SIASN.

After the wave is normalised: wait until the cases processor holds every true case (scored
against the simulator's ground truth), start the mock SIASN, the SIASN adapter and the SQL sink
as the operators would (`netral mock-siasn`, `netral siasn-adapter`, `netral sql-sink`), walk the
2024-2025 calendar with deadline ticks so every ignored recommendation escalates (peringatan,
teguran, pemblokiran), and show the orders confirmed by SIASN and the record in SQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from connectors.scoring import MergeScore, score
from schemas.codec import AvroCodec
from schemas.kafka import KafkaConnection
from schemas.models import (
    AvroRecord,
    CaseRecord,
    CaseState,
    OrderAction,
    SiasnOrder,
    SiasnOrderResult,
)
from schemas.topics import CASES, ORDERS_SIASN, ORDERS_SIASN_RESULTS
from streams.rules.escalation import order_id

from .bootstrap import connection_env, service_env
from .broker.local import free_port
from .commands.cases import SCAN_TIME, send_ticks, ticks_for
from .commands.up import spawn_hub, stop_process
from .settings import NetralSettings

Check = Callable[[dict[str, list[Any]]], bool]


async def _follow(conn: KafkaConnection, topics: list[str], done: Check,
                  timeout_s: float) -> dict[str, list[Any]]:
    """Read ``topics`` from the beginning (decoded) until ``done(records by topic)``."""
    codec = AvroCodec()
    consumer = AIOKafkaConsumer(*topics, **conn.aiokafka_kwargs(),
                                group_id=f"netral-demo-{uuid.uuid4().hex[:6]}",
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    got: dict[str, list[Any]] = {t: [] for t in topics}
    models: dict[str, type[AvroRecord]] = {CASES: CaseRecord, ORDERS_SIASN: SiasnOrder,
              ORDERS_SIASN_RESULTS: SiasnOrderResult}
    deadline = time.monotonic() + timeout_s
    try:
        while not done(got):
            if time.monotonic() > deadline:
                raise SystemExit(f"demo incomplete: {', '.join(topics)} did not get there in "
                                 f"{timeout_s:.0f}s")
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                for rec in recs:
                    if rec.value is not None:
                        got[rec.topic].append(models[rec.topic].from_avro(
                            codec.decode(rec.value).value))
    finally:
        await consumer.stop()
    return got


def latest(cases: list[CaseRecord]) -> dict[str, CaseRecord]:
    out: dict[str, CaseRecord] = {}
    for c in cases:
        if c.case_id not in out or c.version >= out[c.case_id].version:
            out[c.case_id] = c
    return out


def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: nothing answers at {url}") from None
            time.sleep(0.2)


def run_record_phase(settings: NetralSettings, conn: KafkaConnection, truth: Path,
                     console: Console, *, keep: bool = False) -> None:
    lines = [json.loads(x) for x in truth.read_text().splitlines()]
    result: list[MergeScore] = []

    def complete(got: dict[str, list[Any]]) -> bool:
        result[:] = [score(lines, latest(got[CASES]).values())]
        return result[0].events_missing == 0 and result[0].cases_found == len(lines)

    cases = latest(asyncio.run(_follow(conn, [CASES], complete, 180))[CASES])
    console.print(f"national record on {CASES}: {len(cases)} cases; against the ground truth: "
                  f"{result[0].line()}")
    _by_state(console, cases, "cases by state after the wave")

    logs = settings.state_dir() / "logs"
    port = free_port()
    env = dict(os.environ, **connection_env(conn),
               NETRAL_HOME=str(settings.state_dir()), NETRAL_SIASN_URL=f"http://127.0.0.1:{port}")

    def as_(service: str) -> dict[str, str]:  # each service as its own principal when secure
        return {**env, **service_env(settings, service)}

    procs = [spawn_hub(["mock-siasn", "--port", str(port), "--error-rate", "0.2"], env,
                    logs / "mock-siasn.log")]
    try:
        _wait_http(f"http://127.0.0.1:{port}/_test/effects")
        received = settings.resolved_alerts_receiver_file()
        received.unlink(missing_ok=True)
        procs += [spawn_hub(["siasn-adapter"], as_("siasn-adapter"), logs / "siasn-adapter.log"),
                  spawn_hub(["sql-sink", "--migrate"], as_("sql-sink"), logs / "sql-sink.log"),
                  spawn_hub(["alerts", "receiver", "--port", "8790"], env, logs / "receiver.log"),
                  subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                    "127.0.0.1:1025"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)]
        _wait_http("http://127.0.0.1:8790/_received")
        procs.append(spawn_hub(["alerts", "run", "--migrate"], as_("alerts"), logs / "alerts.log"))
        console.print(f"mock SIASN on port {port} failing 20% of calls; SIASN adapter, SQL "
                      "sink, Satgas alert channels (webhook + chat receiver on :8790, SMTP "
                      f"catcher on :1025) started (logs in {logs})")
        overdue = [c for c in cases.values() if c.state is CaseState.RECOMMENDED]
        first = min((c.next_deadline for c in overdue if c.next_deadline), default=None)
        if first is None:
            console.print("no case awaits the PPK: nothing to escalate")
            return
        ticks = ticks_for(datetime.combine(first, SCAN_TIME), first + timedelta(days=120), "demo")
        asyncio.run(send_ticks(conn, AvroCodec(), ticks))
        console.print(f"walked the calendar {ticks[0].at.date()} .. {ticks[-1].at.date()} with "
                      f"{len(ticks)} deadline ticks: every ignored recommendation escalates")
        wanted = {order_id(c.case_id, OrderAction.BLOCK) for c in overdue if c.person.nip}
        got = asyncio.run(_follow(conn, [CASES, ORDERS_SIASN_RESULTS], lambda g: wanted <= {
            r.order_id for r in g[ORDERS_SIASN_RESULTS]}, 240))
        effects = httpx.get(f"http://127.0.0.1:{port}/_test/effects", timeout=5).json()
        outcomes = Counter(r.outcome.value for r in got[ORDERS_SIASN_RESULTS])
        _by_state(console, latest(got[CASES]), "cases by state after the deadlines")
        blocks = Counter(e["nip"] for e in effects["effects"] if e["action"] == "BLOCK")
        console.print(f"[bold]{len(wanted)}[/] overdue cases -> [bold]{len(blocks)}[/] ASN "
                      f"blocked at SIASN, none twice ({max(blocks.values(), default=0)} block "
                      f"per NIP at most); adapter results: {dict(outcomes)}")
        _show_sql(console, settings.resolved_database_url(), len(latest(got[CASES])))
        _show_alerts(console, received)
        api_port = free_port()
        procs.append(spawn_hub(["api", "--port", str(api_port)], as_("api"), logs / "api.log"))
        _dashboard(console, settings, api_port, keep)
    finally:
        if keep:
            console.print("--keep: the API, SIASN adapter, sinks and mock SIASN keep running")
        else:
            for proc in reversed(procs):
                stop_process(proc)


def _dashboard(console: Console, settings: NetralSettings, port: int, keep: bool) -> None:
    """A national demo key, the national figures through the API, and where to look."""
    from .api.access import Role, add_monitor_key

    key = add_monitor_key(settings.resolved_monitor_keys_file(), Role.NATIONAL, label="demo")
    base = f"http://127.0.0.1:{port}"
    _wait_http(f"{base}/health")
    stats = httpx.get(f"{base}/v1/stats", headers={"X-API-Key": key}, timeout=30)
    stats.raise_for_status()
    body = stats.json()
    console.print(f"monitoring API {base}: GET /v1/stats -> {body.get('total')} cases, by state "
                  f"{body.get('by', {}).get('state')}")
    console.print(f"[bold]dashboard: {base}/dashboard[/] (national demo key: [bold]{key}[/])"
                  + ("" if keep else "; run `netral demo --keep` to leave it running"))


def _show_alerts(console: Console, received: Path) -> None:
    """What the local receiver got, per recipient, once deliveries stop growing."""
    last, stable_since = -1, time.monotonic()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        n = len(received.read_text().splitlines()) if received.exists() else 0
        if n != last:
            last, stable_since = n, time.monotonic()
        elif n and time.monotonic() - stable_since > 3:
            break
        time.sleep(0.5)
    lines = [json.loads(x) for x in received.read_text().splitlines()] if received.exists() else []
    who = Counter(x.get("recipient") or f"chat {x['body'].get('chat_id')}" for x in lines)
    table = Table("recipient (webhook / chat)", "messages received", title="Satgas alert "
                  "channels (a burst past the digest threshold comes as one digest later)")
    for name, n in sorted(who.items()):
        table.add_row(str(name), str(n))
    console.print(table)


def _by_state(console: Console, cases: dict[str, CaseRecord], title: str) -> None:
    counts = Counter(c.state.value for c in cases.values())
    table = Table("state", "cases", title=title)
    for state in CaseState:
        if counts[state.value]:
            table.add_row(state.value, str(counts[state.value]))
    console.print(table)


def _show_sql(console: Console, url: str, expected: int) -> None:
    engine = sa.create_engine(url)
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as db:
                n = db.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
                blocked = db.execute(sa.text(
                    "SELECT count(*) FROM cases WHERE state = 'BLOCKED'")).scalar_one()
            if n >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    console.print(f"SQL national record ({url.split('///')[-1]}): {n} cases, {blocked} blocked")
