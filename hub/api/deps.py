"""What the monitoring routes share: the services (:class:`Monitor`) and the role dependencies.

A caller is identified once, by ``X-API-Key`` or by the dashboard's signed session cookie
(which holds the key's hash, so a key removed from the file stops working at once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy import Connection, Engine

from hub.lag import LagCollector
from streams.rules.calendar import WorkingCalendar, default_calendar
from streams.rules.lifecycle import local_date

from .access import MonitorKeyStore, Principal

Send = Callable[[str, bytes, bytes], Awaitable[tuple[int, int]]]
"""Publish (topic, key, value) with acks=all; returns (partition, offset)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Monitor:
    """The read side's services, built once per app (``hub.commands.api`` or a test)."""

    engine: Engine
    keys: MonitorKeyStore
    calendar: WorkingCalendar = field(default_factory=default_calendar)
    page_max: int = 500
    export_max: int = 100_000
    deadline_risk_days: int = 3
    poll_s: float = 2.0
    lag_refresh_s: float = 15.0
    lag_timeout_s: float = 10.0
    lag_groups: tuple[str, ...] | None = None
    lag_alert_threshold: int = 10_000
    lag_alert_after_s: float = 300.0
    lag_alert_region: str = "31"
    audit_relay_s: float = 1.0
    """How often the API relays its access log to netral.audit (0: not in this process)."""
    clock: Callable[[], datetime] = _utc_now
    lag: LagCollector = field(default_factory=LagCollector)

    def today(self) -> date:
        """Today in Jakarta (deadlines are WIB dates)."""
        return local_date(self.clock())


def monitor_of(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


MonitorDep = Annotated[Monitor, Depends(monitor_of)]


def connection(monitor: MonitorDep) -> Iterator[Connection]:
    with monitor.engine.connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(connection)]


def principal(
    request: Request,
    monitor: MonitorDep,
    x_api_key: Annotated[str | None, Header(description="A monitoring key "
                                            "(`netral api-key add --role ...`)")] = None,
) -> Principal:
    """The caller; 401 with a message when there is no valid key or session."""
    if x_api_key:
        found = monitor.keys.principal_of(x_api_key)
        if found is None:
            raise HTTPException(401, "unknown API key")
        return found
    key_hash = request.session.get("key_hash") if "session" in request.scope else None
    if isinstance(key_hash, str):
        found = monitor.keys.by_hash(key_hash)
        if found is not None:
            return found
    raise HTTPException(401, "missing X-API-Key header (or log in to the dashboard)")


PrincipalDep = Annotated[Principal, Depends(principal)]


def case_reader(who: PrincipalDep) -> Principal:
    """Callers who may see cases and persons (every role but public)."""
    if not who.sees_cases:
        raise HTTPException(403, "a public key sees aggregate statistics only, not cases")
    return who


CaseReaderDep = Annotated[Principal, Depends(case_reader)]
