"""Python distributions of the system interpreters, read from metadata files below a fake root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchday.collectors import CollectorError
from patchday.collectors.host import Host
from patchday.collectors.python_packages import collect_python_packages, normalize_name, parse_metadata


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_distributions_of_a_debian_layout(tmp_path: Path) -> None:
    _write(tmp_path / "usr/bin/python3.11", "")
    os.symlink("python3.11", tmp_path / "usr/bin/python3")
    dist = tmp_path / "usr/lib/python3/dist-packages"
    _write(dist / "requests-2.28.1.egg-info/PKG-INFO", "Metadata-Version: 2.1\nName: requests\nVersion: 2.28.1\n")
    _write(dist / "Jinja2-3.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n\nbody\n")
    _write(dist / "six-1.16.0.egg-info", "Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\n")
    _write(dist / "broken.dist-info/METADATA", "not metadata at all")
    _write(dist / "requests/__init__.py", "raise SystemExit('imported!')\n")
    _write(
        tmp_path / "usr/local/lib/python3.11/dist-packages/Foo_Bar.baz-1.0.dist-info/METADATA",
        "Name: Foo_Bar.baz\nVersion: 1.0\n",
    )
    problems: list[str] = []
    packages = collect_python_packages(Host(str(tmp_path)), problems)
    assert [(p.name, p.version, p.interpreter, p.location) for p in packages] == [
        ("foo-bar-baz", "1.0", "/usr/bin/python3.11", "/usr/local/lib/python3.11/dist-packages"),
        ("jinja2", "3.1.2", "/usr/bin/python3.11", "/usr/lib/python3/dist-packages"),
        ("requests", "2.28.1", "/usr/bin/python3.11", "/usr/lib/python3/dist-packages"),
        ("six", "1.16.0", "/usr/bin/python3.11", "/usr/lib/python3/dist-packages"),
    ]
    assert len(problems) == 1
    assert "broken.dist-info" in problems[0]


def test_a_host_without_python_has_none(tmp_path: Path) -> None:
    assert collect_python_packages(Host(str(tmp_path)), []) == []


def test_names_are_normalised_per_pep_503() -> None:
    assert normalize_name("Foo__Bar.-baz") == "foo-bar-baz"
    with pytest.raises(CollectorError, match="METADATA"):
        parse_metadata("Name: x\n")
