"""Hyperliquid (``hyperliquid``): USDC-settled perpetuals on one public ``POST /info`` endpoint.

Quirks isolated here:

* markets are the perpetuals universe only (``fetchMarkets.types = ["swap"]``; no spot tokens,
  no HIP-3 dexes): unified symbols are ``BTC/USDC:USDC``, ``ETH/USDC:USDC``…; currencies are not
  fetched (perpetuals need none);
* candles (``candleSnapshot``) come at most 5000 to a request; funding settles hourly
  (``fundingHistory``, 500 to a request);
* open interest has no history endpoint: it is the current value in ``metaAndAssetCtxs`` (in
  coin; its USD value is amount × the mark price of the same answer). Each ingest stores that
  value for the last closed bar, so the series exists only from when liqmap started polling,
  one value a poll, taken up to one bar after the bar's end;
* no public liquidation stream: ``watch_liquidations`` is not available. An account's own
  liquidation fills (``userFills`` entries carrying a ``liquidation`` object) are public and
  :meth:`fetch_account_liquidations` reads them;
* every account's positions, with the exchange-computed ``liquidationPx``, are public
  (``clearinghouseState``): :meth:`fetch_account_positions` reads one account's, through ccxt's
  ``fetch_positions``; :meth:`leaderboard_accounts` lists accounts from the stats leaderboard;
* ccxt reads no margin tables: tiers are unavailable (the materializer uses its fallback).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from jobs.exchanges.base import ExchangeAdapter, number
from liqmap.timeframes import BASE_TIMEFRAMES, timeframe_ms
from models.known_records import AccountPositions, KnownPosition
from models.records import LiquidationEvent, OpenInterestRow

LEADERBOARD_URL = "https://stats-data.hyperliquid.xyz/Mainnet/leaderboard"


class HyperliquidAdapter(ExchangeAdapter):
    exchange_id: ClassVar[str] = "hyperliquid"
    ccxt_options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}
    # the state time of a clearinghouseState answer is read from the last JSON response
    ccxt_config: ClassVar[dict[str, Any]] = {
        "has": {"fetchCurrencies": False},
        "enableLastJsonResponse": True,
    }
    candle_page_limit: ClassVar[int] = 5000
    funding_page_limit: ClassVar[int] = 500
    # a poll of the current value can be stored at any bar length
    open_interest_timeframes: ClassVar[tuple[str, ...]] = BASE_TIMEFRAMES

    def unavailable(self, symbol: str, dataset: str) -> str | None:
        if dataset == "tiers":
            return "hyperliquid: ccxt reads no Hyperliquid margin tables"
        return super().unavailable(symbol, dataset)

    async def fetch_open_interest(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int
    ) -> AsyncIterator[list[OpenInterestRow]]:
        """The current open interest, stored at the last closed bar if it is in the range."""
        market = await self._market(symbol)
        step = timeframe_ms(timeframe)
        now = self.now_ms()
        bar = now - now % step - step  # the bar that ended at the last boundary before now
        if not since_ms <= bar < until_ms:
            return
        try:
            interest = await self.exchange.fetch_open_interest(market["symbol"])
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise self._bad_response(exc) from exc
        amount = number((interest or {}).get("openInterestAmount"))
        if amount is None:
            return
        mark = number(((interest or {}).get("info") or {}).get("markPx"))
        yield [OpenInterestRow(bar, amount, amount * mark if mark else None)]

    async def watch_liquidations(
        self, symbols: Sequence[str]
    ) -> AsyncIterator[list[LiquidationEvent]]:
        raise NotImplementedError(
            "hyperliquid publishes no liquidation stream; fetch_account_liquidations reads an "
            "account's own liquidation fills"
        )
        yield []  # an async generator, like the base

    # --- accounts: the real-position layer -------------------------------------------------
    async def fetch_account_positions(self, account: str, dex: str = "") -> AccountPositions:
        """One account's open positions with the venue's liquidation prices (ccxt
        ``fetch_positions``), stamped with the venue's own time of the state."""
        await self.exchange.load_markets()
        params: dict[str, Any] = {"user": account}
        if dex:
            params["dex"] = dex
        parsed = await self.exchange.fetch_positions(None, params)
        state = self.exchange.last_json_response
        taken = number(state.get("time")) if isinstance(state, dict) else None
        positions = []
        for p in parsed:
            size = number(p.get("contracts"))
            if not size or p.get("side") not in ("long", "short"):
                continue
            positions.append(
                KnownPosition(
                    account=account.lower(),
                    symbol=p["symbol"],
                    coin=str(((p.get("info") or {}).get("position") or {}).get("coin") or ""),
                    side=p["side"],
                    size=size,
                    notional_usd=number(p.get("notional")) or 0.0,
                    entry_price=number(p.get("entryPrice")),
                    leverage=number(p.get("leverage")),
                    margin_mode=p.get("marginMode"),
                    liquidation_price=number(p.get("liquidationPrice")),
                )
            )
        return AccountPositions(
            account.lower(), dex, int(taken) if taken is not None else self.now_ms(), positions
        )

    async def fetch_account_liquidations(
        self, account: str, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[LiquidationEvent]:
        """The account's own liquidations (its fills that carry a ``liquidation`` object naming
        it as the liquidated user), through ccxt ``fetch_my_liquidations``."""
        await self.exchange.load_markets()
        params: dict[str, Any] = {"user": account}
        if until_ms is not None:
            params["until"] = until_ms
        found = await self.exchange.fetch_my_liquidations(None, since_ms, None, params)
        events = []
        for item in found:
            price, quantity = number(item.get("price")), number(item.get("baseValue"))
            if price is None or quantity is None:
                continue
            events.append(
                LiquidationEvent(
                    exchange=self.exchange_id,
                    symbol=item["symbol"],
                    timestamp=int(item["timestamp"]),
                    # the liquidation's fill sells to close a long, buys to close a short
                    side="long" if item.get("side") == "sell" else "short",
                    price=price,
                    quantity=quantity,
                    usd_value=number(item.get("quoteValue")) or price * quantity,
                    raw=item.get("info") or {},
                )
            )
        return events

    async def leaderboard_accounts(self, top: int) -> list[str]:
        """The ``top`` accounts of the stats leaderboard by account value (largest first)."""
        response = await self.exchange.fetch(LEADERBOARD_URL, "GET")
        rows = response.get("leaderboardRows", []) if isinstance(response, dict) else []
        ranked = sorted(
            (r for r in rows if isinstance(r, dict) and r.get("ethAddress")),
            key=lambda r: number(r.get("accountValue")) or 0.0,
            reverse=True,
        )
        return [str(r["ethAddress"]).lower() for r in ranked[:top]]
