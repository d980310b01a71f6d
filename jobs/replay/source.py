"""Read the real exchange data in ``../shared/data`` as the recordings' single source of values.

Every venue's recording is built from that venue's own files only: Binance from ``binance/``,
Bybit from ``bybit/``, OKX from ``okx/``, Hyperliquid from ``hyperliquid/`` and
``ccxt_fixtures/``. Numbers are kept as the files' own strings so that a replayed payload parses
to exactly the float the file holds; anything derived (open interest in base units, funding
events from a bar column, 5-minute bars from 1-minute ones, close times) is computed here, once,
and named in the recording metadata.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jobs.errors import RecordingError

BINANCE_BTC = Path("binance") / "BTCUSDT_perp_5m_klines_oi_funding.csv"
BINANCE_ETH = Path("binance") / "ETHUSDT_perp_5m_klines_funding.csv"
BINANCE_ETH_FUNDING = Path("binance") / "ETHUSDT_perp_funding_8h.csv"
BYBIT_BTC = Path("bybit") / "BTCUSDT_perp_5m_klines_funding.csv"
BYBIT_BTC_FUNDING = Path("bybit") / "BTCUSDT_perp_funding_8h.csv"
OKX_BTC_1M = Path("okx") / "BTC-USDT-SWAP_perp_1m_klines_funding.csv"
OKX_BTC_FUNDING = Path("okx") / "BTC-USDT-SWAP_funding_8h.csv"
HYPERLIQUID_LEVELS = Path("hyperliquid") / "top_trader_liq_levels_dev.jsonl"
HYPERLIQUID_FIXTURE = Path("ccxt_fixtures") / "hyperliquid_response_extract.json"
INSTRUMENT_SPECS = Path("exchange_specs") / "perp_instrument_specs_BTC_ETH.json"
TIERS_LATEST = Path("exchange_specs") / "binance_leverage_tiers_BTC_ETH_latest.json"
FORCE_ORDERS = Path("forceorder") / "binance_usdm_forceorder_captures_normalized.csv"

MINUTE_MS = 60_000
BAR_MS = 300_000  # the base bar every venue's series is served at (OKX: derived, see below)
FUNDING_INTERVAL_MS = 8 * 3_600_000  # Binance BTCUSDT settles at 00:00, 08:00, 16:00 UTC


def is_shared_data_dir(directory: Path) -> bool:
    return (directory / BINANCE_BTC).is_file()


@dataclass(frozen=True, slots=True)
class Bar:
    timestamp: int  # bar open, ms
    open: str
    high: str
    low: str
    close: str
    volume: str | None = None  # base units; None where the source has none
    open_interest_usd: str | None = None  # None where the venue's open interest is unrecorded
    last_funding_rate: str | None = None


@dataclass(frozen=True, slots=True)
class FundingEvent:
    funding_time: int
    rate: str


@dataclass(frozen=True, slots=True)
class MarketSeries:
    """One venue market's recorded bars at one bar length, and its funding settlements."""

    exchange_id: str
    symbol: str  # unified, e.g. "BTC/USDT:USDT"
    market_id: str  # the venue's own id, e.g. "BTCUSDT", "BTC-USDT-SWAP"
    bar_ms: int
    bars: tuple[Bar, ...]
    funding: tuple[FundingEvent, ...]
    sources: dict[str, str] = field(default_factory=dict)  # part -> file it came from
    derived: dict[str, str] = field(default_factory=dict)  # field -> how it was computed

    @property
    def first_ms(self) -> int:
        return self.bars[0].timestamp

    @property
    def end_ms(self) -> int:
        """The last millisecond the series covers: the close time of its last bar."""
        return self.bars[-1].timestamp + self.bar_ms - 1

    @property
    def has_open_interest(self) -> bool:
        return any(b.open_interest_usd not in (None, "") for b in self.bars)


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


SeriesKey = tuple[str, str, str]  # (exchange id, unified symbol, bar name "1m"/"5m")


@dataclass(frozen=True, slots=True)
class SharedData:
    root: Path
    series: dict[SeriesKey, MarketSeries]
    instrument_specs: dict[str, Any]
    tiers_latest: dict[str, Any]
    force_orders: tuple[ForceOrder, ...]
    hyperliquid_levels: tuple[dict[str, Any], ...] = ()  # the top-trader file, line by line
    hyperliquid_fixture: dict[str, Any] | None = None

    def of(self, exchange_id: str) -> list[MarketSeries]:
        """Every recorded series of one venue (its own files only)."""
        return [s for (e, _, _), s in self.series.items() if e == exchange_id]

    def get(self, exchange_id: str, symbol: str, bar: str = "5m") -> MarketSeries | None:
        return self.series.get((exchange_id, symbol, bar))


BAR_FIELDS = ("timestamp", "price_open", "price_high", "price_low", "price_close")
SETTLEMENT_FIELDS = ("funding_time", "funding_rate")


def _read_csv(
    path: Path, required: tuple[str, ...] = (), time_field: str | None = None
) -> list[dict[str, str]]:
    """The rows of a recorded CSV file, checked as they are read.

    A row with fewer or more fields than the header (a file cut off mid-row), an empty or
    non-numeric ``required`` field, and with ``time_field`` a timestamp not after the previous
    row's (a repeated or out-of-order row) raise :class:`RecordingError` naming the file and the
    line: a damaged recording is refused, never quietly repaired (keeping the first of two rows
    with one timestamp, say), and the error is one line, not a traceback.
    """
    rows: list[dict[str, str]] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [name for name in required if name not in header]
        if missing:
            raise RecordingError(f"{path}: line 1: the header lacks {', '.join(missing)}")
        previous: tuple[int, int] | None = None  # (timestamp, line)
        for row in reader:
            line = reader.line_num
            if None in row or any(value is None for value in row.values()):
                raise RecordingError(
                    f"{path}: line {line}: {len(header)} fields expected, the row has "
                    f"{sum(v is not None for v in row.values()) + len(row.get(None) or [])} "
                    "(the file is truncated or the row is malformed)"
                )
            for name in required:
                try:
                    float(row[name])
                except ValueError:
                    raise RecordingError(
                        f"{path}: line {line}: {name} is {row[name]!r}, not a number "
                        "(the file is truncated or the row is malformed)"
                    ) from None
            if time_field is not None:
                stamp = int(float(row[time_field]))
                if previous is not None and stamp <= previous[0]:
                    how = "repeats" if stamp == previous[0] else "is before"
                    raise RecordingError(
                        f"{path}: line {line}: {time_field} {stamp} {how} the one on line "
                        f"{previous[1]} ({previous[0]}); every row must be after the one before"
                    )
                previous = (stamp, line)
            rows.append(row)
    return rows


def _bar_rows(path: Path) -> list[dict[str, str]]:
    return _read_csv(path, BAR_FIELDS, "timestamp")


def _bars(rows: Iterable[dict[str, str]]) -> tuple[Bar, ...]:
    return tuple(
        Bar(
            timestamp=int(row["timestamp"]),
            open=row["price_open"],
            high=row["price_high"],
            low=row["price_low"],
            close=row["price_close"],
            volume=row.get("volume_base") or None,
            open_interest_usd=row.get("open_interest_usd") or None,
            last_funding_rate=row.get("last_funding_rate") or None,
        )
        for row in rows
    )


def _settlements(path: Path) -> tuple[FundingEvent, ...]:
    rows = _read_csv(path, SETTLEMENT_FIELDS, "funding_time")
    return tuple(FundingEvent(int(r["funding_time"]), r["funding_rate"]) for r in rows)


def aggregate_bars(bars: tuple[Bar, ...], bar_ms: int, into_ms: int) -> tuple[Bar, ...]:
    """Longer bars from complete runs of shorter ones, as the venue itself would serve them.

    A bar of ``into_ms`` is built only when every one of its ``into_ms / bar_ms`` shorter bars is
    recorded (an incomplete one, like the capture's last, is left out rather than guessed):
    open of the first, highest high, lowest low, close of the last, summed volume (exact decimal
    sums of the recorded strings). Funding columns are not carried (settlements come from their
    own file).
    """
    per = into_ms // bar_ms
    groups: dict[int, list[Bar]] = {}
    for bar in bars:
        groups.setdefault(bar.timestamp - bar.timestamp % into_ms, []).append(bar)
    out = []
    for start, group in sorted(groups.items()):
        if len(group) != per or [b.timestamp for b in group] != [
            start + i * bar_ms for i in range(per)
        ]:
            continue
        volumes = [b.volume for b in group]
        out.append(
            Bar(
                timestamp=start,
                open=group[0].open,
                high=max((b.high for b in group), key=Decimal),
                low=min((b.low for b in group), key=Decimal),
                close=group[-1].close,
                volume=None
                if any(v is None for v in volumes)
                else str(sum((Decimal(v) for v in volumes if v is not None), Decimal(0))),
            )
        )
    return tuple(out)


def _binance_btc(root: Path) -> MarketSeries:
    bars = _bars(_bar_rows(root / BINANCE_BTC))
    return MarketSeries(
        "binanceusdm",
        "BTC/USDT:USDT",
        "BTCUSDT",
        BAR_MS,
        bars,
        tuple(funding_events(bars)),
        sources={"klines/openInterestHist/fundingRate": str(BINANCE_BTC)},
        derived={
            "kline volume": "null: the file has no volume",
            "sumOpenInterest": "sumOpenInterestValue / close of the bar ending at the snapshot "
            "(timestamp); the first row: its own open",
            "fundingRate": "settlement at 00/08/16 UTC carries last_funding_rate of the bar "
            "opening 5 min later; the first event is the rate before the window",
        },
    )


def _binance_eth(root: Path) -> MarketSeries | None:
    if not (root / BINANCE_ETH).is_file():
        return None
    return MarketSeries(
        "binanceusdm",
        "ETH/USDT:USDT",
        "ETHUSDT",
        BAR_MS,
        _bars(_bar_rows(root / BINANCE_ETH)),
        _settlements(root / BINANCE_ETH_FUNDING),
        sources={"klines": str(BINANCE_ETH), "fundingRate": str(BINANCE_ETH_FUNDING)},
        derived={"kline quote volume/trades/taker volumes": "null: not in the file"},
    )


def _bybit_btc(root: Path) -> MarketSeries | None:
    if not (root / BYBIT_BTC).is_file():
        return None
    return MarketSeries(
        "bybit",
        "BTC/USDT:USDT",
        "BTCUSDT",
        BAR_MS,
        _bars(_bar_rows(root / BYBIT_BTC)),
        _settlements(root / BYBIT_BTC_FUNDING),
        sources={"kline": str(BYBIT_BTC), "funding/history": str(BYBIT_BTC_FUNDING)},
        derived={"kline turnover": "null: not in the file"},
    )


def _okx_btc(root: Path) -> list[MarketSeries]:
    if not (root / OKX_BTC_1M).is_file():
        return []
    minutes = _bars(_bar_rows(root / OKX_BTC_1M))
    funding = _settlements(root / OKX_BTC_FUNDING)
    sources = {"candles 1m": str(OKX_BTC_1M), "funding-rate-history": str(OKX_BTC_FUNDING)}
    one = MarketSeries(
        "okx", "BTC/USDT:USDT", "BTC-USDT-SWAP", MINUTE_MS, minutes, funding, sources=sources
    )
    five = MarketSeries(
        "okx",
        "BTC/USDT:USDT",
        "BTC-USDT-SWAP",
        BAR_MS,
        aggregate_bars(minutes, MINUTE_MS, BAR_MS),
        funding,
        sources={**sources, "candles 5m": f"derived from {OKX_BTC_1M}"},
        derived={
            "candles 5m": "built from the recorded 1m candles, only where all five are "
            "recorded: open of the first, max high, min low, close of the last, summed volume "
            "(OKX serves 5m bars natively; these are the bars it would serve)"
        },
    )
    return [one, five]


@lru_cache(maxsize=4)
def load_shared_data(root: Path) -> SharedData:
    root = root.resolve()
    found: list[MarketSeries] = [_binance_btc(root)]
    for extra in (_binance_eth(root), _bybit_btc(root)):
        if extra is not None:
            found.append(extra)
    found.extend(_okx_btc(root))
    series = {(s.exchange_id, s.symbol, _bar_name(s.bar_ms)): s for s in found}
    with (root / INSTRUMENT_SPECS).open() as handle:
        specs = json.load(handle)
    with (root / TIERS_LATEST).open() as handle:
        tiers = json.load(handle)
    orders: tuple[ForceOrder, ...] = ()
    if (root / FORCE_ORDERS).is_file():
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
            for row in _read_csv(root / FORCE_ORDERS, ("trade_time_ms",))
        )
    levels: tuple[dict[str, Any], ...] = ()
    if (root / HYPERLIQUID_LEVELS).is_file():
        levels = tuple(_json_lines(root / HYPERLIQUID_LEVELS))
    fixture = None
    if (root / HYPERLIQUID_FIXTURE).is_file():
        with (root / HYPERLIQUID_FIXTURE).open() as handle:
            fixture = json.load(handle)
    return SharedData(root, series, specs, tiers, orders, levels, fixture)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line; a line that does not parse (a file cut off mid-line) raises
    :class:`RecordingError` naming the file and the line."""
    out: list[dict[str, Any]] = []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RecordingError(
                    f"{path}: line {number}: {exc.msg} at column {exc.colno} (the file is "
                    "truncated or the line is damaged)"
                ) from None
    return out


def _bar_name(bar_ms: int) -> str:
    return f"{bar_ms // MINUTE_MS}m"


def open_interest_base(bars: tuple[Bar, ...], index: int) -> str:
    """Open interest in coin of row ``index``, derived (the Binance file keeps only USD).

    The file's ``open_interest_usd`` on the row opening at ``t`` is Binance's snapshot stamped
    ``t``: taken at ``t``, the end of the previous bar (its changes follow that bar's price
    move, see tests/jobs/test_open_interest_alignment.py). The amount is that USD value over
    the price at the snapshot: the previous bar's close; the first row has no previous bar and
    uses its own open.
    """
    bar = bars[index]
    assert bar.open_interest_usd is not None
    price = bars[index - 1].close if index > 0 else bar.open
    return repr(float(bar.open_interest_usd) / float(price))


def funding_events(bars: tuple[Bar, ...]) -> list[FundingEvent]:
    """Settled funding events derived from ``last_funding_rate`` (for a file without its own
    settlement list: Binance BTCUSDT).

    The column steps to a new value at a settlement (00/08/16 UTC) on that bar or the next one,
    so the event at settlement T carries the value shown by the bar opening at T + 5 min. The
    first bar predates the first settlement inside the window; its value is the previous
    settlement's rate, recorded at that settlement time.
    """
    by_time = {bar.timestamp: bar for bar in bars}
    first, last = bars[0].timestamp, bars[-1].timestamp
    events: list[FundingEvent] = []
    previous = first - first % FUNDING_INTERVAL_MS
    if previous < first and bars[0].last_funding_rate:
        events.append(FundingEvent(previous, bars[0].last_funding_rate))
    settle = previous + FUNDING_INTERVAL_MS
    while settle + BAR_MS <= last:
        after = by_time.get(settle + BAR_MS)
        if after is not None and after.last_funding_rate:
            events.append(FundingEvent(settle, after.last_funding_rate))
        settle += FUNDING_INTERVAL_MS
    return events


def tiers_valid_from_date(tiers: dict[str, Any]) -> str:
    """The date the shipped tier table was last changed upstream, e.g. "2024-10-24"."""
    stamp = str(tiers["_source"].get("file_last_changed_commit", "")).split()
    return stamp[-1][:10] if stamp else "unknown"
