"""Metrics against hand-computed values (the arithmetic is in the comments), empty inputs, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchday.core.errors import InvalidInput
from patchday.core.metrics import (
    FindingFacts,
    HostFacts,
    JobFacts,
    Period,
    describe,
    end_of_day,
    error_signature,
    failure_rate,
    host_coverage,
    kev_exposure,
    open_risk,
    risk_burndown,
    sla_compliance,
    time_to_detect,
    time_to_patch,
    update_coverage,
)

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), end_of_day(date(2026, 3, 31)))


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def finding(id: int, **changes: object) -> FindingFacts:
    values: dict[str, object] = {"id": id, "host": "web1", "status": "open", "first_detected_at": at(1, month=2)}
    values.update(changes)
    return FindingFacts(**values)  # type: ignore[arg-type]


def fixed(
    id: int, detected: datetime, available: datetime | None, fixed_at: datetime, **changes: object
) -> FindingFacts:
    return finding(
        id, status="fixed", first_detected_at=detected, fix_available_since=available, fixed_at=fixed_at,
        fix_verified=True, **changes,
    )  # fmt: skip


# -- stats ---------------------------------------------------------------------------------------------------------


def test_describe_by_hand() -> None:
    stats = describe([4.0, 1.0, 3.0, 2.0, 10.0])
    # sorted 1 2 3 4 10: median 3; p90 nearest rank ceil(0.9*5)=5th -> 10; mean 20/5 = 4
    assert (stats.count, stats.median, stats.p90, stats.mean, stats.minimum, stats.maximum) == (5, 3, 10, 4, 1, 10)


def test_describe_of_nothing_says_no_data() -> None:
    assert describe([]).to_data() == {"count": 0, "median": None, "p90": None, "mean": None, "min": None, "max": None}


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200))
def test_median_within_range_and_p90_not_below_median(values: list[float]) -> None:
    stats = describe(values)
    assert stats.median is not None
    assert stats.p90 is not None
    assert stats.mean is not None
    assert min(values) <= stats.median <= max(values)
    assert stats.p90 >= stats.median
    assert min(values) <= stats.p90 <= max(values)


# -- time to patch and detect ----------------------------------------------------------------------------------


def test_time_to_patch_by_hand() -> None:
    findings = [
        # fix available Mar 1 00:00, fixed Mar 3 00:00 -> 2 days; detected Feb 27 -> 4 days
        fixed(1, at(27, month=2), at(1), at(3), priority_decision="Act", cvss_score=9.8, groups=("web",)),
        # available Mar 2 00:00, fixed Mar 6 12:00 -> 4.5 days; detected Mar 2 -> 4.5 days
        fixed(2, at(2), at(2), at(6, 12), priority_decision="Act", cvss_score=7.5),
        # available Mar 10, fixed Mar 20 -> 10 days; detected Mar 1 -> 19 days
        fixed(3, at(1), at(10), at(20), priority_decision="Track", cvss_score=5.0, groups=("web",)),
        # no fix date known: counts only from detection: detected Mar 1, fixed Mar 11 -> 10 days
        fixed(4, at(1), None, at(11), priority_decision="Track"),
        # fixed but not verified (the package vanished): excluded from both
        finding(5, status="fixed", fixed_at=at(5), fix_verified=False),
        # fixed in February: outside the period, not counted and not excluded
        fixed(6, at(1, month=2), at(1, month=2), at(2, month=2)),
        # open: not a fix
        finding(7),
    ]

    ttp = time_to_patch(findings, MARCH)

    fix = ttp.from_fix
    # from fix: 2, 4.5, 10 -> median 4.5, p90 rank ceil(2.7)=3 -> 10, mean 16.5/3 = 5.5
    assert (fix.overall.count, fix.overall.median, fix.overall.p90, fix.overall.mean) == (3, 4.5, 10, 5.5)
    assert fix.excluded_reasons == {"fix_not_verified": 1, "no_fix_available_since": 1}
    assert fix.excluded == 2
    # Act: 2 and 4.5 -> median 3.25; Track: 10
    assert fix.by_priority["Act"].median == 3.25
    assert fix.by_priority["Track"].median == 10
    # severity: 9.8 critical (2), 7.5 high (4.5), 5.0 medium (10)
    assert {key: stats.median for key, stats in fix.by_severity.items()} == {"critical": 2, "high": 4.5, "medium": 10}
    assert fix.by_group["web"].mean == 6  # (2 + 10) / 2
    assert list(fix.by_month) == ["2026-03"]

    detect = ttp.from_detection
    # from detection: 4, 4.5, 19, 10 -> sorted 4 4.5 10 19: median 7.25, p90 rank ceil(3.6)=4 -> 19, mean 37.5/4
    assert (detect.overall.count, detect.overall.median, detect.overall.p90) == (4, 7.25, 19)
    assert detect.overall.mean == pytest.approx(9.375)
    assert detect.excluded_reasons == {"fix_not_verified": 1}


def test_time_to_patch_of_nothing_is_valid_and_empty() -> None:
    ttp = time_to_patch([], MARCH)

    assert ttp.from_fix.overall.count == 0
    assert ttp.from_fix.overall.median is None
    assert ttp.from_fix.excluded == 0
    assert ttp.from_fix.by_priority == {}


def test_time_to_detect_starts_at_publication_or_enrollment() -> None:
    findings = [
        # published Mar 1, detected Mar 3 -> 2 days
        finding(1, first_detected_at=at(3), published_at=at(1)),
        # published Jan 1, host enrolled Mar 10, detected Mar 11 -> 1 day (the clock starts at enrollment)
        finding(2, first_detected_at=at(11), published_at=at(1, month=1), host_enrolled_at=at(10)),
        # detected Mar 4 from a changelog, published Mar 5: excluded
        finding(3, first_detected_at=at(4), published_at=at(5)),
        finding(4, first_detected_at=at(4)),  # no publication date: excluded
    ]

    report = time_to_detect(findings, MARCH)

    assert (report.overall.count, report.overall.mean) == (2, 1.5)  # (2 + 1) / 2
    assert report.excluded_reasons == {"detected_before_publication": 1, "no_publication_date": 1}


# -- coverage --------------------------------------------------------------------------------------------------


def test_host_coverage_by_hand() -> None:
    hosts = [
        HostFacts("web1", "prod", ("web",)),
        HostFacts("web2", "prod", ("web",)),
        HostFacts("db1", "prod", ("db",)),
        HostFacts("dev1", "dev"),
    ]
    findings = [
        finding(1, host="web1", priority_decision="Act"),  # uncovers web1
        finding(2, host="web2", priority_decision="Track*"),  # below Attend: web2 stays covered
        finding(3, host="db1", priority_decision="Attend", status="fixed", fixed_at=at(2)),  # fixed before as-of
        finding(4, host="dev1"),  # not prioritised yet: excluded, does not uncover
        finding(5, host="db1", priority_decision="Attend", first_detected_at=at(5, month=4)),  # detected after as-of
    ]

    coverage = host_coverage(hosts, findings, MARCH.as_of)

    # 3 of 4 hosts covered (web1 is not)
    assert coverage.overall.to_data() == {"part": 3, "whole": 4, "ratio": 0.75}
    assert coverage.by_group["web"].ratio == 0.5
    assert coverage.by_environment["prod"].to_data() == {"part": 2, "whole": 3, "ratio": 2 / 3}
    assert coverage.excluded_reasons == {"no_priority_decision": 1}
    assert host_coverage(hosts, findings, MARCH.as_of, threshold="Track*").overall.part == 2  # web2 too


def test_host_coverage_rejects_an_unknown_threshold() -> None:
    with pytest.raises(InvalidInput, match="threshold"):
        host_coverage([], [], MARCH.as_of, threshold="Urgent")


def test_update_coverage_by_hand() -> None:
    findings = [
        # web1 openssl: fixed in March (installed)
        fixed(1, at(1), at(2), at(5), package="openssl"),
        # web1 curl: fix offered, still open at the end of March (pending)
        finding(2, package="curl", fix_available_since=at(3)),
        # web2 openssl: one CVE fixed in March, another of the same package still open -> the pair is pending
        fixed(3, at(1), at(2), at(5), host="web2", package="openssl"),
        finding(4, host="web2", package="openssl", fix_available_since=at(20)),
        # web2 zlib: no fix offered yet: not applicable
        finding(5, host="web2", package="zlib"),
        # web2 xz: fixed in March without a known fix date: excluded
        fixed(6, at(1), None, at(7), host="web2", package="xz"),
        # web3 bash: fixed in February: not in the period
        fixed(7, at(1, month=2), at(1, month=2), at(3, month=2), host="web3", package="bash"),
    ]

    coverage = update_coverage(findings, MARCH)

    # installed {web1 openssl}; pending {web1 curl, web2 openssl} -> 1 / 3
    assert (coverage.installed, coverage.pending) == (1, 2)
    assert coverage.share.ratio == pytest.approx(1 / 3)
    assert coverage.excluded_reasons == {"no_fix_available_since": 1}
    assert update_coverage([], MARCH).share.ratio is None


# -- failure rate ----------------------------------------------------------------------------------------------


def job(id: int, state: str, error: str = "", **changes: object) -> JobFacts:
    values: dict[str, object] = {
        "id": id, "rollout": 1, "ring": "pilot", "host": f"host{id}", "state": state, "finished_at": at(10),
        "packages": ("openssl",), "error": error,
    }  # fmt: skip
    values.update(changes)
    return JobFacts(**values)  # type: ignore[arg-type]


def test_failure_rate_by_hand() -> None:
    jobs = [
        job(1, "verified"),
        job(2, "verified", ring="broad", rollout=2, packages=("openssl", "curl")),
        job(3, "failed", "E: Unable to fetch http://deb.debian.org/pool/openssl_3.0.13-1.deb  404  Not Found"),
        job(4, "failed", "E: Unable to fetch http://deb.debian.org/pool/openssl_3.0.15-1.deb  404  Not Found"),
        job(5, "unknown", ring="broad", rollout=2, packages=("curl",)),  # no result: a failure without a cause
        job(6, "rolled_back", "dpkg: error processing package host6 (--configure)"),
        job(7, "rolled_back"),  # rolled back with the ring, its own deploy had no error: not a failure
        job(8, "succeeded"),  # awaiting verification: excluded
        job(9, "cancelled"),  # excluded
        job(10, "failed", "E: boom", finished_at=at(1, month=2)),  # February: outside
    ]

    rate = failure_rate(jobs, MARCH)

    # attempted 1 2 3 4 5 6 7 = 7; failed 3 4 5 6 = 4
    assert rate.overall.to_data() == {"part": 4, "whole": 7, "ratio": 4 / 7}
    # pilot: 1 3 4 6 7 -> 3 failed of 5; broad: 2 5 -> 1 of 2
    assert rate.by_ring["pilot"].to_data()["part"] == 3
    assert rate.by_ring["pilot"].whole == 5
    assert rate.by_ring["broad"].to_data() == {"part": 1, "whole": 2, "ratio": 0.5}
    assert rate.by_rollout["2"].part == 1
    # openssl: 1 2 3 4 6 7 -> 3 of 6; curl: 2 5 -> 1 of 2
    assert (rate.by_package["openssl"].part, rate.by_package["openssl"].whole) == (3, 6)
    assert (rate.by_package["curl"].part, rate.by_package["curl"].whole) == (1, 2)
    # both fetch errors share one signature despite different versions
    assert rate.top_causes[0].count == 2
    assert rate.top_causes[0].signature == "e: unable to fetch <url> <n> not found"
    assert rate.top_causes[1].signature == "dpkg: error processing package <host> (--configure)"
    assert rate.excluded_reasons == {"awaiting_verification": 1, "cancelled": 1, "no_error_text": 1}


def test_error_signature_blanks_versions_numbers_paths_and_hosts() -> None:
    one = error_signature("Setting up\nE: Sub-process /usr/bin/dpkg returned an error code (1) on db1.example.org")
    two = error_signature("E: Sub-process /usr/bin/dpkg returned an error code (2) on web7.example.com")
    assert one == two == "e: sub-process <path> returned an error code (<n>) on <host>"
    assert error_signature("openssl 3.0.13-1~deb12u1 is not available at 10.0.0.5:8080") == (
        "openssl <version> is not available at <ip>"
    )
    assert error_signature("  \n ") == ""


def test_failure_rate_of_nothing() -> None:
    rate = failure_rate([], MARCH)
    assert rate.overall.ratio is None
    assert rate.top_causes == []
    assert rate.excluded == 0


# -- SLA ---------------------------------------------------------------------------------------------------------


def test_sla_compliance_by_hand() -> None:
    findings = [
        # due Mar 10, fixed Mar 8: compliant (policy 1)
        fixed(1, at(1), at(1), at(8), due_date=date(2026, 3, 10), sla_policy_version=1, priority_decision="Act"),
        # due Mar 10, fixed Mar 12: breached (policy 1)
        fixed(2, at(1), at(1), at(12), due_date=date(2026, 3, 10), sla_policy_version=1, priority_decision="Act"),
        # due Mar 15, still open at the end of March: breached, and overdue (policy 2)
        finding(3, due_date=date(2026, 3, 15), sla_policy_version=2, priority_decision="Attend"),
        # due Feb 20 but fixed in March (Mar 2): breached (policy 2)
        fixed(4, at(1, month=2), at(1, month=2), at(2), due_date=date(2026, 2, 20), sla_policy_version=2),
        # due Apr 3, open: due within 7 days of Mar 31, not part of the compliance ratio
        finding(5, due_date=date(2026, 4, 3), priority_decision="Track"),
        # accepted: excluded
        finding(6, status="accepted", due_date=date(2026, 3, 5), status_changed_at=at(2)),
        # due Mar 31 and open at as-of (Mar 31): not due yet -> excluded
        finding(7, due_date=date(2026, 3, 31)),
        # fixed in March without a due date: excluded
        fixed(8, at(1), at(1), at(9)),
    ]

    sla = sla_compliance(findings, MARCH)

    # compliant {1}; breached {2, 3, 4} -> 1 / 4
    assert sla.overall.to_data() == {"part": 1, "whole": 4, "ratio": 0.25}
    assert sla.by_policy_version["1"].ratio == 0.5
    assert sla.by_policy_version["2"].to_data() == {"part": 0, "whole": 2, "ratio": 0.0}
    assert sla.by_priority["Act"].ratio == 0.5
    # overdue at Mar 31: 3 (due Mar 15); due soon (Mar 31 .. Apr 7): 5 and 7
    assert (sla.overdue, sla.overdue_by_priority) == (1, {"Attend": 1})
    assert (sla.due_soon, sla.due_soon_by_priority) == (2, {"Track": 1, "unknown": 1})
    assert sla.excluded_reasons == {"accepted": 1, "no_due_date": 1, "not_due_yet": 1}


def test_sla_compliance_of_nothing() -> None:
    sla = sla_compliance([], MARCH)
    assert sla.overall.ratio is None
    assert sla.overdue == 0
    assert sla.due_soon == 0


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(InvalidInput, match="after it ends"):
        Period(date(2026, 3, 2), date(2026, 3, 1), at(1))


# -- KEV, risk, burndown ---------------------------------------------------------------------------------------


def test_kev_exposure_by_hand() -> None:
    findings = [
        finding(1, host="web1", vulnerability="CVE-2024-1", kev_date_added=date(2026, 1, 30)),
        finding(2, host="web2", vulnerability="CVE-2024-1", kev_date_added=date(2026, 1, 30)),
        finding(3, host="web2", vulnerability="CVE-2024-2", kev_date_added=date(2026, 3, 21)),
        finding(4, host="web3", vulnerability="CVE-2024-3"),  # not in KEV
        fixed(5, at(1), at(1), at(2), host="web4", vulnerability="CVE-2024-1", kev_date_added=date(2026, 1, 30)),
    ]

    exposure = kev_exposure(findings, MARCH.as_of)

    assert exposure.hosts == 2  # web1, web2
    # Jan 30 -> Mar 31: 1 (Jan 31) + 28 (Feb) + 31 (Mar) = 60 days; Mar 21 -> Mar 31: 10 days
    assert [(e.vulnerability, e.days_since, e.hosts) for e in exposure.entries] == [
        ("CVE-2024-1", 60, 2),
        ("CVE-2024-2", 10, 1),
    ]
    assert kev_exposure([], MARCH.as_of).hosts == 0


def test_open_risk_by_hand() -> None:
    findings = [
        finding(1, priority_score=80, priority_decision="Act"),
        finding(2, priority_score=15, priority_decision="Track"),
        finding(3),  # unscored: counted as open, adds no risk
        fixed(4, at(1), at(1), at(2), priority_score=99),
    ]

    risk = open_risk(findings, MARCH.as_of)

    assert (risk.score, risk.open) == (95, 3)  # 80 + 15
    assert risk.by_priority == {"Act": 1, "Attend": 0, "Track*": 0, "Track": 1, "": 1}
    assert risk.excluded_reasons == {"no_priority_score": 1}


def test_risk_burndown_by_hand() -> None:
    findings = [
        finding(1, first_detected_at=at(1), priority_score=50),
        fixed(2, at(1), at(1), at(2, 9), priority_score=30, fixed_by_rollout=7),
        fixed(3, at(1), at(1), at(2, 15), priority_score=20, fixed_by_rollout=8),
        fixed(4, at(2), at(2), at(3, 1), priority_score=10),  # fixed without a rollout
        finding(5, first_detected_at=at(3, 12), priority_score=5, status="accepted", status_changed_at=at(3, 13)),
    ]

    days = risk_burndown(findings, [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)])

    # Mar 1: 1+2+3 open = 100; Mar 2: 2 and 3 fixed, 4 detected -> 50 + 10 = 60; Mar 3: 4 fixed, 5 accepted -> 50
    assert [day.risk for day in days] == [100, 60, 50]
    assert [day.fixed_by_rollout for day in days] == [{}, {7: 30, 8: 20}, {}]


@given(st.lists(st.integers(min_value=0, max_value=100), max_size=30), st.integers(min_value=0, max_value=40))
def test_burndown_never_counts_more_than_every_score(scores: list[int], offset: int) -> None:
    findings = [finding(i, first_detected_at=at(1), priority_score=score) for i, score in enumerate(scores)]
    [day] = risk_burndown(findings, [date(2026, 3, 1) + timedelta(days=offset)])
    assert day.risk == sum(scores)
