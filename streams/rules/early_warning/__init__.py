"""Early warning for the Satgas: pure rules over canonical events and case records.

``config`` holds the thresholds, ``ikp`` Bawaslu's vulnerability scores, ``rules`` the six rules
and the routing of records to subjects (see its docstring for the table of rules).
"""

from .config import EarlyWarningConfig, Pasal71Window
from .ikp import IkpScore, IkpTable, load_ikp, parse_ikp
from .rules import (
    DEADLINE_AT_RISK,
    IKP_HIGH,
    IMUT_PASAL71,
    REPEAT_OFFENDER,
    SENIOR_OFFICIAL,
    SPIKE_AGENCY,
    SPIKE_PROVINCE,
    SPIKE_REGION,
    CaseWatch,
    NipCases,
    SpikeState,
    SubjectState,
    apply,
    case_subjects,
    deadline_due,
    dump_state,
    event_subjects,
    imut_alert,
    load_state,
)

__all__ = [
    "DEADLINE_AT_RISK",
    "IKP_HIGH",
    "IMUT_PASAL71",
    "REPEAT_OFFENDER",
    "SENIOR_OFFICIAL",
    "SPIKE_AGENCY",
    "SPIKE_PROVINCE",
    "SPIKE_REGION",
    "CaseWatch",
    "EarlyWarningConfig",
    "IkpScore",
    "IkpTable",
    "NipCases",
    "Pasal71Window",
    "SpikeState",
    "SubjectState",
    "apply",
    "case_subjects",
    "deadline_due",
    "dump_state",
    "event_subjects",
    "imut_alert",
    "load_ikp",
    "load_state",
    "parse_ikp",
]
