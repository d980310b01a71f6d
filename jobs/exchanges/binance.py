"""Binance USDⓈ-M futures (``binanceusdm``).

Quirks isolated here:

* candles come from the raw ``GET /fapi/v1/klines`` (``fapiPublicGetKlines``) because ccxt's
  ``parse_ohlcv`` drops the taker-buy base volume (kline index 9); up to 1500 bars a request;
* open-interest history (``/futures/data/openInterestHist``) exists for the last 30 days only:
  requests start no earlier than that (older history comes from the archive importer). Its
  ``timestamp`` is the instant of the snapshot ("end time of the period"), i.e. the end of the
  bar that opened one period earlier, exactly like the archive's ``create_time``: both are
  stored at that bar's open (see ``ExchangeAdapter.fetch_open_interest``);
* leverage brackets need API keys; without them the adapter returns the dated tier table the
  engine ships (``engine/data``, read by ``engine.tiers.load_shipped_binance_tiers``) and says
  so, with its date, in ``TierTable.source``;
* a ``forceOrder`` snapshot's ``z`` (accumulated filled quantity) is the size liquidated so far;
  ccxt's parsed ``contracts`` is ``l`` (the last fill only), so events use ``z`` × ``p``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import ccxt.async_support as ccxt

from engine.tiers import load_shipped_binance_tiers, shipped_binance_symbols
from jobs.exchanges.base import ExchangeAdapter, number
from liqmap.logs import get_logger
from models.records import CandleRow, LiquidationEvent, TierRow, TierTable

log = get_logger(__name__)

OPEN_INTEREST_HISTORY_MS = 30 * 86_400_000


class BinanceUsdmAdapter(ExchangeAdapter):
    exchange_id: ClassVar[str] = "binanceusdm"
    # with keys, load_markets would also call the spot wallet API (sapi capital/config)
    ccxt_options: ClassVar[dict[str, Any]] = {"fetchCurrencies": False}
    candle_page_limit: ClassVar[int] = 1500
    open_interest_page_limit: ClassVar[int] = 500
    funding_page_limit: ClassVar[int] = 1000
    open_interest_timeframes: ClassVar[tuple[str, ...]] = (
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "12h",
        "1d",
    )

    async def _candle_window(
        self, market: dict[str, Any], timeframe: str, start: int, end: int
    ) -> list[CandleRow]:
        klines = await self.exchange.fapiPublicGetKlines(
            {
                "symbol": market["id"],
                "interval": timeframe,
                "startTime": start,
                "endTime": end,
                "limit": self.candle_page_limit,
            }
        )
        # [open time, open, high, low, close, volume, close time, quote volume, trades,
        #  taker-buy base volume, taker-buy quote volume, ignore]
        return [
            CandleRow(
                timestamp=int(k[0]),
                open=float(k[1]),
                high=float(k[2]),
                low=float(k[3]),
                close=float(k[4]),
                volume=number(k[5]),
                taker_buy_volume=number(k[9]),
            )
            for k in klines
        ]

    def _open_interest_start(self, since_ms: int, step: int) -> int:
        oldest_stamp = self.now_ms() - OPEN_INTEREST_HISTORY_MS + step
        oldest_stamp += -oldest_stamp % step  # the first period boundary inside the window
        oldest = oldest_stamp - step  # the bar that snapshot closes
        if since_ms < oldest:
            log.warning(
                "binanceusdm serves open interest for the last 30 days only; starting there "
                "(load older history from the archive files)",
                requested=since_ms,
                start=oldest,
            )
        return max(since_ms, oldest)

    async def fetch_tiers(self, symbol: str) -> TierTable:
        market = await self._market(symbol)
        if not self.has_credentials:
            return self.shipped_tiers(market["symbol"])
        tiers = await self.exchange.fetch_leverage_tiers([market["symbol"]])
        return TierTable(
            tiers=[self._tier_row(t) for t in tiers[market["symbol"]]],
            source="api",
            valid_from=self.now_ms(),
        )

    def shipped_tiers(self, symbol: str) -> TierTable:
        """The engine's dated no-key fallback table; ``source`` names the file and its date."""
        shipped = shipped_binance_symbols()
        if symbol not in shipped:
            raise ccxt.AuthenticationError(
                "binanceusdm leverage brackets need API keys; the shipped fallback table "
                f"covers only {', '.join(sorted(shipped))}"
            )
        tiers, source, valid = load_shipped_binance_tiers(symbol)
        midnight = datetime(valid.year, valid.month, valid.day, tzinfo=UTC)
        return TierTable(
            tiers=[
                TierRow(
                    tier=index + 1,  # Binance numbers its brackets 1… by ascending floor
                    min_notional=float(tiers.floor[index]),
                    max_notional=float(tiers.cap[index]),
                    maintenance_margin_rate=float(tiers.maintenance_margin_rate[index]),
                    maintenance_amount=float(tiers.maintenance_amount[index]),
                    max_leverage=float(tiers.max_leverage[index]),
                )
                for index in range(len(tiers))
            ],
            source=source,
            valid_from=int(midnight.timestamp() * 1000),
        )

    def _tier_row(self, tier: dict[str, Any]) -> TierRow:
        info = tier["info"]
        return TierRow(
            tier=int(float(info["bracket"])),
            min_notional=float(info["notionalFloor"]),
            max_notional=float(info["notionalCap"]),
            maintenance_margin_rate=float(info["maintMarginRatio"]),
            maintenance_amount=float(info["cum"]),
            max_leverage=float(info["initialLeverage"]),
        )

    def liquidation_event(self, liquidation: dict[str, Any]) -> LiquidationEvent | None:
        order = liquidation["info"]
        price = number(order.get("p"))
        filled = number(order.get("z"))
        if price is None or filled is None:
            return None
        quantity = filled * float(liquidation.get("contractSize") or 1.0)
        return LiquidationEvent(
            exchange=self.exchange_id,
            symbol=liquidation["symbol"],
            timestamp=int(liquidation["timestamp"]),
            side="long" if order["S"] == "SELL" else "short",  # a SELL order closes a long
            price=price,
            quantity=quantity,
            usd_value=price * quantity,
            raw=order,
        )
