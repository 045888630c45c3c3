"""A finding's priority: a score 0-100 and CISA's SSVC coordinator decision, with every input explained.

`prioritize(inputs, today)` folds what is known about a vulnerability on a host (CVSS, EPSS, CISA KEV, CISA's
Vulnrichment SSVC points, the distribution's own urgency, the host's criticality tier and exposure, whether a
fix exists) into a `Priority`. Every input appears in the explanation, with its value or "missing" and what it
did; nothing missing is silently counted as zero. docs/prioritization.md gives the formula, the SSVC mapping and
worked examples; the constants below are that document's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final, TypeVar

from patchday.core.errors import InvalidInput
from patchday.core.vulnerability import CveRecord, CvssScore, CvssVersion, EpssScore, KevEntry, SsvcPoints, best_cvss

MISSING: Final = "missing"
_Point = TypeVar("_Point", bound=StrEnum)


class Exposure(StrEnum):
    """Who can reach the host over the network (the same words as the inventory's Host.exposure)."""

    INTERNET_FACING = "internet-facing"
    INTERNAL = "internal"
    ISOLATED = "isolated"


class Decision(StrEnum):
    """CISA's SSVC coordinator decisions, least urgent first; compare urgency with `rank`."""

    TRACK = "Track"
    TRACK_STAR = "Track*"
    ATTEND = "Attend"
    ACT = "Act"

    @property
    def rank(self) -> int:
        return list(Decision).index(self)


class Exploitation(StrEnum):
    NONE = "none"
    POC = "poc"
    ACTIVE = "active"


class Automatable(StrEnum):
    NO = "no"
    YES = "yes"


class TechnicalImpact(StrEnum):
    PARTIAL = "partial"
    TOTAL = "total"


class MissionImpact(StrEnum):
    """SSVC's Mission & Well-being Impact, here taken from the host's criticality tier and exposure."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# CISA's coordinator decision table (cisa:DT_CO v2.0.3), row for row and spelled as in
# core/data/cisa-ssvc-coordinator-decision-table.csv (provenance beside it); a unit test checks this constant
# against that file. Columns: exploitation, automatable, technical impact, mission & well-being, decision.
COORDINATOR_TABLE_ROWS: Final[tuple[tuple[str, str, str, str, str], ...]] = (
    ("None", "No", "Partial", "Low", "Track"),
    ("None", "No", "Partial", "Medium", "Track"),
    ("None", "No", "Partial", "High", "Track"),
    ("None", "No", "Total", "Low", "Track"),
    ("None", "No", "Total", "Medium", "Track"),
    ("None", "No", "Total", "High", "Track*"),
    ("None", "Yes", "Partial", "Low", "Track"),
    ("None", "Yes", "Partial", "Medium", "Track"),
    ("None", "Yes", "Partial", "High", "Attend"),
    ("None", "Yes", "Total", "Low", "Track"),
    ("None", "Yes", "Total", "Medium", "Track"),
    ("None", "Yes", "Total", "High", "Attend"),
    ("Public PoC", "No", "Partial", "Low", "Track"),
    ("Public PoC", "No", "Partial", "Medium", "Track"),
    ("Public PoC", "No", "Partial", "High", "Track*"),
    ("Public PoC", "No", "Total", "Low", "Track"),
    ("Public PoC", "No", "Total", "Medium", "Track*"),
    ("Public PoC", "No", "Total", "High", "Attend"),
    ("Public PoC", "Yes", "Partial", "Low", "Track"),
    ("Public PoC", "Yes", "Partial", "Medium", "Track"),
    ("Public PoC", "Yes", "Partial", "High", "Attend"),
    ("Public PoC", "Yes", "Total", "Low", "Track"),
    ("Public PoC", "Yes", "Total", "Medium", "Track*"),
    ("Public PoC", "Yes", "Total", "High", "Attend"),
    ("Active", "No", "Partial", "Low", "Track"),
    ("Active", "No", "Partial", "Medium", "Track"),
    ("Active", "No", "Partial", "High", "Attend"),
    ("Active", "No", "Total", "Low", "Track"),
    ("Active", "No", "Total", "Medium", "Attend"),
    ("Active", "No", "Total", "High", "Act"),
    ("Active", "Yes", "Partial", "Low", "Attend"),
    ("Active", "Yes", "Partial", "Medium", "Attend"),
    ("Active", "Yes", "Partial", "High", "Act"),
    ("Active", "Yes", "Total", "Low", "Attend"),
    ("Active", "Yes", "Total", "Medium", "Act"),
    ("Active", "Yes", "Total", "High", "Act"),
)
_TABLE_WORDS: Final[Mapping[str, Exploitation | Automatable | TechnicalImpact | MissionImpact]] = {
    "None": Exploitation.NONE,
    "Public PoC": Exploitation.POC,
    "Active": Exploitation.ACTIVE,
    "No": Automatable.NO,
    "Yes": Automatable.YES,
    "Partial": TechnicalImpact.PARTIAL,
    "Total": TechnicalImpact.TOTAL,
    "Low": MissionImpact.LOW,
    "Medium": MissionImpact.MEDIUM,
    "High": MissionImpact.HIGH,
}
_DECISIONS: Final[Mapping[tuple[str, str, str, str], Decision]] = {
    (_TABLE_WORDS[e], _TABLE_WORDS[a], _TABLE_WORDS[t], _TABLE_WORDS[m]): Decision(d)
    for e, a, t, m, d in COORDINATOR_TABLE_ROWS
}

# --- the score: each line of the formula, 100 points at most in all (docs/prioritization.md, "Score") ---
SEVERITY_POINTS_PER_CVSS_POINT: Final = 3  # CVSS 0.0-10.0 -> 0-30
EXPLOITATION_POINTS: Final[Mapping[Exploitation, int]] = {
    Exploitation.NONE: 0,
    Exploitation.POC: 15,
    Exploitation.ACTIVE: 30,
}
EPSS_POINTS_PER_PROBABILITY: Final = 10  # probability 0.0-1.0 -> 0-10
RANSOMWARE_POINTS: Final = 5
AUTOMATABLE_POINTS: Final[Mapping[Automatable, int]] = {Automatable.NO: 0, Automatable.YES: 5}
CRITICALITY_POINTS: Final[Mapping[int, int]] = {1: 10, 2: 6, 3: 3, 4: 0}
EXPOSURE_POINTS: Final[Mapping[Exposure, int]] = {
    Exposure.INTERNET_FACING: 10,
    Exposure.INTERNAL: 4,
    Exposure.ISOLATED: 0,
}
CRITICALITY_NAMES: Final[Mapping[int, str]] = {1: "mission-critical", 2: "high", 3: "medium", 4: "low"}

# Severity when there is no CVSS score: a CVSS-equivalent, the middle of the matching CVSS rating band.
# Debian's tracker says unimportant/low/medium/high; Ubuntu negligible..critical; Red Hat low..important.
URGENCY_CVSS_EQUIVALENT: Final[Mapping[str, float]] = {
    "unimportant": 1.0,
    "negligible": 1.0,
    "low": 2.0,
    "medium": 5.5,
    "moderate": 5.5,
    "high": 8.0,
    "important": 8.0,
    "critical": 9.5,
}
TECHNICAL_IMPACT_CVSS_EQUIVALENT: Final[Mapping[TechnicalImpact, float]] = {
    TechnicalImpact.PARTIAL: 5.0,
    TechnicalImpact.TOTAL: 8.0,
}
UNKNOWN_SEVERITY_CVSS_EQUIVALENT: Final = 5.0  # nothing says how bad it is: counted as medium, and said so

# EPSS at or above either threshold counts as exploitation "poc" at least. On the 2026-08-16 scores a probability
# of 0.10 sits at about the 95th percentile, so the two agree today; either one is enough if the model drifts.
EPSS_POC_PROBABILITY: Final = 0.10
EPSS_POC_PERCENTILE: Final = 0.95
EPSS_STALE_AFTER_DAYS: Final = 30

# Inputs, as Factor.input names them.
CVSS: Final = "CVSS"
URGENCY: Final = "distribution urgency"
SEVERITY: Final = "severity"
EPSS: Final = "EPSS"
KEV: Final = "CISA KEV"
VULNRICHMENT: Final = "Vulnrichment SSVC"
EXPLOITATION: Final = "exploitation"
AUTOMATABLE: Final = "automatable"
TECHNICAL_IMPACT: Final = "technical impact"
CRITICALITY: Final = "criticality"
EXPOSURE: Final = "exposure"
MISSION_IMPACT: Final = "mission & well-being"
FIX: Final = "fix"


@dataclass(frozen=True, slots=True)
class Factor:
    """One line of a priority's explanation: an input (or a decision point derived from inputs), its value or
    "missing", what it did in plain language, and the points it added to the score."""

    input: str
    value: str
    effect: str
    points: int = 0

    def __str__(self) -> str:
        return f"{self.input}: {self.value} — {self.effect}"


@dataclass(frozen=True, slots=True)
class DecisionPoints:
    """The four SSVC coordinator decision points, as used for the decision."""

    exploitation: Exploitation
    automatable: Automatable
    technical_impact: TechnicalImpact
    mission_impact: MissionImpact


@dataclass(frozen=True, slots=True)
class Priority:
    """A score 0-100, the SSVC decision, the decision points behind it, and one Factor per input."""

    score: int
    decision: Decision
    explanation: tuple[Factor, ...]
    points: DecisionPoints

    def factor(self, name: str) -> Factor | None:
        """The explanation line for input `name` (CVSS, EPSS, ...), or None when it has none."""
        return next((f for f in self.explanation if f.input == name), None)

    def summary(self) -> str:
        """One line: "Act 94/100 (exploitation active, automatable yes, technical impact total, mission & well-being
        high)", followed by "; no CVSS", "; EPSS stale", "; no fix yet" when they apply."""
        p = self.points
        line = (
            f"{self.decision} {self.score}/100 (exploitation {p.exploitation}, automatable {p.automatable},"
            f" technical impact {p.technical_impact}, mission & well-being {p.mission_impact})"
        )
        notes: list[str] = []
        cvss = self.factor(CVSS)
        if cvss is not None and cvss.value == MISSING:
            notes.append("no CVSS")
        epss = self.factor(EPSS)
        if epss is not None and "stale" in epss.value:
            notes.append("EPSS stale")
        fix = self.factor(FIX)
        if fix is not None and fix.value != "available":
            notes.append("no fix yet")
        return "; ".join([line, *notes])


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """What is known about one vulnerability on one host.

    `cvss` is the score to rank by (`best_cvss` over every record's scores), or None when no source scored it.
    `kev` is the catalog entry when the CVE is in CISA's KEV catalog; `kev_date_added` is for when only a CVE
    record notes KEV membership (NVD's cisaExploitAdd, CISA-ADP). `ssvc` is CISA's Vulnrichment assessment.
    `distribution_urgency` is the distribution's own word (Debian tracker: unimportant, low, medium, high), or None.
    `criticality` is the host's tier, 1 (mission-critical) to 4 (low).
    """

    cve_id: str
    criticality: int
    exposure: Exposure
    fix_available: bool
    cvss: CvssScore | None = None
    epss: EpssScore | None = None
    kev: KevEntry | None = None
    kev_date_added: date | None = None
    ssvc: SsvcPoints | None = None
    distribution_urgency: str | None = None


def risk_inputs(
    cve_id: str,
    records: Iterable[CveRecord],
    *,
    criticality: int,
    exposure: Exposure,
    fix_available: bool,
    kev: KevEntry | None = None,
    epss: EpssScore | None = None,
    distribution_urgency: str | None = None,
) -> RiskInputs:
    """RiskInputs from every CVE record known for `cve_id` (NVD and CVE JSON 5 alike; none is fine).

    CVSS: `best_cvss` over all records' scores (v4.0 > v3.1 > v3.0 > v2, then NVD, the CNA, CISA-ADP). SSVC: the
    most recently assessed record's points. KEV date: the earliest any record notes. Raises InvalidInput (field
    "records") when a record is about another CVE.
    """
    records = tuple(records)
    for record in records:
        if record.cve_id != cve_id:
            raise InvalidInput(f"a {record.source} record for {record.cve_id} was given for {cve_id}", field="records")
    assessments = [r.ssvc for r in records if r.ssvc is not None]
    ssvc = max(assessments, key=lambda s: s.assessed or date.min, default=None)
    kev_dates = [r.kev_date_added for r in records if r.kev_date_added is not None]
    return RiskInputs(
        cve_id=cve_id,
        criticality=criticality,
        exposure=exposure,
        fix_available=fix_available,
        cvss=best_cvss(score for r in records for score in r.cvss),
        epss=epss,
        kev=kev,
        kev_date_added=min(kev_dates, default=None),
        ssvc=ssvc,
        distribution_urgency=distribution_urgency,
    )


_EXPOSURE_WEIGHT: Final[Mapping[Exposure, int]] = {
    Exposure.INTERNET_FACING: 2,
    Exposure.INTERNAL: 1,
    Exposure.ISOLATED: 0,
}


def mission_impact(criticality: int, exposure: Exposure) -> MissionImpact:
    """Mission & well-being impact from the host: (4 - tier) + (internet-facing 2, internal 1, isolated 0);
    4 or more is high, 2-3 medium, 0-1 low (the table in docs/prioritization.md)."""
    _check_criticality(criticality)
    weight = 4 - criticality + _EXPOSURE_WEIGHT[exposure]
    if weight >= 4:
        return MissionImpact.HIGH
    if weight >= 2:
        return MissionImpact.MEDIUM
    return MissionImpact.LOW


def ssvc_decision(points: DecisionPoints) -> Decision:
    """CISA's coordinator decision for the four decision points (COORDINATOR_TABLE_ROWS)."""
    return _DECISIONS[(points.exploitation, points.automatable, points.technical_impact, points.mission_impact)]


def cvss_metrics(vector: str) -> dict[str, str] | None:
    """The base metrics of a CVSS vector ("CVSS:3.1/AV:N/AC:L/..." -> {"AV": "N", "AC": "L", ...}); v2 vectors
    may be bare or in parentheses. None when the vector does not read as metric:value pairs."""
    parts = vector.strip().strip("()").split("/")
    if parts and parts[0].startswith("CVSS:"):
        parts = parts[1:]
    metrics: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition(":")
        if not (sep and key and value) or key in metrics:
            return None
        metrics[key] = value
    return metrics or None


# Automatable from a vector: reachable over the network, low complexity, no privileges, no user interaction (and,
# in v4.0, no attack requirements) means an attacker can script steps 1-4 of the kill chain (SSVC's definition).
_AUTOMATABLE_WHEN: Final[Mapping[CvssVersion, Mapping[str, str]]] = {
    CvssVersion.V4_0: {"AV": "N", "AC": "L", "AT": "N", "PR": "N", "UI": "N"},
    CvssVersion.V3_1: {"AV": "N", "AC": "L", "PR": "N", "UI": "N"},
    CvssVersion.V3_0: {"AV": "N", "AC": "L", "PR": "N", "UI": "N"},
    CvssVersion.V2: {"AV": "N", "AC": "L", "Au": "N"},
}
# Technical impact from a vector: high (v2: complete) loss of both confidentiality and integrity is total control.
_TOTAL_IMPACT_WHEN: Final[Mapping[CvssVersion, Mapping[str, str]]] = {
    CvssVersion.V4_0: {"VC": "H", "VI": "H"},
    CvssVersion.V3_1: {"C": "H", "I": "H"},
    CvssVersion.V3_0: {"C": "H", "I": "H"},
    CvssVersion.V2: {"C": "C", "I": "C"},
}


def prioritize(inputs: RiskInputs, today: date) -> Priority:
    """The priority of one finding. `today` (UTC) decides whether the EPSS score is stale (older than 30 days).

    Raises InvalidInput naming the field when an input contradicts itself: a criticality outside 1-4, an EPSS or
    KEV value for another CVE, an EPSS value outside [0, 1], a CVSS base score outside [0, 10].
    """
    _check(inputs)
    metrics = cvss_metrics(inputs.cvss.vector) if inputs.cvss is not None else None
    explanation: list[Factor] = []
    explanation += _severity(inputs, metrics)
    epss_factor, epss_high = _epss(inputs.epss, today)
    explanation.append(epss_factor)
    explanation.append(_kev(inputs))
    explanation.append(_vulnrichment(inputs.ssvc))
    exploitation, exploitation_factor = _exploitation(inputs, epss_high)
    automatable, automatable_factor = _automatable(inputs, metrics)
    technical_impact, impact_factor = _technical_impact(inputs, metrics)
    explanation += [exploitation_factor, automatable_factor, impact_factor]
    mission = mission_impact(inputs.criticality, inputs.exposure)
    explanation += [
        Factor(
            CRITICALITY,
            f"tier {inputs.criticality} ({CRITICALITY_NAMES[inputs.criticality]})",
            f"+{CRITICALITY_POINTS[inputs.criticality]}",
            CRITICALITY_POINTS[inputs.criticality],
        ),
        Factor(
            EXPOSURE, str(inputs.exposure), f"+{EXPOSURE_POINTS[inputs.exposure]}", EXPOSURE_POINTS[inputs.exposure]
        ),
        Factor(
            MISSION_IMPACT,
            str(mission),
            f"from tier {inputs.criticality} and {inputs.exposure}; an SSVC decision point, no points of its own",
        ),
        _fix(inputs.fix_available),
    ]
    points = DecisionPoints(exploitation, automatable, technical_impact, mission)
    score = max(0, min(100, sum(f.points for f in explanation)))
    return Priority(score=score, decision=ssvc_decision(points), explanation=tuple(explanation), points=points)


def _check_criticality(criticality: int) -> None:
    if criticality not in CRITICALITY_POINTS:
        raise InvalidInput(f"criticality must be 1 (mission-critical) to 4 (low), not {criticality!r}", "criticality")


def _check(inputs: RiskInputs) -> None:
    _check_criticality(inputs.criticality)
    if inputs.exposure not in EXPOSURE_POINTS:
        raise InvalidInput(f"exposure must be one of {', '.join(Exposure)}, not {inputs.exposure!r}", "exposure")
    if inputs.cvss is not None and not 0.0 <= inputs.cvss.base_score <= 10.0:
        raise InvalidInput(f"CVSS base score {inputs.cvss.base_score} is outside 0-10", "cvss")
    if inputs.kev is not None and inputs.kev.cve_id != inputs.cve_id:
        raise InvalidInput(f"the KEV entry is for {inputs.kev.cve_id}, not {inputs.cve_id}", "kev")
    epss = inputs.epss
    if epss is not None:
        if epss.cve_id != inputs.cve_id:
            raise InvalidInput(f"the EPSS score is for {epss.cve_id}, not {inputs.cve_id}", "epss")
        if not (0.0 <= epss.probability <= 1.0 and 0.0 <= epss.percentile <= 1.0):
            raise InvalidInput(f"EPSS {epss.probability}/{epss.percentile} is outside [0, 1]", "epss")


def _half_up(value: float) -> int:
    # Python's round() rounds halves to even (round(19.5) == 20 but round(18.5) == 18); points must not wobble.
    return math.floor(value + 0.5 + 1e-9)


def _severity_points(cvss_equivalent: float) -> int:
    return _half_up(SEVERITY_POINTS_PER_CVSS_POINT * cvss_equivalent)


def _urgency_word(urgency: str | None) -> str | None:
    """The urgency as a lowercase word, None when absent or blank; trailing asterisks ("low**", as the Debian
    tracker's pages show some urgencies) are dropped, the word is the rating."""
    word = (urgency or "").strip().rstrip("*").strip().lower()
    return word or None


def _severity(inputs: RiskInputs, metrics: dict[str, str] | None) -> list[Factor]:
    """The CVSS line and the distribution urgency line; a severity line when neither gives the severity."""
    cvss = inputs.cvss
    urgency = _urgency_word(inputs.distribution_urgency)
    urgency_equivalent = URGENCY_CVSS_EQUIVALENT.get(urgency) if urgency is not None else None
    urgency_value = MISSING if urgency is None else (inputs.distribution_urgency or "").strip()
    factors: list[Factor] = []
    if cvss is not None:
        points = _severity_points(cvss.base_score)
        effect = f"severity {cvss.base_score:.1f} → +{points} ({SEVERITY_POINTS_PER_CVSS_POINT} per CVSS point)"
        if metrics is None:
            effect += "; the vector does not parse, so no decision point is derived from it"
        factors.append(
            Factor(
                CVSS,
                f"{cvss.base_score:.1f} (CVSS {cvss.version}, from {cvss.source} {cvss.scorer}: {cvss.vector})",
                effect,
                points,
            )
        )
        if urgency_equivalent is not None:
            urgency_effect = "not used for the score: a CVSS score is present"
        elif urgency is None:
            urgency_effect = "not known; not needed for the score: a CVSS score is present"
        else:
            urgency_effect = "not a rating patchday knows; not needed for the score: a CVSS score is present"
        factors.append(Factor(URGENCY, urgency_value, urgency_effect))
        return factors
    factors.append(Factor(CVSS, MISSING, "no CVSS score from NVD, the CNA or CISA-ADP; severity comes from below"))
    if urgency_equivalent is not None:
        points = _severity_points(urgency_equivalent)
        factors.append(
            Factor(
                URGENCY,
                urgency_value,
                f"no CVSS, so urgency {urgency} counts as CVSS {urgency_equivalent:.1f} → +{points}",
                points,
            )
        )
        return factors
    if urgency is None:
        factors.append(Factor(URGENCY, MISSING, "the distribution has not rated it"))
    else:
        factors.append(Factor(URGENCY, urgency_value, "not a rating patchday knows (treated as missing)"))
    impact = _ssvc_word(inputs.ssvc.technical_impact if inputs.ssvc else None, TechnicalImpact)
    if impact is not None:
        equivalent = TECHNICAL_IMPACT_CVSS_EQUIVALENT[impact]
        points = _severity_points(equivalent)
        effect = f"no CVSS or urgency: Vulnrichment's technical impact {impact} counts as CVSS {equivalent:.1f}"
        factors.append(Factor(SEVERITY, f"from technical impact {impact}", f"{effect} → +{points}", points))
    else:
        points = _severity_points(UNKNOWN_SEVERITY_CVSS_EQUIVALENT)
        effect = (
            f"no CVSS, urgency or technical impact: counted as medium (CVSS {UNKNOWN_SEVERITY_CVSS_EQUIVALENT:.1f})"
        )
        factors.append(Factor(SEVERITY, "unknown", f"{effect} → +{points}", points))
    return factors


def _epss(epss: EpssScore | None, today: date) -> tuple[Factor, bool]:
    """The EPSS line, and whether EPSS is high enough to count as exploitation poc."""
    if epss is None:
        return Factor(EPSS, MISSING, "no EPSS score: +0, and EPSS does not raise exploitation"), False
    age = (today - epss.score_date).days
    value = f"probability {epss.probability:.5f}, percentile {epss.percentile:.5f}, scored {epss.score_date}"
    if age > EPSS_STALE_AFTER_DAYS:
        value += f"; stale: {age} days old (over {EPSS_STALE_AFTER_DAYS}), used anyway"
    points = _half_up(EPSS_POINTS_PER_PROBABILITY * epss.probability)
    high = epss.probability >= EPSS_POC_PROBABILITY or epss.percentile >= EPSS_POC_PERCENTILE
    effect = f"+{points} ({EPSS_POINTS_PER_PROBABILITY} times the probability, rounded)"
    if high:
        effect += (
            f"; at or above probability {EPSS_POC_PROBABILITY:.2f} or percentile {EPSS_POC_PERCENTILE:.2f}:"
            " exploitation counts as poc at least"
        )
    return Factor(EPSS, value, effect, points), high


def _kev(inputs: RiskInputs) -> Factor:
    kev = inputs.kev
    if kev is not None:
        due = f"due {kev.due_date}" if kev.due_date is not None else "no due date"
        ransomware = kev.ransomware.strip().lower() == "known"
        value = f"listed since {kev.date_added}, {due}, ransomware use {'known' if ransomware else 'not known'}"
        if ransomware:
            return Factor(
                KEV, value, f"exploitation is active; ransomware use known → +{RANSOMWARE_POINTS}", RANSOMWARE_POINTS
            )
        return Factor(KEV, value, "exploitation is active")
    if inputs.kev_date_added is not None:
        value = f"listed since {inputs.kev_date_added} (noted by the CVE record; the catalog entry is not loaded)"
        return Factor(KEV, value, "exploitation is active; due date and ransomware use unknown")
    return Factor(KEV, "not listed", "no known exploitation in CISA's catalog")


def _vulnrichment(ssvc: SsvcPoints | None) -> Factor:
    if ssvc is None:
        return Factor(VULNRICHMENT, MISSING, "no CISA assessment; decision points come from KEV, EPSS and CVSS instead")
    assessed = f", assessed {ssvc.assessed}" if ssvc.assessed is not None else ""
    value = (
        f"exploitation {ssvc.exploitation}, automatable {ssvc.automatable or MISSING},"
        f" technical impact {ssvc.technical_impact or MISSING} ({ssvc.source}{assessed})"
    )
    return Factor(VULNRICHMENT, value, "CISA's own decision points, used below where given")


def _ssvc_word(word: str | None, kind: type[_Point]) -> _Point | None:
    """A Vulnrichment value as an enum member; None when absent or unrecognised (some records say "None", "Total";
    older ones "public poc")."""
    if word is None:
        return None
    word = word.strip().lower()
    if word == "public poc":
        word = "poc"
    try:
        return kind(word)
    except ValueError:
        return None


def _exploitation(inputs: RiskInputs, epss_high: bool) -> tuple[Exploitation, Factor]:
    """The strongest evidence wins: KEV (active), then Vulnrichment (active/poc), then a high EPSS (poc)."""
    said = _ssvc_word(inputs.ssvc.exploitation if inputs.ssvc else None, Exploitation)
    if inputs.kev is not None or inputs.kev_date_added is not None:
        level, reason = Exploitation.ACTIVE, "CISA KEV lists it"
    elif said is Exploitation.ACTIVE:
        level, reason = Exploitation.ACTIVE, "Vulnrichment says active"
    elif said is Exploitation.POC:
        level, reason = Exploitation.POC, "Vulnrichment says a public proof of concept exists"
    elif epss_high:
        level, reason = Exploitation.POC, "EPSS is high"
    else:
        sources = ["not in KEV"]
        if said is Exploitation.NONE:
            sources.append("Vulnrichment says none")
        elif inputs.ssvc is None:
            sources.append("no Vulnrichment assessment")
        else:
            sources.append(f"Vulnrichment's {inputs.ssvc.exploitation!r} is not a known value")
        sources.append("EPSS below the threshold" if inputs.epss is not None else "no EPSS score")
        level, reason = Exploitation.NONE, "no evidence: " + ", ".join(sources)
    points = EXPLOITATION_POINTS[level]
    return level, Factor(EXPLOITATION, str(level), f"{reason} → +{points}", points)


def _automatable(inputs: RiskInputs, metrics: dict[str, str] | None) -> tuple[Automatable, Factor]:
    said = _ssvc_word(inputs.ssvc.automatable if inputs.ssvc else None, Automatable)
    if said is not None:
        level, reason = said, "Vulnrichment says so"
    elif inputs.cvss is not None and metrics is not None and _has(metrics, _AUTOMATABLE_WHEN[inputs.cvss.version]):
        wanted = "/".join(f"{k}:{v}" for k, v in _AUTOMATABLE_WHEN[inputs.cvss.version].items())
        level, reason = Automatable.YES, f"derived from the CVSS vector ({wanted})"
    elif inputs.cvss is not None and metrics is not None:
        level, reason = Automatable.NO, "derived from the CVSS vector (not network, low complexity, no privileges"
        reason += " and no user interaction all at once)"
    else:
        level, reason = Automatable.NO, "missing (no Vulnrichment value, no readable CVSS vector): assumed no"
    points = AUTOMATABLE_POINTS[level]
    value = f"{level} (assumed)" if reason.startswith(MISSING) else str(level)
    return level, Factor(AUTOMATABLE, value, f"{reason} → +{points}", points)


def _technical_impact(inputs: RiskInputs, metrics: dict[str, str] | None) -> tuple[TechnicalImpact, Factor]:
    said = _ssvc_word(inputs.ssvc.technical_impact if inputs.ssvc else None, TechnicalImpact)
    urgency = _urgency_word(inputs.distribution_urgency)
    if said is not None:
        level, reason = said, "Vulnrichment says so"
    elif inputs.cvss is not None and metrics is not None:
        total = _has(metrics, _TOTAL_IMPACT_WHEN[inputs.cvss.version])
        level = TechnicalImpact.TOTAL if total else TechnicalImpact.PARTIAL
        wanted = "/".join(f"{k}:{v}" for k, v in _TOTAL_IMPACT_WHEN[inputs.cvss.version].items())
        reason = f"derived from the CVSS vector ({wanted} {'present' if total else 'absent'})"
    elif urgency is not None and urgency in URGENCY_CVSS_EQUIVALENT:
        total = URGENCY_CVSS_EQUIVALENT[urgency] >= URGENCY_CVSS_EQUIVALENT["high"]
        level = TechnicalImpact.TOTAL if total else TechnicalImpact.PARTIAL
        reason = f"derived from the distribution urgency {urgency} (high or critical means total)"
    else:
        level, reason = (
            TechnicalImpact.PARTIAL,
            "missing (no Vulnrichment value, CVSS vector or urgency): assumed partial",
        )
    value = f"{level} (assumed)" if reason.startswith(MISSING) else str(level)
    return level, Factor(TECHNICAL_IMPACT, value, f"{reason}; an SSVC decision point, no points of its own")


def _has(metrics: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(metrics.get(key) == value for key, value in wanted.items())


def _fix(available: bool) -> Factor:
    if available:
        return Factor(FIX, "available", "no effect on the score: the risk is the same; patching closes it")
    return Factor(FIX, "not available", "no effect on the score: the risk is the same; mitigate until a fix ships")
