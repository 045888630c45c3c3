"""The collectors stay runnable on Python 3.9: its grammar, and none of the later APIs we would reach for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODULES = sorted((Path(__file__).resolve().parents[3] / "src" / "patchday" / "collectors").glob("*.py"))
_LATER_KEYWORDS = {("dataclass", "slots"), ("dataclass", "kw_only"), ("zip", "strict")}
_LATER_NAMES = {("datetime", "UTC"), ("enum", "StrEnum"), ("typing", "Self"), ("typing", "TypeAlias")}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_parses_with_the_python_39_grammar(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_uses_no_later_api(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    later: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            later += [f"{func}({k.arg}=)" for k in node.keywords if (func, k.arg) in _LATER_KEYWORDS]
        elif isinstance(node, ast.ImportFrom) and node.module:
            later += [f"{node.module}.{a.name}" for a in node.names if (node.module, a.name) in _LATER_NAMES]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in _LATER_NAMES
        ):
            later.append(f"{node.value.id}.{node.attr}")
    assert later == []
    assert "from __future__ import annotations" in path.read_text(encoding="utf-8") or path.name == "__init__.py"
