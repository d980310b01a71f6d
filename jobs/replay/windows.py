"""Replay windows: the recorded periods a replay's clock can run in.

The shared data holds two periods that do not overlap: Binance BTCUSDT with open interest
(2026-05-25 → 2026-06-22), and Bybit BTCUSDT, OKX BTC-USDT-SWAP and Binance ETHUSDT with candles
and funding but no open interest (2026-01-01 → 2026-02-08), beside Hyperliquid's top-trader
liquidation levels (2026-01-26 → 2026-02-02). A window names one period: the replay clock reads
its end (the close of the last recorded bar of any of its series), and by default the replay
tracks the markets recorded in it. Every venue still answers only its own recorded values; a
request outside what it recorded gets what that venue sends for an empty range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.replay.source import SharedData


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    name: str
    description: str
    # (exchange id, unified symbol) of the 5-minute series recorded in this window
    series: tuple[tuple[str, str], ...]
    # exchanges tracked in it although they have no candle series there (known positions)
    without_series: tuple[str, ...] = ()

    @property
    def exchanges(self) -> tuple[str, ...]:
        seen = dict.fromkeys([e for e, _ in self.series] + list(self.without_series))
        return tuple(seen)


DEFAULT_WINDOW = "binance-btc-2026-05"

WINDOWS: dict[str, ReplayWindow] = {
    w.name: w
    for w in (
        ReplayWindow(
            DEFAULT_WINDOW,
            "Binance USDⓈ-M BTCUSDT 5m klines, open interest and funding, 2026-05-25 → "
            "2026-06-22: the one recorded period with open interest, so the one with model maps",
            (("binanceusdm", "BTC/USDT:USDT"),),
            without_series=("hyperliquid",),
        ),
        ReplayWindow(
            "venues-2026-01",
            "Bybit BTCUSDT 5m, OKX BTC-USDT-SWAP 1m (5m derived) and Binance ETHUSDT 5m klines "
            "with funding, 2026-01-01 → 2026-02-08, and Hyperliquid top-trader liquidation "
            "levels 2026-01-26 → 2026-02-02; no venue recorded open interest here, so there "
            "are no model positions and no maps",
            (
                ("binanceusdm", "ETH/USDT:USDT"),
                ("bybit", "BTC/USDT:USDT"),
                ("okx", "BTC/USDT:USDT"),
            ),
            without_series=("hyperliquid",),
        ),
    )
}


def window_named(name: str) -> ReplayWindow:
    if name not in WINDOWS:
        raise ValueError(f"unknown replay window {name!r}; valid: {', '.join(WINDOWS)}")
    return WINDOWS[name]


def window_bounds(data: SharedData, window: ReplayWindow) -> tuple[int, int]:
    """(first bar open, last recorded millisecond) over the window's series."""
    found = [s for e, sym in window.series if (s := data.get(e, sym)) is not None]
    if not found:
        raise ValueError(f"the shared data has none of the series of replay window {window.name}")
    return min(s.first_ms for s in found), max(s.end_ms for s in found)


def windows_metadata(data: SharedData, exchange_id: str) -> dict[str, dict[str, Any]]:
    """Per window: its clock (``now_ms``), first bar, description and the markets this exchange
    recorded in it (what a replay tracks there by default)."""
    out: dict[str, dict[str, Any]] = {}
    for window in WINDOWS.values():
        start, end = window_bounds(data, window)
        out[window.name] = {
            "now_ms": end,
            "start_ms": start,
            "description": window.description,
            "tracked": exchange_id in window.exchanges,
            "markets": [s for e, s in window.series if e == exchange_id and data.get(e, s)],
        }
    return out
