"""The one file of named SQL: how it is read, and that every statement is there and used.

Statements themselves run in the integration tests of the code that calls them; these checks
need no database.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from models.queries import BAR_TABLES, QUERIES, parse, query, query_on

REPO = Path(__file__).resolve().parents[2]
CALL = re.compile(r"""\bquery(?:_on)?\(\s*"([a-z0-9_]+)\"""")


def test_a_file_is_read_into_named_statements() -> None:
    source = """-- header, then two statements --x
-- first_one --
-- What it answers,
-- on two lines.
SELECT 1
FROM t WHERE a = :a;

-- ===== a section title between statements =====

-- second_one --
-- Another.
SELECT :b
  -- a comment inside the statement stays
FROM u
"""
    assert parse(source) == {
        "first_one": "SELECT 1\nFROM t WHERE a = :a",
        "second_one": "SELECT :b\n  -- a comment inside the statement stays\nFROM u",
    }


def test_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'twice' is defined twice"):
        parse("-- twice --\n-- a\nSELECT 1;\n-- twice --\n-- b\nSELECT 2;\n")


def _names_called() -> dict[str, list[str]]:
    """query name → the modules that run it."""
    found: dict[str, list[str]] = {}
    # every .py below a top-level folder, the skipped folders left unwalked (globbing .venv's
    # ~9,000 files only to skip them took most of this test's time)
    # mutants/: mutmut's working copy (docs/reliability.md, Mutation testing)
    skipped = {".venv", "tests", "bench", "alembic", "mutants"}
    tops = [p for p in REPO.iterdir() if p.is_dir() and p.name not in skipped]
    for path in sorted(path for top in tops for path in top.glob("**/*.py")):
        for name in CALL.findall(path.read_text()):
            found.setdefault(name, []).append(str(path.relative_to(REPO)))
    return found


def test_every_statement_is_run_somewhere_and_every_name_run_exists() -> None:
    called = _names_called()
    assert set(called) - set(QUERIES) == set(), "run but not in queries.sql"
    assert set(QUERIES) - set(called) == set(), "in queries.sql but run nowhere"
    assert {m for modules in called.values() for m in modules} <= {
        *(str(p.relative_to(REPO)) for p in (REPO / "models").glob("*.py"))
    }, "statements are run by the storage layer only"


def test_statements_compile_and_tables_are_filled_from_a_fixed_set() -> None:
    for name, statement in QUERIES.items():
        if "{table}" in statement:
            for table in BAR_TABLES:
                assert table in query_on(name, table).text
            with pytest.raises(ValueError, match="not a bar series table"):
                query_on(name, "markets; DROP TABLE markets")
            with pytest.raises(ValueError, match="names its table"):
                query(name)
        else:
            assert query(name).text == statement
    with pytest.raises(KeyError):
        query("no_such_query")


SQL_BUILDERS = {"text", "select", "insert", "update", "delete"}
# Outside models/, only these may still build SQL: the app's schema-revision check at start-up
# (api/app.py) and the database bootstrap (liqmap/database.py: CREATE DATABASE, SELECT 1).
ALLOWED = {"api/app.py", "liqmap/database.py"}


def test_no_sql_is_built_outside_the_storage_layer() -> None:
    offenders = []
    for room in ("maps", "engine", "liqmap", "jobs", "api", "cli"):
        for path in sorted((REPO / room).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            if relative in ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "sqlalchemy"
                ):
                    names = {a.name for a in node.names} & SQL_BUILDERS
                    if names:
                        offenders.append(f"{relative} imports {sorted(names)}")
    assert offenders == []
