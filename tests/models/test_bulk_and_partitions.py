"""COPY-staging upserts are idempotent; monthly partitions appear and absorb default rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.bulk import copy_upsert
from models.partitions import ensure_month_partitions, month_starts, partition_name


async def _market(conn) -> int:  # type: ignore[no-untyped-def]
    await conn.execute(text("INSERT INTO exchanges (id, name) VALUES ('binanceusdm', 'Binance')"))
    return (
        await conn.execute(
            text(
                "INSERT INTO markets (exchange_id, symbol, exchange_symbol, base, quote, settle, "
                "linear, contract_size) VALUES ('binanceusdm','BTC/USDT:USDT','BTCUSDT','BTC',"
                "'USDT','USDT',true,1) RETURNING id"
            )
        )
    ).scalar_one()


def test_month_starts_cross_year() -> None:
    got = month_starts(datetime(2025, 11, 30, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert [(m.year, m.month) for m in got] == [(2025, 11), (2025, 12), (2026, 1), (2026, 2)]


async def test_copy_upsert_is_idempotent_and_last_write_wins(db: AsyncEngine) -> None:
    t0 = datetime(2026, 5, 31, 23, 50, tzinfo=UTC)
    cols = (
        "market_id",
        "timeframe",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "taker_buy_volume",
    )
    async with db.begin() as conn:
        market = await _market(conn)
        rows = [
            (market, "5m", t0 + timedelta(minutes=5 * i), 1.0, 2.0, 0.5, 1.5, None, None)
            for i in range(6)
        ]
        # a duplicate key inside the batch: the later row wins
        rows.append((market, "5m", t0, 9.0, 9.0, 9.0, 9.0, None, None))
        assert await copy_upsert(conn, "candles", cols, rows) == 6
    async with db.begin() as conn:
        assert await copy_upsert(conn, "candles", cols, rows) == 6  # re-run: same keys, updated
        count = (await conn.execute(text("SELECT count(*) FROM candles"))).scalar_one()
        first = (
            await conn.execute(text("SELECT close FROM candles WHERE ts = :t"), {"t": t0})
        ).scalar_one()
    assert count == 6
    assert first == 9.0


class CrashBeforeCommit(Exception):
    """Raised by the test itself after its write: nothing else may raise it."""


async def test_rollback_leaves_nothing(db: AsyncEngine) -> None:
    cols = ("market_id", "timeframe", "ts", "open", "high", "low", "close")
    with pytest.raises(CrashBeforeCommit):
        async with db.begin() as conn:
            market = await _market(conn)
            written = await copy_upsert(
                conn,
                "candles",
                cols,
                [(market, "5m", datetime(2026, 5, 1, tzinfo=UTC), 1, 1, 1, 1)],
            )
            # the write happened inside the transaction (so the rollback has something to undo)
            assert written == 1
            inside = (await conn.execute(text("SELECT count(*) FROM candles"))).scalar_one()
            assert inside == 1
            raise CrashBeforeCommit("crash after the write, before commit")
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM candles"))).scalar_one() == 0
        assert (await conn.execute(text("SELECT count(*) FROM markets"))).scalar_one() == 0


async def test_partitions_created_and_default_rows_moved(db: AsyncEngine) -> None:
    cols = ("market_id", "timeframe", "ts", "open", "high", "low", "close")
    may = datetime(2031, 5, 10, tzinfo=UTC)
    june = datetime(2031, 6, 2, tzinfo=UTC)
    async with db.begin() as conn:
        market = await _market(conn)
        # written before any monthly partition exists: lands in the default partition
        await copy_upsert(conn, "candles", cols, [(market, "5m", may, 1, 1, 1, 1)])
    async with db.begin() as conn:
        await ensure_month_partitions(conn, "candles", may, june)
        await ensure_month_partitions(conn, "candles", may, june)  # idempotent
        await copy_upsert(conn, "candles", cols, [(market, "5m", june, 2, 2, 2, 2)])
    async with db.connect() as conn:
        where = {
            r[0]: r[1]
            for r in (
                await conn.execute(
                    text("SELECT tableoid::regclass::text, count(*) FROM candles GROUP BY 1")
                )
            ).all()
        }
    assert where == {
        partition_name("candles", may.replace(day=1)): 1,
        partition_name("candles", june.replace(day=1)): 1,
    }
