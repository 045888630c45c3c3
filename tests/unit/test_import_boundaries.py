"""patchday.core (and later collectors, agent) may import only the standard library and each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "patchday"
PURE_PACKAGES = {
    # dateutil is the one library DESIGN.md names for RRULE expansion (patchday.core.windows); nothing else joins it.
    "core": {"patchday.core", "dateutil"},
    "collectors": {"patchday.collectors"},
    "agent": {"patchday.agent", "patchday.collectors"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def is_allowed(module: str, allowed_prefixes: set[str]) -> bool:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    return any(module == p or module.startswith(p + ".") for p in allowed_prefixes)


@pytest.mark.parametrize("package", sorted(p for p in PURE_PACKAGES if (SRC / p).exists()))
def test_pure_packages_import_only_the_standard_library(package: str) -> None:
    root = SRC / package
    offenders = [
        f"{path.relative_to(SRC)}: {module}"
        for path in sorted(root.rglob("*.py"))
        for module in sorted(imported_modules(path))
        if not is_allowed(module, PURE_PACKAGES[package])
    ]
    assert offenders == []


def test_the_boundary_check_catches_a_django_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import django.db\nfrom patchday.accounts import models\nimport json\n")
    bad = [m for m in imported_modules(module) if not is_allowed(m, {"patchday.core"})]
    assert sorted(bad) == ["django.db", "patchday.accounts"]
