"""Monthly range partitions, created ahead of writes.

Each partitioned table has a DEFAULT partition (created by the first migration) so an insert never
fails; writers call :func:`ensure_month_partitions` for the months they are about to touch so rows
land in ``<table>_yYYYYmMM`` children that can later be detached, archived or distributed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.base import PARTITIONED_TABLES
from models.queries import query

# Partition DDL takes an advisory lock per table (this id, hashtext(table)) so concurrent
# writers never race on CREATE TABLE, while writers of different tables never wait on each
# other: the lock lasts until the writer's transaction ends, slow writes included.
_PARTITION_LOCK = 7405121


def month_starts(first: datetime, last: datetime) -> list[datetime]:
    """First instants (UTC) of every month touched by [first, last]."""
    year, month = first.year, first.month
    out: list[datetime] = []
    while (year, month) <= (last.year, last.month):
        out.append(datetime(year, month, 1, tzinfo=UTC))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


async def ensure_month_partitions(
    conn: AsyncConnection, table: str, first: datetime, last: datetime
) -> None:
    """Create the monthly partitions of ``table`` covering [first, last] if they are missing.

    Rows already sitting in the default partition for a month are moved into the new child in the
    same transaction (PostgreSQL refuses to attach a range the default partition still holds).
    """
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table} is not a partitioned table")
    months = month_starts(first, last)
    existing = set((await conn.execute(query("partitions_of"), {"table": table})).scalars())
    missing = [m for m in months if partition_name(table, m) not in existing]
    if not missing:
        return
    await conn.execute(query("lock_partition_ddl"), {"key": _PARTITION_LOCK, "table": table})
    for start in missing:
        name = partition_name(table, start)
        end = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
        exists = (await conn.execute(query("relation_exists"), {"name": name})).scalar()
        if exists:
            continue
        # DDL names tables, so it is built here; table and bounds come from code, never from
        # user input.
        bounds = f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        await conn.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
        await conn.execute(
            text(
                f"WITH moved AS (DELETE FROM {table}_default WHERE ts >= :s AND ts < :e "
                f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
            ),
            {"s": start, "e": end},
        )
        await conn.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES {bounds}"))
