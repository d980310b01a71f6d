"""Every import points down (docs/architecture.md): each room imports only the rooms below it,
and no module imports itself back through others (no import circle, not even inside a room)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# room → the rooms it may import (the floors below it). Nothing imports `cli`, the top floor.
ALLOWED: dict[str, set[str]] = {
    "maps": set(),
    "engine": {"maps"},
    "liqmap": set(),
    "models": {"liqmap", "maps"},
    "jobs": {"liqmap", "models", "engine", "maps"},
    "api": {"liqmap", "models", "engine", "maps"},
    "cli": {"liqmap", "models", "engine", "maps", "jobs", "api"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for room in ALLOWED:
        for path in (REPO / room).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import names (the longest known prefix), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Project modules ``module`` imports (at any depth of the file, lazy imports included)."""
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_the_floors_below(room: str) -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == room
        for target in targets
        if target.split(".")[0] not in ALLOWED[room] | {room}
    )
    assert not offenders, offenders


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module: the import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    assert not circles(GRAPH), circles(GRAPH)


def test_the_checks_see_what_they_look_for() -> None:
    """Guards against a check that cannot fail: a hand-built circle is found, a lazy import
    inside a function counts, and the graph holds the arrows we know are there."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert "cli.runner" in GRAPH["cli.main"]  # imported lazily, inside cmd_up
    assert "maps.grid" in GRAPH["engine.model"]
