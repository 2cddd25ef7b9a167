"""M&E numbers on the hand-checked fixture (tests/fixtures/monitor_data.py), no I/O.

Working days by hand (2024; 27 Nov is the Pilkada holiday, 25 Dec Christmas, 26 Dec cuti bersama):
- verification: A1 4->7 Nov = 3, A2 4->8 Nov = 4, A3 5->12 Nov = 5 (6,7,8,11,12), B1 4->6 Nov =
  2, B3 9->11 Dec = 2; B2 and C1 have none.
- recommendation -> sanction: A1 11->15 Nov = 4; B1 6 Nov -> 16 Dec = 27 (Nov: 7,8 | 11-15 | 18-22 |
  25,26 | 28,29 = 16; Dec 2-6 = 21; 9-13 = 26; 16 = 27).
- PPK deadline (14 working days): A1 11 Nov -> 2 Dec, sanctioned 15 Nov: within. A2 12 Nov -> 3 Dec,
  no sanction by 20 Dec: late. B1 6 Nov -> 26 Nov, sanctioned 16 Dec: late. B3 11 Dec -> 3 Jan 2025:
  still running, not counted.
- block -> unblock: B1 12 -> 18 Dec = 4 (13, 16, 17, 18).
"""

from __future__ import annotations

import pytest

from hub import me
from sinks.sql.queries import CaseHistory
from streams.rules.calendar import default_calendar
from tests.fixtures.monitor_data import TODAY, Story, at, stories

pytestmark = pytest.mark.unit


def history(s: Story) -> CaseHistory:
    record = s.record()
    return CaseHistory(
        case_id=s.case_id, province_code=record.province_code, agency_name=s.agency,
        state=record.state.value, opened_at=record.opened_at,
        recommendation_deadline=record.recommendation_deadline,
        escalation_step=record.escalation_step,
        transitions=[(at(d), st.value, rule) for d, st, rule in s.steps],
        block_confirmed=[(at(d), a.value) for d, a in s.blocks])


def evaluation() -> me.Evaluation:
    return me.evaluate([history(s) for s in stories()], default_calendar(), TODAY)


def test_deadlines_are_the_ones_worked_by_hand() -> None:
    by_id = {s.case_id: s.record() for s in stories()}
    assert str(by_id["A1"].recommendation_deadline) == "2024-12-02"
    assert str(by_id["A2"].recommendation_deadline) == "2024-12-03"
    assert str(by_id["B1"].recommendation_deadline) == "2024-11-26"
    assert str(by_id["B3"].recommendation_deadline) == "2025-01-03"


def test_case_times() -> None:
    cal = default_calendar()
    times = {s.case_id: me.case_times(history(s), cal, TODAY) for s in stories()}
    assert [times[c].report_to_verification for c in ("A1", "A2", "A3", "B1", "B2", "B3", "C1")] \
        == [3, 4, 5, 2, None, 2, None]
    assert times["A1"].recommendation_to_sanction == 4
    assert times["B1"].recommendation_to_sanction == 27
    assert [times[c].within_deadline for c in ("A1", "A2", "B1", "B3", "A3")] \
        == [True, False, False, None, None]
    assert times["B1"].block_to_unblock == 4
    assert times["A2"].blocked and times["A2"].block_to_unblock is None
    assert times["A2"].escalated and times["B1"].escalated and not times["A1"].escalated


def test_province_scores_and_ranking() -> None:
    result = evaluation()
    by = {s.group: s for s in result.provinces}
    jabar, dki, jatim = by["32"], by["31"], by["35"]
    assert (jabar.verification_median, jabar.verification_p90) == (4.0, pytest.approx(4.8))
    assert (jabar.sanction_median, jabar.ppk_within, jabar.ppk_decided) == (4.0, 1, 2)
    assert jabar.ppk_within_share == 0.5
    assert (jabar.escalated, jabar.blocks, jabar.unblock_median) == (1, 1, None)
    assert (dki.verification_median, dki.sanction_median, dki.unblock_median) == (2.0, 27.0, 4.0)
    assert (dki.ppk_within, dki.ppk_decided, dki.escalated, dki.blocks) == (0, 1, 1, 1)
    assert jatim.ppk_within_share is None and jatim.cases == 1
    assert [(s.group, s.rank) for s in result.provinces] == [("32", 1), ("31", 2), ("35", 3)]


def test_overall_and_agencies() -> None:
    result = evaluation()
    assert result.overall.cases == 7
    assert result.overall.verification_median == 3.0
    assert result.overall.verification_p90 == pytest.approx(4.6)
    garut = next(s for s in result.agencies if s.group == "Pemerintah Kabupaten Garut")
    assert (garut.cases, garut.ppk_within, garut.ppk_decided, garut.rank) == (2, 1, 2, 1)


def test_percentile() -> None:
    assert me.percentile([], 0.5) is None
    assert me.percentile([7], 0.9) == 7.0
    assert me.percentile([1, 2, 3, 4], 0.5) == 2.5
