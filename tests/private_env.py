"""Loaded with `-p tests.private_env` (pyproject addopts) before pytest-django sets Django up: a private
data dir and no feed URLs, so a test run never touches a real installation or another run's files."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PATCHDAY_DATA_DIR", tempfile.mkdtemp(prefix="patchday-test-"))
# No feed URLs: a worker's daily feeds.sync must never reach for the internet during tests.
os.environ.setdefault("PATCHDAY_FEED_URLS", "kev=,epss=,osv=")
