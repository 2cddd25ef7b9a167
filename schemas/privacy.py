"""What purging a person from a case means, shared by every copy of the national record.

UU 27/2022 wants personal data kept no longer than its purpose needs. A closed case that is old
enough loses the person's identity: NIP, name, position title, the match details (other
candidates' NIPs) and the evidence links. What aggregates count stays: election, state, region,
province, violation type and level, the person's agency and position category, dates, timeline.
The SQL national record (sinks/sql/purge.py) and the cases stage (streams/rules/purge.py, which
republishes the scrubbed case to the compacted ``netral.cases``) apply this same function.
"""

from __future__ import annotations

from .models import CaseRecord, CaseState, PersonRef

REDACTED = "(dihapus)"
"""What a purged name reads as ("deleted"); NIPs become None (or REDACTED_NIP where required)."""
REDACTED_NIP = "-" * 18
CLOSED_STATES = frozenset({CaseState.SANCTIONED, CaseState.NOT_PROVEN, CaseState.CLOSED,
                           CaseState.CANCELLED, CaseState.REJECTED})
"""The states in which a case is over, so its person may be purged."""


def scrub_case(record: CaseRecord) -> CaseRecord:
    """The case without the person's identity; everything aggregates count is kept."""
    p = record.person
    person = PersonRef(nip=None, name=REDACTED, agency_name=p.agency_name,
                       agency_code=p.agency_code, position=p.position, position_title=None,
                       region_code=p.region_code)
    return record.model_copy(update={"person": person, "match": None, "evidence": ()})


def is_scrubbed(record: CaseRecord) -> bool:
    """Whether the case already carries no personal data (a purge changes nothing more)."""
    return scrub_case(record) == record
