"""CISA KEV catalog files to KevEntry values: the real catalog, and every way a file is refused."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from patchday.core.errors import FeedUnreadable
from patchday.feeds.kev import KevCatalog, read_kev

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "feeds" / "kev-2026.08.21-first200.json.gz"
FULL_CATALOG = Path("/work/shared/data/kev/known_exploited_vulnerabilities-2026.08.21.json.gz")


def catalog() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    return document


def write_json(tmp_path: Path, document: object, name: str = "known_exploited_vulnerabilities.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def refusal(path: Path, **kwargs: Any) -> str:
    with pytest.raises(FeedUnreadable) as info:
        read_kev(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    return message


def test_the_real_catalog_excerpt_becomes_entries() -> None:
    result = read_kev(FIXTURE)
    assert result.catalog_version == "2026.08.21"
    assert result.date_released == datetime(2026, 8, 21, 17, 46, 43, 601900, tzinfo=UTC)
    assert len(result.entries) == 200
    first = result.entries[0]
    assert first.cve_id == "CVE-2026-73570"
    assert (first.vendor, first.product) == ("Synacor", "Zimbra Collaboration Suite (ZCS)")
    assert first.name == "Zimbra Collaboration Suite (ZCS) OS Command Injection Vulnerability"
    assert (first.date_added, first.due_date) == (date(2026, 8, 21), date(2026, 8, 24))
    assert first.ransomware == "Unknown"
    assert first.cwes == ("CWE-78",)
    assert first.notes.startswith("https://wiki.zimbra.com/")
    assert "CISA\u2019s BOD 26-04" in first.required_action  # written as the escape \u2019 in the file
    assert {entry.ransomware for entry in result.entries} <= {"Known", "Unknown"}


def test_plain_json_reads_like_gzipped_json(tmp_path: Path) -> None:
    plain = tmp_path / "known_exploited_vulnerabilities.json"
    plain.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    assert read_kev(plain) == read_kev(FIXTURE)


def test_optional_fields_may_be_absent(tmp_path: Path) -> None:
    document = catalog()
    for field in ("knownRansomwareCampaignUse", "notes", "cwes"):
        del document["vulnerabilities"][0][field]
    entry = read_kev(write_json(tmp_path, document)).entries[0]
    assert (entry.ransomware, entry.notes, entry.cwes) == ("Unknown", "", ())


@pytest.mark.skipif(not FULL_CATALOG.exists(), reason="the shared data set is not on this machine")
def test_the_full_published_catalog_reads_completely() -> None:
    result = read_kev(FULL_CATALOG)
    assert isinstance(result, KevCatalog)
    assert len(result.entries) == 1674
    assert len({entry.cve_id for entry in result.entries}) == 1674
    assert sum(entry.ransomware == "Known" for entry in result.entries) == 352


# -- refused files: each message names the file, the record when there is one, and the reason --------------------


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "known_exploited_vulnerabilities.json"
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes())[:5000])
    assert "is not valid JSON" in refusal(path)


@pytest.mark.parametrize("name", ["known_exploited_vulnerabilities.json", "known_exploited_vulnerabilities.json.gz"])
def test_an_html_error_page_is_refused_as_such(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"<!DOCTYPE html>\n<html><head><title>Access Denied</title></head><body>...</body></html>\n")
    assert "got an HTML page, not" in refusal(path)


def test_a_gzipped_html_page_is_refused_as_such(tmp_path: Path) -> None:
    path = tmp_path / "known_exploited_vulnerabilities.json.gz"
    path.write_bytes(gzip.compress(b"\n  <html><body>502 Bad Gateway</body></html>"))
    assert "got an HTML page, not JSON" in refusal(path)


def test_a_truncated_gzip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "known_exploited_vulnerabilities.json.gz"
    path.write_bytes(FIXTURE.read_bytes()[:15000])
    assert "is truncated" in refusal(path)


def test_a_gz_file_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "known_exploited_vulnerabilities.json.gz"
    path.write_bytes(b'{"catalogVersion": "2026.08.21"}')
    assert "is not a gzip file" in refusal(path)


def test_a_missing_required_field_names_record_cve_and_schema_path(tmp_path: Path) -> None:
    document = catalog()
    cve_id = document["vulnerabilities"][5]["cveID"]
    del document["vulnerabilities"][5]["dueDate"]
    message = refusal(write_json(tmp_path, document))
    assert f"record 5 ({cve_id})" in message
    assert "'dueDate' is a required property" in message
    assert "schema path #/properties/vulnerabilities/items/required" in message


def test_a_malformed_cve_id_is_a_schema_violation(tmp_path: Path) -> None:
    document = catalog()
    document["vulnerabilities"][3]["cveID"] = "CVE-26-1"
    message = refusal(write_json(tmp_path, document))
    assert "record 3 (CVE-26-1)" in message
    assert "$.vulnerabilities[3].cveID" in message
    assert "does not match '^CVE-[0-9]{4}-[0-9]{4,19}$'" in message


def test_the_earliest_bad_record_is_named_and_the_rest_counted(tmp_path: Path) -> None:
    document = catalog()
    document["vulnerabilities"][150]["product"] = 42
    document["vulnerabilities"][9]["cwes"] = ["CWE-x"]
    message = refusal(write_json(tmp_path, document))
    assert "record 9 (" in message
    assert "(and 1 more violations)" in message


def test_a_catalog_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    message = refusal(write_json(tmp_path, catalog()["vulnerabilities"]))
    assert "the catalog does not match CISA's schema" in message
    assert "is not of type 'object'" in message


def test_a_repeated_cve_id_is_refused(tmp_path: Path) -> None:
    document = catalog()
    cve_id = document["vulnerabilities"][2]["cveID"]
    document["vulnerabilities"][7]["cveID"] = cve_id
    message = refusal(write_json(tmp_path, document))
    assert f"record 7 ({cve_id}) repeats the cveID of record 2" in message


def test_a_count_that_disagrees_with_the_list_is_refused(tmp_path: Path) -> None:
    document = catalog()
    document["count"] = 201
    assert "says count 201 but lists 200 vulnerabilities" in refusal(write_json(tmp_path, document))


@pytest.mark.parametrize("value", ["2026-02-30", "21/08/2026", "2026-8-1", ""])
def test_a_date_added_that_is_not_a_date_is_refused(tmp_path: Path, value: str) -> None:
    document = catalog()
    cve_id = document["vulnerabilities"][4]["cveID"]
    document["vulnerabilities"][4]["dateAdded"] = value
    message = refusal(write_json(tmp_path, document))
    assert f"record 4 ({cve_id})" in message
    assert f"{value!r} is not a 'date'" in message


@pytest.mark.parametrize("value", ["yesterday", "2026-08-21", "2026-08-21T25:00:00Z"])
def test_a_release_time_that_is_not_a_date_time_is_refused(tmp_path: Path, value: str) -> None:
    document = catalog()
    document["dateReleased"] = value
    assert f"dateReleased {value!r} is not a date-time" in refusal(write_json(tmp_path, document))


@pytest.mark.parametrize("name", ["known_exploited_vulnerabilities.json", "known_exploited_vulnerabilities.json.gz"])
def test_a_file_over_the_size_limit_is_refused(tmp_path: Path, name: str) -> None:
    raw = gzip.decompress(FIXTURE.read_bytes())
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    assert "is larger than the limit of 100000 bytes" in refusal(path, max_bytes=100_000)
    assert len(read_kev(path, max_bytes=len(raw)).entries) == 200


def test_other_file_types_and_missing_files_are_refused(tmp_path: Path) -> None:
    assert "is not a .json or .json.gz file" in refusal(tmp_path / "kev.csv")
    assert "cannot read" in refusal(tmp_path / "absent.json")
