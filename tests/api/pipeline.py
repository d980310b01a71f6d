"""The API tests' data: produced by liqmap's real jobs from ../shared/data, read back with SQL.

:func:`produce` runs the jobs in replay mode (the real ccxt classes, answered from recordings
built from the real exchange data in ``../shared/data``) in two steps, the way a deployment that
adds an exchange later would:

1. ``jobs.pipeline.run_pipeline_once`` tracking Binance USDⓈ-M ``BTC/USDT:USDT`` and
   ``ETH/USDT:USDT``: the whole 4-week Binance window (candles, open interest, funding, tiers),
   the CoinGlass realized liquidations, the replayed forceOrder captures, then the materializer
   (engine → snapshots and swept levels per market, and the cross-exchange aggregate). The
   recording has no ETH series, so ETH's candle, open-interest and funding ingests fail with the
   replay's error while its tier table succeeds: real failed job runs for
   ``markets { coverage { lastError } }``, and ETH heatmap series without snapshots.
2. Bybit ``BTC/USDT:USDT`` is added: its market is synced, candles, open interest and funding are
   ingested from :data:`BYBIT_SINCE` on only (``jobs.ingest.ingest_dataset(since_ms=…)``, as a
   backfill does), its tier table is never fetched, and ``jobs.materialize.materialize_symbol``
   runs for both exchanges. The Bybit recording replays the same Binance values in Bybit's v5
   wire format (the replay logs a warning saying so), but Bybit's engine starts at BYBIT_SINCE
   on the shipped fallback tier table: its books, its model assumptions and therefore the
   aggregate differ from Binance's (most around BYBIT_SINCE; the books converge as old positions
   decay), and ``bybit:tiers`` is a missing dataset of every BTC map.

Everything the tests expect is read back from the stored rows with plain SQL (:class:`Stored`,
psycopg, no liqmap code) or from the source CSVs — never from the code under test.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from liqmap.database import DatabaseTarget
from tests.api.settings import jobs_settings

SYMBOL = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
BAR = timedelta(minutes=5)
BYBIT_SINCE = datetime(2026, 6, 18, tzinfo=UTC)
BYBIT_DATASETS = ("candles", "open_interest", "funding")  # no tiers: a missing dataset
DATASETS = ("candles", "open_interest", "funding", "tiers")


async def produce(url: str, shared_data: Path) -> None:
    """Run the real jobs into the (migrated, empty) database at ``url`` (see the module doc)."""
    from jobs.ingest import ingest_dataset
    from jobs.materialize import materialize_symbol
    from jobs.pipeline import open_runtime, run_pipeline_once

    target = DatabaseTarget(url, embedded=False)
    binance = jobs_settings(
        shared_data, exchanges=["binanceusdm"], symbols={"binanceusdm": [SYMBOL, ETH]}
    )
    report = await run_pipeline_once(binance, target)
    assert report.snapshots > 0 and report.realized_rows > 0, report
    both = jobs_settings(
        shared_data,
        exchanges=["binanceusdm", "bybit"],
        symbols={"binanceusdm": [SYMBOL, ETH], "bybit": [SYMBOL]},
    )
    rt = open_runtime(both, target)
    try:
        await rt.sync_markets("bybit")
        since = int(BYBIT_SINCE.timestamp() * 1000)
        for dataset in BYBIT_DATASETS:
            result = await ingest_dataset(rt, "bybit", SYMBOL, dataset, since_ms=since)
            assert result.status == "succeeded", result
        await materialize_symbol(rt, SYMBOL)
    finally:
        await rt.close()
        await rt.engine.dispose()


# --- reading back --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Snap:
    """One stored snapshot row, its vectors as the float32 they are stored as."""

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
            "model_version FROM heatmap_snapshots WHERE series_id = %s AND resolution = %s "
            "ORDER BY ts",
            (self.series_id(scope, symbol), resolution),
        )
        return tuple(
            Snap(
                ts,
                res,
                price,
                origin,
                size,
                np.asarray(lo, np.float32),
                np.asarray(sh, np.float32),
                version,
            )
            for ts, res, price, origin, size, lo, sh, version in rows
        )

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
