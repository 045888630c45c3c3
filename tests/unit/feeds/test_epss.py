"""FIRST EPSS files to EpssScore batches: both header variants, the score date, streaming, and refused files."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchday.core.errors import FeedUnreadable
from patchday.core.vulnerability import EpssScore
from patchday.feeds.epss import EpssSnapshot, _SeenCves, read_epss

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "feeds"
MIRROR_FILE = FIXTURES / "epss_scores-2026-08-16.head-2000.csv.gz"  # `#source:` comment, no model_version
FIRST_FILE = FIXTURES / "epss-first-header.csv"  # FIRST's `#model_version:...,score_date:...` line
FULL_FILE = Path("/work/shared/data/epss/epss_scores-2026-08-16.csv.gz")
TODAY = date(2026, 8, 21)
HEADER = b"#model_version:v2025.03.14,score_date:2025-03-16T00:00:00+0000\ncve,epss,percentile\n"


def mirror_lines() -> list[bytes]:
    """The fixture's 2,002 lines: the `#source:` comment, the column line, 2,000 scores."""
    return gzip.decompress(MIRROR_FILE.read_bytes()).splitlines()


def write(tmp_path: Path, content: bytes, name: str = "epss_scores-2026-08-16.csv", zipped: bool = False) -> Path:
    path = tmp_path / (name + ".gz" if zipped else name)
    path.write_bytes(gzip.compress(content) if zipped else content)
    return path


def read_all(snapshot: EpssSnapshot, size: int = 10_000) -> list[EpssScore]:
    return [score for batch in snapshot.batches(size) for score in batch]


def refusal(path: Path, score_date: date | None = None) -> str:
    """The message of the FeedUnreadable that reading all of `path` raises; it must name the file."""
    with pytest.raises(FeedUnreadable) as info:
        read_all(read_epss(path, score_date=score_date, today=TODAY))
    message = str(info.value)
    assert str(path) in message
    return message


def test_the_mirror_variant_takes_its_date_from_the_file_name_and_streams_in_batches() -> None:
    snapshot = read_epss(MIRROR_FILE, today=TODAY)
    assert (snapshot.score_date, snapshot.model_version) == (date(2026, 8, 16), "")
    batches = list(snapshot.batches(size=600))
    assert [len(batch) for batch in batches] == [600, 600, 600, 200]
    scores = [score for batch in batches for score in batch]
    assert scores[0] == EpssScore("CVE-1999-0001", 0.03351, 0.8765, date(2026, 8, 16), "")
    assert scores[-1].cve_id == "CVE-2000-0460"
    assert len({score.cve_id for score in scores}) == 2000
    assert all(0 <= score.probability <= 1 and 0 <= score.percentile <= 1 for score in scores)


def test_first_header_gives_model_version_and_score_date() -> None:
    snapshot = read_epss(FIRST_FILE, today=TODAY)
    assert (snapshot.score_date, snapshot.model_version) == (date(2025, 3, 16), "v2025.03.14")
    scores = read_all(snapshot)
    assert len(scores) == 20
    assert scores[1] == EpssScore("CVE-1999-0002", 0.27858, 0.97929, date(2025, 3, 16), "v2025.03.14")


def test_a_given_score_date_is_used_when_the_header_has_none(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.decompress(MIRROR_FILE.read_bytes()), name="scores.csv")
    assert read_epss(path, score_date=date(2026, 8, 15), today=TODAY).score_date == date(2026, 8, 15)
    assert "no score date" in refusal(path)


def test_a_given_score_date_that_contradicts_the_header_is_refused() -> None:
    message = refusal(FIRST_FILE, score_date=date(2025, 3, 17))
    assert "the header says score date 2025-03-16, but 2025-03-17 was given" in message


def test_a_score_date_after_today_is_refused() -> None:
    with pytest.raises(FeedUnreadable) as info:
        read_epss(MIRROR_FILE, today=date(2026, 8, 15))
    assert f"{MIRROR_FILE}: score date 2026-08-16 is in the future (today is 2026-08-15)" in str(info.value)


def test_plain_text_without_any_comment_line_reads_too(tmp_path: Path) -> None:
    lines = mirror_lines()
    path = write(tmp_path, b"\r\n".join(lines[1:]) + b"\r\n")  # no `#` line, Windows line ends
    scores = read_all(read_epss(path, today=TODAY))
    assert len(scores) == 2000
    assert scores[0].cve_id == "CVE-1999-0001"


def test_scores_in_exponent_notation_and_padded_fields_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + b"CVE-2024-1234,1e-05, 0.5 \nCVE-2024-1235,1,0\n")
    scores = read_all(read_epss(path, today=TODAY))
    assert [(s.probability, s.percentile) for s in scores] == [(1e-05, 0.5), (1.0, 0.0)]


@pytest.mark.skipif(not FULL_FILE.exists(), reason="the shared data set is not on this machine")
def test_the_full_published_file_reads_completely() -> None:
    snapshot = read_epss(FULL_FILE, today=TODAY)
    assert snapshot.score_date == date(2026, 8, 16)
    assert sum(len(batch) for batch in snapshot.batches()) == 360_142


def test_a_bad_row_is_found_after_earlier_batches_were_handed_out(tmp_path: Path) -> None:
    """The contract the caller's single transaction relies on: batches come before the error."""
    lines = mirror_lines()
    lines[1600] = lines[1600].replace(b",0.", b",1.", 1)  # line 1601, score 1,599
    path = write(tmp_path, b"\n".join(lines) + b"\n", zipped=True)
    batches = read_epss(path, today=TODAY).batches(size=500)
    assert [len(next(batches)) for _ in range(3)] == [500, 500, 500]
    with pytest.raises(FeedUnreadable, match="line 1601 "):
        next(batches)


# -- refused rows: the message names the file, the line, the CVE when there is one, and the reason ----------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (b"CVE-2024-123,0.1,0.2", "line 4: 'CVE-2024-123' is not a CVE id"),
        (b"cve-2024-1234,0.1,0.2", "line 4: 'cve-2024-1234' is not a CVE id"),
        (b"CVE-2024-12345,1.5,0.2", "line 4 (CVE-2024-12345): epss '1.5' is not a number in [0, 1]"),
        (b"CVE-2024-12345,0.1,-0.2", "line 4 (CVE-2024-12345): percentile '-0.2' is not a number in [0, 1]"),
        (b"CVE-2024-12345,nan,0.2", "line 4 (CVE-2024-12345): epss 'nan' is not a number in [0, 1]"),
        (b"CVE-2024-12345,0_1,0.2", "line 4 (CVE-2024-12345): epss '0_1' is not a number in [0, 1]"),
        (b"CVE-2024-12345,,0.2", "line 4 (CVE-2024-12345): epss '' is not a number in [0, 1]"),
        (b"CVE-2024-12345,0.1", "line 4 has 2 fields, not 3"),
        (b"CVE-2024-12345,0.1,0.2,x", "line 4 has 4 fields, not 3"),
        (b"CVE-2024-1234,0.3,0.4", "line 4: CVE-2024-1234 is listed a second time"),
        ("CVE-2024-\u0661\u0662\u0663\u0664,0.1,0.2".encode(), "line 4 is not ASCII text"),
        (b"CVE-2024-12345,0.1," + b"0" * 5000, "line 4 is longer than 4096 bytes"),
    ],
)
def test_a_bad_row_is_refused_with_its_line_and_reason(tmp_path: Path, row: bytes, reason: str) -> None:
    path = write(tmp_path, HEADER + b"CVE-2024-1234,0.1,0.2\n" + row + b"\nCVE-2024-9999,0.1,0.2\n", zipped=True)
    assert reason in refusal(path)


def test_a_truncated_gzip_file_is_refused_with_the_line_reached(tmp_path: Path) -> None:
    # 120k synthetic rows, so the stream breaks well after its first chunk.
    rows = b"".join(b"CVE-2024-%d,0.00042,0.1\n" % n for n in range(10_000, 130_000))
    whole = write(tmp_path, HEADER + rows, zipped=True)
    whole.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    message = refusal(whole)
    assert "is truncated: the gzip stream ends early, after line" in message
    reached = int(message.split("after line ")[1].split()[0])
    assert 10_000 < reached < 120_000


def test_a_corrupt_gzip_stream_is_refused(tmp_path: Path) -> None:
    data = bytearray(MIRROR_FILE.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 in the trailer
    path = tmp_path / "epss_scores-2026-08-16.csv.gz"
    path.write_bytes(bytes(data))
    assert "the gzip stream is corrupt" in refusal(path)


@pytest.mark.parametrize("zipped", [False, True])
def test_an_html_page_is_refused_as_such(tmp_path: Path, zipped: bool) -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n"
    message = refusal(write(tmp_path, page, zipped=zipped))
    assert "got an HTML page, not CSV (line 1" in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "ends before its column line 'cve,epss,percentile'"),
        (b"#model_version:v2025.03.14\n", "ends before its column line"),
        (b"cve,epss\nCVE-2024-1234,0.1\n", "line 1 should be the column line 'cve,epss,percentile', not 'cve,epss'"),
        (HEADER, "holds no scores"),
        (b"#score_date:the 16th\ncve,epss,percentile\n", "line 1: score_date 'the 16th' is not a date"),
    ],
)
def test_a_file_without_a_proper_header_or_rows_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    assert reason in refusal(write(tmp_path, content))


def test_a_file_whose_header_changes_between_reads_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, FIRST_FILE.read_bytes())
    snapshot = read_epss(path, today=TODAY)
    path.write_bytes(FIRST_FILE.read_bytes().replace(b"2025-03-16", b"2025-03-15", 1))
    with pytest.raises(FeedUnreadable, match="its header changed since it was first read"):
        read_all(snapshot)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FeedUnreadable, match=r"cannot read FIRST EPSS file .*absent\.csv"):
        read_epss(tmp_path / "absent.csv", today=TODAY)


# -- the compact record of CVE ids seen, which finds repeats -------------------------------------------------------


def test_ids_a_bitmap_would_not_suit_are_still_told_apart(tmp_path: Path) -> None:
    rows = [b"CVE-2024-0123", b"CVE-2024-00123", b"CVE-2024-123456789", b"CVE-2024-9999999"]
    rows += [b"CVE-%d-1000" % year for year in range(1900, 2000)]  # more years than get a bitmap
    path = write(tmp_path, HEADER + b"".join(row + b",0.1,0.2\n" for row in rows))
    assert len(read_all(read_epss(path, today=TODAY))) == len(rows)
    for repeat in (b"CVE-2024-00123", b"CVE-2024-123456789", b"CVE-1999-1000"):
        path = write(tmp_path, HEADER + b"".join(row + b",0.1,0.2\n" for row in [*rows, repeat]))
        assert f"{repeat.decode()} is listed a second time" in refusal(path)


cve_ids = st.builds(
    "CVE-{}-{}".format,
    st.integers(1990, 2100),
    st.one_of(st.from_regex(r"[0-9]{4}", fullmatch=True), st.from_regex(r"[0-9]{5,9}", fullmatch=True)),
)


@given(st.lists(cve_ids, max_size=300))
def test_the_record_of_seen_ids_agrees_with_a_set(ids: list[str]) -> None:
    seen, reference = _SeenCves(), set[str]()
    for cve_id in ids:
        assert seen.add(cve_id) == (cve_id not in reference)
        reference.add(cve_id)
