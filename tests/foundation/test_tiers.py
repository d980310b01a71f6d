"""The unit tier stays what it says: no test in it can reach a PostgreSQL server.

A fixture that starts a server of its own (one yielding a ``PrivatePostgres``) must be listed in
``tests/conftest.py``'s SERVER_FIXTURES, so every test using it is classed integration.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import SERVER_FIXTURES

TESTS = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.unit


def server_fixtures() -> set[str]:
    """Names of fixtures (decorated functions) whose return annotation names PrivatePostgres."""
    found = set()
    for path in TESTS.rglob("*.py"):
        source = path.read_text()
        if "PrivatePostgres" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef) or node.returns is None:
                continue
            fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if fixture and "PrivatePostgres" in ast.unparse(node.returns):
                found.add(node.name)
    return found


def test_every_fixture_that_starts_postgres_makes_its_tests_integration() -> None:
    found = server_fixtures()
    assert {"private_pg", "socket_pg"} <= found  # the walk finds the known ones
    assert found <= SERVER_FIXTURES, found - SERVER_FIXTURES
