"""Shapes of the monitoring API (separate from the tables and the Avro models they come from)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from schemas.models import ReviewAction
from schemas.models.types import MAX_CASE_LIST
from sinks.alerts.masking import AlertFields
from sinks.sql.queries import CaseSummary


class Problem(BaseModel):
    detail: str


class CaseOut(CaseSummary):
    """A listed case: the national record's list row, as the read side defines it."""


class CasesOut(BaseModel):
    items: list[CaseOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last")


class TransitionOut(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    rule: str
    cause_event_id: str | None
    version: int


class OrderOut(BaseModel):
    order_id: str
    action: str
    issued_at: datetime
    outcome: str | None
    outcome_at: datetime | None


class CaseDetailOut(BaseModel):
    case: dict[str, Any] = Field(description="The CaseRecord exactly as the stream decided it")
    timeline: list[TransitionOut] = Field(description="The audit trail (netral.case-events)")
    sources: list[dict[str, Any]] = Field(description="The agency events the case was built from")
    orders: list[OrderOut] = Field(description="SIASN block/unblock orders and their outcomes")


class PersonOut(BaseModel):
    nip: str
    name: str | None
    agency: str | None
    position: str | None
    region: str | None
    blocked: bool
    cases: list[CaseOut]


class WeekCount(BaseModel):
    week: date
    count: int


class StatsOut(BaseModel):
    total: int
    by: dict[str, dict[str, int]]
    weekly: list[WeekCount]


class AlertOut(AlertFields):
    """An early-warning alert as the API lists it (the fields a recipient is shown)."""


class AlertsOut(BaseModel):
    items: list[AlertOut]
    total: int


class ScoreOut(BaseModel):
    group: str
    rank: int
    cases: int
    verification_median: float | None
    verification_p90: float | None
    sanction_median: float | None
    sanction_p90: float | None
    ppk_within: int
    ppk_decided: int
    ppk_within_share: float | None
    escalated: int
    blocks: int
    unblock_median: float | None


class MeOut(BaseModel):
    unit: str = "working days"
    today: date
    overall: ScoreOut
    provinces: list[ScoreOut]
    agencies: list[ScoreOut]


class ReviewIn(BaseModel):
    """A reviewer's decision on a NEEDS_REVIEW case."""

    action: ReviewAction
    target_case_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    event_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]],
                         Field(max_length=MAX_CASE_LIST)] = []
    reason: Annotated[str, Field(min_length=1, max_length=5000)]


class ReviewAccepted(BaseModel):
    command_id: str
    topic: str
    partition: int
    offset: int
