"""The API tests' data: produced by liqmap's real jobs from ../shared/data, read back with SQL.

:func:`produce` runs ``jobs.pipeline.run_pipeline_once`` in replay mode (the real ccxt classes,
answered from recordings of the real exchange data in ``../shared/data``) over both recorded
windows, the way a deployment would have run through them, each venue carrying only its own
numbers:

1. the January window (``venues-2026-01``, clock 2026-02-08): Bybit and OKX ``BTC/USDT:USDT``
   and Binance ``ETH/USDT:USDT`` candles and funding, and Hyperliquid, whose 34 recorded
   top-trader snapshots (``hyperliquid/top_trader_liq_levels_dev.jsonl``) the known-positions
   step stores, beside one live round over the one account the shared ccxt extract recorded
   (:data:`KNOWN_ACCOUNT` on its ``flx`` dex: one position, and its two liquidation fills,
   read through ccxt as live). No venue recorded open interest there: every ``open_interest``
   ingest is an ``unavailable`` run with the recording's reason, and the materializer maps
   nothing;
2. the May window (``binance-btc-2026-05``, the default, clock 2026-06-22): Binance
   ``BTC/USDT:USDT`` with candles, open interest, funding and tiers, the CoinGlass realized
   liquidations and the replayed forceOrder captures, with Bybit and OKX BTC and Binance ETH
   still tracked (they recorded nothing in May; their open interest is unavailable again).
   The materializer maps Binance BTC; Bybit, OKX and ETH get series without snapshots, and the
   cross-exchange aggregate is the sum of the venues with real open interest: Binance alone.

Everything the tests expect is read back from the stored rows with plain SQL (:class:`Stored`,
psycopg, no liqmap code) or from the source files — never from the code under test.
"""

from __future__ import annotations

import csv
import functools
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from jobs.replay.hyperliquid_wire import RECORDED_ACCOUNT as KNOWN_ACCOUNT
from liqmap.database import DatabaseTarget
from maps import compact
from tests.api.settings import API_EXCHANGES, jobs_settings

SYMBOL = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
HL_BTC = "BTC/USDC:USDC"  # Hyperliquid's BTC perpetual (the known levels' market)
BAR = timedelta(minutes=5)
MID_WINDOW = datetime(2026, 6, 18, tzinfo=UTC)  # a midnight inside the Binance BTC window
JANUARY = "venues-2026-01"
WITHOUT_OI = ("bybit", "okx")  # tracked for BTC/USDT:USDT, no open interest recorded anywhere
DATASETS = ("candles", "open_interest", "funding", "tiers")
KNOWN_LEVELS = Path("hyperliquid") / "top_trader_liq_levels_dev.jsonl"


async def produce(url: str, shared_data: Path) -> None:
    """Run the real jobs into the (migrated, empty) database at ``url`` (see the module doc)."""
    from jobs.pipeline import run_pipeline_once

    target = DatabaseTarget(url, embedded=False)
    january = jobs_settings(
        shared_data,
        replay_window=JANUARY,
        exchanges=[*API_EXCHANGES, "hyperliquid"],
        symbols={
            "binanceusdm": [ETH],
            "bybit": [SYMBOL],
            "okx": [SYMBOL],
            "hyperliquid": [HL_BTC],
        },
        known_positions_accounts=[f"{KNOWN_ACCOUNT}@flx"],
    )
    report = await run_pipeline_once(january, target)
    assert report.snapshots == 0 and report.known_snapshots == 34 + 1, report
    by_run = {(r.exchange, r.symbol, r.dataset): r for r in report.ingest}
    for exchange, symbol in (("bybit", SYMBOL), ("okx", SYMBOL), ("binanceusdm", ETH)):
        for dataset in ("candles", "funding"):
            run = by_run[(exchange, symbol, dataset)]
            assert run.status == "succeeded" and run.rows_written > 0, run
        assert by_run[(exchange, symbol, "open_interest")].status == "unavailable"
    may = jobs_settings(shared_data)  # the API's venues and markets, in the default window
    report = await run_pipeline_once(may, target)
    assert report.snapshots > 0 and report.realized_rows > 0, report
    for exchange in WITHOUT_OI:
        run = next(
            r for r in report.ingest if (r.exchange, r.dataset) == (exchange, "open_interest")
        )
        assert run.status == "unavailable", run


# --- reading back --------------------------------------------------------------------------------
def on_grid(
    bucket_origin: float,
    bucket_size: float,
    long_usd: Sequence[float],
    short_usd: Sequence[float],
    fine: int,
    center: int,
    q_first: int,
) -> tuple[int, np.ndarray, np.ndarray]:
    """A stored row's vectors on the grid: (grid index of element 0, long, short). Plain rows
    (v1, fine 0) as the float32 they are stored as; graded rows (model v2) with each stored
    bucket spread evenly over its grid buckets (float64), as the API reads them."""
    long32, short32 = np.asarray(long_usd, np.float32), np.asarray(short_usd, np.float32)
    if not fine:
        return round(bucket_origin / bucket_size), long32, short32
    grid = compact.decode(
        compact.CompactVector(
            center, fine, q_first, long32.astype(np.float64), short32.astype(np.float64)
        )
    )
    assert grid.first == round(bucket_origin / bucket_size)
    return grid.first, grid.long_usd, grid.short_usd


@dataclass(frozen=True, slots=True)
class Snap:
    """One stored snapshot row, its vectors on the grid: the float32 they are stored as, or for
    graded rows (model v2) each stored bucket spread evenly over its grid buckets (float64)."""

    ts: datetime  # bar open; the map describes the bar's close
    resolution: str
    price: float
    bucket_origin: float
    bucket_size: float
    long_usd: np.ndarray
    short_usd: np.ndarray
    model_version: str

    @property
    def at(self) -> datetime:
        return self.ts + BAR

    @property
    def first(self) -> int:
        """Grid index of element 0."""
        return round(self.bucket_origin / self.bucket_size)

    @property
    def prices(self) -> np.ndarray:
        """Lower edge of every bucket."""
        return (self.first + np.arange(self.long_usd.size)) * self.bucket_size


def band_rows(blob: bytes, size: int) -> np.ndarray:
    """A stored leverage-band blob read with struct, field by field: rows ``(10, size)``
    float32, the five long bands then the five short ones (an int32 (first, length) header per
    channel, then each channel's float32 values)."""
    header = struct.unpack_from("<20i", blob, 0)
    rows = np.zeros((10, size), np.float32)
    at = 80
    for c in range(10):
        first, length = header[2 * c], header[2 * c + 1]
        rows[c, first : first + length] = struct.unpack_from(f"<{length}f", blob, at)
        at += 4 * length
    assert at == len(blob), "the blob holds more than its header says"
    return rows


@dataclass(frozen=True, slots=True)
class Bars:
    """Binance BTCUSDT 5m bars straight from the shared CSV."""

    ts: list[datetime]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    oi_usd: np.ndarray
    funding: np.ndarray  # last_funding_rate

    def index(self, ts: datetime) -> int:
        return self.ts.index(ts)


def read_bars(shared_data: Path) -> Bars:
    path = shared_data / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    return Bars(
        ts=[datetime.fromtimestamp(int(r["timestamp"]) / 1000, tz=UTC) for r in rows],
        open=col("price_open"),
        high=col("price_high"),
        low=col("price_low"),
        close=col("price_close"),
        oi_usd=col("open_interest_usd"),
        funding=col("last_funding_rate"),
    )


@dataclass(frozen=True, slots=True)
class VenueBars:
    """5m bars of a venue's January file (no open interest), straight from the CSV."""

    ts: list[datetime]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


VENUE_FILES = {
    ("bybit", SYMBOL): Path("bybit") / "BTCUSDT_perp_5m_klines_funding.csv",
    ("binanceusdm", ETH): Path("binance") / "ETHUSDT_perp_5m_klines_funding.csv",
}
FUNDING_FILES = {
    ("bybit", SYMBOL): Path("bybit") / "BTCUSDT_perp_funding_8h.csv",
    ("binanceusdm", ETH): Path("binance") / "ETHUSDT_perp_funding_8h.csv",
}


def read_venue_bars(shared_data: Path, exchange: str, symbol: str) -> VenueBars:
    with (shared_data / VENUE_FILES[(exchange, symbol)]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    return VenueBars(
        ts=[datetime.fromtimestamp(int(r["timestamp"]) / 1000, tz=UTC) for r in rows],
        open=col("price_open"),
        high=col("price_high"),
        low=col("price_low"),
        close=col("price_close"),
        volume=col("volume_base"),
    )


def read_venue_funding(shared_data: Path, exchange: str, symbol: str) -> dict[datetime, float]:
    """The 8h settlements of a venue's January file: settlement time → rate."""
    with (shared_data / FUNDING_FILES[(exchange, symbol)]).open(newline="") as handle:
        return {
            datetime.fromtimestamp(int(r["funding_time"]) / 1000, tz=UTC): float(r["funding_rate"])
            for r in csv.DictReader(handle)
        }


def read_known_levels(shared_data: Path) -> list[dict[str, Any]]:
    """The recorded top-trader snapshots (one JSON object a line), oldest first."""
    with (shared_data / KNOWN_LEVELS).open() as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    return sorted(lines, key=lambda line: line["lastUpdated"])


def read_coinglass(shared_data: Path) -> dict[datetime, tuple[float, float]]:
    """The CoinGlass 30m realized liquidations (long, short USD) the pipeline imports."""
    path = shared_data / "coinglass" / "BTC_agg_liquidation_30m.csv"
    out = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            ts = datetime.fromtimestamp(int(row["timestamp"]) / 1000, tz=UTC)
            out[ts] = (float(row["longUsd"]), float(row["shortUsd"]))
    return out


class Stored:
    """What the jobs stored, read with plain SQL (psycopg). Snapshot and swept reads are cached
    (the session's data never changes); :meth:`forget` drops them for a database that does."""

    def __init__(self, url: str, shared_data: Path) -> None:
        self.url = url
        self.shared_data = shared_data
        self._cache: dict[tuple, Any] = {}

    def forget(self) -> None:
        self._cache.clear()

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        """Run a change (committed); tests that change stored rows restore them."""
        with psycopg.connect(self.url) as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        (row,) = self.rows(sql, params)
        return row[0] if len(row) == 1 else row

    @functools.cached_property
    def bars(self) -> Bars:
        return read_bars(self.shared_data)

    @functools.cached_property
    def coinglass(self) -> dict[datetime, tuple[float, float]]:
        return read_coinglass(self.shared_data)

    def series_id(self, scope: str, symbol: str = SYMBOL) -> int:
        return int(
            self.one(
                "SELECT id FROM heatmap_series WHERE symbol = %s AND scope = %s", (symbol, scope)
            )
        )

    def snapshots(self, scope: str, resolution: str, symbol: str = SYMBOL) -> tuple[Snap, ...]:
        """Every stored snapshot of a series and resolution, oldest first."""
        key = ("snapshots", scope, resolution, symbol)
        if key not in self._cache:
            self._cache[key] = self._read_snapshots(scope, resolution, symbol)
        return self._cache[key]  # type: ignore[no-any-return]

    def _read_snapshots(self, scope: str, resolution: str, symbol: str) -> tuple[Snap, ...]:
        rows = self.rows(
            "SELECT ts, resolution, price, bucket_origin, bucket_size, long_usd, short_usd, "
            "model_version, fine_buckets, center_index, compact_first FROM heatmap_snapshots "
            "WHERE series_id = %s AND resolution = %s ORDER BY ts",
            (self.series_id(scope, symbol), resolution),
        )
        out = []
        for ts, res, price, origin, size, lo, sh, version, fine, center, q0 in rows:
            _, long_usd, short_usd = on_grid(origin, size, lo, sh, fine, center, q0)
            out.append(Snap(ts, res, price, origin, size, long_usd, short_usd, version))
        return tuple(out)

    def snapshot(self, scope: str, resolution: str, ts: datetime) -> Snap:
        (found,) = [s for s in self.snapshots(scope, resolution) if s.ts == ts]
        return found

    def latest(self, scope: str, at: datetime | None = None) -> Snap:
        """The newest snapshot (either resolution) whose bar closed at or before ``at``."""
        candidates = [
            s
            for res in ("5m", "1h")
            for s in self.snapshots(scope, res)
            if at is None or s.at <= at
        ]
        return max(candidates, key=lambda s: s.ts)

    def swept(self, scope: str) -> dict[datetime, tuple[float, float]]:
        """Per bar, the notional the model says was liquidated (long, short)."""
        key = ("swept", scope)
        if key not in self._cache:
            rows = self.rows(
                "SELECT ts, long_usd, short_usd FROM swept_levels WHERE series_id = %s ORDER BY ts",
                (self.series_id(scope),),
            )
            self._cache[key] = {ts: (lo, sh) for ts, lo, sh in rows}
        return self._cache[key]  # type: ignore[no-any-return]

    def market_id(self, exchange: str, symbol: str = SYMBOL) -> int:
        return int(
            self.one(
                "SELECT id FROM markets WHERE exchange_id = %s AND symbol = %s", (exchange, symbol)
            )
        )

    def watermark(self, exchange: str, dataset: str) -> datetime:
        value: datetime = self.one(
            "SELECT watermark FROM ingest_watermarks WHERE market_id = %s AND dataset = %s",
            (self.market_id(exchange), dataset),
        )
        return value

    def model_states(self, symbol: str = SYMBOL) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per exchange: the saved engine state's model version and parameters."""
        rows = self.rows(
            "SELECT s.scope, e.model_version, e.params FROM engine_states e "
            "JOIN heatmap_series s ON s.id = e.series_id WHERE s.symbol = %s",
            (symbol,),
        )
        return {scope: (version, params) for scope, version, params in rows}

    def unavailable(self, exchange: str, symbol: str = SYMBOL) -> dict[str, str]:
        """dataset → reason, for every dataset whose latest ingest run was 'unavailable'."""
        rows = self.rows(
            "SELECT DISTINCT ON (dataset) dataset, status, error FROM job_runs "
            "WHERE exchange = %s AND symbol = %s AND job IN ('ingest', 'backfill', 'import') "
            "ORDER BY dataset, started_at DESC, id DESC",
            (exchange, symbol),
        )
        return {d: error for d, status, error in rows if status == "unavailable"}

    def missing_datasets(self, exchanges: Sequence[str], symbol: str = SYMBOL) -> list[str]:
        """``exchange:dataset`` for every dataset with no stored row for the market."""
        tables = {
            "candles": "candles",
            "open_interest": "open_interest",
            "funding": "funding_rates",
            "tiers": "margin_tiers",
        }
        out = []
        for exchange in sorted(exchanges):
            market = self.market_id(exchange, symbol)
            for dataset, table in tables.items():
                count = self.one(f"SELECT count(*) FROM {table} WHERE market_id = %s", (market,))
                if count == 0:
                    out.append(f"{exchange}:{dataset}")
        return out


def read_force_orders(
    shared_data: Path, symbol: str = "BTCUSDT"
) -> list[tuple[datetime, str, float]]:
    """The replayed Binance forceOrder captures of one market: (trade time, side, USD), USD
    recomputed as price × filled quantity (the data README's rule); SELL = a long liquidated."""
    path = shared_data / "forceorder" / "binance_usdm_forceorder_captures_normalized.csv"
    out = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["symbol"] == symbol:
                ts = datetime.fromtimestamp(int(row["trade_time_ms"]) / 1000, tz=UTC)
                usd = float(row["price"]) * float(row["filled_accum_qty"])
                out.append((ts, "long" if row["side"] == "SELL" else "short", usd))
    return out
