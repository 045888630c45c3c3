"""Build the bundled PyPI advisory snapshot: the PyPA advisory database's OSV YAML files as one gzipped
JSON list of OSV records (src/patchday/advisories/snapshot/pypa-osv-2024-10-10.json.gz).

Usage: python3 scripts/make_pypi_snapshot.py ../shared/data/osv/pypa-advisory-database-2024-10-10.tar.xz
Needs PyYAML (a one-off build step; patchday itself reads only the JSON).
"""

from __future__ import annotations

import datetime
import gzip
import json
import sys
import tarfile
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "src/patchday/advisories/snapshot/pypa-osv-2024-10-10.json.gz"


def default(value: object) -> str:
    if isinstance(value, (datetime.date, datetime.datetime)):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if isinstance(value, datetime.datetime) else text
    raise TypeError(type(value))


def main(archive: str) -> None:
    records = []
    with tarfile.open(archive, "r:xz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith(".yaml") and "/vulns/" in f"/{member.name}":
                handle = tar.extractfile(member)
                assert handle is not None
                records.append(yaml.safe_load(handle))
    payload = json.dumps(records, default=default, separators=(",", ":")).encode()
    OUT.write_bytes(gzip.compress(payload, mtime=0))
    print(f"{len(records)} records -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
