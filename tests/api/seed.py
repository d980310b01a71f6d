"""Benchmark fill (bench/bench_api.py) — not used by the tests any more.

The API tests run on data produced by the real jobs (tests/api/pipeline.py). This module stays
only because bench/bench_api.py fills its database with it; move the benchmark onto
tests/api/pipeline.produce and delete this file.

Small, realistic fixture data, written with the project's own storage helpers.

Prices, open interest and funding are real Binance BTCUSDT 5m rows cut from the shared CSV;
realized liquidations are the real CoinGlass 30m rows of the same window. The heatmap snapshots
come from a deliberately simple position model (below) run over those real bars — the API only
serves stored vectors, so what matters is that they have the shape the materializer writes
(moving windows on a fixed grid, two resolutions, an aggregate series that is the sum of the
exchanges). A second exchange ("bybit") gets snapshots from the same bars at 60 % of the open
interest and no market data, which exercises sums and missing-dataset reporting.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models import heatmap_store as hs
from models.bulk import copy_upsert
from models.partitions import ensure_month_partitions

SYMBOL = "BTC/USDT:USDT"
BUCKET = 50.0
MODEL_VERSION = "fixture-1"
START = datetime(2026, 6, 1, tzinfo=UTC)  # inside the CoinGlass/Binance overlap
BARS = 2 * 288  # two days of 5m bars
LEVERAGES = np.array([10.0, 25.0, 50.0, 100.0])
LEVERAGE_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
PARAMS = {
    "leverage": LEVERAGES.tolist(),
    "leverage_weights": LEVERAGE_WEIGHTS.tolist(),
    "long_share": 0.5,
    "decay_per_bar": 0.002,
    "maintenance_margin_rate": 0.004,
}


@dataclass(frozen=True, slots=True)
class Bars:
    ts: list[datetime]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    oi_usd: np.ndarray
    funding: np.ndarray


def read_bars(shared_data: Path, start: datetime = START, count: int | None = BARS) -> Bars:
    path = shared_data / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv"
    start_ms = int(start.timestamp() * 1000)
    rows = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if int(row["timestamp"]) >= start_ms:
                rows.append(row)
            if count is not None and len(rows) == count:
                break

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    return Bars(
        ts=[datetime.fromtimestamp(int(r["timestamp"]) / 1000, tz=UTC) for r in rows],
        open=col("price_open"), high=col("price_high"), low=col("price_low"),
        close=col("price_close"), oi_usd=col("open_interest_usd"),
        funding=col("last_funding_rate"),
    )  # fmt: skip


def simulate(
    bars: Bars, oi_scale: float, recent_from: datetime | None = None
) -> tuple[list[hs.SnapshotRow], np.ndarray, np.ndarray]:
    """Positions opened at each close in proportion to the OI increase (plus a base flow),
    liquidated when a bar's range crosses their level, decaying slowly otherwise."""
    n_buckets = 4_000  # grid indexes [k0, k0 + n) cover every level the window reaches
    k0 = int(bars.close.min() * 0.5 // BUCKET)
    long_book = np.zeros(n_buckets)
    short_book = np.zeros(n_buckets)
    snapshots: list[hs.SnapshotRow] = []
    swept_long = np.zeros(len(bars.ts))
    swept_short = np.zeros(len(bars.ts))
    mmr = PARAMS["maintenance_margin_rate"]
    for i, ts in enumerate(bars.ts):
        # sweep: the bar's range liquidates levels it crosses
        lows = (k0 + np.arange(n_buckets) + 1) * BUCKET  # bucket upper edges
        highs = (k0 + np.arange(n_buckets)) * BUCKET  # bucket lower edges
        hit_long = lows > bars.low[i]
        hit_short = highs < bars.high[i]
        swept_long[i] = long_book[hit_long].sum() * oi_scale
        swept_short[i] = short_book[hit_short].sum() * oi_scale
        long_book[hit_long] = 0
        short_book[hit_short] = 0
        long_book *= 1 - PARAMS["decay_per_bar"]
        short_book *= 1 - PARAMS["decay_per_bar"]
        previous = bars.oi_usd[i - 1] if i else bars.oi_usd[0]
        opened = max(bars.oi_usd[i] - previous, 0.0) + 0.001 * bars.oi_usd[i]
        entry = bars.close[i]
        for lev, w in zip(LEVERAGES, LEVERAGE_WEIGHTS, strict=True):
            long_price = entry * (1 - 1 / lev + mmr)
            short_price = entry * (1 + 1 / lev - mmr)
            long_book[int(long_price // BUCKET) - k0] += opened * w * PARAMS["long_share"]
            short_book[int(short_price // BUCKET) - k0] += opened * w * (1 - PARAMS["long_share"])
        # the stored window follows price: ±15 % around the close
        first = int(entry * 0.85 // BUCKET)
        end = int(entry * 1.15 // BUCKET) + 1
        long_usd = (long_book[first - k0 : end - k0] * oi_scale).astype(np.float32)
        short_usd = (short_book[first - k0 : end - k0] * oi_scale).astype(np.float32)
        closes_hour = (ts + timedelta(minutes=5)).minute == 0
        recent = recent_from is None or ts >= recent_from
        for resolution in ("5m", "1h")[0 if recent else 1 : 2 if closes_hour else 1]:
            snapshots.append(
                hs.SnapshotRow(
                    ts,
                    resolution,
                    float(entry),
                    first * BUCKET,
                    BUCKET,
                    long_usd,
                    short_usd,
                    MODEL_VERSION,
                )
            )
    return snapshots, swept_long, swept_short


def aggregate(parts: list[list[hs.SnapshotRow]]) -> list[hs.SnapshotRow]:
    """What the materializer's aggregate does: sum on the shared grid, mean price."""
    out = []
    for rows in zip(*parts, strict=True):
        first = min(round(r.bucket_origin / BUCKET) for r in rows)
        end = max(round(r.bucket_origin / BUCKET) + r.long_usd.size for r in rows)
        long_usd = np.zeros(end - first)
        short_usd = np.zeros(end - first)
        for r in rows:
            k = round(r.bucket_origin / BUCKET) - first
            long_usd[k : k + r.long_usd.size] += r.long_usd
            short_usd[k : k + r.short_usd.size] += r.short_usd
        r0 = rows[0]
        out.append(
            hs.SnapshotRow(
                r0.ts,
                r0.resolution,
                float(np.mean([r.price for r in rows])),
                first * BUCKET,
                BUCKET,
                long_usd.astype(np.float32),
                short_usd.astype(np.float32),
                MODEL_VERSION,
            )
        )
    return out


def read_realized(shared_data: Path, first: datetime, last: datetime) -> list[tuple]:
    path = shared_data / "coinglass" / "BTC_regime_30m.csv"
    out = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stamp = row.get("timestamp") or row.get("time")
            assert stamp is not None
            ts = datetime.fromtimestamp(int(float(stamp)) / 1000, tz=UTC)
            if first <= ts < last:
                out.append(
                    (
                        "coinglass",
                        "*",
                        "BTC",
                        "30m",
                        ts,
                        float(row["liquidation_long_usd"]),
                        float(row["liquidation_short_usd"]),
                        None,
                        False,
                        "CoinGlass aggregated history (Binance+Bybit+OKX)",
                    )
                )
    return out


@dataclass
class Seeded:
    bars: Bars
    series: dict[str, int]  # scope → series id
    snapshots: dict[str, list[hs.SnapshotRow]]
    swept: dict[str, tuple[np.ndarray, np.ndarray]]
    realized: list[tuple]
    markets: dict[str, int]


async def seed(
    conn: AsyncConnection,
    shared_data: Path,
    *,
    start: datetime = START,
    count: int | None = BARS,
    recent_days: int | None = None,
) -> Seeded:
    """Write the fixture; ``recent_days`` keeps 5m snapshots only for the newest days, as the
    materializer does (None: every bar)."""
    bars = read_bars(shared_data, start, count)
    await conn.execute(
        text(
            "INSERT INTO exchanges (id, name) VALUES ('binanceusdm', 'Binance USDⓈ-M'), "
            "('bybit', 'Bybit')"
        )
    )
    markets = {}
    for exchange, exchange_symbol in (("binanceusdm", "BTCUSDT"), ("bybit", "BTCUSDT")):
        markets[exchange] = (
            await conn.execute(
                text(
                    "INSERT INTO markets (exchange_id, symbol, exchange_symbol, base, quote, "
                    "settle, linear, contract_size) VALUES (:e, :s, :x, 'BTC', 'USDT', 'USDT', "
                    "true, 1) RETURNING id"
                ),
                {"e": exchange, "s": SYMBOL, "x": exchange_symbol},
            )
        ).scalar_one()
    m = markets["binanceusdm"]
    first, last = bars.ts[0], bars.ts[-1]
    for table in ("candles", "open_interest", "heatmap_snapshots", "swept_levels"):
        await ensure_month_partitions(conn, table, first, last)
    await copy_upsert(
        conn, "candles",
        ("market_id", "timeframe", "ts", "open", "high", "low", "close"),
        [(m, "5m", t, o, h, lo, c) for t, o, h, lo, c in zip(
            bars.ts, bars.open, bars.high, bars.low, bars.close, strict=True)],
    )  # fmt: skip
    await copy_upsert(
        conn, "open_interest", ("market_id", "timeframe", "ts", "open_interest_usd"),
        [(m, "5m", t, float(v)) for t, v in zip(bars.ts, bars.oi_usd, strict=True)],
    )  # fmt: skip
    funding = {}
    for t, rate in zip(bars.ts, bars.funding, strict=True):  # settle every 8 h
        if t.hour % 8 == 0 and t.minute == 0:
            funding[t] = float(rate)
    await copy_upsert(
        conn, "funding_rates", ("market_id", "ts", "funding_rate"),
        [(m, t, r) for t, r in funding.items()],
    )  # fmt: skip
    await conn.execute(
        text(
            "INSERT INTO ingest_watermarks (market_id, dataset, watermark) VALUES "
            "(:m, 'candles', :w), (:m, 'open_interest', :w)"
        ),
        {"m": m, "w": last + timedelta(minutes=5)},
    )
    await conn.execute(
        text(
            "INSERT INTO job_runs (job, exchange, symbol, dataset, started_at, finished_at, "
            "status, error) VALUES "
            "('ingest', 'binanceusdm', :s, 'candles', :t0, :t1, 'succeeded', NULL), "
            "('ingest', 'binanceusdm', :s, 'tiers', :t0, :t1, 'failed', 'HTTP 401 from venue')"
        ),
        {"s": SYMBOL, "t0": last, "t1": last + timedelta(seconds=3)},
    )
    recent_from = None if recent_days is None else bars.ts[-1] - timedelta(days=recent_days)
    binance, b_long, b_short = simulate(bars, 1.0, recent_from)
    bybit, y_long, y_short = simulate(bars, 0.6, recent_from)
    base_only = [[r for r in rows if r.resolution == res] for rows in (binance, bybit)
                 for res in ("5m", "1h")]  # fmt: skip
    total = aggregate([base_only[0], base_only[2]]) + aggregate([base_only[1], base_only[3]])
    snapshots = {"binanceusdm": binance, "bybit": bybit, "all": total}
    swept = {
        "binanceusdm": (b_long, b_short), "bybit": (y_long, y_short),
        "all": (b_long + y_long, b_short + y_short),
    }  # fmt: skip
    series = {}
    for scope, rows in snapshots.items():
        sid = await hs.ensure_series(conn, SYMBOL, scope, BUCKET)
        series[scope] = sid
        await hs.write_snapshots(conn, sid, rows)
        await hs.write_swept(conn, sid, bars.ts, *swept[scope])
        if scope != "all":
            params = {**PARAMS, "tier_table": f"fixture tiers for {scope}"}
            await hs.save_state(conn, sid, last, MODEL_VERSION, params, b"")
    realized = read_realized(shared_data, first, last + timedelta(minutes=5))
    await copy_upsert(
        conn, "realized_liquidations",
        ("source", "exchange", "base", "symbol", "timeframe", "ts", "long_usd", "short_usd",
         "events", "lower_bound", "note"),
        [(*r[:3], "*", *r[3:]) for r in realized],  # a CoinGlass total over all BTC markets
    )  # fmt: skip
    return Seeded(bars, series, snapshots, swept, realized, markets)
