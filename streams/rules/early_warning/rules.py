"""The six early-warning rules: pure ``(state, record, config, now, ...) -> (state, alerts)``.

Routing: a record is first split into *subjects* (:func:`event_subjects`, :func:`case_subjects`),
strings such as ``region:32.01`` or ``nip:1985...``; the processor re-keys each subject onto one
partition, so the state of one subject lives in one place, and calls :func:`apply` with that
subject's state. The I-MUT rule needs no state and runs on the event itself (:func:`imut_alert`).

- ``ew.spike.region`` / ``.province`` / ``.agency`` (subjects ``region:``, ``province:``,
  ``agency:``): reports in one window >= max(min_count, factor x baseline of the K before).
- ``ew.repeat-offender`` (``nip:``): a NIP reaches its n-th distinct case, n >= repeat_min_cases.
- ``ew.senior-official`` (``case:``): a case about a JPT or a Pj kepala daerah is first seen.
- ``ew.deadline-at-risk`` (``case:``): the next escalation step is due in <= N working days.
- ``ew.imut-pasal71`` (no state): an I-MUT request in the Pasal 71 window, no Mendagri approval.
- ``ew.ikp-high`` (``case:``): a case in a region with IKP >= ikp_high is first seen.

Alert ids are uuid5 of (rule, subject, window or discriminator), never of arrival order or the
clock, so a replay yields the same ids and the alert sink dedupes them. The ``alerted`` sets in
the states stop re-emission on every new version of a case.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas import regions
from schemas.errors import InvalidMessage
from schemas.models import (
    Alert,
    CanonicalEvent,
    CaseRecord,
    CaseState,
    EscalationStep,
    EventType,
    FrozenModel,
    Position,
    Severity,
)

from ..escalation import NEXT_STEP, Calendar
from ..lifecycle import local_date, stable_id
from .config import EarlyWarningConfig
from .ikp import IkpTable

SPIKE_REGION = "ew.spike.region"
SPIKE_PROVINCE = "ew.spike.province"
SPIKE_AGENCY = "ew.spike.agency"
REPEAT_OFFENDER = "ew.repeat-offender"
SENIOR_OFFICIAL = "ew.senior-official"
DEADLINE_AT_RISK = "ew.deadline-at-risk"
IMUT_PASAL71 = "ew.imut-pasal71"
IKP_HIGH = "ew.ikp-high"

#: Windows are aligned on this Monday, so 7-day windows are calendar weeks.
WINDOW_EPOCH = date(2000, 1, 3)
_SPIKE_RULE = {"region": SPIKE_REGION, "province": SPIKE_PROVINCE, "agency": SPIKE_AGENCY}
_STEP_WORD = {EscalationStep.WARNING: "peringatan", EscalationStep.REPRIMAND: "teguran",
              EscalationStep.BLOCK: "pemblokiran"}


# --- subjects ---------------------------------------------------------------------------------


def agency_key(agency_code: str | None, agency_name: str) -> str:
    """An agency's identity for counting: its code when known, else its name, case-folded."""
    if agency_code:
        return f"code={agency_code}"
    return "name=" + " ".join(agency_name.casefold().split())


def event_subjects(event: CanonicalEvent) -> tuple[str, ...]:
    """Where a canonical event counts: a report in its regency, its province and its agency."""
    if event.event_type is not EventType.VIOLATION_REPORTED:
        return ()
    assert event.region_code is not None and event.person is not None  # the model checks both
    province = regions.province_of(event.region_code)
    out = [f"province:{province}"]
    if event.region_code != province:
        out.insert(0, f"region:{event.region_code}")
    out.append(f"agency:{agency_key(event.person.agency_code, event.person.agency_name)}")
    return tuple(out)


def case_subjects(case: CaseRecord) -> tuple[str, ...]:
    """Where a case record counts: its own watch, and its person's NIP when known."""
    out = [f"case:{case.case_id}"]
    if case.person.nip:
        out.append(f"nip:{case.person.nip}")
    return tuple(out)


def subject_kind(subject: str) -> str:
    return subject.split(":", 1)[0]


# --- spikes -----------------------------------------------------------------------------------


class SpikeWindow(FrozenModel):
    """One tumbling window: the distinct reports in it (event id -> region code)."""

    start: date
    reports: tuple[tuple[str, str], ...] = ()

    @property
    def count(self) -> int:
        return len(self.reports)


class SpikeState(FrozenModel):
    """The recent windows of one region, province or agency (the newest K + 1 of them)."""

    kind: Literal["spike"] = "spike"
    subject: str
    label: str
    windows: tuple[SpikeWindow, ...] = ()
    alerted: tuple[date, ...] = ()


def window_start(day: date, days: int) -> date:
    """The first day of the tumbling window of ``days`` days that holds ``day``."""
    offset = (day - WINDOW_EPOCH).days // days * days
    return WINDOW_EPOCH + timedelta(days=offset)


def spike_threshold(baseline: float, cfg: EarlyWarningConfig) -> float:
    return max(float(cfg.spike_min_count), cfg.spike_factor * baseline)


def baseline_of(windows: tuple[SpikeWindow, ...], start: date, cfg: EarlyWarningConfig) -> float:
    """Mean count of the K windows before ``start`` (a window with no report counts as 0)."""
    span = timedelta(days=cfg.spike_window_days)
    first = start - span * cfg.spike_baseline_windows
    total = sum(w.count for w in windows if first <= w.start < start)
    return total / cfg.spike_baseline_windows


def observe_report(state: SpikeState | None, subject: str, event: CanonicalEvent,
                   cfg: EarlyWarningConfig, now: datetime) -> tuple[SpikeState, tuple[Alert, ...]]:
    """Count one report in its window (by the report's own time, WIB) and alert on a spike.

    A report already counted changes nothing. A report older than the K windows kept is too
    late to judge and is not counted. At most one alert per subject and window.
    """
    assert event.region_code is not None and event.person is not None
    kind = subject_kind(subject)
    if state is None:
        label = (event.person.agency_name if kind == "agency"
                 else regions.name_of(subject.split(":", 1)[1]))
        state = SpikeState(subject=subject, label=label)
    span = timedelta(days=cfg.spike_window_days)
    start = window_start(local_date(event.occurred_at), cfg.spike_window_days)
    newest = max([start, *(w.start for w in state.windows)])
    oldest = newest - span * cfg.spike_baseline_windows
    if start < oldest:
        return state, ()
    windows = {w.start: w for w in state.windows if w.start >= oldest}
    window = windows.get(start, SpikeWindow(start=start))
    if any(eid == event.event_id for eid, _ in window.reports):
        return state, ()
    window = window.model_copy(update={
        "reports": tuple(sorted((*window.reports, (event.event_id, event.region_code))))})
    windows[start] = window
    kept = tuple(windows[s] for s in sorted(windows))
    alerted = tuple(d for d in state.alerted if d >= oldest)
    baseline = baseline_of(kept, start, cfg)
    threshold = spike_threshold(baseline, cfg)
    alerts: tuple[Alert, ...] = ()
    if window.count >= threshold and start not in alerted:
        alerts = (_spike_alert(state, kind, window, baseline, threshold, cfg, now),)
        alerted = tuple(sorted((*alerted, start)))
    return state.model_copy(update={"windows": kept, "alerted": alerted}), alerts


def _spike_alert(state: SpikeState, kind: str, window: SpikeWindow, baseline: float,
                 threshold: float, cfg: EarlyWarningConfig, now: datetime) -> Alert:
    rule = _SPIKE_RULE[kind]
    if kind == "agency":
        # an agency spans regions: route the alert to where most of the window's reports are
        counts = Counter(code for _, code in window.reports)
        region = min(counts, key=lambda c: (-counts[c], c))
    else:
        region = state.subject.split(":", 1)[1]
    end = window.start + timedelta(days=cfg.spike_window_days - 1)
    period = str(window.start) if end == window.start else f"{window.start} to {end}"
    detail = (f"{window.count} reports about {state.label} on {period}, against a baseline of "
              f"{baseline:.1f} per window over the previous {cfg.spike_baseline_windows} "
              f"(threshold {threshold:.1f} = max({cfg.spike_min_count}, "
              f"{cfg.spike_factor:g} x baseline)).")
    return Alert(
        alert_id=stable_id(rule, state.subject, window.start), rule=rule,
        severity=Severity.WARNING, region_code=region,
        province_code=regions.province_of(region),
        agency_name=state.label if kind == "agency" else None,
        title=f"Lonjakan laporan: {state.label} ({window.count} on {period})"[:300],
        detail=detail, at=now, dedupe_key=f"{rule}:{state.subject}:{window.start}")


# --- repeat offender --------------------------------------------------------------------------


class NipCases(FrozenModel):
    """The distinct cases seen for one NIP."""

    kind: Literal["nip"] = "nip"
    nip: str
    case_ids: tuple[str, ...] = ()


def observe_case_for_nip(state: NipCases | None, case: CaseRecord, cfg: EarlyWarningConfig,
                         now: datetime) -> tuple[NipCases, tuple[Alert, ...]]:
    """Add a case to its NIP's cases; the n-th distinct case (n >= repeat_min_cases) alerts.

    The id is uuid5 of (rule, NIP, n), not of the case: cases of one NIP arrive from different
    partitions in any order, and a replay must give the same ids.
    """
    assert case.person.nip is not None
    state = state or NipCases(nip=case.person.nip)
    if case.case_id in state.case_ids:
        return state, ()
    ids = tuple(sorted((*state.case_ids, case.case_id)))
    state = state.model_copy(update={"case_ids": ids})
    n = len(ids)
    if n < cfg.repeat_min_cases:
        return state, ()
    others = ", ".join(i for i in ids if i != case.case_id)
    alert = Alert(
        alert_id=stable_id(REPEAT_OFFENDER, state.nip, n), rule=REPEAT_OFFENDER,
        severity=Severity.CRITICAL if n > cfg.repeat_min_cases else Severity.WARNING,
        region_code=case.region_code, province_code=case.province_code,
        case_id=case.case_id, nip=state.nip, agency_name=case.person.agency_name,
        title=f"Pelanggar berulang: {case.person.name} in {n} cases"[:300],
        detail=(f"NIP {state.nip} ({case.person.name}, {case.person.agency_name}) is now in {n} "
                f"distinct cases: {case.case_id} joins {others}.")[:5000],
        at=now, dedupe_key=f"{REPEAT_OFFENDER}:{state.nip}:{n}")
    return state, (alert,)


# --- per case: senior official, IKP, deadline at risk -----------------------------------------


class CaseWatch(FrozenModel):
    """What the rules keep of one case: the fields they judge, and the alerts already sent."""

    kind: Literal["case"] = "case"
    case_id: str
    version: int
    state: CaseState
    region_code: str
    province_code: str
    nip: str | None = None
    name: str
    agency_name: str
    position: Position | None = None
    next_deadline: date | None = None
    ppk_name: str | None = None
    alerted: tuple[str, ...] = ()


def _watch(case: CaseRecord, alerted: tuple[str, ...]) -> CaseWatch:
    return CaseWatch(case_id=case.case_id, version=case.version, state=case.state,
                     region_code=case.region_code, province_code=case.province_code,
                     nip=case.person.nip, name=case.person.name,
                     agency_name=case.person.agency_name, position=case.person.position,
                     next_deadline=case.next_deadline, ppk_name=case.ppk_name, alerted=alerted)


def observe_case(watch: CaseWatch | None, case: CaseRecord, cfg: EarlyWarningConfig,
                 ikp: IkpTable, calendar: Calendar, now: datetime
                 ) -> tuple[CaseWatch, tuple[Alert, ...]]:
    """A new version of a case: the senior-official and IKP rules on its first sight, the
    deadline rule on every version. An older version than the one kept changes nothing."""
    if watch is not None and case.version < watch.version:
        return watch, ()
    new = watch is None
    current = _watch(case, watch.alerted if watch else ())
    alerts: list[Alert] = []
    if new:
        alerts += senior_official_alert(current, cfg, now)
        alerts += ikp_alert(current, cfg, ikp, now)
    alerts += deadline_alert(current, cfg, calendar, now)
    return _remember(current, alerts)


def check_deadline(watch: CaseWatch, cfg: EarlyWarningConfig, calendar: Calendar,
                   now: datetime) -> tuple[CaseWatch, tuple[Alert, ...]]:
    """The periodic re-check: days pass while a case waits for its PPK."""
    return _remember(watch, deadline_alert(watch, cfg, calendar, now))


def deadline_due(watch: CaseWatch, cfg: EarlyWarningConfig, calendar: Calendar,
                 now: datetime) -> bool:
    """True when a re-check would send a new alert now (the timer asks before a tick)."""
    return any(a.alert_id not in watch.alerted
               for a in deadline_alert(watch, cfg, calendar, now))


def _remember(watch: CaseWatch, alerts: list[Alert]) -> tuple[CaseWatch, tuple[Alert, ...]]:
    fresh = tuple(a for a in alerts if a.alert_id not in watch.alerted)
    if not fresh:
        return watch, ()
    alerted = tuple(sorted({*watch.alerted, *(a.alert_id for a in fresh)}))
    return watch.model_copy(update={"alerted": alerted}), fresh


def _case_alert(watch: CaseWatch, rule: str, severity: Severity, discriminator: object,
                title: str, detail: str, now: datetime) -> Alert:
    return Alert(alert_id=stable_id(rule, watch.case_id, discriminator), rule=rule,
                 severity=severity, region_code=watch.region_code,
                 province_code=watch.province_code, case_id=watch.case_id, nip=watch.nip,
                 agency_name=watch.agency_name, title=title[:300], detail=detail[:5000], at=now,
                 dedupe_key=f"{rule}:{watch.case_id}:{discriminator}")


def senior_official_alert(watch: CaseWatch, cfg: EarlyWarningConfig,
                          now: datetime) -> list[Alert]:
    """A JPT or a Pj kepala daerah (or any configured position) in a case."""
    if watch.position is None or watch.position not in cfg.senior_positions:
        return []
    severity = (Severity.CRITICAL if watch.position is Position.PJ_KEPALA_DAERAH
                else Severity.WARNING)
    return [_case_alert(
        watch, SENIOR_OFFICIAL, severity, watch.position.value,
        f"Pejabat senior terlibat: {watch.name} ({watch.position.value})",
        f"Case {watch.case_id} concerns {watch.name}, {watch.position.value} at "
        f"{watch.agency_name}, in {regions.name_of(watch.region_code)}.", now)]


def ikp_alert(watch: CaseWatch, cfg: EarlyWarningConfig, ikp: IkpTable,
              now: datetime) -> list[Alert]:
    """A new case in a region whose IKP score is in the high band (its own, else its province's)."""
    score = ikp.score_of(watch.region_code)
    if score is None or score.score < cfg.ikp_high:
        return []
    where = regions.name_of(score.region_code)
    note = "" if score.basis == "published" else " (illustrative score)"
    return [_case_alert(
        watch, IKP_HIGH, Severity.WARNING, "",
        f"Kasus baru di daerah rawan tinggi: {regions.name_of(watch.region_code)}",
        f"Case {watch.case_id} is in {regions.name_of(watch.region_code)}; IKP of {where} is "
        f"{score.score:.2f}{note}, at or above the high band ({cfg.ikp_high:g}).", now)]


def working_days_left(next_deadline: date, today: date, calendar: Calendar) -> int:
    """Working days in ``(today, next_deadline]``: 1 means the step falls due tomorrow (or on
    the next working day)."""
    return calendar.working_days_between(today, next_deadline)


def deadline_alert(watch: CaseWatch, cfg: EarlyWarningConfig, calendar: Calendar,
                   now: datetime) -> list[Alert]:
    """The next escalation step is at most N working days away and not yet due.

    ``next_deadline`` is the day the step is taken (for a RECOMMENDED case, the day after the
    PPK's deadline); on that day the case processor escalates, so the warning is for before it.
    """
    step = NEXT_STEP.get(watch.state)
    if step is None or watch.next_deadline is None:
        return []
    today = local_date(now)
    if today >= watch.next_deadline:
        return []
    left = working_days_left(watch.next_deadline, today, calendar)
    if left > cfg.deadline_risk_working_days:
        return []
    word = _STEP_WORD[step]
    ppk = watch.ppk_name or "the PPK"
    severity = Severity.CRITICAL if step is EscalationStep.BLOCK else Severity.WARNING
    return [_case_alert(
        watch, DEADLINE_AT_RISK, severity, watch.next_deadline,
        f"Tenggat mendekat: {word} due {watch.next_deadline} ({left} working days)",
        f"Case {watch.case_id} ({watch.state.value}): {ppk} has {left} working day(s) before "
        f"the {word} falls due on {watch.next_deadline}.", now)]


# --- I-MUT ------------------------------------------------------------------------------------


def imut_alert(event: CanonicalEvent, cfg: EarlyWarningConfig, now: datetime) -> Alert | None:
    """An I-MUT mutation request dated inside its election's Pasal 71 window, without the
    Minister of Home Affairs' written approval (UU 10/2016 Pasal 71(2))."""
    mutation = event.mutation
    if event.event_type is not EventType.MUTATION_REQUESTED or mutation is None:
        return None
    if mutation.mendagri_approval_ref:
        return None
    window = cfg.pasal71_windows.get(event.election)
    if window is None or not window.contains(mutation.requested_date):
        return None
    region = event.region_code or (event.person.region_code if event.person else None)
    if region is None:
        return None
    head = mutation.requesting_official
    who = f"Pj {head.role.value.lower()}" if head.acting else head.role.value.lower()
    person = event.person
    target = f"{person.name} ({person.agency_name})" if person else "an official"
    end = window.end or "the end of the term"
    return Alert(
        alert_id=stable_id(IMUT_PASAL71, mutation.request_id), rule=IMUT_PASAL71,
        severity=Severity.CRITICAL if head.acting else Severity.WARNING,
        region_code=region, province_code=regions.province_of(region),
        nip=event.nip or (person.nip if person else None),
        agency_name=person.agency_name if person else None,
        title=f"Mutasi tanpa persetujuan Mendagri: {regions.name_of(region)}"[:300],
        detail=(f"I-MUT request {mutation.request_id} by {who} {head.name} "
                f"({mutation.mutation_kind.value.lower()}: {mutation.from_position} -> "
                f"{mutation.to_position}) for {target} is dated {mutation.requested_date}, inside "
                f"the Pasal 71 window ({window.start} to {end}), with no Mendagri approval."
                )[:5000],
        at=now, dedupe_key=f"{IMUT_PASAL71}:{mutation.request_id}")


# --- one entry point per subject --------------------------------------------------------------

SubjectState = Annotated[SpikeState | NipCases | CaseWatch, Field(discriminator="kind")]
_STATE = TypeAdapter(SubjectState)


def dump_state(state: SubjectState) -> str:
    """A subject's state as JSON, for the processor's changelog-backed table."""
    return state.model_dump_json()


def load_state(data: str | bytes | None) -> SubjectState | None:
    return _STATE.validate_json(data) if data else None


def apply(subject: str, state: SubjectState | None, record: CanonicalEvent | CaseRecord | None,
          cfg: EarlyWarningConfig, ikp: IkpTable, calendar: Calendar, now: datetime
          ) -> tuple[SubjectState | None, tuple[Alert, ...]]:
    """Dispatch one routed record (None: the deadline timer's tick) to its subject's rule."""
    kind = subject_kind(subject)
    match kind, record:
        case ("region" | "province" | "agency"), CanonicalEvent():
            spike = state if isinstance(state, SpikeState) else None
            return observe_report(spike, subject, record, cfg, now)
        case "nip", CaseRecord():
            nip = state if isinstance(state, NipCases) else None
            return observe_case_for_nip(nip, record, cfg, now)
        case "case", CaseRecord():
            watch = state if isinstance(state, CaseWatch) else None
            return observe_case(watch, record, cfg, ikp, calendar, now)
        case "case", None:
            if isinstance(state, CaseWatch):
                return check_deadline(state, cfg, calendar, now)
            return state, ()
    raise InvalidMessage(f"no early-warning rule for subject {subject!r} and "
                     f"{type(record).__name__}")
