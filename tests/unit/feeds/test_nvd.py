"""NVD CVE API 2.0 records to CveRecords: the real samples, API pages, checked CVSS scores, and hostile files."""

from __future__ import annotations

import copy
import gzip
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import CveRecord, CvssScore, CvssVersion, SsvcPoints, best_cvss
from patchday.feeds.nvd import parse_nvd_cve, read_nvd

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds" / "nvd"
IDS = ("CVE-2023-4911", "CVE-2024-45490", "CVE-2024-47544", "CVE-2024-50302", "CVE-2025-0395", "CVE-2025-38352",
       "CVE-2026-24061")  # fmt: skip


def sample(cve_id: str) -> dict[str, Any]:
    (path,) = SAMPLES.rglob(f"{cve_id}.json")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def records() -> dict[str, CveRecord]:
    problems: list[str] = []
    found = {record.cve_id: record for record in read_nvd(SAMPLES, problems=problems)}
    assert problems == []
    return found


def write(tmp_path: Path, document: object, name: str = "CVE-2024-45490.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def page(*cves: dict[str, Any]) -> dict[str, Any]:
    return {
        "resultsPerPage": len(cves),
        "startIndex": 0,
        "totalResults": len(cves),
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": "2026-11-28T06:00:00.000",
        "vulnerabilities": [{"cve": cve} for cve in cves],
    }


def refusal(path: Path) -> str:
    with pytest.raises(FeedUnreadable) as info:
        list(read_nvd(path))
    message = str(info.value)
    assert message.startswith("NVD")
    assert str(path) in message
    return message


# -- the real samples ------------------------------------------------------------------------------------


def test_every_sample_file_becomes_one_record() -> None:
    assert sorted(records()) == list(IDS)
    assert {record.source for record in records().values()} == {"nvd"}


def test_expat_has_the_nvd_primary_and_the_cisa_adp_secondary_score() -> None:
    record = records()["CVE-2024-45490"]
    assert record.cvss == (
        CvssScore(CvssVersion.V3_1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "nvd", "nvd@nist.gov"),
        CvssScore(CvssVersion.V3_1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "cisa-adp", "CISA-ADP"),
    )
    best = best_cvss(record.cvss)
    assert best is not None
    assert (best.source, best.base_score) == ("nvd", 7.5)
    assert record.status == "Analyzed"
    assert record.cwes == ("CWE-611",)
    assert record.published == datetime(2024, 8, 30, 3, 15, 3, 757000, tzinfo=UTC)
    assert record.modified == datetime(2024, 10, 18, 12, 24, 23, 597000, tzinfo=UTC)
    assert record.references == (
        "https://github.com/libexpat/libexpat/issues/887",
        "https://github.com/libexpat/libexpat/pull/890",
    )
    assert record.description.startswith("An issue was discovered in libexpat before 2.6.3.")
    assert (record.ssvc, record.kev_date_added) == (None, None)


def test_a_record_with_empty_metrics_has_no_score_but_keeps_its_cwe() -> None:
    record = records()["CVE-2025-0395"]
    assert record.cvss == ()
    assert best_cvss(record.cvss) is None
    assert record.cwes == ("CWE-131",)
    assert record.status == "Awaiting Analysis"


def test_cisa_exploit_add_is_the_kev_date() -> None:
    record = records()["CVE-2024-50302"]
    assert record.kev_date_added == date(2025, 3, 4)
    assert record.status == "Modified"
    assert [score.source for score in record.cvss] == ["nvd", "cisa-adp"]
    assert record.cwes == ("CWE-908",)  # NVD and CISA-ADP both name it; once is enough


def test_a_cvss_4_score_with_all_36_keys_is_the_cnas() -> None:
    (score,) = records()["CVE-2024-47544"].cvss
    assert (score.version, score.base_score, score.source) == (CvssVersion.V4_0, 6.8, "cna")
    assert score.scorer == "security-advisories@github.com"
    assert score.vector.startswith("CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:N/VI:N/VA:H/")


def test_a_kernel_cve_scored_only_by_cisa_adp_reads_in_english() -> None:
    record = records()["CVE-2025-38352"]
    assert [(s.source, s.scorer, s.base_score) for s in record.cvss] == [("cisa-adp", "CISA-ADP", 7.4)]
    assert record.description.startswith("In the Linux kernel, the following vulnerability has been resolved:")
    assert record.kev_date_added == date(2025, 9, 4)


def test_ssvc_and_kev_of_a_newer_record() -> None:
    record = records()["CVE-2026-24061"]
    assert record.ssvc == SsvcPoints("active", "yes", "total", "cisa-adp", date(2026, 1, 27))
    assert record.kev_date_added == date(2026, 1, 26)
    assert [(s.source, s.scorer) for s in record.cvss] == [("cna", "cve@mitre.org")]


def test_an_early_record_has_the_cna_score_only() -> None:
    record = records()["CVE-2023-4911"]
    assert [(s.source, s.scorer, s.base_score) for s in record.cvss] == [("cna", "secalert@redhat.com", 7.8)]
    assert record.cwes == ()


def test_key_order_inside_cvss_data_does_not_matter() -> None:
    document = sample("CVE-2024-45490")
    for metric in document["metrics"]["cvssMetricV31"]:
        metric["cvssData"] = dict(reversed(list(metric["cvssData"].items())))
    assert parse_nvd_cve(document) == records()["CVE-2024-45490"]


# -- API pages and files ---------------------------------------------------------------------------------


def test_an_api_page_gives_the_same_records_as_the_single_files(tmp_path: Path) -> None:
    path = write(tmp_path, page(*(sample(cve_id) for cve_id in IDS)), "page-0.json")
    assert list(read_nvd(path)) == [records()[cve_id] for cve_id in IDS]


def test_a_gzipped_page_and_a_wrapped_entry_are_read(tmp_path: Path) -> None:
    path = tmp_path / "page.json.gz"
    path.write_bytes(gzip.compress(json.dumps(page(sample("CVE-2025-0395"))).encode()))
    wrapped = write(tmp_path, {"cve": sample("CVE-2024-50302")}, "entry.json")
    assert [r.cve_id for r in read_nvd(path)] + [r.cve_id for r in read_nvd(wrapped)] == [
        "CVE-2025-0395",
        "CVE-2024-50302",
    ]


def test_a_directory_is_read_one_file_at_a_time(tmp_path: Path) -> None:
    write(tmp_path, sample("CVE-2023-4911"), "a.json")
    (tmp_path / "b.json").write_text("{not json", encoding="utf-8")
    reader = read_nvd(tmp_path)
    assert next(reader).cve_id == "CVE-2023-4911"  # yielded before the broken file is opened
    with pytest.raises(FeedUnreadable, match=r"b\.json is not valid JSON"):
        next(reader)


# -- scores that cannot be used: dropped and reported, the record kept -----------------------------------


def test_a_score_that_disagrees_with_its_vector_is_dropped_and_reported() -> None:
    document = sample("CVE-2024-45490")
    document["metrics"]["cvssMetricV31"][1]["cvssData"]["baseScore"] = 5.0
    problems: list[str] = []
    record = parse_nvd_cve(document, where="file x.json", problems=problems)
    assert [score.source for score in record.cvss] == ["nvd"]
    (problem,) = problems
    assert problem.startswith("NVD file x.json, record CVE-2024-45490: dropped metrics.cvssMetricV31[1]")
    assert "baseScore 5.0 disagrees with 9.8" in problem


def test_a_rounding_difference_is_tolerated() -> None:
    document = sample("CVE-2024-45490")
    document["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"] = 7.45
    problems: list[str] = []
    assert len(parse_nvd_cve(document, problems=problems).cvss) == 2
    assert problems == []


@pytest.mark.parametrize(
    ("vector", "reason"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "does not parse"),  # a mandatory metric missing
        ("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "does not parse"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "is not a CVSS 3.1 vector"),
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "is not a CVSS 3.1 vector"),
        ("", "has no vectorString"),
    ],
)
def test_a_bad_vector_is_dropped_and_reported(vector: str, reason: str) -> None:
    document = sample("CVE-2024-45490")
    document["metrics"]["cvssMetricV31"][0]["cvssData"]["vectorString"] = vector
    problems: list[str] = []
    record = parse_nvd_cve(document, problems=problems)
    assert [score.source for score in record.cvss] == ["cisa-adp"]
    (problem,) = problems
    assert "record CVE-2024-45490" in problem
    assert "from nvd@nist.gov" in problem
    assert reason in problem


@pytest.mark.parametrize("score", ["9.8", None, True, float("nan"), 98])
def test_a_base_score_that_is_not_a_plausible_number_is_dropped(score: object) -> None:
    document = sample("CVE-2024-45490")
    document["metrics"]["cvssMetricV31"][1]["cvssData"]["baseScore"] = score
    problems: list[str] = []
    assert [s.source for s in parse_nvd_cve(document, problems=problems).cvss] == ["nvd"]
    assert len(problems) == 1


def test_a_json_nan_is_not_a_number(tmp_path: Path) -> None:
    text = json.dumps(sample("CVE-2024-45490")).replace('"baseScore": 9.8', '"baseScore": NaN')
    path = tmp_path / "nan.json"
    path.write_text(text, encoding="utf-8")
    assert "NaN is not a JSON number" in refusal(path)


def test_each_version_is_checked_with_its_own_cvss_rules() -> None:
    document = sample("CVE-2025-0395")
    document["metrics"] = {
        "cvssMetricV2": [
            {"source": "nvd@nist.gov", "type": "Primary",
             "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "baseScore": 7.5}},
            {"source": "nvd@nist.gov", "type": "Primary",
             "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "baseScore": 10.0}},
        ],
        "cvssMetricV30": [
            {"source": "cve@mitre.org", "type": "Secondary",
             "cvssData": {"version": "3.0", "vectorString": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                          "baseScore": 9.8}},
        ],
    }  # fmt: skip
    problems: list[str] = []
    record = parse_nvd_cve(document, problems=problems)
    assert [(s.version, s.base_score, s.source) for s in record.cvss] == [
        (CvssVersion.V3_0, 9.8, "cna"),
        (CvssVersion.V2, 7.5, "nvd"),
    ]
    assert len(problems) == 1
    assert "baseScore 10.0 disagrees with 7.5" in problems[0]


def test_without_a_problems_list_dropped_scores_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    document = sample("CVE-2024-45490")
    document["metrics"]["cvssMetricV31"][0]["cvssData"]["baseScore"] = 1.0
    with caplog.at_level(logging.WARNING, logger="patchday.feeds.nvd"):
        parse_nvd_cve(document)
    assert "record CVE-2024-45490: dropped metrics.cvssMetricV31[0]" in caplog.text


def test_unusable_ssvc_points_are_dropped_and_reported() -> None:
    document = sample("CVE-2026-24061")
    document["metrics"]["ssvcV203"][0]["ssvcData"]["options"][0] = {"exploitation": "rumoured"}
    problems: list[str] = []
    record = parse_nvd_cve(document, problems=problems)
    assert record.ssvc is None
    assert len(record.cvss) == 1
    assert "SSVC exploitation 'rumoured'" in problems[0]


# -- hostile files and records: refused, naming file and record ------------------------------------------


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"id": "CVE-2024-45490", ', encoding="utf-8")
    assert "is not valid JSON" in refusal(path)


def test_an_html_page_saved_instead_of_json_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "cves.json"
    path.write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>", encoding="utf-8")
    assert "is an HTML or XML page, not JSON" in refusal(path)


def test_a_record_without_an_id_is_refused(tmp_path: Path) -> None:
    document = sample("CVE-2024-45490")
    del document["id"]
    assert "record has no CVE id" in refusal(write(tmp_path, document))


def test_a_page_entry_without_an_id_is_named_by_its_index(tmp_path: Path) -> None:
    broken = sample("CVE-2025-0395")
    broken["id"] = "CVE-25-1"
    message = refusal(write(tmp_path, page(sample("CVE-2024-45490"), broken), "page.json"))
    assert "vulnerabilities[1]" in message
    assert "'CVE-25-1'" in message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("published", "last Tuesday", "'published' is not an ISO 8601 time"),
        ("cisaExploitAdd", "2025-02-30", "'cisaExploitAdd' is not a date"),
        ("metrics", [], "'metrics' must be an object"),
        ("descriptions", "An issue", "'descriptions' must be a list of objects"),
        ("vulnStatus", 3, "'vulnStatus' must be a string"),
    ],
)
def test_a_malformed_field_refuses_the_record(tmp_path: Path, field: str, value: object, reason: str) -> None:
    document = copy.deepcopy(sample("CVE-2024-50302"))
    document[field] = value
    message = refusal(write(tmp_path, document))
    assert "record CVE-2024-50302" in message
    assert reason in message


@pytest.mark.parametrize(
    "document",
    [[{"id": "CVE-2024-45490"}], {"vulnerabilities": {}}, {"vulnerabilities": [{"id": "CVE-2024-45490"}]}, 42],
)
def test_documents_that_are_neither_a_record_nor_a_page_are_refused(tmp_path: Path, document: object) -> None:
    refusal(write(tmp_path, document))


def test_paths_that_hold_no_records_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    refusal(tmp_path)
    refusal(tmp_path / "notes.txt")
    refusal(tmp_path / "missing.json")


def test_a_truncated_gzip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "page.json.gz"
    path.write_bytes(gzip.compress(json.dumps(page(sample("CVE-2025-0395"))).encode())[:60])
    assert "cannot read file" in refusal(path)
