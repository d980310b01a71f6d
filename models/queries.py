"""The named SQL statements of ``models/queries.sql``, loaded once, and what runs them.

Every statement liqmap runs against its tables lives in that one file, under a name, with a line
saying what it answers (procrastinate keeps its SQL the same way). The storage modules
(``models/*_store.py``) run them by name through small typed functions; nothing else writes SQL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Result, TextClause, text
from sqlalchemy.sql import Executable

QUERIES_FILE = Path(__file__).with_name("queries.sql")

# `-- name --` on a line of its own, then the `-- description` lines
_NAME = re.compile(r"(?:\n|^)-- ([a-z0-9_]+) --\n((?:-- .*\n)*)", re.MULTILINE)

# The tables a `{table}` statement may be run on (bar series keyed market, timeframe, ts).
BAR_TABLES = ("candles", "open_interest")


class Executor(Protocol):
    """What a storage function runs statements on: an ``AsyncConnection`` or an
    ``AsyncSession`` (the jobs hold connections, the API sessions)."""

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None, /
    ) -> Result[*tuple[Any, ...]]: ...


def parse(source: str) -> dict[str, str]:
    """name → statement of a queries file; trailing comments, blanks and ``;`` are dropped."""
    parts = _NAME.split(source)
    out: dict[str, str] = {}
    # parts: [header, name, description, body, name, description, body, …]
    for name, _description, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        if name in out:
            raise ValueError(f"{QUERIES_FILE.name}: query {name!r} is defined twice")
        lines = body.strip().splitlines()
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()
        statement = "\n".join(lines).rstrip().rstrip(";").rstrip()
        if not statement:
            raise ValueError(f"{QUERIES_FILE.name}: query {name!r} has no statement")
        out[name] = statement
    return out


QUERIES: Mapping[str, str] = parse(QUERIES_FILE.read_text())


@functools.cache
def query(name: str) -> TextClause:
    """The statement called ``name``, compiled once."""
    statement = QUERIES[name]
    if "{table}" in statement:
        raise ValueError(f"query {name!r} names its table: use query_on(name, table)")
    return text(statement)


@functools.cache
def query_on(name: str, table: str) -> TextClause:
    """The statement ``name`` run on one of :data:`BAR_TABLES` (its ``{table}``)."""
    if table not in BAR_TABLES:
        raise ValueError(f"{table!r} is not a bar series table ({', '.join(BAR_TABLES)})")
    statement = QUERIES[name]
    if "{table}" not in statement:
        raise ValueError(f"query {name!r} does not name a table")
    return text(statement.replace("{table}", table))
