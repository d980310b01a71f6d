"""The heatmap over time: two matrices (long, short) on a time × price grid, plus candles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pybase64
import strawberry

from api.context import ApiContext
from api.selection import SeriesSet
from api.types.base import described, field, resolver
from api.types.maps import Coverage, ModelInfo
from api.types.market_data import Candle
from api.types.scalars import Matrix, MatrixEncoding
from models import market_data_store


def encode_matrix(matrix: np.ndarray, encoding: MatrixEncoding) -> Matrix:
    """base64 of little-endian float32 row-major, or nested lists."""
    if encoding is MatrixEncoding.JSON:
        return Matrix(matrix.astype(np.float64).tolist())
    raw = np.ascontiguousarray(matrix, dtype="<f4")
    # pybase64 (SIMD): the standard library's codec is a large part of a big heatmap's time
    return Matrix(pybase64.b64encode(raw.tobytes()).decode("ascii"))


@dataclass
class HeatmapData:
    series: SeriesSet
    long_usd: np.ndarray  # rows × columns float32
    short_usd: np.ndarray
    candle_market_id: int | None
    timeframe: str


@described
class Heatmap:
    """USD at risk per price row and time column. Column j covers
    [start + j·stepSeconds, start + (j+1)·stepSeconds) and holds the map at that interval's close;
    row i covers [priceMin + i·priceStep, priceMin + (i+1)·priceStep)."""

    symbol: str = field("Unified symbol.")
    exchanges: list[str] = field("Exchanges included.")
    start: datetime = field("Start of the first column (aligned to stepSeconds).")
    end: datetime = field("End of the last column.")
    step_seconds: int = field("Width of one column in seconds.")
    columns: int = field("Number of time columns.")
    resolution: str = field("Stored snapshot resolution read (5m or 1h).")
    price_min: float = field("Lower edge of row 0 (USD).")
    price_step: float = field("Height of one row (USD).")
    rows: int = field("Number of price rows.")
    encoding: MatrixEncoding = field("Encoding of the long and short matrices.")
    max_usd: float = field("Largest value in either matrix (for a colour scale).")
    filled_columns: int = field("Columns with at least one stored snapshot (others are 0).")
    leverage_bands: list[str] = field(
        "Labels of the leverage bands the matrices sum (all five unless the leverage argument "
        "picked some; see LiquidationMap.leverageBands)."
    )
    data: strawberry.Private[HeatmapData]

    @resolver
    def long(self) -> Matrix:
        """Long positions at risk (USD), rows × columns."""
        return encode_matrix(self.data.long_usd, self.encoding)

    @resolver
    def short(self) -> Matrix:
        """Short positions at risk (USD), rows × columns."""
        return encode_matrix(self.data.short_usd, self.encoding)

    @resolver
    async def candles(self, info: strawberry.Info[ApiContext, None]) -> list[Candle]:
        """Price bars of the same columns, for overlay (the first exchange's market)."""
        info.context.cache.mark_unannounced()  # ingestion moves candles without a NOTIFY

        if self.data.candle_market_id is None:
            return []
        async with info.context.session() as session:
            bars = await market_data_store.candle_buckets(
                session,
                self.data.candle_market_id,
                self.data.timeframe,
                self.start,
                self.end,
                self.step_seconds,
                self.columns,
            )
        return [Candle.of(b) for b in bars]

    @resolver
    async def model(self, info: strawberry.Info[ApiContext, None]) -> ModelInfo:
        """The model version and assumptions behind the matrices."""
        return ModelInfo.of(await info.context.loaders.model.load(self.data.series))

    @resolver
    async def coverage(self, info: strawberry.Info[ApiContext, None]) -> Coverage:
        """Which exchanges and data the heatmap covers, and how fresh it is."""
        info.context.cache.mark_unannounced()
        return Coverage.of(await info.context.loaders.coverage.load(self.data.series))


@described
class HeatmapColumn:
    """One new snapshot column, pushed by the heatmapUpdated subscription."""

    symbol: str = field("Unified symbol.")
    exchanges: list[str] = field("Exchanges included.")
    at: datetime = field("The instant the column describes (close of its bar).")
    price: float = field("Price at that instant.")
    price_min: float = field("Lower edge of the column's first row.")
    price_step: float = field("Height of one row (USD).")
    rows: int = field("Number of rows.")
    encoding: MatrixEncoding = field("Encoding of long and short.")
    leverage_bands: list[str] = field(
        "Labels of the leverage bands long and short sum (all five unless the leverage argument "
        "picked some)."
    )
    long: Matrix = field("Long USD per row (a rows × 1 matrix).")
    short: Matrix = field("Short USD per row (a rows × 1 matrix).")
