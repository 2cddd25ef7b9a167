"""Avro enums as ``StrEnum``: each member's value is the Avro symbol, in the schema's order.

Meanings are documented once, in the ``.avsc`` files; :class:`Agency` is the topic catalogue's own.
"""

from __future__ import annotations

from enum import StrEnum

from ..topics import Agency

__all__ = [
    "Agency",
    "BawasluReviewOutcome",
    "CaseState",
    "Election",
    "EscalationStep",
    "EventType",
    "EvidenceKind",
    "IssuingBody",
    "MutationKind",
    "OrderAction",
    "OrderOutcome",
    "PolicyRegime",
    "Position",
    "RegionalHeadRole",
    "ReportKind",
    "ReporterChannel",
    "ReviewAction",
    "SanctionLevel",
    "Severity",
    "SiasnScope",
    "ViolationKind",
    "ViolationType",
]


class IssuingBody(StrEnum):
    KASN = "KASN"
    BKN = "BKN"
    SATGAS = "SATGAS"
    BAWASLU = "BAWASLU"


class Election(StrEnum):
    PEMILU_2024 = "PEMILU_2024"
    PILKADA_2024 = "PILKADA_2024"
    OTHER = "OTHER"


class ReportKind(StrEnum):
    TEMUAN = "TEMUAN"  # Bawaslu's own finding
    LAPORAN = "LAPORAN"  # a report from someone else


class ReporterChannel(StrEnum):
    PUBLIC = "PUBLIC"
    BAWASLU_PATROL = "BAWASLU_PATROL"
    MEDIA_MONITORING = "MEDIA_MONITORING"
    REFERRAL = "REFERRAL"
    OTHER = "OTHER"


class ViolationType(StrEnum):
    SOCIAL_MEDIA = "SOCIAL_MEDIA"
    CAMPAIGN_ATTENDANCE = "CAMPAIGN_ATTENDANCE"
    ONLINE_CAMPAIGN = "ONLINE_CAMPAIGN"
    PARTISAN_ACTIVITY = "PARTISAN_ACTIVITY"
    PARTY_MEMBERSHIP = "PARTY_MEMBERSHIP"
    DECLARATION_ATTENDANCE = "DECLARATION_ATTENDANCE"
    STATE_FACILITIES = "STATE_FACILITIES"
    FAVOURING_DECISION = "FAVOURING_DECISION"
    MOBILISATION = "MOBILISATION"
    OTHER = "OTHER"


class ViolationKind(StrEnum):
    DISIPLIN = "DISIPLIN"  # PP 94/2021
    KODE_ETIK = "KODE_ETIK"  # PP 42/2004


class SanctionLevel(StrEnum):
    RINGAN = "RINGAN"
    SEDANG = "SEDANG"
    BERAT = "BERAT"
    KODE_ETIK_MORAL = "KODE_ETIK_MORAL"


class Position(StrEnum):
    JPT = "JPT"
    ADMINISTRATOR = "ADMINISTRATOR"
    PENGAWAS = "PENGAWAS"
    FUNGSIONAL = "FUNGSIONAL"
    PELAKSANA = "PELAKSANA"
    CAMAT_LURAH = "CAMAT_LURAH"
    PJ_KEPALA_DAERAH = "PJ_KEPALA_DAERAH"
    OTHER = "OTHER"


class CaseState(StrEnum):
    REPORTED = "REPORTED"
    UNDER_VERIFICATION = "UNDER_VERIFICATION"
    UNDER_BAWASLU_REVIEW = "UNDER_BAWASLU_REVIEW"
    NEEDS_REVIEW = "NEEDS_REVIEW"
    NOT_PROVEN = "NOT_PROVEN"
    RECOMMENDED = "RECOMMENDED"
    PERINGATAN = "PERINGATAN"
    TEGURAN = "TEGURAN"
    BLOCKED = "BLOCKED"
    SANCTIONED = "SANCTIONED"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


class EventType(StrEnum):
    VIOLATION_REPORTED = "VIOLATION_REPORTED"
    VERIFIED = "VERIFIED"
    RECOMMENDED = "RECOMMENDED"
    SANCTIONED = "SANCTIONED"
    WARNING_ISSUED = "WARNING_ISSUED"
    REPRIMAND_ISSUED = "REPRIMAND_ISSUED"
    BLOCK_ISSUED = "BLOCK_ISSUED"
    UNBLOCK_ISSUED = "UNBLOCK_ISSUED"
    REVIEW_FORWARDED = "REVIEW_FORWARDED"
    CASE_CANCELLED = "CASE_CANCELLED"
    CASE_REJECTED = "CASE_REJECTED"
    MUTATION_REQUESTED = "MUTATION_REQUESTED"
    POLICY_UPDATED = "POLICY_UPDATED"


class OrderAction(StrEnum):
    BLOCK = "BLOCK"
    UNBLOCK = "UNBLOCK"


class OrderOutcome(StrEnum):
    CONFIRMED = "CONFIRMED"
    ALREADY_IN_EFFECT = "ALREADY_IN_EFFECT"
    FAILED = "FAILED"


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class ReviewAction(StrEnum):
    MERGE = "MERGE"
    SPLIT = "SPLIT"


class BawasluReviewOutcome(StrEnum):
    FORWARDED = "FORWARDED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class EscalationStep(StrEnum):
    WARNING = "WARNING"  # peringatan
    REPRIMAND = "REPRIMAND"  # teguran
    BLOCK = "BLOCK"  # pemblokiran
    UNBLOCK = "UNBLOCK"


class PolicyRegime(StrEnum):
    KASN_2024 = "KASN_2024"
    SATGAS_2024 = "SATGAS_2024"


class EvidenceKind(StrEnum):
    PHOTO = "PHOTO"
    VIDEO = "VIDEO"
    SCREENSHOT = "SCREENSHOT"
    DOCUMENT = "DOCUMENT"
    LINK = "LINK"
    OTHER = "OTHER"


class MutationKind(StrEnum):
    APPOINTMENT = "APPOINTMENT"
    TRANSFER = "TRANSFER"
    DISMISSAL = "DISMISSAL"
    OTHER = "OTHER"


class RegionalHeadRole(StrEnum):
    GUBERNUR = "GUBERNUR"
    BUPATI = "BUPATI"
    WALIKOTA = "WALIKOTA"
    OTHER = "OTHER"


class SiasnScope(StrEnum):
    ALL_SERVICES = "ALL_SERVICES"
    PROMOTION = "PROMOTION"
    TRANSFER = "TRANSFER"
    RETIREMENT = "RETIREMENT"
