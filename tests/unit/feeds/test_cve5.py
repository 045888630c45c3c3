"""CVE JSON 5 records to CveRecords: real CNA and CISA-ADP containers, SSVC, KEV, rejected records, hostile input."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import CveRecord, CvssScore, CvssVersion, SsvcPoints, best_cvss
from patchday.feeds.cve5 import parse_cve5, read_cve5

RECORDS = Path(__file__).resolve().parents[2] / "fixtures" / "feeds" / "cve5"
CISA_ADP_ORG_ID = "134c704f-9b21-4f2e-91b3-4a467353bcc0"


def sample(cve_id: str) -> dict[str, Any]:
    (path,) = RECORDS.rglob(f"{cve_id}.json")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def all_records(problems: list[str] | None = None) -> dict[str, CveRecord]:
    return {record.cve_id: record for record in read_cve5(RECORDS, problems=[] if problems is None else problems)}


def write(tmp_path: Path, document: object, name: str = "CVE-2023-3079.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(FeedUnreadable) as info:
        list(read_cve5(path))
    message = str(info.value)
    assert message.startswith("CVE JSON 5")
    assert str(path) in message
    return message


def cisa_adp(document: dict[str, Any]) -> dict[str, Any]:
    (container,) = [adp for adp in document["containers"]["adp"] if adp["providerMetadata"]["orgId"] == CISA_ADP_ORG_ID]
    found: dict[str, Any] = container
    return found


# -- the real records ------------------------------------------------------------------------------------


def test_every_record_is_read_and_only_the_disagreeing_score_is_reported() -> None:
    problems: list[str] = []
    records = all_records(problems)
    assert len(records) == 28
    assert {record.source for record in records.values()} == {"cve5"}
    assert {record.status for record in records.values()} == {"PUBLISHED"}
    assert all(record.ssvc is not None for record in records.values())  # Vulnrichment assessed all of them
    (problem,) = problems
    assert problem.startswith("CVE JSON 5 file ")
    assert "CVE-2024-32004.json, record CVE-2024-32004: dropped containers.cna.metrics[0].cvssV3_1" in problem
    assert "from GitHub_M: baseScore 8.2 disagrees with 8.1 computed from CVSS:3.1/AV:L/AC:H/PR:N/UI:N/S:C" in problem


def test_a_kev_record_gets_its_cisa_adp_score_ssvc_and_kev_date() -> None:
    record = all_records()["CVE-2023-3079"]
    assert record.cvss == (
        CvssScore(CvssVersion.V3_1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8, "cisa-adp", "CISA-ADP"),
    )
    assert record.ssvc == SsvcPoints("active", "no", "total", "cisa-adp", date(2025, 1, 8))
    assert record.kev_date_added == date(2023, 6, 7)
    assert record.cwes == ("CWE-843",)  # the CNA names "Type Confusion" only; CISA-ADP gives the CWE id
    assert len(record.references) == 10  # the CVE Program container repeats the CNA's references
    assert record.published == datetime(2023, 6, 5, 21, 40, 6, 622000, tzinfo=UTC)
    assert record.modified == datetime(2025, 1, 8, 17, 31, 8, 186000, tzinfo=UTC)
    assert record.description.startswith("Type confusion in V8 in Google Chrome prior to 114.0.5735.110")


def test_the_disagreeing_cna_score_leaves_the_rest_of_the_record() -> None:
    record = all_records()["CVE-2024-32004"]
    assert record.cvss == ()
    assert record.cwes == ("CWE-114",)
    assert record.ssvc == SsvcPoints("none", "no", "total", "cisa-adp", date(2024, 5, 15))


@pytest.mark.parametrize(
    ("cve_id", "expected"),
    [
        ("CVE-2023-38545", ("poc", "no", "total")),  # spelled PoC / No / Total
        ("CVE-2023-23583", ("none", "no", "total")),  # spelled None / No / Total
    ],
)
def test_ssvc_values_in_title_case_are_lowered(cve_id: str, expected: tuple[str, str, str]) -> None:
    ssvc = all_records()[cve_id].ssvc
    assert ssvc is not None
    assert (ssvc.exploitation, ssvc.automatable, ssvc.technical_impact) == expected


def test_a_vuldb_record_has_every_cvss_version_and_the_newest_wins() -> None:
    record = all_records()["CVE-2024-7055"]
    assert [(s.version, s.base_score, s.source, s.scorer) for s in record.cvss] == [
        (CvssVersion.V4_0, 6.9, "cna", "VulDB"),
        (CvssVersion.V3_1, 6.3, "cna", "VulDB"),
        (CvssVersion.V3_0, 6.3, "cna", "VulDB"),
        (CvssVersion.V2, 7.5, "cna", "VulDB"),
    ]
    best = best_cvss(record.cvss)
    assert best is not None
    assert best.version is CvssVersion.V4_0
    assert record.description.startswith("A vulnerability was found in FFmpeg")  # not the German one


def test_an_en_us_description_is_english() -> None:
    record = all_records()["CVE-2024-21131"]
    assert record.description.startswith("Vulnerability in the Oracle Java SE")
    assert [(s.base_score, s.source, s.scorer) for s in record.cvss] == [(3.7, "cna", "oracle")]


def test_cwe_named_only_in_the_description_text_is_found() -> None:
    assert all_records()["CVE-2023-2745"].cwes == ("CWE-22",)
    assert all_records()["CVE-2024-2201"].cwes == ("CWE-1423",)


def test_a_record_without_date_published_has_no_published_time() -> None:
    record = all_records()["CVE-2024-27281"]
    assert record.published is None
    assert record.modified == datetime(2024, 8, 20, 14, 2, 13, 614000, tzinfo=UTC)


def test_a_linux_kernel_record_has_no_score() -> None:
    record = all_records()["CVE-2024-26584"]
    assert record.cvss == ()
    assert record.description.startswith("In the Linux kernel, the following vulnerability has been resolved:")


def test_cvss_4_and_3_0_scores_of_cnas() -> None:
    records = all_records()
    assert [(s.version, s.base_score, s.scorer) for s in records["CVE-2024-47537"].cvss] == [
        (CvssVersion.V4_0, 8.6, "GitHub_M")
    ]
    assert [(s.version, s.base_score, s.scorer) for s in records["CVE-2023-38037"].cvss] == [
        (CvssVersion.V3_0, 5.5, "hackerone")
    ]


def test_a_tar_archive_of_records_is_read_member_by_member(tmp_path: Path) -> None:
    archive = tmp_path / "records.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(RECORDS, arcname="vulnrichment")  # includes LICENSE, which is not a record
    assert {r.cve_id: r for r in read_cve5(archive, problems=[])} == all_records()


def test_a_single_file_and_a_list_of_records(tmp_path: Path) -> None:
    single = write(tmp_path, sample("CVE-2023-3079"))
    bundle = write(tmp_path, [sample("CVE-2024-7055"), sample("CVE-2024-4671")], "bundle.json")
    assert [r.cve_id for r in read_cve5(single)] == ["CVE-2023-3079"]
    assert [r.cve_id for r in read_cve5(bundle)] == ["CVE-2024-7055", "CVE-2024-4671"]


def test_a_directory_skips_files_that_are_not_records(tmp_path: Path) -> None:
    write(tmp_path, sample("CVE-2023-3079"))
    (tmp_path / "delta.json").write_text('{"fetchTime": "2025-01-24"}', encoding="utf-8")  # as in cvelistV5
    assert [r.cve_id for r in read_cve5(tmp_path)] == ["CVE-2023-3079"]


# -- rejected records ------------------------------------------------------------------------------------


def rejected() -> dict[str, Any]:
    """A REJECTED record in the CVE Record Format 5.1 shape (cveMetadata state REJECTED, cnaRejectedContainer)."""
    return {
        "dataType": "CVE_RECORD",
        "dataVersion": "5.1",
        "cveMetadata": {
            "cveId": "CVE-2024-26605",
            "assignerOrgId": "416baaa9-dc9f-4396-8d5f-8c081fb06d67",
            "assignerShortName": "Linux",
            "state": "REJECTED",
            "dateReserved": "2024-02-19T14:20:24.126Z",
            "datePublished": "2024-02-26T15:59:05.934Z",
            "dateUpdated": "2024-05-29T05:21:08.331Z",
            "dateRejected": "2024-05-29T05:21:08.331Z",
        },
        "containers": {
            "cna": {
                "providerMetadata": {"orgId": "416baaa9-dc9f-4396-8d5f-8c081fb06d67", "shortName": "Linux"},
                "rejectedReasons": [
                    {
                        "lang": "en",
                        "value": "This CVE ID has been rejected or withdrawn by its CVE Numbering Authority.",
                    }
                ],
            }
        },
    }


def test_a_rejected_record_has_its_status_its_reason_and_no_scores() -> None:
    record = parse_cve5(rejected())
    assert record.status == "REJECTED"
    assert record.description == "This CVE ID has been rejected or withdrawn by its CVE Numbering Authority."
    assert (record.cvss, record.cwes, record.references, record.ssvc, record.kev_date_added) == ((), (), (), None, None)
    assert record.modified == datetime(2024, 5, 29, 5, 21, 8, 331000, tzinfo=UTC)


def test_a_rejected_record_keeps_no_scores_even_if_an_adp_left_some() -> None:
    document = rejected()
    document["containers"]["adp"] = [cisa_adp(sample("CVE-2023-3079"))]
    record = parse_cve5(document)
    assert (record.cvss, record.ssvc, record.kev_date_added) == ((), None, None)


# -- assessments that cannot be used: dropped and reported -----------------------------------------------


def test_a_bad_cna_vector_is_dropped_and_the_adp_score_kept() -> None:
    document = sample("CVE-2023-36053")
    document["containers"]["cna"]["metrics"] = [
        {"format": "CVSS", "cvssV3_1": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L", "baseScore": 7.5}}
    ]
    problems: list[str] = []
    record = parse_cve5(document, where="file x.json", problems=problems)
    assert [s.source for s in record.cvss] == ["cisa-adp"]
    (problem,) = problems
    assert problem.startswith("CVE JSON 5 file x.json, record CVE-2023-36053: dropped containers.cna.metrics[0]")
    assert "does not parse" in problem


def test_a_cvss_4_score_that_disagrees_with_its_vector_is_dropped() -> None:
    document = sample("CVE-2024-47537")
    document["containers"]["cna"]["metrics"][0]["cvssV4_0"]["baseScore"] = 9.9
    problems: list[str] = []
    assert parse_cve5(document, problems=problems).cvss == ()
    assert "baseScore 9.9 disagrees with 8.6" in problems[0]


def test_an_unknown_ssvc_value_and_a_bad_kev_date_are_dropped() -> None:
    document = sample("CVE-2023-3079")
    metrics = cisa_adp(document)["metrics"]
    metrics[1]["other"]["content"]["options"][1] = {"Automatable": "sometimes"}
    metrics[2]["other"]["content"]["dateAdded"] = "June 7th"
    problems: list[str] = []
    record = parse_cve5(document, problems=problems)
    assert (record.ssvc, record.kev_date_added) == (None, None)
    assert len(record.cvss) == 1
    assert ["SSVC Automatable 'sometimes'" in problems[0], "KEV dateAdded 'June 7th'" in problems[1]] == [True, True]


def test_an_other_adp_score_counts_as_other() -> None:
    document = sample("CVE-2023-3079")
    other = copy.deepcopy(cisa_adp(document))
    other["providerMetadata"] = {"orgId": "00000000-0000-4000-8000-000000000000", "shortName": "Example-ADP"}
    document["containers"]["adp"].append(other)
    record = parse_cve5(document)
    assert [(s.source, s.scorer) for s in record.cvss] == [("cisa-adp", "CISA-ADP"), ("other", "Example-ADP")]


# -- hostile files and records: refused, naming file and record ------------------------------------------


def test_invalid_json_and_an_html_page_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "CVE-2023-3079.json"
    broken.write_text('{"cveMetadata": ', encoding="utf-8")
    assert "is not valid JSON" in refusal(broken)
    html = tmp_path / "CVE-2023-3080.json"
    html.write_text("\n<html><head><title>Rate limited</title></head></html>", encoding="utf-8")
    assert "is an HTML or XML page, not JSON" in refusal(html)


@pytest.mark.parametrize("metadata", [None, {}, {"cveId": "CVE-23-1"}, {"cveId": 3079}])
def test_a_record_without_a_cve_id_is_refused(tmp_path: Path, metadata: object) -> None:
    document = sample("CVE-2023-3079")
    document["cveMetadata"] = metadata
    assert "record has no CVE id" in refusal(write(tmp_path, document))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dataType": "CVE_ID"}, "dataType is 'CVE_ID'"),
        ({"dataVersion": "4.0"}, "dataVersion '4.0' is not CVE JSON 5"),
        ({"containers": {}}, "missing 'cna'"),
        ({"containers": {"cna": {}, "adp": {}}}, "containers.adp must be a list of objects"),
    ],
)
def test_a_record_that_does_not_fit_is_refused(tmp_path: Path, change: dict[str, object], reason: str) -> None:
    document = sample("CVE-2023-3079") | change
    message = refusal(write(tmp_path, document))
    assert "record CVE-2023-3079" in message
    assert reason in message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("state", "RESERVED", "cveMetadata.state 'RESERVED' is neither PUBLISHED nor REJECTED"),
        ("datePublished", "yesterday", "cveMetadata.datePublished is not an ISO 8601 time"),
    ],
)
def test_bad_metadata_is_refused(tmp_path: Path, field: str, value: str, reason: str) -> None:
    document = sample("CVE-2023-3079")
    document["cveMetadata"][field] = value
    assert reason in refusal(write(tmp_path, document))


def test_a_corrupt_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "records.tar.xz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        tar.add(RECORDS / "2023", arcname="2023")
    archive.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert "is not a readable tar archive" in refusal(archive)


def test_paths_that_hold_no_records_are_refused(tmp_path: Path) -> None:
    refusal(tmp_path)
    refusal(tmp_path / "CVE-2023-3079.json")
    (tmp_path / "records.zip").write_bytes(b"PK")
    refusal(tmp_path / "records.zip")
