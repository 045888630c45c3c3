"""The one bounded, gzip-aware file read every feed uses."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from patchday.core.errors import FeedUnreadable
from patchday.feeds.files import read_limited
from patchday.feeds.osv import load_osv


def test_plain_and_gzipped_files_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"[]")
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(b"[]"))
    assert read_limited(tmp_path / "a.json", "X", 10) == read_limited(tmp_path / "a.json.gz", "X", 10) == b"[]"


def test_a_file_over_the_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_bytes(b"x" * 1000)
    with pytest.raises(FeedUnreadable, match=r"big\.json is larger than 100 bytes"):
        read_limited(tmp_path / "big.json", "X", 100)


def test_a_corrupt_gzip_in_an_osv_directory_is_a_feed_error_naming_the_file(tmp_path: Path) -> None:
    good = gzip.compress(b'[{"id": "X-1"}]')
    corrupt = good[:10] + bytes(b ^ 0xFF for b in good[10:-8]) + good[-8:]  # header intact, deflate data garbled
    (tmp_path / "X-1.json.gz").write_bytes(corrupt)
    with pytest.raises(FeedUnreadable, match=r"OSV: cannot read file .*X-1\.json\.gz"):
        load_osv(tmp_path)
