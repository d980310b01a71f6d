"""Bulk idempotent writes: COPY into a temporary staging table, then one INSERT … ON CONFLICT.

This is the only write path for market data. It runs inside the caller's transaction, so rows and
the watermark that covers them commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from models.base import Base


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def copy_upsert(
    conn: AsyncConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    update: bool = True,
    unique: bool = False,
) -> int:
    """Upsert ``rows`` (tuples in ``columns`` order) into ``table`` keyed by its primary key.

    Duplicate keys inside one batch keep the last row. ``unique=True`` is the caller's promise
    that the batch has no duplicate keys (e.g. strictly increasing timestamps of one series): the
    de-duplicating sort is skipped. Returns the number of rows written.
    """
    if not rows:
        return 0
    meta = Base.metadata.tables[table]
    key = [c.name for c in meta.primary_key.columns]
    missing = set(key) - set(columns)
    if missing:
        raise ValueError(f"{table}: rows lack primary-key columns {sorted(missing)}")
    stage = f"_stage_{table}"
    # Statements go through SQLAlchemy so they join the caller's transaction (the asyncpg adapter
    # begins it lazily); only COPY needs the raw driver, and it then runs inside that transaction.
    await conn.exec_driver_sql(
        # INCLUDING DEFAULTS: columns the caller leaves out (fetched_at …) take the table's default
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
        f"(LIKE {table} INCLUDING DEFAULTS, _seq bigserial) ON COMMIT DELETE ROWS"
    )
    await conn.exec_driver_sql(f"TRUNCATE {stage}")
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection  # asyncpg.Connection
    assert driver is not None
    await driver.copy_records_to_table(stage, records=rows, columns=list(columns))
    cols = ", ".join(_quote(c) for c in columns)
    keys = ", ".join(_quote(c) for c in key)
    others = [c for c in columns if c not in key]
    if update and others:
        action = "DO UPDATE SET " + ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in others)
    else:
        action = "DO NOTHING"
    if unique:
        select = f"SELECT {cols} FROM {stage}"
    else:  # the last of several rows with one key wins (ON CONFLICT cannot touch a row twice)
        select = f"SELECT DISTINCT ON ({keys}) {cols} FROM {stage} ORDER BY {keys}, _seq DESC"
    result = await conn.exec_driver_sql(
        f"INSERT INTO {table} ({cols}) {select} ON CONFLICT ({keys}) {action}"
    )
    await conn.exec_driver_sql(f"TRUNCATE {stage}")
    return int(result.rowcount)
