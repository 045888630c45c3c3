"""The import parsers stay pure: standard library, packageurl and patchday.core only (no Django), so they test fast."""

from __future__ import annotations

from tests.unit.test_import_boundaries import SRC, imported_modules, is_allowed

ALLOWED = {"patchday.core", "patchday.connectors.imports", "packageurl", "icalendar"}


def test_import_parsers_import_no_django() -> None:
    offenders = [
        f"{path.relative_to(SRC)}: {module}"
        for path in sorted((SRC / "connectors" / "imports").rglob("*.py"))
        for module in sorted(imported_modules(path))
        if not is_allowed(module, ALLOWED)
    ]
    assert offenders == []
