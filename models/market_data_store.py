"""Market data series (candles, open interest, funding): writes, reads, holes (``queries.sql``).

Series writes take the caller's connection so a page of rows and the watermark that covers it
commit in one transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.bulk import copy_upsert
from models.partitions import ensure_month_partitions
from models.queries import Executor, query, query_on
from models.records import CandleRow, FundingRateRow, OpenInterestRow, to_datetime

# the datasets stored as bars in a table of their own (dataset → table)
BAR_SERIES_TABLES = {"candles": "candles", "open_interest": "open_interest"}
# every dataset a market has, in the order the API reports them
DATASETS = ("candles", "open_interest", "funding", "tiers")

CANDLE_COLUMNS = (
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
OI_COLUMNS = ("market_id", "timeframe", "ts", "open_interest", "open_interest_usd")
FUNDING_COLUMNS = ("market_id", "ts", "funding_rate")


@dataclass(frozen=True, slots=True)
class CandleBar:
    """OHLCV of one bar (several base bars aggregated when the bar is longer)."""

    ts: datetime  # bar open
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    taker_buy_volume: float | None


@dataclass(frozen=True, slots=True)
class OpenInterestBar:
    ts: datetime  # bar open; the value is at the bar's end
    open_interest: float | None
    open_interest_usd: float | None


@dataclass(frozen=True, slots=True)
class FundingPoint:
    ts: datetime
    funding_rate: float


@dataclass(frozen=True, slots=True)
class DatasetExtent:
    market_id: int
    dataset: str
    first_ts: datetime
    last_ts: datetime


@dataclass(frozen=True, slots=True)
class BarArrays:
    """Candles joined with open interest (USD, at bar end), ascending; only bars with both."""

    timestamp: np.ndarray  # int64 epoch ms, bar open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # NaN where unknown
    taker_buy_volume: np.ndarray  # NaN where unknown
    open_interest_usd: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.size)


# --- writes -------------------------------------------------------------------------------------
async def prepare_partitions(engine: AsyncEngine, dataset: str, timestamps: Sequence[int]) -> None:
    """Create the monthly partitions a page is about to write, in a short transaction of its own.

    Attaching a partition locks the parent's default partition and, for the foreign key, the
    markets table until the transaction ends; done inside a page's transaction, those locks
    would last as long as the page's write and stall every other writer creating a partition.
    Called before the page's transaction (which still checks, and creates what is missing).
    """
    if dataset not in BAR_SERIES_TABLES or not timestamps:
        return
    first, last = to_datetime(min(timestamps)), to_datetime(max(timestamps))
    async with engine.begin() as conn:
        await ensure_month_partitions(conn, BAR_SERIES_TABLES[dataset], first, last)


def _increasing(rows: Sequence[CandleRow | OpenInterestRow]) -> bool:
    """Strictly increasing timestamps: one series' rows with no key twice in the batch."""
    stamps = [r.timestamp for r in rows]
    return all(a < b for a, b in itertools.pairwise(stamps))


async def write_candles(
    conn: AsyncConnection, market_id: int, timeframe: str, rows: Sequence[CandleRow]
) -> int:
    if not rows:
        return 0
    stamps = [to_datetime(r.timestamp) for r in rows]
    await ensure_month_partitions(conn, "candles", min(stamps), max(stamps))
    records = [
        (market_id, timeframe, ts, r.open, r.high, r.low, r.close, r.volume, r.taker_buy_volume)
        for ts, r in zip(stamps, rows, strict=True)
    ]
    return await copy_upsert(conn, "candles", CANDLE_COLUMNS, records, unique=_increasing(rows))


async def write_open_interest(
    conn: AsyncConnection, market_id: int, timeframe: str, rows: Sequence[OpenInterestRow]
) -> int:
    if not rows:
        return 0
    stamps = [to_datetime(r.timestamp) for r in rows]
    await ensure_month_partitions(conn, "open_interest", min(stamps), max(stamps))
    records = [
        (market_id, timeframe, ts, r.open_interest, r.open_interest_usd)
        for ts, r in zip(stamps, rows, strict=True)
    ]
    return await copy_upsert(conn, "open_interest", OI_COLUMNS, records, unique=_increasing(rows))


async def write_funding_rates(
    conn: AsyncConnection, market_id: int, rows: Sequence[FundingRateRow]
) -> int:
    records = [(market_id, to_datetime(r.timestamp), r.funding_rate) for r in rows]
    return await copy_upsert(conn, "funding_rates", FUNDING_COLUMNS, records)


# --- reads for the API --------------------------------------------------------------------------
async def candle_buckets(
    conn: Executor,
    market_id: int,
    timeframe: str,
    start: datetime,
    end: datetime,
    step_s: int,
    limit: int,
) -> list[CandleBar]:
    """OHLCV aggregated to ``step_s`` buckets aligned to ``start`` (the base timeframe as is)."""
    params = {
        "market": market_id,
        "tf": timeframe,
        "start": start,
        "end": end,
        "start_s": start.timestamp(),
        "step_s": step_s,
        "limit": limit,
    }
    return [CandleBar(*r) for r in await conn.execute(query("candle_buckets"), params)]


async def open_interest(
    conn: Executor,
    market_id: int,
    timeframe: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[OpenInterestBar]:
    params = {"market": market_id, "tf": timeframe, "start": start, "end": end, "limit": limit}
    return [OpenInterestBar(*r) for r in await conn.execute(query("open_interest"), params)]


async def funding_rates(
    conn: Executor, market_id: int, start: datetime, end: datetime, limit: int
) -> list[FundingPoint]:
    params = {"market": market_id, "start": start, "end": end, "limit": limit}
    return [FundingPoint(*r) for r in await conn.execute(query("funding_rates"), params)]


async def dataset_extents(conn: Executor, market_ids: Sequence[int]) -> list[DatasetExtent]:
    """First and last stored timestamp per market and dataset (only those with rows)."""
    rows = await conn.execute(query("dataset_extents"), {"ids": list(market_ids)})
    return [DatasetExtent(*r) for r in rows]


async def missing_datasets(conn: Executor, market_ids: Sequence[int]) -> list[str]:
    """``exchange:dataset`` for every dataset a market has no rows of."""
    rows = await conn.execute(query("datasets_present"), {"ids": list(market_ids)})
    out = []
    for exchange, *present in rows:
        out += [f"{exchange}:{d}" for d, ok in zip(DATASETS, present, strict=True) if not ok]
    return out


# --- reads for the engine and the jobs ----------------------------------------------------------
async def bars_with_open_interest(
    conn: Executor, market_id: int, timeframe: str, after: datetime
) -> BarArrays:
    """The engine's input: bars after ``after`` that have both a candle and open interest."""
    params = {"market": market_id, "tf": timeframe, "after": after}
    rows = (await conn.execute(query("bars_with_open_interest"), params)).all()
    if not rows:
        empty = np.empty(0)
        return BarArrays(np.empty(0, np.int64), *(empty,) * 7)
    data = np.array([tuple(np.nan if v is None else v for v in r) for r in rows], dtype=np.float64)
    return BarArrays(
        timestamp=data[:, 0].astype(np.int64),
        open=data[:, 1],
        high=data[:, 2],
        low=data[:, 3],
        close=data[:, 4],
        volume=data[:, 5],
        taker_buy_volume=data[:, 6],
        open_interest_usd=data[:, 7],
    )


async def has_open_interest(conn: Executor, market_id: int, timeframe: str) -> bool:
    """Whether the market has any open interest stored at ``timeframe``: the venue's own
    numbers, without which the model places no positions."""
    params = {"market": market_id, "tf": timeframe}
    return bool((await conn.execute(query("has_open_interest"), params)).scalar())


async def first_close(conn: Executor, market_id: int, timeframe: str) -> float | None:
    """The market's oldest stored close."""
    params = {"market": market_id, "tf": timeframe}
    price: float | None = (await conn.execute(query("first_close"), params)).scalar()
    return price


async def first_missing_bar(
    conn: Executor,
    dataset: str,
    market_id: int,
    timeframe: str,
    step_ms: int,
    start: datetime,
) -> datetime:
    """The first bar open at or after ``start`` (on the grid) with no stored row."""
    table = BAR_SERIES_TABLES[dataset]
    params = {"market": market_id, "tf": timeframe, "start": start, "step_s": step_ms / 1000}
    present = await conn.execute(query_on("bar_stored", table), params)
    if present.first() is None:
        return start
    found: datetime = (await conn.execute(query_on("end_of_run", table), params)).scalar_one()
    return found


async def find_gaps(
    conn: Executor, table: str, market_id: int, timeframe: str, step_ms: int
) -> list[tuple[datetime, datetime]]:
    """Holes in a stored series: (last bar before the hole, first bar after it)."""
    params = {"market": market_id, "tf": timeframe, "step_s": step_ms / 1000}
    rows = await conn.execute(query_on("gaps", table), params)
    return [(r[0], r[1]) for r in rows.all()]
