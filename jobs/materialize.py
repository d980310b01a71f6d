"""Materialization: turn new bars into heatmap snapshots, per market and aggregated.

For each market the engine state saved after the last processed bar is loaded, only bars after
it are run, and snapshots, per-bar swept levels and the new state are written in one transaction
(with one NOTIFY per resolution naming the bars written, delivered on commit). Because the
engine is deterministic and its state round-trips exactly, this incremental path produces
exactly what a full recompute would.
A change of model parameters or version triggers a full recompute of the series.

Resolutions: every base bar for the most recent ``recent_days`` (default 7), and hourly (bars that
close on the hour) for all history.

The model places positions only where the venue's own open interest is stored: a market without
any (Bybit and OKX in the replays: none was recorded) gets no snapshots, said once in the log and
in its report (``SeriesReport.skipped``), never a map from assumed or borrowed numbers. The
cross-exchange aggregate sums only the venues that have open interest
(``SeriesReport.members``), so no venue is counted twice and none is counted without data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from engine.model import (
    Bars,
    EngineState,
    ModelParams,
    SimulationResult,
    Snapshot,
    SnapshotBlock,
    SnapshotSink,
    simulate,
)
from jobs.runtime import Runtime
from jobs.tier_periods import TierPeriod, fallback_period, fingerprint, tier_periods
from jobs.validation import timeframe_ms
from liqmap.logs import get_logger
from maps.bands import BANDS
from maps.compact import CompactVector, encode, encode_rows, fine_buckets
from maps.grid import BucketVector, PriceGrid, add_vectors
from models import heatmap_store as hs
from models import market_data_store, market_store
from models.heatmap_store import SavedState
from models.market_store import MarketRow
from models.records import to_datetime, to_ms

log = get_logger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


@dataclass
class SeriesReport:
    scope: str
    bars: int = 0
    snapshots_written: int = 0
    full_recompute: bool = False
    skipped: str | None = None  # why the model placed no positions (no open interest)
    members: list[str] = field(default_factory=list)  # the aggregate: exchanges summed


NO_OPEN_INTEREST = "no open interest stored for this market: the model places no positions"
_told_no_oi: set[tuple[str, str]] = set()  # logged once per process, then debug


@dataclass
class MaterializeReport:
    symbol: str
    series: list[SeriesReport] = field(default_factory=list)

    @property
    def snapshots_written(self) -> int:
        return sum(s.snapshots_written for s in self.series)


def model_params(rt: Runtime) -> ModelParams:
    overrides = rt.settings.model
    params = ModelParams.default()
    if overrides:
        params = ModelParams.from_dict({**params.to_dict(), **overrides})
    return params


def snapshot_resolutions(
    timestamps: np.ndarray, step_ms: int, recent_from_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of bars that get a base-resolution snapshot and an hourly one."""
    base = timestamps >= recent_from_ms
    hourly = (timestamps + step_ms) % HOUR_MS == 0
    return base, hourly


async def tier_periods_for(rt: Runtime, market: MarketRow) -> list[TierPeriod]:
    """The market's tier periods, oldest first (the shipped fallback when none is stored)."""
    async with rt.engine.connect() as conn:
        rows = await market_store.tier_tables(conn, market.id, rt.settings.timeframe)
        periods = tier_periods(rows, market)
        if periods:
            return periods
        price = await market_data_store.first_close(conn, market.id, rt.settings.timeframe)
    return [fallback_period(market, float(price or 0.0))]


def _period_record(period: TierPeriod) -> dict[str, object]:
    return {
        "from": period.start_ms,
        "source": period.label,
        "fingerprint": fingerprint(period.tiers),
    }


def _state_usable(
    saved: SavedState | None, params: ModelParams, periods: list[TierPeriod], model_dict: dict
) -> bool:
    """A saved state continues only under the same model and the same tiers for its past bars.

    Tier periods that start after the saved bar may be new (a changed table applies from when
    it was fetched on); any change to a period the saved bars already used means a recompute.
    """
    if saved is None or saved.model_version != params.version:
        return False
    saved_params = dict(saved.params)
    used = saved_params.pop("tier_tables", None)
    if saved_params != model_dict or not isinstance(used, list):
        return False
    last = to_ms(saved.last_bar_ts)
    current = [_period_record(p) for p in periods if p.start_ms is None or p.start_ms <= last]
    key = [(r.get("from"), r.get("fingerprint")) for r in used]
    return key == [(r["from"], r["fingerprint"]) for r in current]


def _simulate_periods(
    bars: Bars,
    params: ModelParams,
    grid: PriceGrid,
    periods: list[TierPeriod],
    market: MarketRow,
    state: EngineState | None,
    snapshot_every: np.ndarray,
    sink: SnapshotSink,
) -> SimulationResult:
    """Run the engine period by period: positions opened in a period use its tier table.
    Snapshots go to ``sink`` block by block (the result holds none)."""
    starts = [p.start_ms or 0 for p in periods[1:]]  # only the first period has no start
    bounds = [0, *(int(np.searchsorted(bars.timestamp, s, side="left")) for s in starts)]
    bounds.append(len(bars))
    longs, shorts = [], []
    for period, a, b in zip(periods, bounds[:-1], bounds[1:], strict=True):
        if b <= a:
            continue
        profile = params.profile(
            period.tiers, inverse=not market.linear, reference_price=period.reference_price
        )
        part = simulate(
            bars.slice(a, b),
            params,
            grid,
            period.tiers,
            state=state,
            snapshot_every=snapshot_every[a:b],
            snapshot_sink=sink,
            profile=profile,
        )
        state = part.state
        longs.append(part.predicted_long_usd)
        shorts.append(part.predicted_short_usd)
    return SimulationResult(state, np.concatenate(longs), np.concatenate(shorts))


async def materialize_market(
    rt: Runtime, exchange: str, symbol: str, params: ModelParams
) -> tuple[SeriesReport, datetime | None]:
    """Process new bars of one market. Returns the report and the last bar before this run."""
    report = SeriesReport(scope=exchange)
    market = await rt.market(exchange, symbol)
    step = timeframe_ms(rt.settings.timeframe)
    periods = await tier_periods_for(rt, market)
    model_dict = hs.dumps_params(params.to_dict())

    async with rt.engine.begin() as conn:
        series_id = await hs.ensure_series(conn, symbol, exchange, _bucket(rt, symbol))
        saved = await hs.load_engine_state(conn, series_id)
        has_oi = await market_data_store.has_open_interest(conn, market.id, rt.settings.timeframe)
    if not has_oi:
        key = (exchange, symbol)
        say = log.debug if key in _told_no_oi else log.info
        _told_no_oi.add(key)
        say("no model map", exchange=exchange, symbol=symbol, reason=NO_OPEN_INTEREST)
        report.skipped = NO_OPEN_INTEREST
        return report, None
    state: EngineState | None = None
    after = EPOCH
    if _state_usable(saved, params, periods, model_dict):
        assert saved is not None
        try:
            state = EngineState.from_bytes(saved.state)
            after = saved.last_bar_ts
        except ValueError as exc:  # a state of another format (e.g. before leverage bands)
            log.info("engine state not usable: recompute", exchange=exchange, reason=str(exc))
    if state is None:
        report.full_recompute = True
    previous_last = after if state is not None else None

    async with rt.engine.connect() as conn:
        bars = await market_data_store.bars_with_open_interest(
            conn, market.id, rt.settings.timeframe, after
        )
    if len(bars) == 0:
        return report, previous_last
    grid = PriceGrid(bucket_size=_bucket(rt, symbol))
    newest = int(bars.timestamp[-1])
    recent_from = newest - rt.settings.recent_days * 86_400_000
    base_mask, hourly_mask = snapshot_resolutions(bars.timestamp, step, recent_from)
    packed_snapshots: list[tuple[int, float, CompactVector]] = []

    def pack(block: SnapshotBlock) -> None:  # packed as they come: no copies of the rows
        packed_snapshots.extend(
            (s.timestamp, s.price, pack_snapshot(s, grid.bucket_size)) for s in block
        )

    result = _simulate_periods(
        Bars(
            timestamp=bars.timestamp,
            open=bars.open,
            high=bars.high,
            low=bars.low,
            close=bars.close,
            open_interest_usd=bars.open_interest_usd,
            volume=bars.volume,
            taker_buy_volume=bars.taker_buy_volume,
        ),
        params,
        grid,
        periods,
        market,
        state,
        base_mask | hourly_mask,
        pack,
    )
    used = [p for p in periods if p.start_ms is None or p.start_ms <= newest]
    params_dict = hs.dumps_params({**model_dict, "tier_tables": [_period_record(p) for p in used]})
    snapshots: list[hs.SnapshotRow] = []
    index_of = {int(t): i for i, t in enumerate(bars.timestamp)}
    for timestamp, price, packed in packed_snapshots:
        i = index_of[timestamp]
        ts = to_datetime(timestamp)
        for resolution, mask in ((rt.settings.timeframe, base_mask), ("1h", hourly_mask)):
            if mask[i]:
                snapshots.append(
                    hs.SnapshotRow.of(
                        ts, resolution, price, grid.bucket_size, packed, params.version
                    )
                )
    stamps = [to_datetime(int(t)) for t in bars.timestamp]
    async with rt.engine.begin() as conn:
        if report.full_recompute:
            await hs.clear_series(conn, series_id)
        report.snapshots_written = await hs.write_snapshots(conn, series_id, snapshots)
        await hs.write_swept(
            conn,
            series_id,
            stamps,
            np.asarray(result.predicted_long_usd),
            np.asarray(result.predicted_short_usd),
        )
        if result.state is None:  # simulate() keeps the state unless told not to
            raise RuntimeError("engine returned no state to persist")
        await hs.save_engine_state(
            conn, series_id, stamps[-1], params.version, params_dict, result.state.to_bytes()
        )
        await hs.prune_snapshots(conn, series_id, rt.settings.timeframe, to_datetime(recent_from))
        await hs.notify_snapshots(conn, series_id, symbol, exchange, snapshots)
    report.bars = len(bars)
    log.info(
        "materialized",
        exchange=exchange,
        symbol=symbol,
        bars=report.bars,
        snapshots=report.snapshots_written,
        full=report.full_recompute,
    )
    return report, previous_last


def pack_snapshot(snap: Snapshot, bucket_size: float) -> CompactVector:
    """An engine snapshot as it is stored: graded buckets around its price, with its leverage
    bands on the same buckets."""
    return graded(
        BucketVector(snap.bucket_origin_index, snap.long, snap.short),
        float(snap.price),
        bucket_size,
        np.concatenate([snap.long_bands, snap.short_bands]),
    )


def graded(
    vector: BucketVector, price: float, bucket_size: float, bands: np.ndarray | None = None
) -> CompactVector:
    """A snapshot's vectors in graded buckets around the price (``maps.compact``); ``bands``
    (long bands then short bands, ``(10, n)`` on ``vector``'s buckets) on the same layout."""
    center = math.floor(price / bucket_size)
    fine = fine_buckets(price, bucket_size)
    if bands is None:
        return encode(vector, center, fine)
    # totals and bands in one pass over one layout
    q0, rows = encode_rows(
        vector.first, np.concatenate([[vector.long_usd, vector.short_usd], bands]), center, fine
    )
    return CompactVector(center, fine, q0, rows[0], rows[1], bands=rows[2:])


def _band_rows(bands: tuple[BucketVector, ...]) -> np.ndarray:
    """Per-band vectors (one extent) as rows: long bands, then short bands."""
    return np.stack([b.long_usd for b in bands] + [b.short_usd for b in bands])


def _bucket(rt: Runtime, symbol: str) -> float:
    return rt.settings.bucket_size_for(symbol)


async def materialize_aggregate(
    rt: Runtime, symbol: str, exchanges: list[str], since: datetime | None, version: str
) -> SeriesReport:
    """Sum the exchanges' snapshots and swept levels onto the shared grid (USD-normalized).

    ``exchanges`` are the venues with open interest; the caller leaves the others out.
    """
    report = SeriesReport(scope=hs.AGGREGATE_SCOPE, members=list(exchanges))
    bucket = _bucket(rt, symbol)
    after = since or EPOCH
    async with rt.engine.begin() as conn:
        agg_id = await hs.ensure_series(conn, symbol, hs.AGGREGATE_SCOPE, bucket)
        member_ids = [await hs.ensure_series(conn, symbol, e, bucket) for e in exchanges]
    snapshots: list[hs.SnapshotRow] = []
    swept: dict[datetime, list[float]] = {}
    async with rt.engine.connect() as conn:
        for resolution in (rt.settings.timeframe, "1h"):
            by_ts: dict[datetime, list[hs.Snapshot]] = {}
            for member in member_ids:
                for snap in await hs.snapshots_after(conn, member, resolution, after):
                    by_ts.setdefault(snap.ts, []).append(snap)
            for ts, parts in sorted(by_ts.items()):
                # every member is already in USD on the same grid: plain sums, per band too
                total = add_vectors([p.vector for p in parts])
                price = float(np.mean([p.price for p in parts]))
                bands = None
                if all(p.bands is not None for p in parts):  # every member stored with bands
                    per_band = [
                        add_vectors([p.bands[b] for p in parts if p.bands is not None])
                        for b in range(BANDS)
                    ]
                    assert all(v.first == total.first for v in per_band)
                    bands = _band_rows(tuple(per_band))
                snapshots.append(
                    hs.SnapshotRow.of(
                        ts, resolution, price, bucket, graded(total, price, bucket, bands), version
                    )
                )
        for member in member_ids:
            for bar in await hs.swept_after(conn, member, after):
                acc = swept.setdefault(bar.ts, [0.0, 0.0])
                acc[0] += bar.long_usd
                acc[1] += bar.short_usd
    if not snapshots and not swept:
        return report
    stamps = sorted(swept)
    async with rt.engine.begin() as conn:
        if since is None:
            await hs.clear_series(conn, agg_id)
        report.snapshots_written = await hs.write_snapshots(conn, agg_id, snapshots)
        await hs.write_swept(
            conn,
            agg_id,
            stamps,
            np.array([swept[t][0] for t in stamps]),
            np.array([swept[t][1] for t in stamps]),
        )
        if stamps:
            recent_from = stamps[-1] - timedelta(days=rt.settings.recent_days)
            await hs.prune_snapshots(conn, agg_id, rt.settings.timeframe, recent_from)
        await hs.notify_snapshots(conn, agg_id, symbol, hs.AGGREGATE_SCOPE, snapshots)
    report.bars = len(stamps)
    return report


async def materialize_symbol(rt: Runtime, symbol: str) -> MaterializeReport:
    params = model_params(rt)
    exchanges = [e for e in rt.settings.exchanges if symbol in rt.settings.symbols_for(e)]
    report = MaterializeReport(symbol)
    previous: list[datetime | None] = []
    members: list[str] = []
    for exchange in exchanges:
        series, before = await materialize_market(rt, exchange, symbol, params)
        report.series.append(series)
        if series.skipped is None:  # only venues with their own open interest are summed
            members.append(exchange)
            previous.append(None if series.full_recompute else before)
    # everything after the oldest previous watermark may have changed in the aggregate
    since = (
        None if not previous or any(p is None for p in previous) else min(p for p in previous if p)
    )
    if members != exchanges:
        left_out = [e for e in exchanges if e not in members]
        log.debug(
            "aggregate without venues lacking open interest", members=members, left_out=left_out
        )
    report.series.append(await materialize_aggregate(rt, symbol, members, since, params.version))
    return report
