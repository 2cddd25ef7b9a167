"""Every early-warning rule with records that must fire it and records that must not: thresholds
at the boundary, window baselines, deterministic ids, and the state passed in and returned."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from hub.bootstrap import early_warning_config
from hub.settings import NetralSettings
from schemas.errors import ConfigError, InvalidMessage
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
    Severity,
)
from streams.rules.early_warning import (
    DEADLINE_AT_RISK,
    IKP_HIGH,
    IMUT_PASAL71,
    REPEAT_OFFENDER,
    SENIOR_OFFICIAL,
    SPIKE_AGENCY,
    SPIKE_PROVINCE,
    SPIKE_REGION,
    CaseWatch,
    EarlyWarningConfig,
    NipCases,
    Pasal71Window,
    SpikeState,
    apply,
    case_subjects,
    deadline_due,
    dump_state,
    event_subjects,
    imut_alert,
    load_ikp,
    load_state,
    parse_ikp,
)
from streams.rules.early_warning.rules import (
    agency_key,
    observe_case,
    observe_case_for_nip,
    observe_report,
    window_start,
)
from streams.rules.lifecycle import stable_id
from tests.unit.test_rules_factories import CAL, NIP_A, NIP_B, _event, at, person, report

pytestmark = pytest.mark.unit

NOW = datetime(2024, 10, 7, 3, tzinfo=UTC)  # Monday 7 Oct 2024, 10:00 WIB
IKP = load_ikp()
CFG = EarlyWarningConfig()


# --- builders ---------------------------------------------------------------------------------


def reports_on(day: str, n: int, *, tag: str = "r", region: str = "32.73",
               agency: str = "Pemerintah Kota Bandung") -> list[CanonicalEvent]:
    who = person(agency=agency, region=region)
    return [report(f"{tag}-{day}-{i}", at(day), who=who, region=region) for i in range(n)]


def feed(events: list[CanonicalEvent], subject: str, cfg: EarlyWarningConfig,
         state: SpikeState | None = None) -> tuple[SpikeState | None, list[Alert]]:
    alerts: list[Alert] = []
    for ev in events:
        state, out = observe_report(state, subject, ev, cfg, NOW)
        alerts += out
    return state, alerts


def case(case_id: str = "c1", *, nip: str | None = NIP_A, version: int = 1,
         state: CaseState = CaseState.REPORTED, region: str = "32.73",
         position: Position | None = Position.CAMAT_LURAH, next_deadline: date | None = None,
         ) -> CaseRecord:
    opened = at("2024-10-01")
    return CaseRecord(
        case_id=case_id, version=version, election=Election.PILKADA_2024, state=state,
        person=PersonRef(nip=nip, name="Budi Santoso", agency_name="Pemerintah Kota Bandung",
                         position=position, region_code=region),
        violation_type="CAMPAIGN_ATTENDANCE", region_code=region, province_code=region[:2],
        incident_date=date(2024, 9, 30), opened_at=opened, updated_at=opened,
        ppk_name="Wali Kota Bandung", next_deadline=next_deadline)


def mutation(request_id: str = "m1", *, requested: date = date(2024, 9, 2),
             approval: str | None = None, acting: bool = True,
             election: Election = Election.PILKADA_2024) -> CanonicalEvent:
    return _event(
        Agency.KEMENDAGRI, request_id, EventType.MUTATION_REQUESTED, at("2024-09-03"), election,
        person=person(), region_code="32.73", nip=NIP_A, mutation=MutationDetails(
            request_id=request_id, requesting_official=RegionalOfficial(
                name="Pj Wali Kota Bandung", role=RegionalHeadRole.WALIKOTA, acting=acting),
            from_position="Camat Coblong", to_position="Staf Ahli",
            requested_date=requested, mendagri_approval_ref=approval))


# --- subjects ---------------------------------------------------------------------------------


def test_a_report_counts_in_its_regency_province_and_agency() -> None:
    ev = report("r1", at("2024-10-01"), who=person(agency="  Pemerintah  KOTA Bandung "))
    assert event_subjects(ev) == ("region:32.73", "province:32",
                                  "agency:name=pemerintah kota bandung")
    at_province = report("r2", at("2024-10-01"), region="32")
    assert [s.split(":")[0] for s in event_subjects(at_province)] == ["province", "agency"]
    assert agency_key("A5", "whatever") == "code=A5"
    assert event_subjects(mutation()) == ()


def test_a_case_counts_for_itself_and_its_nip() -> None:
    assert case_subjects(case("c9")) == ("case:c9", f"nip:{NIP_A}")
    assert case_subjects(case("c9", nip=None)) == ("case:c9",)


# --- spikes -----------------------------------------------------------------------------------


def test_windows_are_tumbling_and_aligned() -> None:
    assert window_start(date(2024, 10, 9), 1) == date(2024, 10, 9)
    assert window_start(date(2024, 10, 9), 7) == date(2024, 10, 7)  # a Monday
    assert window_start(date(2024, 10, 13), 7) == date(2024, 10, 7)
    assert window_start(date(2024, 10, 14), 7) == date(2024, 10, 14)


def test_no_spike_below_min_count_and_one_at_it() -> None:
    cfg = EarlyWarningConfig(spike_min_count=5)
    state, alerts = feed(reports_on("2024-10-01", 4), "region:32.73", cfg)
    assert alerts == []
    state, alerts = feed(reports_on("2024-10-01", 1, tag="fifth"), "region:32.73", cfg, state)
    assert [a.rule for a in alerts] == [SPIKE_REGION]
    alert = alerts[0]
    assert alert.alert_id == stable_id(SPIKE_REGION, "region:32.73", date(2024, 10, 1))
    assert (alert.region_code, alert.province_code, alert.severity) == ("32.73", "32",
                                                                        Severity.WARNING)
    assert alert.case_id is None and "5 reports" in alert.detail
    # more reports in the same window: no second alert
    state, alerts = feed(reports_on("2024-10-01", 3, tag="more"), "region:32.73", cfg, state)
    assert alerts == [] and state is not None and state.windows[-1].count == 8


def test_the_same_report_twice_counts_once() -> None:
    cfg = EarlyWarningConfig(spike_min_count=2)
    ev = reports_on("2024-10-01", 1)[0]
    state, alerts = feed([ev, ev, ev], "region:32.73", cfg)
    assert alerts == [] and state is not None and state.windows[0].count == 1


def test_baseline_is_the_mean_of_the_previous_k_windows() -> None:
    cfg = EarlyWarningConfig(spike_min_count=2, spike_factor=2.0, spike_baseline_windows=3)
    history = (reports_on("2024-10-01", 2) + reports_on("2024-10-02", 4)
               + reports_on("2024-10-03", 3))
    state, alerts = feed(history, "province:32", cfg)
    # 10-01 and 10-02 fire at their 2nd report; 10-03: baseline (2+4)/3 = 2, threshold 4 > 3
    assert [a.dedupe_key for a in alerts] == [f"{SPIKE_PROVINCE}:province:32:2024-10-01",
                                              f"{SPIKE_PROVINCE}:province:32:2024-10-02"]
    # 10-04: baseline (2+4+3)/3 = 3, threshold 6: five reports are not a spike, six are
    state, alerts = feed(reports_on("2024-10-04", 5), "province:32", cfg, state)
    assert alerts == []
    state, alerts = feed(reports_on("2024-10-04", 1, tag="sixth"), "province:32", cfg, state)
    assert [a.dedupe_key for a in alerts] == [f"{SPIKE_PROVINCE}:province:32:2024-10-04"]
    assert "baseline of 3.0" in alerts[0].detail


def test_empty_windows_count_as_zero_in_the_baseline() -> None:
    cfg = EarlyWarningConfig(spike_min_count=3, spike_factor=2.0, spike_baseline_windows=4)
    state, _ = feed(reports_on("2024-10-01", 8), "region:32.73", cfg)
    # 10-05: the four windows before are 10-01..10-04, one with 8: baseline 2, threshold 4
    state, alerts = feed(reports_on("2024-10-05", 3), "region:32.73", cfg, state)
    assert alerts == []
    state, alerts = feed(reports_on("2024-10-05", 1, tag="x"), "region:32.73", cfg, state)
    assert len(alerts) == 1
    # 10-06: 10-01 has left the baseline (10-02..10-05 hold 4): threshold max(3, 2 x 1) = 3
    _, alerts = feed(reports_on("2024-10-06", 3), "region:32.73", cfg, state)
    assert len(alerts) == 1


def test_old_windows_are_dropped_and_too_late_reports_ignored() -> None:
    cfg = EarlyWarningConfig(spike_min_count=1, spike_baseline_windows=2)
    state, _ = feed(reports_on("2024-10-10", 1), "region:32.73", cfg)
    state, _ = feed(reports_on("2024-10-01", 1), "region:32.73", cfg, state)
    assert state is not None and [w.start for w in state.windows] == [date(2024, 10, 10)]
    state, alerts = feed(reports_on("2024-10-08", 1), "region:32.73", cfg, state)
    assert len(alerts) == 1  # within K windows of the newest: still judged


def test_spike_ids_do_not_depend_on_arrival_order() -> None:
    cfg = EarlyWarningConfig(spike_min_count=3)
    events = reports_on("2024-10-01", 7) + reports_on("2024-10-02", 3)
    _, first = feed(events, "agency:name=pemerintah kota bandung", cfg)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    _, second = feed(shuffled, "agency:name=pemerintah kota bandung", cfg)
    assert sorted(a.alert_id for a in first) == sorted(a.alert_id for a in second)
    assert len(first) == 2  # 10-01 (baseline 0), and 10-02: 3 >= max(3, 3 x 7/7)


def test_agency_spike_goes_to_the_region_with_most_of_its_reports() -> None:
    cfg = EarlyWarningConfig(spike_min_count=3)
    events = (reports_on("2024-10-01", 1, region="32.01", agency="Kementerian X")
              + reports_on("2024-10-01", 2, tag="b", region="33.01", agency="Kementerian X"))
    subject = "agency:" + agency_key(None, "Kementerian X")
    _, alerts = feed(events, subject, cfg)
    assert [(a.rule, a.region_code, a.province_code, a.agency_name) for a in alerts] == [
        (SPIKE_AGENCY, "33.01", "33", "Kementerian X")]


# --- repeat offender --------------------------------------------------------------------------


def test_a_second_distinct_case_of_a_nip_is_a_repeat_offender() -> None:
    state, alerts = observe_case_for_nip(None, case("c1"), CFG, NOW)
    assert alerts == () and state.case_ids == ("c1",)
    state, alerts = observe_case_for_nip(state, case("c1", version=2), CFG, NOW)
    assert alerts == ()
    state, alerts = observe_case_for_nip(state, case("c2"), CFG, NOW)
    assert [(a.rule, a.case_id, a.nip, a.severity) for a in alerts] == [
        (REPEAT_OFFENDER, "c2", NIP_A, Severity.WARNING)]
    assert alerts[0].alert_id == stable_id(REPEAT_OFFENDER, NIP_A, 2)
    state, alerts = observe_case_for_nip(state, case("c3"), CFG, NOW)
    assert alerts[0].alert_id == stable_id(REPEAT_OFFENDER, NIP_A, 3)
    assert alerts[0].severity is Severity.CRITICAL and "in 3 distinct cases" in alerts[0].detail


def test_repeat_offender_ids_do_not_depend_on_case_order() -> None:
    def ids(order: list[str]) -> list[str]:
        state: NipCases | None = None
        out = []
        for cid in order:
            state, alerts = observe_case_for_nip(state, case(cid), CFG, NOW)
            out += [a.alert_id for a in alerts]
        return out
    assert ids(["a", "b", "c"]) == ids(["c", "a", "b"])


def test_repeat_threshold_is_configurable() -> None:
    cfg = EarlyWarningConfig(repeat_min_cases=3)
    state, _ = observe_case_for_nip(None, case("c1"), cfg, NOW)
    state, alerts = observe_case_for_nip(state, case("c2"), cfg, NOW)
    assert alerts == ()
    _, alerts = observe_case_for_nip(state, case("c3"), cfg, NOW)
    assert len(alerts) == 1 and alerts[0].severity is Severity.WARNING


def test_different_nips_are_not_repeat_offenders() -> None:
    _, a = apply(f"nip:{NIP_A}", None, case("c1"), CFG, IKP, CAL, NOW)
    _, b = apply(f"nip:{NIP_B}", None, case("c2", nip=NIP_B), CFG, IKP, CAL, NOW)
    assert a == b == ()


# --- senior official, IKP ---------------------------------------------------------------------

QUIET = "33.01"  # Kabupaten Cilacap, Jawa Tengah: IKP 34.83, not high


@pytest.mark.parametrize(("position", "severity"), [
    (Position.JPT, Severity.WARNING), (Position.PJ_KEPALA_DAERAH, Severity.CRITICAL),
    (Position.CAMAT_LURAH, None), (Position.FUNGSIONAL, None), (None, None)])
def test_senior_officials_in_a_new_case(position: Position | None,
                                        severity: Severity | None) -> None:
    watch, alerts = observe_case(None, case(position=position, region=QUIET), CFG, IKP, CAL, NOW)
    if severity is None or position is None:
        assert alerts == ()
        return
    assert [(a.rule, a.severity, a.case_id, a.region_code) for a in alerts] == [
        (SENIOR_OFFICIAL, severity, "c1", QUIET)]
    assert alerts[0].alert_id == stable_id(SENIOR_OFFICIAL, "c1", position.value)
    # the next version of the same case: nothing new
    _, again = observe_case(watch, case(version=2, position=position, region=QUIET), CFG, IKP,
                            CAL, NOW)
    assert again == ()


def test_senior_positions_are_configurable() -> None:
    cfg = EarlyWarningConfig(senior_positions=(Position.JPT,))
    _, alerts = observe_case(None, case(position=Position.PJ_KEPALA_DAERAH, region=QUIET), cfg,
                             IKP, CAL, NOW)
    assert alerts == ()


@pytest.mark.parametrize(("region", "fires"), [
    ("32.73", True),  # Kota Bandung: Jawa Barat 77.04
    ("31.71", True),  # Jakarta 88.95
    ("36.01", True),  # Banten 66.53 >= 66
    (QUIET, False),
    ("93.01", False),  # Papua Selatan: not scored
])
def test_new_case_in_a_high_ikp_region(region: str, fires: bool) -> None:
    watch, alerts = observe_case(None, case(region=region), CFG, IKP, CAL, NOW)
    assert [a.rule for a in alerts] == ([IKP_HIGH] if fires else [])
    if fires:
        assert alerts[0].alert_id == stable_id(IKP_HIGH, "c1", "")
        assert alerts[0].region_code == region and alerts[0].case_id == "c1"
        _, again = observe_case(watch, case(version=2, region=region), CFG, IKP, CAL, NOW)
        assert again == ()


def test_ikp_threshold_boundary_and_regency_override() -> None:
    table = parse_ikp("region_code,region_name,score,basis\n"
                      "32,Jawa Barat,20,published\n32.73,Kota Bandung,66.0,illustrative\n", "t")
    _, alerts = observe_case(None, case(region="32.73"), CFG, table, CAL, NOW)
    assert [a.rule for a in alerts] == [IKP_HIGH] and "illustrative" in alerts[0].detail
    _, alerts = observe_case(None, case(region="32.01"), CFG, table, CAL, NOW)  # province: 20
    assert alerts == ()
    strict = EarlyWarningConfig(ikp_high=66.01)
    _, alerts = observe_case(None, case(region="32.73"), strict, table, CAL, NOW)
    assert alerts == ()
    # Banten with the publication's own band (68.5)
    _, alerts = observe_case(None, case(region="36.01"), EarlyWarningConfig(ikp_high=68.5),
                             IKP, CAL, NOW)
    assert alerts == ()


@pytest.mark.parametrize(("text", "phrase"), [
    ("code,score\n", "header must be"),
    ("region_code,region_name,score,basis\n99,X,1,published\n", "unknown region code"),
    ("region_code,region_name,score,basis\n32,X,abc,published\n", "not a number"),
    ("region_code,region_name,score,basis\n32,X,101,published\n", "outside 0-100"),
    ("region_code,region_name,score,basis\n32,X,1,guess\n", "basis must be"),
    ("region_code,region_name,score,basis\n32,X,1,published\n32,X,2,published\n", "twice"),
])
def test_a_bad_ikp_file_is_one_clear_line(text: str, phrase: str) -> None:
    with pytest.raises(ConfigError, match=phrase):
        parse_ikp(text, "ikp.csv")


def test_the_shipped_ikp_file_is_published_province_scores_with_a_source() -> None:
    assert len(IKP.scores) == 34
    assert all(s.basis == "published" and "." not in s.region_code for s in IKP.scores.values())
    high = sorted(c for c, s in IKP.scores.items() if s.score >= 66)
    assert high == ["31", "32", "36", "64", "71", "82"]
    source = resources.files("streams.rules.data").joinpath("IKP_SOURCE.md").read_text("utf-8")
    assert "16 December 2022" in source and "not available offline" in source


# --- deadline at risk -------------------------------------------------------------------------


@pytest.mark.parametrize(("deadline", "fires"), [
    (date(2024, 10, 10), True),  # Thu: 3 working days after Mon 7 Oct
    (date(2024, 10, 8), True),  # tomorrow: 1
    (date(2024, 10, 11), False),  # Fri: 4 > 3
    (date(2024, 10, 7), False),  # today: the step is due, the case processor takes it
    (date(2024, 10, 1), False),  # passed
])
def test_deadline_at_risk_boundary(deadline: date, fires: bool) -> None:
    c = case(state=CaseState.RECOMMENDED, region=QUIET, next_deadline=deadline)
    _, alerts = observe_case(None, c, CFG, IKP, CAL, NOW)
    assert [a.rule for a in alerts] == ([DEADLINE_AT_RISK] if fires else [])
    if fires:
        assert alerts[0].alert_id == stable_id(DEADLINE_AT_RISK, "c1", deadline)
        assert alerts[0].severity is Severity.WARNING and "peringatan" in alerts[0].title


def test_deadline_counts_working_days_not_calendar_days() -> None:
    # Fri 27 Dec 2024 -> Fri 3 Jan 2025: 7 calendar days, 4 working days (weekend, 1 Jan out)
    friday = datetime(2024, 12, 27, 3, tzinfo=UTC)
    c = case(state=CaseState.PERINGATAN, region=QUIET, next_deadline=date(2025, 1, 3))
    assert CAL.working_days_between(date(2024, 12, 27), date(2025, 1, 3)) == 4
    _, alerts = observe_case(None, c, EarlyWarningConfig(deadline_risk_working_days=4), IKP,
                             CAL, friday)
    assert [a.rule for a in alerts] == [DEADLINE_AT_RISK] and "teguran" in alerts[0].title
    _, alerts = observe_case(None, c, EarlyWarningConfig(deadline_risk_working_days=3), IKP,
                             CAL, friday)
    assert alerts == ()


def test_deadline_only_for_cases_waiting_on_an_escalation_step() -> None:
    for state in (CaseState.SANCTIONED, CaseState.REPORTED, CaseState.BLOCKED):
        c = case(state=state, region=QUIET, next_deadline=date(2024, 10, 8))
        assert observe_case(None, c, CFG, IKP, CAL, NOW)[1] == ()
    c = case(state=CaseState.TEGURAN, region=QUIET, next_deadline=date(2024, 10, 8))
    (alert,) = observe_case(None, c, CFG, IKP, CAL, NOW)[1]
    assert alert.severity is Severity.CRITICAL and "pemblokiran" in alert.title


def test_the_timer_recheck_alerts_once_per_deadline() -> None:
    c = case(state=CaseState.RECOMMENDED, region=QUIET, next_deadline=date(2024, 10, 11))
    watch, alerts = observe_case(None, c, CFG, IKP, CAL, NOW)
    assert alerts == () and not deadline_due(watch, CFG, CAL, NOW)
    tuesday = NOW + timedelta(days=1)
    assert deadline_due(watch, CFG, CAL, tuesday)
    state, alerts = apply("case:c1", watch, None, CFG, IKP, CAL, tuesday)  # a tick
    assert [a.rule for a in alerts] == [DEADLINE_AT_RISK]
    assert isinstance(state, CaseWatch) and not deadline_due(state, CFG, CAL, tuesday)
    assert apply("case:c1", state, None, CFG, IKP, CAL, tuesday)[1] == ()
    # a new deadline (the next step scheduled) is a new alert
    moved = c.model_copy(update={"version": 2, "state": CaseState.PERINGATAN,
                                 "next_deadline": date(2024, 10, 10)})
    _, alerts = observe_case(state, moved, CFG, IKP, CAL, tuesday)
    assert [a.alert_id for a in alerts] == [stable_id(DEADLINE_AT_RISK, "c1", date(2024, 10, 10))]


def test_an_older_version_of_a_case_changes_nothing() -> None:
    watch, _ = observe_case(None, case(version=3, region=QUIET), CFG, IKP, CAL, NOW)
    old = case(version=2, region=QUIET, state=CaseState.RECOMMENDED,
               next_deadline=date(2024, 10, 8))
    assert observe_case(watch, old, CFG, IKP, CAL, NOW) == (watch, ())
    assert apply("case:nothing", None, None, CFG, IKP, CAL, NOW) == (None, ())


# --- I-MUT inside the Pasal 71 window ---------------------------------------------------------


@pytest.mark.parametrize(("requested", "approval", "fires"), [
    (date(2024, 9, 2), None, True),
    (date(2024, 3, 22), None, True),  # the first day of the window
    (date(2024, 3, 21), None, False),  # the day before
    (date(2024, 9, 2), "100.2.2.6/1234/OTDA", False),  # with the Minister's approval
])
def test_imut_mutation_inside_the_pasal_71_window(requested: date, approval: str | None,
                                                  fires: bool) -> None:
    alert = imut_alert(mutation(requested=requested, approval=approval), CFG, NOW)
    if not fires:
        assert alert is None
        return
    assert alert is not None and alert.rule == IMUT_PASAL71
    assert alert.alert_id == stable_id(IMUT_PASAL71, "m1")
    assert (alert.region_code, alert.province_code, alert.nip) == ("32.73", "32", NIP_A)
    assert alert.severity is Severity.CRITICAL  # by a Pj head
    assert "end of the term" in alert.detail


def test_pasal_71_window_end_and_election_are_configurable() -> None:
    cfg = EarlyWarningConfig(pasal71_windows={
        Election.PILKADA_2024: Pasal71Window(start=date(2024, 3, 22), end=date(2024, 9, 2))})
    assert imut_alert(mutation(requested=date(2024, 9, 2)), cfg, NOW) is not None  # last day
    assert imut_alert(mutation(requested=date(2024, 9, 3)), cfg, NOW) is None
    assert imut_alert(mutation(election=Election.PEMILU_2024), CFG, NOW) is None
    elected = imut_alert(mutation(acting=False), CFG, NOW)
    assert elected is not None and elected.severity is Severity.WARNING
    assert imut_alert(report("r1", at("2024-10-01")), CFG, NOW) is None
    with pytest.raises(ValueError, match="before it starts"):
        Pasal71Window(start=date(2024, 3, 22), end=date(2024, 3, 1))


# --- state, dispatch, settings ----------------------------------------------------------------


def test_states_survive_their_json_round_trip() -> None:
    cfg = EarlyWarningConfig(spike_min_count=1)
    spike, _ = feed(reports_on("2024-10-01", 2), "region:32.73", cfg)
    nip, _ = observe_case_for_nip(None, case("c1"), CFG, NOW)
    watch, _ = observe_case(None, case(position=Position.JPT), CFG, IKP, CAL, NOW)
    for state in (spike, nip, watch):
        assert state is not None
        assert load_state(dump_state(state)) == state
    assert load_state(None) is None and load_state(b"") is None


def test_replaying_records_through_apply_gives_the_same_alert_ids() -> None:
    cfg = EarlyWarningConfig(spike_min_count=2)
    records: list[tuple[str, CanonicalEvent | CaseRecord]] = [
        *((s, ev) for ev in reports_on("2024-10-01", 3) for s in event_subjects(ev)),
        *((s, c) for c in (case("c1", position=Position.JPT), case("c2")) for s in
          case_subjects(c)),
    ]

    def run() -> list[str]:
        states: dict[str, object] = {}
        ids = []
        for subject, record in records:
            state, alerts = apply(subject, states.get(subject), record,  # type: ignore[arg-type]
                                  cfg, IKP, CAL, NOW)
            states[subject] = load_state(dump_state(state)) if state else None
            ids += [a.alert_id for a in alerts]
        return ids

    first = run()
    assert first == run() and len(first) == len(set(first))
    assert len(first) == 3 + 2 + 1 + 1  # 3 spikes, c1 and c2 IKP, c1 senior, NIP_A's 2nd case


def test_a_record_of_the_wrong_kind_for_its_subject_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="no early-warning rule"):
        apply("nip:x", None, reports_on("2024-10-01", 1)[0], CFG, IKP, CAL, NOW)
    with pytest.raises(InvalidMessage):
        apply("weird:x", None, case(), CFG, IKP, CAL, NOW)


def test_settings_feed_the_config() -> None:
    settings = NetralSettings(ew_spike_min_count=9, ew_ikp_high=70,
                              ew_senior_positions=("JPT",),
                              ew_pasal71_windows={"PILKADA_2024": ("2024-03-22", "2025-02-20")})
    cfg = early_warning_config(settings)
    assert cfg.spike_min_count == 9 and cfg.ikp_high == 70
    assert cfg.senior_positions == (Position.JPT,)
    assert cfg.pasal71_windows[Election.PILKADA_2024].end == date(2025, 2, 20)
    assert early_warning_config(NetralSettings()) == EarlyWarningConfig()
    bad = NetralSettings(ew_pasal71_windows={"PILKADA_2024": ("2024-03-22", "2024-01-01")})
    with pytest.raises(ConfigError, match="NETRAL_EW_PASAL71_WINDOWS"):
        early_warning_config(bad)


def test_an_ikp_file_that_cannot_be_read_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NETRAL_EW_IKP_FILE"):
        load_ikp(tmp_path / "missing.csv")
    own = tmp_path / "ikp.csv"
    own.write_text("region_code,region_name,score,basis\n36.01,Kabupaten Pandeglang,70,"
                   "illustrative\n", "utf-8")
    table = load_ikp(own)
    assert table.score_of("36.01") is not None and table.score_of("36.02") is None
