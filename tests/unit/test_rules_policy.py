"""Policy as data: both 2024 regimes, proportionality, precedence, and KemenPAN-RB's updates."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.errors import ConfigError, InvalidMessage
from schemas.models import (
    Agency,
    CanonicalEvent,
    Election,
    EventType,
    PolicyParameters,
    PolicyRegime,
    SanctionLevel,
    ViolationType,
)
from streams.rules.policy import (
    InvalidPolicyUpdate,
    NoPolicy,
    apply_policy_update,
    load_policies,
    parse_policies,
    policy_for,
)
from tests.unit.test_rules_factories import _event, at, report

pytestmark = pytest.mark.unit

POLICIES = load_policies()


def update(election: Election = Election.PILKADA_2024, *,
           regime: PolicyRegime = PolicyRegime.SATGAS_2024, effective: date = date(2024, 10, 1),
           warning: int = 3, sid: str = "pu-1") -> CanonicalEvent:
    return _event(Agency.KEMENPANRB, sid, EventType.POLICY_UPDATED, at("2024-09-01"), election,
                  policy=PolicyParameters(regime=regime, effective_date=effective,
                                          ppk_deadline_working_days=10,
                                          warning_interval_working_days=warning,
                                          reprimand_interval_working_days=7,
                                          decree_ref="SE MenPAN-RB 9/2024"))


def test_both_2024_regimes_with_the_domain_defaults() -> None:
    pemilu, pilkada = POLICIES[Election.PEMILU_2024], POLICIES[Election.PILKADA_2024]
    assert (pemilu.regime, pilkada.regime) == (PolicyRegime.KASN_2024, PolicyRegime.SATGAS_2024)
    for p in (pemilu, pilkada):
        assert (p.ppk_deadline_working_days, p.warning_interval_working_days,
                p.reprimand_interval_working_days) == (14, 5, 5)
        assert (p.match.merge, p.match.review) == (0.92, 0.75)
        assert p.dedupe_window_days == 14
    assert (pilkada.satgas_verification_days, pilkada.bawaslu_review_working_days) == (7, 3)
    assert pemilu.satgas_verification_days is None


@pytest.mark.parametrize(("vtype", "level"), [
    (ViolationType.CAMPAIGN_ATTENDANCE, SanctionLevel.SEDANG),
    (ViolationType.MOBILISATION, SanctionLevel.BERAT),
    (ViolationType.STATE_FACILITIES, SanctionLevel.BERAT),
    (ViolationType.PARTY_MEMBERSHIP, SanctionLevel.BERAT),
    (ViolationType.SOCIAL_MEDIA, SanctionLevel.RINGAN),
])
def test_proportionality_follows_the_domain(vtype: ViolationType, level: SanctionLevel) -> None:
    assert POLICIES[Election.PEMILU_2024].recommended_level(vtype) is level


def test_every_violation_type_has_a_level() -> None:
    assert set(POLICIES[Election.PILKADA_2024].levels) == set(ViolationType)


def test_precedence_bkn_over_bawaslu_for_personnel_data() -> None:
    policy = POLICIES[Election.PILKADA_2024]
    for name in ("person.agency_name", "person.position", "person.nip"):
        rule = policy.rule(name)
        assert rule.rank(Agency.BKN) < rule.rank(Agency.BAWASLU)
    assert policy.rule("incident_date").tie == "first"
    assert policy.rule("person.nip").rank(None) > policy.rule("person.nip").rank(Agency.BAWASLU)


def test_update_applies_from_its_effective_date_only() -> None:
    policies = apply_policy_update(POLICIES, update())
    p = policies[Election.PILKADA_2024]
    assert p.intervals_on(date(2024, 9, 30)).warning_interval_working_days == 5
    assert p.intervals_on(date(2024, 10, 1)).warning_interval_working_days == 3
    assert p.intervals_on(date(2024, 10, 1)).ppk_deadline_working_days == 10
    assert policies[Election.PEMILU_2024] is POLICIES[Election.PEMILU_2024]
    assert POLICIES[Election.PILKADA_2024].updates == ()  # the input is not changed


def test_update_is_idempotent_and_a_newer_one_for_the_same_date_replaces_it() -> None:
    once = apply_policy_update(POLICIES, update())
    assert apply_policy_update(once, update()) == once
    replaced = apply_policy_update(once, update(warning=8, sid="pu-2"))
    (period,) = replaced[Election.PILKADA_2024].updates
    assert period.warning_interval_working_days == 8


def test_update_before_the_base_date_replaces_the_base() -> None:
    policies = apply_policy_update(POLICIES, update(effective=date(2023, 6, 1)))
    p = policies[Election.PILKADA_2024]
    assert p.effective_date == date(2023, 6, 1) and p.warning_interval_working_days == 3


def test_update_cannot_switch_regime() -> None:
    with pytest.raises(InvalidPolicyUpdate, match="cannot switch"):
        apply_policy_update(POLICIES, update(regime=PolicyRegime.KASN_2024))


def test_update_for_a_new_election_builds_it_from_the_defaults() -> None:
    assert Election.OTHER not in POLICIES
    with pytest.raises(NoPolicy) as err:
        policy_for(POLICIES, Election.OTHER)
    assert isinstance(err.value, InvalidMessage)
    policies = apply_policy_update(POLICIES, update(Election.OTHER))
    p = policy_for(policies, Election.OTHER)
    assert p.regime is PolicyRegime.SATGAS_2024 and p.warning_interval_working_days == 3
    assert p.levels == POLICIES[Election.PILKADA_2024].levels


def test_only_policy_events_update_policy() -> None:
    with pytest.raises(InvalidPolicyUpdate):
        apply_policy_update(POLICIES, report("r1", at("2024-10-01")))


@pytest.mark.parametrize(("doc", "message"), [
    ({"elections": {"PEMILU_2030": {}}}, "unknown election"),
    ({"defaults": {}, "elections": {"PEMILU_2024": {"regime": "KASN_2024"}}}, "PEMILU_2024"),
])
def test_bad_policy_documents_are_config_errors(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policies(doc)
