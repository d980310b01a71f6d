"""Which maintenance-margin tier table applies to which bars, in the engine's units.

Tier tables change over time and every fetch is stored with its ``valid_from``. Materialization
walks the bars in periods: positions opened in a period take that period's table, the way they
would have on the exchange (point-in-time), and a table refresh that changes nothing changes no
period. The first stored table also stands for the bars before it (no older table is known).

Units: the engine keys linear tiers on quote notional (USD) and inverse tiers on coin notional.
Venues publish them in quote, base coin or contracts (``notional_unit``); tables in another unit
are converted at the market's close when the table became valid, a price fixed by stored data so
an incremental run and a full recompute convert alike.

A market with no stored tiers (the tiers job has not run yet, or failed) falls back to the Binance
table the project ships for the same base asset (BTC's when there is none), labelled as such in
the model assumptions every API answer carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from engine.tiers import MarginTiers, load_shipped_binance_tiers, shipped_binance_symbols
from models.market_store import MarketRow, StoredTier
from models.records import to_ms


@dataclass(frozen=True)
class TierPeriod:
    """A tier table and the first bar (epoch ms, inclusive) it applies to."""

    start_ms: int | None  # None: from the first bar
    tiers: MarginTiers
    label: str  # where the table came from, for the model assumptions
    reference_price: float  # the price unit conversions (and inverse profiles) use


def _scale(unit: str, linear: bool, contract_size: float, price: float) -> float:
    """Factor turning a notional in ``unit`` into the engine's unit for this market."""
    if linear:  # engine unit: quote (USD)
        factors = {"quote": 1.0, "base": price, "contracts": contract_size * price}
    else:  # engine unit: coin; inverse contracts are worth contract_size USD each
        factors = {"quote": 1.0 / price, "base": 1.0, "contracts": contract_size / price}
    if unit not in factors:
        raise ValueError(f"unknown tier notional unit {unit!r}; known: {', '.join(factors)}")
    return factors[unit]


def _table(rows: Sequence[StoredTier], market: MarketRow) -> TierPeriod:
    first = rows[0]
    price = float(first.close_at if first.close_at is not None else first.first_close or 0.0)
    units = {r.notional_unit for r in rows}
    if len(units) != 1:
        raise ValueError(f"tier table mixes notional units {sorted(units)}")
    unit = units.pop()
    needs_price = not (unit == "quote" and market.linear) and not (
        unit == "base" and not market.linear
    )
    if needs_price and not price > 0:
        raise ValueError("no candle to convert the tier table's units at")
    factor = _scale(unit, market.linear, market.contract_size, price) if needs_price else 1.0
    tiers = MarginTiers(
        floor=np.array([r.min_notional for r in rows], dtype=np.float64) * factor,
        cap=np.array([r.max_notional for r in rows], dtype=np.float64) * factor,
        maintenance_margin_rate=np.array([r.maintenance_margin_rate for r in rows]),
        maintenance_amount=np.array([r.maintenance_amount for r in rows], dtype=np.float64)
        * factor,
        max_leverage=np.array([r.max_leverage for r in rows], dtype=np.float64),
    )
    label = f"{first.source} (valid from {first.valid_from:%Y-%m-%d})"
    return TierPeriod(to_ms(first.valid_from), tiers, label, price)


def fallback_period(market: MarketRow, reference_price: float) -> TierPeriod:
    """The shipped Binance table for the market's base asset, as a labelled stand-in."""
    shipped = shipped_binance_symbols()
    symbol = f"{market.base}/USDT:USDT"
    if symbol not in shipped:
        symbol = "BTC/USDT:USDT"
    tiers, source, valid_from = load_shipped_binance_tiers(symbol)
    if not market.linear:  # the shipped tables are in USDT: express them in coin
        if not reference_price > 0:
            raise ValueError("no candle to convert the fallback tier table at")
        tiers = MarginTiers(
            floor=tiers.floor / reference_price,
            cap=tiers.cap / reference_price,
            maintenance_margin_rate=tiers.maintenance_margin_rate,
            maintenance_amount=tiers.maintenance_amount / reference_price,
            max_leverage=tiers.max_leverage,
        )
    label = f"fallback {source} for {symbol} ({valid_from}); no tiers stored for this market"
    return TierPeriod(None, tiers, label, reference_price)


def tier_periods(rows: Sequence[StoredTier], market: MarketRow) -> list[TierPeriod]:
    """Stored tier rows (``models.market_store.tier_tables``) → periods, oldest first.

    Consecutive tables with the same tiers merge into one period, so re-fetching an unchanged
    table neither splits the walk nor changes a single number.
    """
    periods: list[TierPeriod] = []
    for _, group in groupby(rows, key=lambda r: r.valid_from):
        period = _table(list(group), market)
        if periods and _same(periods[-1].tiers, period.tiers):
            continue
        periods.append(period)
    if periods:
        first = periods[0]
        periods[0] = TierPeriod(None, first.tiers, first.label, first.reference_price)
    return periods


def _same(a: MarginTiers, b: MarginTiers) -> bool:
    return fingerprint(a) == fingerprint(b)


def fingerprint(tiers: MarginTiers) -> str:
    """A short digest of a table's numbers (what decides whether two tables differ)."""
    digest = hashlib.sha256()
    for values in (
        tiers.floor,
        tiers.cap,
        tiers.maintenance_margin_rate,
        tiers.maintenance_amount,
        tiers.max_leverage,
    ):
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]
