"""OKX v5 (``okx``): USDT linear and coin-margined inverse swaps.

Quirks isolated here:

* sizes are contracts everywhere: ``ctVal`` (ccxt ``contractSize``) converts them, to base coin
  for linear swaps and to USD for inverse ones;
* history candles and the rubik open-interest statistics give at most 100 rows a request, so
  every window holds at most 100 periods; open-interest rows are ``[ts, oi (contracts), oiCcy
  (coin), oiUsd]`` and the adapter keeps the coin amount;
* funding history pages by ``before``/``after`` (exclusive): both bounds are sent so each
  window is exact;
* position tiers are in contracts (ccxt puts ``minSz``/``maxSz`` in min/maxNotional): they are
  converted to coin (linear, ``notional_unit="base"``) or USD (inverse, ``"quote"``); OKX
  publishes no maintenance deduction per tier, so the maintenance amount is 0;
* ``liquidation-orders`` details carry ``posSide`` (the liquidated side) and ``side`` (the
  order side; in net mode a sell closes a long).
"""

from __future__ import annotations

from typing import Any, ClassVar

from jobs.exchanges.base import ExchangeAdapter, number
from models.records import LiquidationEvent, OpenInterestRow, TierRow


class OkxAdapter(ExchangeAdapter):
    exchange_id: ClassVar[str] = "okx"
    ccxt_options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}
    candle_page_limit: ClassVar[int] = 100
    open_interest_page_limit: ClassVar[int] = 100
    funding_page_limit: ClassVar[int] = 100
    open_interest_timeframes: ClassVar[tuple[str, ...]] = ("5m", "1h", "1d")

    async def _open_interest_window(
        self, market: dict[str, Any], timeframe: str, start: int, end: int
    ) -> list[OpenInterestRow]:
        history = await self.exchange.fetch_open_interest_history(
            market["symbol"], timeframe, start, self.open_interest_page_limit, {"until": end}
        )
        rows = []
        for h in history:
            info = h["info"]  # [ts, oi (contracts), oiCcy (coin), oiUsd]
            amount = number(info[2]) if market.get("linear") else number(info[1])
            rows.append(OpenInterestRow(int(h["timestamp"]), amount, number(info[3])))
        return rows

    def _funding_params(self, end: int) -> dict[str, Any]:
        # ccxt sends ``before`` = since - 1; ``after`` (exclusive) closes the window
        return {"after": end + 1}

    def _tier_row(self, tier: dict[str, Any]) -> TierRow:
        market = self.exchange.market(tier["symbol"])
        contract = float(market.get("contractSize") or 1.0)
        return TierRow(
            tier=int(tier["tier"]),
            min_notional=float(tier["minNotional"]) * contract,
            max_notional=float(tier["maxNotional"]) * contract,
            maintenance_margin_rate=float(tier["maintenanceMarginRate"]),
            maintenance_amount=0.0,
            max_leverage=float(tier["maxLeverage"]),
            notional_unit="base" if market.get("linear") else "quote",
        )

    def liquidation_event(self, liquidation: dict[str, Any]) -> LiquidationEvent | None:
        details = liquidation["info"].get("details") or []
        if not details:
            return None
        detail = details[0]
        price = number(detail.get("bkPx"))
        contracts = number(detail.get("sz"))
        if price is None or contracts is None or price <= 0:
            return None
        market = self.exchange.market(liquidation["symbol"])
        size = contracts * float(market.get("contractSize") or 1.0)
        if market.get("linear"):
            quantity, usd = size, size * price
        else:  # inverse: contracts are worth ctVal USD
            quantity, usd = size / price, size
        position = detail.get("posSide")
        if position not in ("long", "short"):  # net mode: a sell order closes a long
            position = "long" if detail.get("side") == "sell" else "short"
        return LiquidationEvent(
            exchange=self.exchange_id,
            symbol=liquidation["symbol"],
            timestamp=int(liquidation["timestamp"]),
            side=position,
            price=price,
            quantity=quantity,
            usd_value=usd,
            raw=detail,
        )
