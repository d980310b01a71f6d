"""Bybit v5 (``bybit``): USDT linear and coin-margined inverse perpetuals.

Quirks isolated here:

* linear open interest comes in base coin only (ccxt fills ``openInterestAmount``): the USD
  value is derived as amount × the price at the snapshot, the close of the bar that ends at its
  ``timestamp``, fetched for the same window; inverse open interest comes in USD (1-USD
  contracts) only;
* risk limits: ``mmDeduction`` is the maintenance amount; inverse limits are in coin;
* ``allLiquidation`` frames carry the *position* side (``S`` = "Buy" means a long was
  liquidated), unlike Binance's order side; inverse sizes are USD contracts;
* only per-symbol liquidation topics exist: one watcher per symbol.
"""

from __future__ import annotations

from typing import Any, ClassVar

from jobs.exchanges.base import ExchangeAdapter, number
from liqmap.timeframes import timeframe_ms
from models.records import LiquidationEvent, OpenInterestRow, TierRow


class BybitAdapter(ExchangeAdapter):
    exchange_id: ClassVar[str] = "bybit"
    ccxt_options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["linear", "inverse"]}}
    candle_page_limit: ClassVar[int] = 1000
    open_interest_page_limit: ClassVar[int] = 200
    funding_page_limit: ClassVar[int] = 200
    open_interest_timeframes: ClassVar[tuple[str, ...]] = ("5m", "15m", "30m", "1h", "4h", "1d")

    async def _open_interest_window(
        self, market: dict[str, Any], timeframe: str, start: int, end: int
    ) -> list[OpenInterestRow]:
        rows = await super()._open_interest_window(market, timeframe, start, end)
        if not market.get("linear"):
            # inverse: a contract is 1 USD, so the count of contracts is the USD value
            return [
                OpenInterestRow(r.timestamp, r.open_interest_usd, r.open_interest_usd) for r in rows
            ]
        if not rows:
            return rows
        step = timeframe_ms(timeframe)
        # a snapshot stamped t is worth its amount at the close of the bar [t - step, t)
        bars = await self._candle_window(market, timeframe, start - step, end - step)
        closes = {bar.timestamp + step: bar.close for bar in bars}
        return [
            OpenInterestRow(
                r.timestamp,
                r.open_interest,
                None
                if r.open_interest is None or r.timestamp not in closes
                else r.open_interest * closes[r.timestamp],
            )
            for r in rows
        ]

    def _tier_row(self, tier: dict[str, Any]) -> TierRow:
        info = tier["info"]
        market = self.exchange.market(tier["symbol"])
        return TierRow(
            tier=int(tier["tier"]),
            min_notional=float(tier["minNotional"]),
            max_notional=float(tier["maxNotional"]),
            maintenance_margin_rate=float(tier["maintenanceMarginRate"]),
            maintenance_amount=number(info.get("mmDeduction")) or 0.0,
            max_leverage=float(tier["maxLeverage"]),
            notional_unit="quote" if market.get("linear") else "base",
        )

    def liquidation_event(self, liquidation: dict[str, Any]) -> LiquidationEvent | None:
        info = liquidation["info"]
        price = number(info.get("p"))
        size = number(info.get("v"))
        if price is None or size is None or price <= 0:
            return None
        market = self.exchange.market(liquidation["symbol"])
        if market.get("linear"):
            quantity = size * float(market.get("contractSize") or 1.0)
            usd = price * quantity
        else:  # inverse: size in 1-USD contracts
            usd = size * float(market.get("contractSize") or 1.0)
            quantity = usd / price
        return LiquidationEvent(
            exchange=self.exchange_id,
            symbol=liquidation["symbol"],
            timestamp=int(liquidation["timestamp"]),
            side="long" if info.get("S") == "Buy" else "short",  # S is the position side
            price=price,
            quantity=quantity,
            usd_value=usd,
            raw=info,
        )
