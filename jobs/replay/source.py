"""Read the real exchange data in ``../shared/data`` as the recordings' single source of values.

Numbers are kept as the CSV's own strings so that a replayed payload parses to exactly the float
the CSV holds; anything derived (open interest in base units, funding events, close times) is
computed here, once, and named in the recording metadata.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

BINANCE_CSV = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"
INSTRUMENT_SPECS = Path("exchange_specs") / "perp_instrument_specs_BTC_ETH.json"
TIERS_LATEST = Path("exchange_specs") / "binance_leverage_tiers_BTC_ETH_latest.json"
FORCE_ORDERS = Path("forceorder") / "binance_usdm_forceorder_captures_normalized.csv"

BAR_MS = 300_000  # the shared Binance file is 5-minute bars
FUNDING_INTERVAL_MS = 8 * 3_600_000  # Binance BTCUSDT settles at 00:00, 08:00, 16:00 UTC
RECORDED_SYMBOL = "BTCUSDT"  # the only market with recorded time series


def is_shared_data_dir(directory: Path) -> bool:
    return (directory / BINANCE_CSV).is_file()


@dataclass(frozen=True, slots=True)
class Bar:
    timestamp: int  # bar open, ms
    open: str
    high: str
    low: str
    close: str
    open_interest_usd: str
    last_funding_rate: str


@dataclass(frozen=True, slots=True)
class FundingEvent:
    funding_time: int
    rate: str


@dataclass(frozen=True, slots=True)
class ForceOrder:
    symbol: str  # Binance id, e.g. "BTCUSDT"
    side: str  # side of the liquidation order: SELL closes a long
    order_type: str
    time_in_force: str
    orig_qty: str
    price: str
    avg_price: str | None  # None where the capture did not keep it
    status: str
    last_filled_qty: str
    filled_accum_qty: str
    trade_time: int


@dataclass(frozen=True, slots=True)
class SharedData:
    root: Path
    bars: tuple[Bar, ...]
    instrument_specs: dict[str, Any]
    tiers_latest: dict[str, Any]
    force_orders: tuple[ForceOrder, ...]

    @property
    def now_ms(self) -> int:
        """The replay clock: the last instant the recording covers.

        The source says its last bar "may be partial", so the capture is taken to have ended
        inside that bar, at its last millisecond (Binance's kline close time): the bar is
        recorded but not closed.
        """
        return self.bars[-1].timestamp + BAR_MS - 1


@lru_cache(maxsize=4)
def load_shared_data(root: Path) -> SharedData:
    root = root.resolve()
    with (root / BINANCE_CSV).open(newline="") as handle:
        bars = tuple(
            Bar(
                timestamp=int(row["timestamp"]),
                open=row["price_open"],
                high=row["price_high"],
                low=row["price_low"],
                close=row["price_close"],
                open_interest_usd=row["open_interest_usd"],
                last_funding_rate=row["last_funding_rate"],
            )
            for row in csv.DictReader(handle)
        )
    with (root / INSTRUMENT_SPECS).open() as handle:
        specs = json.load(handle)
    with (root / TIERS_LATEST).open() as handle:
        tiers = json.load(handle)
    orders: tuple[ForceOrder, ...] = ()
    if (root / FORCE_ORDERS).is_file():
        with (root / FORCE_ORDERS).open(newline="") as handle:
            orders = tuple(
                ForceOrder(
                    symbol=row["symbol"],
                    side=row["side"],
                    order_type=row["order_type"],
                    time_in_force=row["time_in_force"],
                    orig_qty=row["orig_qty"],
                    price=row["price"],
                    avg_price=None if row["avg_price"] in ("", "None") else row["avg_price"],
                    status=row["status"],
                    last_filled_qty=row["last_filled_qty"],
                    filled_accum_qty=row["filled_accum_qty"],
                    trade_time=int(row["trade_time_ms"]),
                )
                for row in csv.DictReader(handle)
            )
    return SharedData(root, bars, specs, tiers, orders)


def open_interest_base(bars: tuple[Bar, ...], index: int) -> str:
    """Open interest in BTC of row ``index``, derived (the CSV keeps only USD).

    The CSV's ``open_interest_usd`` on the row opening at ``t`` is Binance's snapshot stamped
    ``t``: taken at ``t``, the end of the previous bar (its changes follow that bar's price
    move, see tests/jobs/test_open_interest_alignment.py). The amount is that USD value over
    the price at the snapshot: the previous bar's close; the first row has no previous bar and
    uses its own open.
    """
    bar = bars[index]
    price = bars[index - 1].close if index > 0 else bar.open
    return repr(float(bar.open_interest_usd) / float(price))


def funding_events(bars: tuple[Bar, ...]) -> list[FundingEvent]:
    """Settled funding events derived from ``last_funding_rate``.

    The column steps to a new value at a settlement (00/08/16 UTC) on that bar or the next one,
    so the event at settlement T carries the value shown by the bar opening at T + 5 min. The
    first bar predates the first settlement inside the window; its value is the previous
    settlement's rate, recorded at that settlement time.
    """
    by_time = {bar.timestamp: bar for bar in bars}
    first, last = bars[0].timestamp, bars[-1].timestamp
    events: list[FundingEvent] = []
    previous = first - first % FUNDING_INTERVAL_MS
    if previous < first:
        events.append(FundingEvent(previous, bars[0].last_funding_rate))
    settle = previous + FUNDING_INTERVAL_MS
    while settle + BAR_MS <= last:
        after = by_time.get(settle + BAR_MS)
        if after is not None:
            events.append(FundingEvent(settle, after.last_funding_rate))
        settle += FUNDING_INTERVAL_MS
    return events


def tiers_valid_from_date(tiers: dict[str, Any]) -> str:
    """The date the shipped tier table was last changed upstream, e.g. "2024-10-24"."""
    stamp = str(tiers["_source"].get("file_last_changed_commit", "")).split()
    return stamp[-1][:10] if stamp else "unknown"
