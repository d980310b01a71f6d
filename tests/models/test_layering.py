"""Storage is below the jobs: nothing in models/ imports jobs/ or api/ (nor does the engine)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("models", ("jobs", "api")), ("engine", ("jobs", "api", "models", "liqmap"))],
)
def test_lower_layers_never_import_upper_ones(package: str, forbidden: tuple[str, ...]) -> None:
    offenders = {
        f"{path.relative_to(REPO)}: {module}"
        for path in sorted((REPO / package).rglob("*.py"))
        for module in _imported_modules(path)
        if module.split(".")[0] in forbidden
    }
    assert not offenders, sorted(offenders)
