"""The adapter boundary: one small class per exchange over the real ccxt (pro) classes.

Jobs see only this interface and the records in ``models.records``. Each subclass isolates its
venue's quirks (endpoints, units, page sizes, history windows) the way freqtrade's exchange
subclasses do. Errors are ccxt's own exception types (``NetworkError`` and children for transient
faults, ``BadSymbol``/``AuthenticationError``/``BadRequest`` for permanent ones) so callers can
classify them. In replay mode the same classes run against ``jobs.replay``'s recorded transport.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import ccxt.async_support as ccxt
import ccxt.pro as ccxtpro

from jobs.replay import (
    DEFAULT_WINDOW,
    RecordedTransport,
    Recording,
    ReplayClock,
    open_recording,
    routes_for,
)
from jobs.replay.websocket import WebsocketReplay
from liqmap.logs import get_logger
from liqmap.timeframes import HOUR_MS, timeframe_ms
from models.records import (
    CandleRow,
    FundingRateRow,
    LiquidationEvent,
    MarketInfo,
    OpenInterestRow,
    TierRow,
    TierTable,
)

log = get_logger(__name__)

Row = TypeVar("Row", CandleRow, OpenInterestRow, FundingRateRow)
CLOCK_SKEW_MS = 60_000  # how far ahead of ours a venue's clock may run before rows are "future"


def number(value: Any) -> float | None:
    """A finite float from a wire value, None when the venue left it out."""
    if value is None or value == "":
        return None
    result = float(value)
    return result if math.isfinite(result) else None


class ExchangeAdapter:
    exchange_id: ClassVar[str]
    # ccxt options that keep load_markets to the derivatives this project uses
    ccxt_options: ClassVar[dict[str, Any]] = {}
    candle_page_limit: ClassVar[int] = 500
    open_interest_page_limit: ClassVar[int] = 200
    funding_page_limit: ClassVar[int] = 100
    # funding windows are sized for the shortest settlement interval a venue uses
    funding_min_interval_ms: ClassVar[int] = HOUR_MS
    # periods the venue serves open-interest history at (ccxt's accepted timeframes)
    open_interest_timeframes: ClassVar[tuple[str, ...]] = ()
    # ccxt configuration beyond options (e.g. capabilities switched off); merged into the config
    ccxt_config: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        replay_dir: Path | None = None,
        api_key: str | None = None,
        secret: str | None = None,
        options: dict[str, Any] | None = None,
        replay_latency_ms: float = 0.0,
        replay_clock: tuple[int | None, float, int | None] = (None, 0.0, None),
        replay_window: str = DEFAULT_WINDOW,
    ) -> None:
        """``replay_clock`` is (start ms, speed, epoch ms) of :meth:`ReplayClock.starting`;
        ``replay_window`` the recorded period (``jobs.replay.windows``) whose end it reads."""
        config: dict[str, Any] = {
            **self.ccxt_config,
            "options": {**self.ccxt_options, **(options or {})},
        }
        if api_key:
            config["apiKey"] = api_key
        if secret:
            config["secret"] = secret
        self.has_credentials = bool(api_key and secret)
        self.recording: Recording | None = None
        self.transport: RecordedTransport | None = None
        self.clock: ReplayClock | None = None
        self.websocket_replay: WebsocketReplay | None = None
        self.window: dict[str, Any] | None = None
        if replay_dir is not None:
            # nothing to protect in a replay: no rate-limit sleeps between recorded answers
            config["enableRateLimit"] = False
            # nor sockets to drain: ccxt's close() otherwise waits 250 ms for TLS transports
            # (timeout_on_exit) that a replay never opens
            config["timeout_on_exit"] = 0
            self.recording = open_recording(Path(replay_dir), self.exchange_id)
            self.window = self.recording.window(replay_window)
            self.clock = clock = ReplayClock.starting(self.window["now_ms"], *replay_clock)
        self.exchange: Any = getattr(ccxtpro, self.exchange_id)(config)
        self._require_json_responses()
        if self.recording is not None:
            self.transport = RecordedTransport(
                self.recording,
                routes_for(self.exchange_id),
                latency_s=replay_latency_ms / 1000,
                clock=clock.now_ms,
            )
            self.transport.install(self.exchange)
            self.websocket_replay = WebsocketReplay(self.recording.ws_messages)
            self.websocket_replay.install(self.exchange)

    def _require_json_responses(self) -> None:
        """Turn a 2xx body that is not JSON into ``ccxt.BadResponse``.

        ccxt hands such a body (a truncated payload, a proxy's HTML page) to the parser as a
        string, and e.g. Bybit's and OKX's parsers then quietly return no rows: a page would
        be skipped and the caller's watermark would move past data never stored.
        """
        request = self.exchange.request
        exchange_id = self.exchange_id

        async def checked(path: str, *args: Any, **kwargs: Any) -> Any:
            response = await request(path, *args, **kwargs)
            if isinstance(response, str | bytes):
                raise ccxt.BadResponse(
                    f"{exchange_id} {path}: response is not JSON: {response[:200]!r}"
                )
            return response

        self.exchange.request = checked

    # --- clock ---------------------------------------------------------------------------
    @property
    def replay(self) -> bool:
        return self.recording is not None

    @property
    def recorded_markets(self) -> list[str] | None:
        """In replay, the unified symbols whose time series are recorded in the replay window;
        None live."""
        if self.window is None:
            return None
        return list(self.window.get("markets", []))

    def unavailable(self, symbol: str, dataset: str) -> str | None:
        """Why this venue cannot serve ``dataset`` of ``symbol`` at all, or None.

        Live, every venue serves what its adapter implements (subclasses name what they
        cannot). In replay a dataset the recording does not hold is unavailable, with the
        reason: the replay never answers it with another venue's numbers.
        """
        if self.recording is not None:
            return self.recording.unrecorded(symbol, dataset)
        return None

    def now_ms(self) -> int:
        """Wall clock live; in replay the end of the recorded data."""
        if self.clock is not None:
            return self.clock.now_ms()
        return int(self.exchange.milliseconds())

    # --- markets -------------------------------------------------------------------------
    async def load_markets(self, symbols: Sequence[str]) -> list[MarketInfo]:
        markets = await self.exchange.load_markets()
        unknown = [s for s in symbols if s not in markets]
        if unknown:
            raise ValueError(self._unknown_symbols_message(unknown, markets))
        return [self.market_info(markets[s]) for s in symbols]

    def _unknown_symbols_message(self, unknown: list[str], markets: dict[str, Any]) -> str:
        contracts = sorted(s for s, m in markets.items() if m.get("swap"))
        parts = []
        for symbol in unknown:
            close = difflib.get_close_matches(symbol, contracts, n=5, cutoff=0.6)
            hint = f" (close: {', '.join(close)})" if close else ""
            parts.append(f"{symbol!r}{hint}")
        listed = ", ".join(contracts[:30]) + (" …" if len(contracts) > 30 else "")
        return (
            f"{self.exchange_id}: unknown market {'; '.join(parts)}; "
            f"valid perpetual markets ({len(contracts)}): {listed}"
        )

    def market_info(self, market: dict[str, Any]) -> MarketInfo:
        precision = market.get("precision") or {}
        return MarketInfo(
            exchange=self.exchange_id,
            symbol=market["symbol"],
            exchange_symbol=market["id"],
            base=market["base"],
            quote=market["quote"],
            settle=market.get("settle") or market["quote"],
            linear=bool(market.get("linear", True)),
            contract_size=float(market.get("contractSize") or 1.0),
            price_precision=number(precision.get("price")),
            amount_precision=number(precision.get("amount")),
            active=market.get("active") is not False,
        )

    async def _market(self, symbol: str) -> dict[str, Any]:
        await self.exchange.load_markets()
        market: dict[str, Any] = self.exchange.market(symbol)  # ccxt.BadSymbol if unknown
        return market

    # --- time series: deterministic windows, each small enough for one page ----------------
    async def _windows(
        self,
        fetch_window: Callable[[int, int], Awaitable[list[Row]]],
        since_ms: int,
        until_ms: int,
        window_ms: int,
        keep: Callable[[Row], bool],
        future: Callable[[Row], bool] | None = None,
    ) -> AsyncIterator[list[Row]]:
        """Walk [since, until) in windows; yield each window's kept rows, ascending, once.

        Rows outside the window asked for are dropped, except rows from beyond the clock
        (``future``, default: stamped more than ``CLOCK_SKEW_MS`` after now): those are bad
        data, and stay in the page for the batch validation to reject the page whole. The
        allowance keeps a venue whose clock runs a little ahead from having its newest bar
        taken for a future one.
        """
        cursor = since_ms
        now = self.now_ms()
        until_ms = min(until_ms, now + 1)
        if future is None:
            future = lambda row: row.timestamp > now + CLOCK_SKEW_MS  # noqa: E731
        last_seen: int | None = None
        while cursor < until_ms:
            end = min(cursor + window_ms, until_ms) - 1  # inclusive, as the venues take it
            try:
                rows = sorted(await fetch_window(cursor, end), key=lambda r: r.timestamp)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise self._bad_response(exc) from exc
            page = []
            for row in rows:
                if future(row):
                    page.append(row)
                    continue
                if not cursor <= row.timestamp <= end or not keep(row):
                    continue
                if last_seen is not None and row.timestamp <= last_seen:
                    continue
                page.append(row)
                last_seen = row.timestamp
            if page:
                yield page
            cursor = end + 1

    def _bad_response(self, exc: BaseException) -> ccxt.BadResponse:
        """A payload that does not parse: ccxt's own error type, with the body's start."""
        body = str(getattr(self.exchange, "last_http_response", "") or "")[:200]
        return ccxt.BadResponse(
            f"{self.exchange_id}: unparseable response ({type(exc).__name__}: {exc}); "
            f"body starts {body!r}"
        )

    async def fetch_candles(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int
    ) -> AsyncIterator[list[CandleRow]]:
        """Closed bars with ``since <= open < until``, ascending, one list per request."""
        market = await self._market(symbol)
        step = timeframe_ms(timeframe)
        now = self.now_ms()

        async def window(start: int, end: int) -> list[CandleRow]:
            return await self._candle_window(market, timeframe, start, end)

        async for page in self._windows(
            window,
            since_ms,
            until_ms,
            self.candle_page_limit * step,
            lambda row: row.timestamp + step <= now,
        ):
            yield page

    async def fetch_open_interest(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int
    ) -> AsyncIterator[list[OpenInterestRow]]:
        """Open interest at the *end* of each bar with ``since <= open < until``, ascending.

        Venues stamp an open-interest snapshot with the instant it was taken, which is the end
        of the bar it closes (Binance ``openInterestHist`` ``timestamp``, like the archive's
        ``create_time``; Bybit and OKX alike). liqmap stores every series at its bar's *open*,
        so the row for bar ``t`` is the snapshot stamped ``t + step``: windows ask for the
        stamps one step later and the rows come back one step earlier. The engine reads the
        value at ``t`` as the open interest at that bar's end.
        """
        market = await self._market(symbol)
        step = timeframe_ms(timeframe)
        since_ms = self._open_interest_start(since_ms, step)

        async def window(start: int, end: int) -> list[OpenInterestRow]:
            stamped = await self._open_interest_window(market, timeframe, start + step, end + step)
            return [
                OpenInterestRow(r.timestamp - step, r.open_interest, r.open_interest_usd)
                for r in stamped
            ]

        now = self.now_ms()
        async for page in self._windows(
            window,
            since_ms,
            until_ms,
            self.open_interest_page_limit * step,
            lambda row: True,
            lambda row: row.timestamp + step > now + CLOCK_SKEW_MS,  # snapshot stamped later
        ):
            yield page

    def _open_interest_start(self, since_ms: int, step: int) -> int:
        """The first bar open to ask for (venues with a history window clamp it)."""
        return since_ms

    async def fetch_funding_rates(
        self, symbol: str, since_ms: int, until_ms: int
    ) -> AsyncIterator[list[FundingRateRow]]:
        market = await self._market(symbol)

        async def window(start: int, end: int) -> list[FundingRateRow]:
            return await self._funding_window(market, start, end)

        async for page in self._windows(
            window,
            since_ms,
            until_ms,
            self.funding_page_limit * self.funding_min_interval_ms,
            lambda row: True,
        ):
            yield page

    # --- per-venue pages (override) ------------------------------------------------------
    async def _funding_window(
        self, market: dict[str, Any], start: int, end: int
    ) -> list[FundingRateRow]:
        history = await self.exchange.fetch_funding_rate_history(
            market["symbol"], start, self.funding_page_limit, self._funding_params(end)
        )
        return [
            FundingRateRow(int(h["timestamp"]), float(h["fundingRate"]))
            for h in history
            if h.get("fundingRate") is not None
        ]

    def _funding_params(self, end: int) -> dict[str, Any]:
        return {"until": end}

    async def _candle_window(
        self, market: dict[str, Any], timeframe: str, start: int, end: int
    ) -> list[CandleRow]:
        ohlcv = await self.exchange.fetch_ohlcv(
            market["symbol"], timeframe, start, self.candle_page_limit, {"until": end}
        )
        return [
            CandleRow(int(t), float(o), float(h), float(low), float(c), number(v))
            for t, o, h, low, c, v in ohlcv
        ]

    async def _open_interest_window(
        self, market: dict[str, Any], timeframe: str, start: int, end: int
    ) -> list[OpenInterestRow]:
        """The venue's snapshots stamped in [start, end], as stamped (the snapshot instant)."""
        history = await self.exchange.fetch_open_interest_history(
            market["symbol"], timeframe, start, self.open_interest_page_limit, {"until": end}
        )
        return [
            OpenInterestRow(
                int(h["timestamp"]),
                number(h.get("openInterestAmount")),
                number(h.get("openInterestValue")),
            )
            for h in history
        ]

    # --- tiers ---------------------------------------------------------------------------
    async def fetch_tiers(self, symbol: str) -> TierTable:
        market = await self._market(symbol)
        tiers = await self.exchange.fetch_market_leverage_tiers(market["symbol"])
        return TierTable(
            tiers=[self._tier_row(t) for t in tiers],
            source="api",
            valid_from=self.now_ms(),
        )

    def _tier_row(self, tier: dict[str, Any]) -> TierRow:
        raise NotImplementedError

    # --- realized liquidations -------------------------------------------------------------
    async def watch_liquidations(
        self, symbols: Sequence[str]
    ) -> AsyncIterator[list[LiquidationEvent]]:
        """Public liquidation events as they arrive (ccxt pro ``watch_liquidations*``).

        An empty ``symbols`` means every market where the venue has an all-market stream.
        Venues without ``watchLiquidationsForSymbols`` get one watcher per symbol, merged.
        In replay, the recorded frames go through ccxt pro's own message handler and the
        iteration ends when they run out.
        """
        await self.exchange.load_markets()
        wanted = list(symbols)
        for symbol in wanted:
            self.exchange.market(symbol)  # ccxt.BadSymbol before any subscription
        watchers: list[Callable[[], Awaitable[list[dict[str, Any]]]]]
        if self.exchange.has.get("watchLiquidationsForSymbols"):
            watchers = [partial(self.exchange.watch_liquidations_for_symbols, wanted or None)]
        elif wanted:
            watchers = [partial(self.exchange.watch_liquidations, s) for s in wanted]
        else:
            raise NotImplementedError(
                f"{self.exchange_id} has no all-market liquidation stream; name the symbols"
            )
        replay = self.websocket_replay
        if replay is not None:
            if replay.finished:
                return
            replay.start(expected_subscriptions=max(1, len(wanted)))
        running = {asyncio.ensure_future(watch()): watch for watch in watchers}
        try:
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    watch = running.pop(task)
                    error = task.exception()
                    if error is not None:
                        if replay is not None and replay.is_end(error):
                            continue  # this stream's recording is over
                        raise error
                    events = [self.liquidation_event(item) for item in task.result()]
                    running[asyncio.ensure_future(watch())] = watch
                    kept = [e for e in events if e is not None]
                    if kept:
                        yield kept
        finally:
            for task in running:
                task.cancel()

    def liquidation_event(self, liquidation: dict[str, Any]) -> LiquidationEvent | None:
        raise NotImplementedError

    async def close(self) -> None:
        if self.websocket_replay is not None:
            self.websocket_replay.stop()
        await self.exchange.close()


# --- factory ---------------------------------------------------------------------------------
SUPPORTED_EXCHANGES: tuple[str, ...] = ("binanceusdm", "bybit", "hyperliquid", "okx")


_ADAPTERS = {
    "binanceusdm": ("jobs.exchanges.binance", "BinanceUsdmAdapter"),
    "bybit": ("jobs.exchanges.bybit", "BybitAdapter"),
    "hyperliquid": ("jobs.exchanges.hyperliquid", "HyperliquidAdapter"),
    "okx": ("jobs.exchanges.okx", "OkxAdapter"),
}


def adapter_class(exchange_id: str) -> type[ExchangeAdapter]:
    if exchange_id not in _ADAPTERS:
        raise ValueError(
            f"unknown exchange {exchange_id!r}; valid: {', '.join(SUPPORTED_EXCHANGES)}"
        )
    module, name = _ADAPTERS[exchange_id]
    cls: type[ExchangeAdapter] = getattr(importlib.import_module(module), name)
    return cls


def create_adapter(
    exchange_id: str,
    *,
    replay_dir: Path | None = None,
    api_key: str | None = None,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
    replay_latency_ms: float = 0.0,
    replay_clock: tuple[int | None, float, int | None] = (None, 0.0, None),
    replay_window: str = DEFAULT_WINDOW,
) -> ExchangeAdapter:
    """The adapter for ``exchange_id``; with ``replay_dir`` it answers from recordings of the
    replay window ``replay_window``."""
    cls = adapter_class(exchange_id)
    return cls(
        replay_dir=replay_dir,
        api_key=api_key,
        secret=secret,
        options=options,
        replay_latency_ms=replay_latency_ms,
        replay_clock=replay_clock,
        replay_window=replay_window,
    )
