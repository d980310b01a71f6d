"""Time series for a market: candles, open interest, funding, realized and swept liquidations."""

from __future__ import annotations

from datetime import datetime

from api.types.base import described, field, renamed
from models.liquidations_store import RealizedBar
from models.market_data_store import CandleBar, FundingPoint, OpenInterestBar


@described
class Candle:
    """An OHLCV bar (aggregated from the base bars when the interval is longer)."""

    start: datetime = field("Bar open time (the bar covers the interval from here).")
    open: float = field("Open price.")
    high: float = field("High price.")
    low: float = field("Low price.")
    close: float = field("Close price.")
    volume: float | None = field("Volume in base units, if the venue reports it.")
    taker_buy_volume: float | None = field("Taker-buy volume in base units, if reported.")
    ts: datetime = field("Bar open time.", deprecation_reason=renamed("start"))

    @classmethod
    def of(cls, bar: CandleBar) -> Candle:
        return cls(
            start=bar.ts,
            ts=bar.ts,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            taker_buy_volume=bar.taker_buy_volume,
        )


@described
class OpenInterestPoint:
    """Open interest at the end of the bar opening at ``start``."""

    start: datetime = field("Bar open time; the value is at the bar's end.")
    open_interest: float | None = field("Open interest in base units or contracts.")
    open_interest_usd: float | None = field("Open interest in USD.")
    ts: datetime = field(
        "Bar open time; the value is at the bar's end.", deprecation_reason=renamed("start")
    )

    @classmethod
    def of(cls, bar: OpenInterestBar) -> OpenInterestPoint:
        return cls(
            start=bar.ts,
            ts=bar.ts,
            open_interest=bar.open_interest,
            open_interest_usd=bar.open_interest_usd,
        )


@described
class FundingRatePoint:
    """A settled funding rate."""

    at: datetime = field("Funding time (the instant the rate settled).")
    funding_rate: float = field("Rate as a fraction per interval (0.0001 = 0.01 %).")
    ts: datetime = field("Funding time.", deprecation_reason=renamed("at"))

    @classmethod
    def of(cls, point: FundingPoint) -> FundingRatePoint:
        return cls(at=point.ts, ts=point.ts, funding_rate=point.funding_rate)


@described
class RealizedLiquidationBar:
    """Liquidations that really happened in one bar, as a source reported them."""

    start: datetime = field("Bar open time.")
    timeframe: str = field("Bar length, e.g. 30m or 5m.")
    source: str = field("Where the totals come from (coinglass, binance-forceorder…).")
    exchange: str = field("ccxt exchange id, or * for a multi-venue total named by the source.")
    long_usd: float = field("Long positions liquidated (USD).")
    short_usd: float = field("Short positions liquidated (USD).")
    events: int | None = field("Number of liquidation orders, if known.")
    lower_bound: bool = field("True when the source is known to undercount.")
    note: str | None = field("Provenance note.")
    ts: datetime = field("Bar open time.", deprecation_reason=renamed("start"))

    @classmethod
    def of(cls, bar: RealizedBar) -> RealizedLiquidationBar:
        return cls(
            start=bar.ts,
            ts=bar.ts,
            timeframe=bar.timeframe,
            source=bar.source,
            exchange=bar.exchange,
            long_usd=bar.long_usd,
            short_usd=bar.short_usd,
            events=bar.events,
            lower_bound=bar.lower_bound,
            note=bar.note,
        )


@described
class SweptBar:
    """Per bar: the notional the model says was liquidated (levels the price traded through),
    beside the realized liquidations stored for the same bar — the accuracy feed."""

    start: datetime = field("Bar open time.")
    bars: int = field("Base bars of model output summed into this bar.")
    predicted_long_usd: float = field("Long USD the model says was liquidated.")
    predicted_short_usd: float = field("Short USD the model says was liquidated.")
    realized_long_usd: float | None = field(
        "Realized long liquidations for this bar, if a source covers it at this interval."
    )
    realized_short_usd: float | None = field("Realized short liquidations for this bar.")
    realized_source: str | None = field(
        "source/exchange of the realized figures (e.g. coinglass/* for Binance+Bybit+OKX)."
    )
    realized_lower_bound: bool | None = field("True when the realized figure undercounts.")
    ts: datetime = field("Bar open time.", deprecation_reason=renamed("start"))
