"""matching: who a report without a NIP is about, explainably (score + the fields that agreed).

Reports from the public often name an official ("Drs. H. BUDI SANTOSO, M.Si", "Dinas Pendidikan
Kota Bandung") instead of giving the NIP. Names are normalised (gelar such as Drs., H., Ir. and
degrees such as S.Pd, M.Si dropped, casefolded, punctuation removed) and compared with rapidfuzz's
``token_sort_ratio`` (word order does not matter); agency, region and position agreement are
weighted features. A feature unknown on either side is left out and the weights renormalised, so a
missing position neither helps nor hurts.

Decision bands (policy): at or above ``merge`` the same person, provided the names alone agree to
``merge_name_min`` (office, region and position cannot turn "Budiman" into "Budi"); from
``review`` up an operator decides (NEEDS_REVIEW, with the candidates); below, someone new. Two
candidates within ``ambiguity_margin`` of each other are never merged silently: that is a REVIEW,
whatever the score.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import lru_cache
from operator import attrgetter, itemgetter

from rapidfuzz import fuzz, process

from schemas import regions
from schemas.models import FrozenModel, PersonRef, Position
from schemas.models.types import Interned

from .policy import MatchThresholds

#: Gelar that precede a name (haji, academic and professional titles), without dots, casefolded.
PREFIX_TITLES = frozenset({
    "drs", "dra", "dr", "ir", "h", "hj", "prof", "kh", "ust", "ustadz", "tgh", "rd", "raden",
    "ra", "r", "apt", "drg", "ns", "bpk", "bapak", "ibu", "sdr", "sdri",
})
#: Academic degrees that follow a name (usually after a comma), without dots, casefolded.
DEGREES = frozenset({
    "spd", "spdi", "se", "sh", "ssos", "sip", "skom", "st", "sag", "ssi", "skm", "sked", "sp",
    "spt", "sthi", "sikom", "sie", "sak", "sei", "shi", "ma", "msi", "mm", "mh", "mpd", "map",
    "mt", "mkes", "mag", "mpdi", "msc", "mba", "mkom", "ak", "amd", "amkeb", "amkep", "ba",
    "bsc", "phd", "ipu", "cpa",
})
_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")
_AGENCY_WORDS = {"pemerintah": "pemerintah", "pemkab": "pemerintah kabupaten",
                 "pemkot": "pemerintah kota", "pemprov": "pemerintah provinsi",
                 "kab": "kabupaten", "kabupaten": "kabupaten"}
NAME_WORDS = attrgetter("name_words")
"""What the name shortlist compares, per known person (see :meth:`PMap.column`)."""
_RANK = itemgetter(0, 1)
AGREE = 0.9  # a feature at or above this counts as a matched field


class Decision(StrEnum):
    """What to do with a report: join the match, ask an operator, or open a new case."""

    MERGE = "MERGE"
    REVIEW = "REVIEW"
    NEW = "NEW"


class KnownPerson(FrozenModel):
    """A person the partition knows: by NIP, or (``nip`` None) the person of a case without one.

    ``key`` is the NIP, or ``case:<case_id>`` for a case whose person has no NIP yet.
    ``name_words``: ``norm_name``'s words sorted, what the name shortlist compares.
    """

    key: Interned
    nip: Interned | None
    name: Interned
    norm_name: Interned
    name_words: Interned
    agency_name: Interned
    norm_agency: Interned
    region_code: Interned | None = None
    position: Position | None = None
    case_ids: tuple[str, ...] = ()


class Candidate(FrozenModel):
    """One scored candidate, with the fields that agreed."""

    key: str
    nip: str | None
    case_ids: tuple[str, ...]
    score: float
    name_score: float
    matched_fields: tuple[str, ...]


class PersonMatch(FrozenModel):
    """The decision on one report, and why: the best score, its fields and every close candidate."""

    decision: Decision
    score: float
    matched_fields: tuple[str, ...]
    candidates: tuple[Candidate, ...] = ()

    @property
    def chosen(self) -> Candidate | None:
        """The candidate merged with (MERGE only)."""
        return self.candidates[0] if self.decision is Decision.MERGE else None


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1 << 16)  # pure; a person's name is normalised again at every event
def normalise_name(name: str) -> str:
    """``"Drs. H. BUDI SANTOSO, M.Si"`` -> ``"budi santoso"``: no gelar, no degrees, casefolded."""
    head = _ascii_fold(name).split(",")[0]  # degrees usually follow the first comma
    raw = [t for t in head.casefold().split() if t]
    keys = [_PUNCT.sub("", t) for t in raw]  # "S.Pd" -> "spd", "H." -> "h"
    start, end = 0, len(raw)
    while end - start > 1 and keys[start] in PREFIX_TITLES:
        start += 1
    while end - start > 1 and keys[end - 1] in DEGREES:
        end -= 1
    words = _SPACE.split(_PUNCT.sub(" ", " ".join(raw[start:end])))
    return " ".join(w for w in words if w)


@lru_cache(maxsize=1 << 16)
def normalise_agency(name: str) -> str:
    """Casefolded, punctuation removed, common abbreviations (Pemkab, Pemkot, Kab.) spelled out."""
    words = _SPACE.split(_PUNCT.sub(" ", _ascii_fold(name)).casefold().strip())
    return " ".join(_AGENCY_WORDS.get(w, w) for w in words if w)


@lru_cache(maxsize=1 << 18)
def sorted_words(text: str) -> str:
    """What ``fuzz.token_sort_ratio`` compares: the words sorted, joined by one space."""
    return " ".join(sorted(text.split()))


def known_person(person: PersonRef, *, key: str, region_code: str | None,
                 case_ids: Sequence[str]) -> KnownPerson:
    """Index a person for matching (names normalised once, not per comparison)."""
    norm_name = normalise_name(person.name)
    return KnownPerson(key=key, nip=person.nip, name=person.name, norm_name=norm_name,
                       name_words=sorted_words(norm_name), agency_name=person.agency_name,
                       norm_agency=normalise_agency(person.agency_name),
                       region_code=person.region_code or region_code, position=person.position,
                       case_ids=tuple(case_ids))


def score_person(query: KnownPerson, candidate: KnownPerson, thresholds: MatchThresholds
                 ) -> tuple[float, tuple[str, ...]]:
    """Weighted agreement of name, agency, region and position, 0..1, and the fields >= 0.9."""
    score, fields, _ = _score(query, candidate, thresholds)
    return score, fields


def _score(query: KnownPerson, candidate: KnownPerson, thresholds: MatchThresholds,
           name: float | None = None) -> tuple[float, tuple[str, ...], float]:
    """The weighted score, its matched fields and the name's own score. ``name``: the name
    score when the shortlist already computed it (``fuzz.ratio`` of the sorted words, equal
    to ``token_sort_ratio`` of the names), so it is not computed twice.

    Written out rather than as a dict of features: it runs for every shortlisted namesake of
    every name-only report, tens per report. The sums keep the features' order (name, agency,
    region, position), so the floats are the same as a feature-by-feature sum.
    """
    w = thresholds.weights
    if name is None:
        name = fuzz.ratio(query.name_words, candidate.name_words) / 100
    agency = _agency_score(query.norm_agency, candidate.norm_agency)
    score = 0 + name * w.name + agency * w.agency
    total = 0 + w.name + w.agency
    matched = ["name"] if name >= AGREE else []
    if agency >= AGREE:
        matched.append("agency")
    if query.region_code and candidate.region_code:
        region = _region_score(query.region_code, candidate.region_code)
        score += region * w.region
        total += w.region
        if region >= AGREE:
            matched.append("region")
    if query.position and candidate.position:
        position = float(query.position is candidate.position)
        score += position * w.position
        total += w.position
        if position >= AGREE:
            matched.append("position")
    return round(score / total if total else 0.0, 4), tuple(matched), round(name, 4)


@lru_cache(maxsize=1 << 16)  # few agencies, compared again for every namesake
def _agency_score(a: str, b: str) -> float:
    return fuzz.token_sort_ratio(a, b) / 100


@lru_cache(maxsize=1 << 16)
def _region_score(a: str, b: str) -> float:
    if a == b:
        return 1.0
    try:
        same_province = regions.province_of(a) == regions.province_of(b)
    except ValueError:
        return 0.0
    return 0.5 if same_province else 0.0


def match_person(query: KnownPerson, known: Iterable[KnownPerson], thresholds: MatchThresholds,
                 *, name_cutoff: float = 75.0, names: Sequence[str] | None = None,
                 more: Iterable[tuple[Sequence[KnownPerson], Sequence[str]]] = ()
                 ) -> PersonMatch:
    """Score ``query`` against ``known`` and decide MERGE, REVIEW or NEW.

    Names are shortlisted first with ``rapidfuzz.process.extract`` (C speed over thousands of
    persons): every name at or above ``name_cutoff``, with no count limit, since namesakes tie on
    the name and only office and region tell them apart. Only the shortlist gets the full score.
    ``names``: each known person's ``name_words``, in ``known``'s order, if the caller keeps
    them listed already. ``more``: further known persons, each group with its names listed
    (:meth:`~streams.rules.pmap.PMap.column_slots`), compared as if they followed ``known``.
    """
    # The pool and its names are listed at C speed (list(), map(attrgetter)); the query's own
    # key is skipped among the hits instead of filtering the pool first: every other person's
    # score is the same either way, and the candidates are sorted below.
    pool = known if isinstance(known, list) else list(known)
    # token_sort_ratio is ratio over the words sorted (rapidfuzz.fuzz_py's definition): each
    # known name's words are sorted once (``name_words``), not in every comparison; same scores.
    if names is None:
        names = list(map(NAME_WORDS, pool))
    groups = [(pool, names), *more]
    if not query.norm_name or not any(persons for persons, _ in groups):
        return PersonMatch(decision=Decision.NEW, score=0.0, matched_fields=())
    # Scored as plain tuples, sorted by (score desc, key); only the close ones become
    # Candidates (a common name shortlists many namesakes, few of them close). Group by
    # group, the hits come in the order one list of them all would give equal keys.
    scored = []
    for persons, their_names in groups:
        if len(their_names) != len(persons):
            raise ValueError(f"{len(their_names)} names for {len(persons)} known persons")
        if not persons:
            continue
        for _, name, index in process.extract(query.name_words, their_names, scorer=fuzz.ratio,
                                              limit=None, score_cutoff=name_cutoff):
            person = persons[index]
            if person.key == query.key:
                continue
            score, fields, name_score = _score(query, person, thresholds, name / 100)
            scored.append((-score, person.key, fields, name_score, person))
    scored.sort(key=_RANK)
    close = tuple(Candidate(key=key, nip=person.nip, case_ids=person.case_ids, score=-neg,
                            name_score=name_score, matched_fields=fields)
                  for neg, key, fields, name_score, person in scored
                  if -neg >= thresholds.review)
    if not close:
        top = scored[0] if scored else None
        return PersonMatch(decision=Decision.NEW, score=-top[0] if top else 0.0,
                           matched_fields=top[2] if top else ())
    best = close[0]
    ambiguous = len(close) > 1 and close[1].score >= best.score - thresholds.ambiguity_margin
    names_agree = best.name_score >= thresholds.merge_name_min
    if best.score >= thresholds.merge and names_agree and not ambiguous:
        decision = Decision.MERGE
    else:
        decision = Decision.REVIEW
    return PersonMatch(decision=decision, score=best.score, matched_fields=best.matched_fields,
                       candidates=close[:20])
