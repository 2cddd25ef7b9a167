"""policy: the case-handling rules of each election, as data (``data/policy.yaml``).

Both 2024 regimes must be configurable per election, not hard-coded (domain.md): the PPK deadline,
the peringatan and teguran intervals, Bawaslu's and the Satgas' own deadlines, the dedupe window,
the match thresholds, the proportionality table (violation type -> disiplin level) and the
precedence table for conflicting fields. KemenPAN-RB changes the three working-day intervals at
run time with a PolicyUpdate (``POLICY_UPDATED`` event): :func:`apply_policy_update` records it as
a dated period, so a deadline is always computed with the intervals in force on its start date.

Pure apart from reading the packaged YAML once (importlib.resources).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from schemas.errors import ConfigError, InvalidMessage
from schemas.models import (
    Agency,
    CanonicalEvent,
    Election,
    EventType,
    FrozenModel,
    PolicyRegime,
    SanctionLevel,
    ViolationType,
)

POLICY_PACKAGE = "streams.rules.data"
POLICY_RESOURCE = "policy.yaml"

WorkingDays = Annotated[int, Field(ge=1, le=90)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]

#: Every field the precedence table may name (CaseRecord fields, person.* for the PersonRef).
PRECEDENCE_FIELDS = frozenset({
    "person.nip", "person.name", "person.agency_name", "person.agency_code", "person.position",
    "person.position_title", "person.region_code", "region_code", "incident_date",
    "violation_type", "violation_kind", "level", "ppk_name", "ppk_agency_code",
})

#: Disiplin levels from light to heavy; KODE_ETIK_MORAL is another scale and never compared.
LEVEL_ORDER: Mapping[SanctionLevel, int] = MappingProxyType({
    SanctionLevel.RINGAN: 1, SanctionLevel.SEDANG: 2, SanctionLevel.BERAT: 3,
})


class MatchWeights(FrozenModel):
    """Weights of the person-match features; a feature unknown on either side is left out."""

    name: Unit = 0.50
    agency: Unit = 0.20
    region: Unit = 0.20
    position: Unit = 0.10


class MatchThresholds(FrozenModel):
    """Score bands of a name-only match: merge, review (NEEDS_REVIEW), below: a new case."""

    merge: Unit = 0.92
    review: Unit = 0.75
    ambiguity_margin: Unit = 0.05
    merge_name_min: Unit = 0.90  # a merge also needs the names themselves to agree this well
    weights: MatchWeights = MatchWeights()

    @model_validator(mode="after")
    def _ordered(self) -> MatchThresholds:
        if not self.review <= self.merge:
            raise ValueError(f"match.review {self.review} must not exceed match.merge {self.merge}")
        return self


class FieldRule(FrozenModel):
    """Which agency wins a field: the first listed; ``tie`` between two values of one rank."""

    order: tuple[Agency, ...]
    tie: Literal["first", "latest"] = "latest"

    def rank(self, agency: Agency | None) -> int:
        """0 for the first agency listed; unlisted agencies (and the hub itself) rank last."""
        if agency is not None and agency in self.order:
            return self.order.index(agency)
        return len(self.order) + (0 if agency is not None else 1)


class Intervals(FrozenModel):
    """The working-day intervals in force from ``effective_date`` (a PolicyUpdate's payload)."""

    effective_date: date
    ppk_deadline_working_days: WorkingDays
    warning_interval_working_days: WorkingDays
    reprimand_interval_working_days: WorkingDays
    decree_ref: str


class ElectionPolicy(FrozenModel):
    """Everything the rules need to handle one election's cases.

    The three interval fields are the base values (from ``effective_date``); ``updates`` holds
    KemenPAN-RB's later periods, and :meth:`intervals_on` picks the one in force on a date.
    """

    election: Election
    regime: PolicyRegime
    effective_date: date
    decree_ref: str
    ppk_deadline_working_days: WorkingDays
    warning_interval_working_days: WorkingDays
    reprimand_interval_working_days: WorkingDays
    bawaslu_finding_days: WorkingDays
    bawaslu_report_working_days: WorkingDays
    satgas_verification_days: WorkingDays | None = None  # calendar days
    bawaslu_review_working_days: WorkingDays | None = None
    dedupe_window_days: Annotated[int, Field(ge=0, le=366)]
    match: MatchThresholds = MatchThresholds()
    levels: Mapping[ViolationType, SanctionLevel]
    precedence: Mapping[str, FieldRule]
    updates: tuple[Intervals, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ElectionPolicy:
        unknown = set(self.precedence) - PRECEDENCE_FIELDS
        if unknown:
            raise ValueError(f"precedence names unknown field(s) {sorted(unknown)}")
        missing = set(ViolationType) - set(self.levels)
        if missing:
            raise ValueError(f"levels lacks violation type(s) {sorted(missing)}")
        dates = [u.effective_date for u in self.updates]
        if dates != sorted(set(dates)):
            raise ValueError("updates must be sorted by effective_date without repeats")
        return self

    @property
    def base(self) -> Intervals:
        return Intervals(
            effective_date=self.effective_date,
            ppk_deadline_working_days=self.ppk_deadline_working_days,
            warning_interval_working_days=self.warning_interval_working_days,
            reprimand_interval_working_days=self.reprimand_interval_working_days,
            decree_ref=self.decree_ref,
        )

    def intervals_on(self, day: date) -> Intervals:
        """The intervals in force on ``day``: the latest update effective by then, else the base."""
        current = self.base
        for update in self.updates:
            if update.effective_date <= day:
                current = update
        return current

    def rule(self, field: str) -> FieldRule:
        """The precedence rule of ``field``; a field not in the table: any agency, latest wins."""
        return self.precedence.get(field) or FieldRule(order=(), tie="latest")

    def recommended_level(self, violation_type: ViolationType) -> SanctionLevel:
        """The proportional disiplin level for a violation type (policy data, domain.md)."""
        return self.levels[violation_type]


Policies = Mapping[Election, ElectionPolicy]
"""The policies in force, by election (read-only)."""


class InvalidPolicyUpdate(InvalidMessage):
    """A POLICY_UPDATED event the hub cannot apply (wrong regime, no parameters)."""


class NoPolicy(InvalidMessage):
    """An event for an election no policy covers: DLQ until policy.yaml (or an update) adds it."""


@lru_cache(maxsize=1)
def _document() -> Mapping[str, Any]:
    text = resources.files(POLICY_PACKAGE).joinpath(POLICY_RESOURCE).read_text("utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("elections"), dict):
        raise ConfigError(f"{POLICY_RESOURCE}: expected a mapping with 'defaults' and 'elections'")
    return doc


def parse_policies(doc: Mapping[str, Any], where: str = POLICY_RESOURCE) -> Policies:
    """Validate a policy document (the YAML's structure) into one policy per election."""
    defaults = doc.get("defaults") or {}
    result: dict[Election, ElectionPolicy] = {}
    for name, overrides in doc["elections"].items():
        election = _election(name, where)
        result[election] = _build(name, {**defaults, **(overrides or {})}, where)
    return MappingProxyType(result)


def load_policies() -> Policies:
    """The packaged policies, parsed once per process (a ConfigError names what is wrong)."""
    return _packaged()


@lru_cache(maxsize=1)
def _packaged() -> Policies:
    return parse_policies(_document())


def policy_for(policies: Policies, election: Election) -> ElectionPolicy:
    """The policy of ``election``; NoPolicy (to the DLQ) when there is none."""
    try:
        return policies[election]
    except KeyError:
        raise NoPolicy(
            f"no case-handling policy for election {election}: add it to {POLICY_RESOURCE} "
            "or publish a PolicyUpdate for it"
        ) from None


def apply_policy_update(policies: Policies, event: CanonicalEvent) -> Policies:
    """Record a PolicyUpdate as a dated period of its election; idempotent.

    The regime of an election cannot change mid-way (its open cases follow its state machine),
    so an update naming another regime is rejected. An election without a policy gets one built
    from the YAML defaults, so a new election can be announced by KemenPAN-RB alone.
    """
    params = event.policy
    if event.event_type is not EventType.POLICY_UPDATED or params is None:
        raise InvalidPolicyUpdate(f"{event.event_id} is a {event.event_type}, not a PolicyUpdate")
    period = Intervals(
        effective_date=params.effective_date,
        ppk_deadline_working_days=params.ppk_deadline_working_days,
        warning_interval_working_days=params.warning_interval_working_days,
        reprimand_interval_working_days=params.reprimand_interval_working_days,
        decree_ref=params.decree_ref,
    )
    current = policies.get(event.election)
    if current is None:
        fields = {**(_document().get("defaults") or {}), "regime": params.regime.value,
                  "effective_date": params.effective_date, "decree_ref": params.decree_ref,
                  "ppk_deadline_working_days": params.ppk_deadline_working_days,
                  "warning_interval_working_days": params.warning_interval_working_days,
                  "reprimand_interval_working_days": params.reprimand_interval_working_days}
        updated = _build(event.election.value, fields, event.event_id)
    elif params.regime is not current.regime:
        raise InvalidPolicyUpdate(
            f"{event.event_id}: election {event.election} runs regime {current.regime}; "
            f"an update cannot switch it to {params.regime}"
        )
    elif period.effective_date <= current.effective_date:
        # From the base date or earlier: it replaces the base and drops the periods it precedes.
        updated = current.model_copy(update={
            "effective_date": period.effective_date,
            "decree_ref": period.decree_ref,
            "ppk_deadline_working_days": period.ppk_deadline_working_days,
            "warning_interval_working_days": period.warning_interval_working_days,
            "reprimand_interval_working_days": period.reprimand_interval_working_days,
        })
    else:
        kept = [u for u in current.updates if u.effective_date != period.effective_date]
        updated = current.model_copy(update={
            "updates": tuple(sorted([*kept, period], key=lambda u: u.effective_date)),
        })
    return MappingProxyType({**policies, event.election: updated})


def _election(name: str, where: str) -> Election:
    try:
        return Election(name)
    except ValueError:
        raise ConfigError(f"{where}: unknown election {name!r}") from None


def _build(name: str, fields: Mapping[str, Any], where: str) -> ElectionPolicy:
    try:
        return ElectionPolicy.model_validate({**fields, "election": name})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: election {name}: {loc}: {first['msg']}") from None
