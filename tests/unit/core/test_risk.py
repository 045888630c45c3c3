"""Priority: CISA's SSVC coordinator table row by row, real CVEs end to end, missing and bad input, properties.

The worked examples read recorded real records (tests/fixtures/feeds: NVD API 2.0, CVE JSON 5 from Vulnrichment,
CISA KEV 2026.08.21) through patchday's own feed readers. Their EPSS scores are the lines of FIRST's 2026-08-16 file
(../shared/data/epss/epss_scores-2026-08-16.csv.gz) for those CVEs, copied verbatim into EPSS_LINES below: the
fixture excerpt holds only the first 2,000 CVEs. docs/prioritization.md walks through the same examples.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from dataclasses import replace
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import patchday.core
from patchday.core.errors import InvalidInput
from patchday.core.risk import (
    COORDINATOR_TABLE_ROWS,
    CVSS,
    EPSS,
    KEV,
    MISSING,
    SEVERITY,
    URGENCY,
    VULNRICHMENT,
    Automatable,
    Decision,
    DecisionPoints,
    Exploitation,
    Exposure,
    MissionImpact,
    Priority,
    RiskInputs,
    TechnicalImpact,
    cvss_metrics,
    mission_impact,
    prioritize,
    risk_inputs,
    ssvc_decision,
)
from patchday.core.vulnerability import CveRecord, CvssScore, CvssVersion, EpssScore, KevEntry, SsvcPoints
from patchday.feeds.cve5 import read_cve5
from patchday.feeds.kev import read_kev
from patchday.feeds.nvd import read_nvd

FEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
TABLE_CSV = Path(patchday.core.__file__).parent / "data" / "cisa-ssvc-coordinator-decision-table.csv"
PROVENANCE = TABLE_CSV.parent / "PROVENANCE.md"

EPSS_DATE = date(2026, 8, 16)
EPSS_LINES = """\
CVE-2023-0666,0.02256,0.81449
CVE-2024-1708,0.87558,0.99744
CVE-2024-26584,0.00746,0.51766
CVE-2024-45490,0.01686,0.75039
CVE-2024-50302,0.00809,0.53843
CVE-2025-0395,0.00349,0.27998
CVE-2026-24061,0.97878,0.99904
"""
TODAY = date(2026, 8, 21)  # the KEV catalog's release day; the EPSS scores are 5 days old
INPUT_NAMES = (
    "CVSS",
    "distribution urgency",
    "EPSS",
    "CISA KEV",
    "Vulnrichment SSVC",
    "exploitation",
    "automatable",
    "technical impact",
    "criticality",
    "exposure",
    "mission & well-being",
    "fix",
)


@cache
def cve_records() -> dict[str, CveRecord]:
    problems: list[str] = []
    records = [*read_nvd(FEEDS / "nvd", problems=problems), *read_cve5(FEEDS / "cve5", problems=problems)]
    # The one known problem: GitHub_M's baseScore for CVE-2024-32004 disagrees with its own vector (fixtures README).
    assert [problem for problem in problems if "CVE-2024-32004" not in problem] == []
    return {record.cve_id: record for record in records}


@cache
def kev_entries() -> dict[str, KevEntry]:
    return {entry.cve_id: entry for entry in read_kev(FEEDS / "kev-2026.08.21-first200.json.gz").entries}


def epss(cve_id: str, score_date: date = EPSS_DATE) -> EpssScore:
    for line in EPSS_LINES.splitlines():
        name, probability, percentile = line.split(",")
        if name == cve_id:
            return EpssScore(cve_id, float(probability), float(percentile), score_date, "")
    raise KeyError(cve_id)


def real_inputs(
    cve_id: str, criticality: int, exposure: Exposure, *, urgency: str | None = None, epss_date: date = EPSS_DATE
) -> RiskInputs:
    record = cve_records().get(cve_id)
    return risk_inputs(
        cve_id,
        [record] if record is not None else [],
        criticality=criticality,
        exposure=exposure,
        fix_available=True,
        kev=kev_entries().get(cve_id),
        epss=epss(cve_id, epss_date),
        distribution_urgency=urgency,
    )


def text(priority: Priority) -> str:
    return "\n".join(str(factor) for factor in priority.explanation)


def line(priority: Priority, name: str) -> str:
    factor = priority.factor(name)
    assert factor is not None, f"no {name} line in:\n{text(priority)}"
    return str(factor)


def assert_explains_every_input(priority: Priority) -> None:
    names = [factor.input for factor in priority.explanation]
    assert [name for name in names if name in INPUT_NAMES] == list(INPUT_NAMES)
    assert all(factor.value and factor.effect for factor in priority.explanation)
    assert priority.score == max(0, min(100, sum(factor.points for factor in priority.explanation)))


# --- CISA's table ---


def test_the_table_constant_is_the_csv_and_the_csv_is_the_recorded_copy() -> None:
    with TABLE_CSV.open(encoding="utf-8", newline="") as stream:
        header, *rows = list(csv.reader(stream))
    assert header == ["exploitation", "automatable", "technical_impact", "mission_wellbeing_impact", "decision"]
    assert tuple(tuple(row) for row in rows) == COORDINATOR_TABLE_ROWS
    digest = hashlib.sha256(TABLE_CSV.read_bytes()).hexdigest()
    assert digest in PROVENANCE.read_text(encoding="utf-8")


WORDS = {
    "None": Exploitation.NONE,
    "Public PoC": Exploitation.POC,
    "Active": Exploitation.ACTIVE,
    "No": Automatable.NO,
    "Yes": Automatable.YES,
    "Partial": TechnicalImpact.PARTIAL,
    "Total": TechnicalImpact.TOTAL,
}
HOST_FOR = {  # a (criticality, exposure) that maps to each mission & well-being impact
    "Low": (4, Exposure.ISOLATED),
    "Medium": (3, Exposure.INTERNAL),
    "High": (1, Exposure.INTERNET_FACING),
}


def read_table() -> list[tuple[str, str, str, str, str]]:
    with TABLE_CSV.open(encoding="utf-8", newline="") as stream:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in list(csv.reader(stream))[1:]]


@pytest.mark.parametrize(("exploitation", "automatable", "impact", "mission", "decision"), read_table())
def test_every_row_of_cisas_table_through_the_decision_and_through_prioritize(
    exploitation: str, automatable: str, impact: str, mission: str, decision: str
) -> None:
    points = DecisionPoints(
        Exploitation(WORDS[exploitation]),
        Automatable(WORDS[automatable]),
        TechnicalImpact(WORDS[impact]),
        MissionImpact(mission.lower()),
    )
    assert ssvc_decision(points) is Decision(decision)

    # The same row reached from inputs: Vulnrichment gives three points, the host the fourth.
    criticality, exposure = HOST_FOR[mission]
    ssvc = SsvcPoints(str(points.exploitation), str(points.automatable), str(points.technical_impact), "cisa-adp", None)
    priority = prioritize(RiskInputs("CVE-2024-0001", criticality, exposure, True, ssvc=ssvc), TODAY)
    assert (priority.points, priority.decision) == (points, Decision(decision))


def test_the_table_has_all_36_combinations_and_never_lowers_the_decision_when_a_point_rises() -> None:
    rows = read_table()
    assert len({row[:4] for row in rows}) == 36 == len(rows)
    # Each point as its position on its own scale (none < poc < active, no < yes, partial < total, low < high).
    scales = [["None", "Public PoC", "Active"], ["No", "Yes"], ["Partial", "Total"], ["Low", "Medium", "High"]]
    rank = {
        tuple(scale.index(word) for scale, word in zip(scales, row[:4], strict=True)): Decision(row[4]).rank
        for row in rows
    }
    for position, here in rank.items():
        for axis, scale in enumerate(scales):
            for higher in range(position[axis] + 1, len(scale)):
                raised = (*position[:axis], higher, *position[axis + 1 :])
                assert rank[raised] >= here, (position, raised)


@pytest.mark.parametrize(
    ("criticality", "exposure", "expected"),
    [
        (1, Exposure.INTERNET_FACING, MissionImpact.HIGH),
        (1, Exposure.INTERNAL, MissionImpact.HIGH),
        (1, Exposure.ISOLATED, MissionImpact.MEDIUM),
        (2, Exposure.INTERNET_FACING, MissionImpact.HIGH),
        (2, Exposure.INTERNAL, MissionImpact.MEDIUM),
        (2, Exposure.ISOLATED, MissionImpact.MEDIUM),
        (3, Exposure.INTERNET_FACING, MissionImpact.MEDIUM),
        (3, Exposure.INTERNAL, MissionImpact.MEDIUM),
        (3, Exposure.ISOLATED, MissionImpact.LOW),
        (4, Exposure.INTERNET_FACING, MissionImpact.MEDIUM),
        (4, Exposure.INTERNAL, MissionImpact.LOW),
        (4, Exposure.ISOLATED, MissionImpact.LOW),
    ],
)
def test_mission_impact_comes_from_criticality_and_exposure_as_documented(
    criticality: int, exposure: Exposure, expected: MissionImpact
) -> None:
    assert mission_impact(criticality, exposure) is expected


# --- worked examples with real records (docs/prioritization.md, "Worked examples") ---


def test_inetutils_telnetd_in_kev_with_cisas_points_on_an_internet_facing_tier_1_host_is_act() -> None:
    # CVE-2026-24061 (DSA-6106-1): NVD record with the CNA's CVSS 3.1 9.8 and CISA-ADP SSVC active/yes/total; KEV.
    priority = prioritize(real_inputs("CVE-2026-24061", 1, Exposure.INTERNET_FACING), TODAY)
    assert (priority.decision, priority.score) == (Decision.ACT, 94)  # 29 + 30 + 10 + 5 + 10 + 10
    assert priority.points == DecisionPoints(
        Exploitation.ACTIVE, Automatable.YES, TechnicalImpact.TOTAL, MissionImpact.HIGH
    )
    assert "9.8 (CVSS 3.1, from cna cve@mitre.org" in line(priority, CVSS)
    assert "listed since 2026-01-26, due 2026-02-16, ransomware use not known" in line(priority, KEV)
    assert "exploitation active, automatable yes, technical impact total (cisa-adp, assessed 2026-01-27)" in line(
        priority, VULNRICHMENT
    )
    assert "probability 0.97878, percentile 0.99904, scored 2026-08-16" in line(priority, EPSS)
    assert "stale" not in line(priority, EPSS)
    assert line(priority, URGENCY).startswith(f"distribution urgency: {MISSING}")
    assert_explains_every_input(priority)
    assert priority.summary() == (
        "Act 94/100 (exploitation active, automatable yes, technical impact total, mission & well-being high)"
    )


def test_a_ransomware_kev_entry_no_advisory_mentions_is_carried_by_kev_and_epss() -> None:
    # CVE-2024-1708 (ConnectWise ScreenConnect): in KEV with known ransomware use; no CVE record among the
    # fixtures and no Debian advisory names it, so CVSS and Vulnrichment are missing.
    debian = json.loads(gzip.decompress((FEEDS / "debian-bookworm-osv-2026-08-21.json.gz").read_bytes()))
    assert not any("CVE-2024-1708" in advisory.get("upstream", []) for advisory in debian)
    assert "CVE-2024-1708" not in cve_records()

    priority = prioritize(real_inputs("CVE-2024-1708", 2, Exposure.INTERNET_FACING), TODAY)
    assert (priority.decision, priority.score) == (Decision.ATTEND, 75)  # 15 + 30 + 9 + 5 + 0 + 6 + 10
    assert "ransomware use known" in line(priority, KEV)
    assert "+5" in line(priority, KEV)
    assert line(priority, CVSS).startswith(f"CVSS: {MISSING}")
    assert line(priority, VULNRICHMENT).startswith(f"Vulnrichment SSVC: {MISSING}")
    assert "counted as medium (CVSS 5.0) → +15" in line(priority, SEVERITY)
    assert "assumed no" in line(priority, "automatable")
    assert "assumed partial" in line(priority, "technical impact")
    assert_explains_every_input(priority)
    assert priority.summary().endswith("; no CVSS")


def test_a_kernel_cve_without_any_cvss_gets_its_severity_from_cisas_technical_impact() -> None:
    # CVE-2024-26584 (Linux, DSA-5658-1): the kernel CNA publishes no CVSS; Vulnrichment says none/no/partial.
    priority = prioritize(real_inputs("CVE-2024-26584", 2, Exposure.INTERNAL), TODAY)
    assert (priority.decision, priority.score) == (Decision.TRACK, 25)  # 15 + 0 + 0 + 6 + 4
    assert (
        line(priority, CVSS) == "CVSS: missing — no CVSS score from NVD, the CNA or CISA-ADP; severity comes from below"
    )
    assert "technical impact partial counts as CVSS 5.0 → +15" in line(priority, SEVERITY)
    assert "Vulnrichment says none" in line(priority, "exploitation")
    assert_explains_every_input(priority)


def test_a_public_proof_of_concept_raises_exploitation_but_not_the_decision_on_an_ordinary_host() -> None:
    # CVE-2023-0666 (Wireshark, DSA-5429-1): CISA-ADP CVSS 3.1 6.5, Vulnrichment poc/no/partial.
    priority = prioritize(real_inputs("CVE-2023-0666", 3, Exposure.INTERNAL), TODAY)
    assert (priority.decision, priority.score) == (Decision.TRACK, 42)  # 20 + 15 + 0 + 3 + 4
    assert "Vulnrichment says a public proof of concept exists → +15" in line(priority, "exploitation")
    # The same CVE on a mission-critical internet-facing host: Public PoC/No/Partial/High is Track*.
    critical = prioritize(real_inputs("CVE-2023-0666", 1, Exposure.INTERNET_FACING), TODAY)
    assert (critical.decision, critical.score) == (Decision.TRACK_STAR, 55)


def test_no_cvss_anywhere_and_a_stale_epss_score_are_said_not_crashed() -> None:
    # CVE-2025-0395 (glibc): NVD "Awaiting Analysis" with no metrics at all, no Vulnrichment, not in KEV; the
    # EPSS score of 2026-08-16 read on 2026-10-01 is 46 days old.
    assert cve_records()["CVE-2025-0395"].cvss == ()
    priority = prioritize(real_inputs("CVE-2025-0395", 3, Exposure.INTERNAL), date(2026, 10, 1))
    assert (priority.decision, priority.score) == (Decision.TRACK, 22)  # 15 + 0 + 0 + 3 + 4
    assert "stale: 46 days old (over 30), used anyway" in line(priority, EPSS)
    assert line(priority, SEVERITY).startswith("severity: unknown")
    assert "no Vulnrichment assessment" in line(priority, "exploitation")
    assert_explains_every_input(priority)
    assert priority.summary().endswith("; no CVSS; EPSS stale")


def test_the_distribution_urgency_carries_the_score_and_the_impact_when_there_is_no_cvss() -> None:
    # The glibc CVE again, supposing the tracker rated it high: CVSS-equivalent 8.0 and technical impact total.
    priority = prioritize(real_inputs("CVE-2025-0395", 1, Exposure.INTERNET_FACING, urgency="high"), TODAY)
    assert "urgency high counts as CVSS 8.0 → +24" in line(priority, URGENCY)
    assert priority.factor(SEVERITY) is None
    assert priority.points.technical_impact is TechnicalImpact.TOTAL
    assert (priority.decision, priority.score) == (Decision.TRACK_STAR, 44)  # 24 + 0 + 0 + 10 + 10
    # Trailing asterisks, as the tracker's pages show some urgencies, are dropped.
    low = prioritize(real_inputs("CVE-2025-0395", 1, Exposure.INTERNET_FACING, urgency="low**"), TODAY)
    assert "urgency low counts as CVSS 2.0 → +6" in line(low, URGENCY)
    unknown = prioritize(real_inputs("CVE-2025-0395", 1, Exposure.INTERNET_FACING, urgency="not yet assigned"), TODAY)
    assert "not a rating patchday knows (treated as missing)" in line(unknown, URGENCY)
    assert unknown.factor(SEVERITY) is not None


def test_automatable_is_derived_from_a_v3_vector_when_cisa_gives_no_points() -> None:
    # CVE-2024-45490 (expat, DSA-5770-1): NVD's CVSS 3.1 AV:N/AC:L/PR:N/UI:N/.../C:N/I:N/A:H, no SSVC.
    priority = prioritize(real_inputs("CVE-2024-45490", 3, Exposure.INTERNAL), TODAY)
    assert "derived from the CVSS vector (AV:N/AC:L/PR:N/UI:N)" in line(priority, "automatable")
    assert "C:H/I:H absent" in line(priority, "technical impact")
    assert priority.points.automatable is Automatable.YES
    assert priority.points.technical_impact is TechnicalImpact.PARTIAL
    assert (priority.decision, priority.score) == (Decision.TRACK, 35)  # 23 + 0 + 0 + 5 + 3 + 4


def test_cisas_automatable_wins_over_the_vector() -> None:
    # CVE-2024-7055: the VulDB CVSS 4.0 vector reads AV:N/AC:L/AT:N/PR:N/UI:N, but Vulnrichment says automatable no.
    record = cve_records()["CVE-2024-7055"]
    inputs = risk_inputs("CVE-2024-7055", [record], criticality=2, exposure=Exposure.INTERNAL, fix_available=True)
    assert inputs.cvss is not None
    assert inputs.cvss.version is CvssVersion.V4_0
    priority = prioritize(inputs, TODAY)
    assert priority.points.automatable is Automatable.NO
    assert "Vulnrichment says so" in line(priority, "automatable")
    assert line(priority, EPSS).startswith(f"EPSS: {MISSING}")


def test_a_kev_date_noted_only_in_the_cve_record_still_means_active_exploitation() -> None:
    # CVE-2024-50302 (Linux): NVD notes cisaExploitAdd 2025-03-04; the KEV excerpt does not reach back that far.
    assert "CVE-2024-50302" not in kev_entries()
    priority = prioritize(real_inputs("CVE-2024-50302", 2, Exposure.INTERNAL), TODAY)
    assert priority.points.exploitation is Exploitation.ACTIVE
    assert "listed since 2025-03-04 (noted by the CVE record; the catalog entry is not loaded)" in line(priority, KEV)


@pytest.mark.parametrize(
    ("version", "vector", "automatable", "impact"),
    [
        (CvssVersion.V3_1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Automatable.YES, TechnicalImpact.TOTAL),
        (CvssVersion.V3_0, "CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", Automatable.NO, TechnicalImpact.TOTAL),
        (CvssVersion.V3_1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:L/A:H", Automatable.NO, TechnicalImpact.PARTIAL),
        (
            CvssVersion.V4_0,
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            Automatable.YES,
            TechnicalImpact.TOTAL,
        ),
        (
            CvssVersion.V4_0,
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            Automatable.NO,
            TechnicalImpact.TOTAL,
        ),
        (CvssVersion.V2, "AV:N/AC:L/Au:N/C:C/I:C/A:C", Automatable.YES, TechnicalImpact.TOTAL),
        (CvssVersion.V2, "(AV:N/AC:M/Au:N/C:P/I:P/A:P)", Automatable.NO, TechnicalImpact.PARTIAL),
    ],
)
def test_decision_points_derived_from_each_cvss_version(
    version: CvssVersion, vector: str, automatable: Automatable, impact: TechnicalImpact
) -> None:
    cvss = CvssScore(version, vector, 7.0, "nvd", "nvd@nist.gov")
    priority = prioritize(RiskInputs("CVE-2024-0001", 3, Exposure.INTERNAL, True, cvss=cvss), TODAY)
    assert (priority.points.automatable, priority.points.technical_impact) == (automatable, impact)


def test_an_unreadable_vector_keeps_the_score_and_says_why_no_point_came_from_it() -> None:
    cvss = CvssScore(CvssVersion.V3_1, "garbage", 9.0, "cna", "example")
    assert cvss_metrics("garbage") is None
    priority = prioritize(RiskInputs("CVE-2024-0001", 3, Exposure.INTERNAL, True, cvss=cvss), TODAY)
    assert "the vector does not parse" in line(priority, CVSS)
    assert priority.factor(CVSS) is not None
    assert "assumed no" in line(priority, "automatable")


def test_a_missing_fix_is_said_and_does_not_change_the_priority() -> None:
    fixed = real_inputs("CVE-2026-24061", 2, Exposure.INTERNAL)
    unfixed = prioritize(replace(fixed, fix_available=False), TODAY)
    assert (unfixed.score, unfixed.decision) == (prioritize(fixed, TODAY).score, prioritize(fixed, TODAY).decision)
    assert "mitigate until a fix ships" in line(unfixed, "fix")
    assert unfixed.summary().endswith("; no fix yet")


# --- bad input ---


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"criticality": 0}, "criticality"),
        ({"criticality": 5}, "criticality"),
        ({"epss": EpssScore("CVE-1999-0001", 0.1, 0.5, EPSS_DATE, "")}, "epss"),
        ({"epss": EpssScore("CVE-2024-0001", 1.5, 0.5, EPSS_DATE, "")}, "epss"),
        ({"cvss": CvssScore(CvssVersion.V3_1, "CVSS:3.1/AV:N", 11.0, "nvd", "nvd")}, "cvss"),
    ],
)
def test_inputs_that_contradict_themselves_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    inputs = replace(RiskInputs("CVE-2024-0001", 3, Exposure.INTERNAL, True), **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as info:
        prioritize(inputs, TODAY)
    assert info.value.field == field


def test_a_kev_entry_or_a_record_for_another_cve_is_refused() -> None:
    entry = kev_entries()["CVE-2026-24061"]
    with pytest.raises(InvalidInput) as info:
        prioritize(RiskInputs("CVE-2024-1708", 3, Exposure.INTERNAL, True, kev=entry), TODAY)
    assert info.value.field == "kev"
    with pytest.raises(InvalidInput) as info:
        risk_inputs(
            "CVE-2024-1708",
            [cve_records()["CVE-2026-24061"]],
            criticality=3,
            exposure=Exposure.ISOLATED,
            fix_available=True,
        )
    assert info.value.field == "records"


def test_unknown_vulnrichment_spellings_are_ignored_and_said() -> None:
    ssvc = SsvcPoints("Unknown", "maybe", "Total", "cisa-adp", None)
    priority = prioritize(RiskInputs("CVE-2024-0001", 3, Exposure.INTERNAL, True, ssvc=ssvc), TODAY)
    assert "'Unknown' is not a known value" in line(priority, "exploitation")
    assert priority.points.technical_impact is TechnicalImpact.TOTAL  # title case is CISA's quirk, read as total
    assert priority.points.automatable is Automatable.NO


# --- properties ---

V3_VECTORS = st.builds(
    "CVSS:3.1/AV:{}/AC:{}/PR:{}/UI:{}/S:U/C:{}/I:{}/A:{}".format,
    *(st.sampled_from(values) for values in ("NALP", "LH", "NLH", "NR", "HLN", "HLN", "HLN")),
)
V4_VECTORS = st.builds(
    "CVSS:4.0/AV:{}/AC:{}/AT:{}/PR:{}/UI:{}/VC:{}/VI:{}/VA:{}/SC:N/SI:N/SA:N".format,
    *(st.sampled_from(values) for values in ("NALP", "LH", "NP", "NLH", "NPA", "HLN", "HLN", "HLN")),
)
V2_VECTORS = st.builds(
    "AV:{}/AC:{}/Au:{}/C:{}/I:{}/A:{}".format,
    *(st.sampled_from(values) for values in ("NAL", "LMH", "NSM", "NPC", "NPC", "NPC")),
)
SCORES = st.floats(min_value=0.0, max_value=10.0).map(lambda score: round(score, 1))
CVSS_SCORES = st.one_of(
    st.none(),
    st.builds(CvssScore, st.just(CvssVersion.V3_1), V3_VECTORS, SCORES, st.just("nvd"), st.just("nvd@nist.gov")),
    st.builds(CvssScore, st.just(CvssVersion.V4_0), V4_VECTORS, SCORES, st.just("cna"), st.just("GitHub_M")),
    st.builds(CvssScore, st.just(CvssVersion.V2), V2_VECTORS, SCORES, st.just("nvd"), st.just("nvd@nist.gov")),
    st.builds(CvssScore, st.just(CvssVersion.V3_0), st.text(max_size=20), SCORES, st.just("other"), st.just("x")),
)
DATES = st.dates(min_value=date(2021, 1, 1), max_value=date(2027, 12, 31))
UNIT = st.floats(min_value=0.0, max_value=1.0)
CVE = "CVE-2024-0001"


def kev_entry(added: date, due: date | None, ransomware: str) -> KevEntry:
    return KevEntry(CVE, "Vendor", "Product", "Name", "", added, due, "Apply updates.", ransomware, "", ())


KEV_ENTRIES = st.builds(kev_entry, DATES, st.none() | DATES, st.sampled_from(["Known", "Unknown"]))
INPUTS = st.builds(
    RiskInputs,
    cve_id=st.just(CVE),
    criticality=st.integers(min_value=1, max_value=4),
    exposure=st.sampled_from(Exposure),
    fix_available=st.booleans(),
    cvss=CVSS_SCORES,
    epss=st.none() | st.builds(EpssScore, st.just(CVE), UNIT, UNIT, DATES, st.just("")),
    kev=st.none() | KEV_ENTRIES,
    kev_date_added=st.none() | DATES,
    ssvc=st.none()
    | st.builds(
        SsvcPoints,
        st.sampled_from(["none", "poc", "active", "Active", "public poc", "unknown"]),
        st.sampled_from([None, "yes", "no", "Yes", "?"]),
        st.sampled_from([None, "partial", "total", "Total"]),
        st.just("cisa-adp"),
        st.none() | DATES,
    ),
    distribution_urgency=st.sampled_from(
        [None, "unimportant", "low", "low**", "medium", "high", "critical", "not yet assigned", ""]
    ),
)


@given(INPUTS, DATES)
def test_the_score_is_0_to_100_and_every_input_is_explained(inputs: RiskInputs, today: date) -> None:
    priority = prioritize(inputs, today)
    assert 0 <= priority.score <= 100
    assert_explains_every_input(priority)
    assert "\n" not in priority.summary()
    assert priority.summary().startswith(f"{priority.decision} {priority.score}/100")


@given(INPUTS, KEV_ENTRIES, DATES)
def test_adding_kev_never_lowers_the_score_or_the_decision(inputs: RiskInputs, kev: KevEntry, today: date) -> None:
    before = prioritize(replace(inputs, kev=None), today)
    after = prioritize(replace(inputs, kev=kev), today)
    assert after.score >= before.score
    assert after.decision.rank >= before.decision.rank
    assert after.points.exploitation is Exploitation.ACTIVE


@given(INPUTS, DATES)
def test_a_more_critical_or_more_exposed_host_never_lowers_the_score_or_the_decision(
    inputs: RiskInputs, today: date
) -> None:
    before = prioritize(inputs, today)
    if inputs.criticality > 1:
        raised = prioritize(replace(inputs, criticality=inputs.criticality - 1), today)
        assert raised.score >= before.score
        assert raised.decision.rank >= before.decision.rank
    exposures = list(reversed(Exposure))  # isolated, internal, internet-facing
    position = exposures.index(inputs.exposure)
    if position + 1 < len(exposures):
        wider = prioritize(replace(inputs, exposure=exposures[position + 1]), today)
        assert wider.score >= before.score
        assert wider.decision.rank >= before.decision.rank


@given(INPUTS, st.integers(min_value=-5, max_value=400))
def test_an_epss_score_older_than_30_days_is_used_but_flagged_stale(inputs: RiskInputs, age: int) -> None:
    score = EpssScore(CVE, 0.5, 0.97, date(2026, 1, 1), "")
    today = score.score_date + timedelta(days=age)
    priority = prioritize(replace(inputs, epss=score), today)
    epss_line = line(priority, EPSS)
    assert ("stale" in epss_line) is (age > 30)
    if age > 30:
        assert re.search(rf"stale: {age} days old", epss_line)
    assert "+5" in epss_line  # used all the same
    assert priority.points.exploitation is not Exploitation.NONE
