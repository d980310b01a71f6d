"""Realized liquidations: the streaming collector and file imports of per-bar totals.

The collector stores each public liquidation event (ccxt pro ``watch_liquidations``) and
recomputes the per-bar long/short totals of the bars it touched. Binance pushes at most one event
per symbol per second, so its totals are flagged as lower bounds. File imports load per-bar totals
from other tools (CoinGlass's aggregated-history CSV layout) so predicted can be compared with
realized for any period.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from jobs.runtime import Runtime
from liqmap.logs import get_logger
from liqmap.timeframes import timeframe_ms, timeframe_name
from models import jobs_store, liquidations_store
from models.records import LiquidationEvent, RealizedTotal, to_datetime

log = get_logger(__name__)


class RealizedFileError(ValueError):
    """A file that cannot be imported; the message names the file, row and column."""


@dataclass(frozen=True, slots=True)
class CollectReport:
    events: int
    bars: int


async def store_liquidation_events(
    rt: Runtime, exchange: str, events: list[LiquidationEvent]
) -> CollectReport:
    """Store events of tracked markets and refresh the per-bar totals they touch."""
    step = timeframe_ms(rt.settings.timeframe)
    by_symbol: dict[str, list[LiquidationEvent]] = defaultdict(list)
    tracked = set(rt.settings.symbols_for(exchange))
    for event in events:
        if event.symbol in tracked:
            by_symbol[event.symbol].append(event)
    stored = bars = 0
    for symbol, batch in by_symbol.items():
        market = await rt.market(exchange, symbol)
        first = to_datetime(min(e.timestamp for e in batch) // step * step)
        last = to_datetime(max(e.timestamp for e in batch))
        async with rt.engine.begin() as conn:
            stored += await liquidations_store.write_liquidation_events(conn, market.id, batch)
            bars += await liquidations_store.refresh_realized_from_events(
                conn, market, step, first, last
            )
    return CollectReport(stored, bars)


async def collect_liquidations(
    rt: Runtime, exchange: str, *, max_batches: int | None = None
) -> CollectReport:
    """Consume the exchange's public liquidation stream (until cancelled or max_batches)."""
    adapter = rt.adapter(exchange)
    symbols = rt.settings.symbols_for(exchange)
    total_events = total_bars = batches = 0
    async for batch in adapter.watch_liquidations(symbols):
        report = await store_liquidation_events(rt, exchange, batch)
        total_events += report.events
        total_bars += report.bars
        batches += 1
        if max_batches is not None and batches >= max_batches:
            break
    log.info("liquidations collected", exchange=exchange, events=total_events, bars=total_bars)
    return CollectReport(total_events, total_bars)


# --- file imports ---------------------------------------------------------------------------
# column pairs (long, short) by known layout
_LAYOUTS = (
    ("longUsd", "shortUsd"),  # CoinGlass aggregated liquidation history
    ("liquidation_long_usd", "liquidation_short_usd"),  # CoinGlass regime export
    ("long_usd", "short_usd"),  # liqmap's own / backtest L.csv
)


@dataclass(frozen=True, slots=True)
class RealizedBars:
    timeframe: str
    timestamps: list[int]
    long_usd: list[float]
    short_usd: list[float]


def read_realized_csv(path: Path) -> RealizedBars:
    """Parse a per-bar realized-liquidations CSV; reject the whole file on any bad row."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise RealizedFileError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if "timestamp" not in header:
            raise RealizedFileError(f"{path}: no 'timestamp' column (header: {', '.join(header)})")
        layout = next((pair for pair in _LAYOUTS if set(pair) <= set(header)), None)
        if layout is None:
            wanted = " or ".join(f"{a}/{b}" for a, b in _LAYOUTS)
            raise RealizedFileError(f"{path}: no long/short columns; expected {wanted}")
        stamps: list[int] = []
        longs: list[float] = []
        shorts: list[float] = []
        for line, row in enumerate(reader, start=2):
            try:
                ts = int(float(row["timestamp"]))
            except (TypeError, ValueError):
                raise RealizedFileError(
                    f"{path}: row {line}, column timestamp: {row['timestamp']!r} is not epoch ms"
                ) from None
            if stamps and ts <= stamps[-1]:
                raise RealizedFileError(f"{path}: row {line}, column timestamp: not increasing")
            values = []
            for column in layout:
                try:
                    value = float(row[column])
                except (TypeError, ValueError):
                    value = math.nan
                if not math.isfinite(value) or value < 0:
                    raise RealizedFileError(
                        f"{path}: row {line}, column {column}: {row[column]!r} is not a "
                        "non-negative number"
                    )
                values.append(value)
            stamps.append(ts)
            longs.append(values[0])
            shorts.append(values[1])
    if not stamps:
        raise RealizedFileError(f"{path}: no rows")
    steps = sorted({b - a for a, b in itertools.pairwise(stamps)})
    step = steps[0] if steps else 0
    if step <= 0:
        raise RealizedFileError(f"{path}: cannot infer the bar length from one row")
    try:
        timeframe = timeframe_name(step)
    except ValueError:
        raise RealizedFileError(
            f"{path}: bars {step} ms apart are not a whole number of minutes"
        ) from None
    return RealizedBars(timeframe, stamps, longs, shorts)


async def import_realized_file(
    rt: Runtime,
    path: Path,
    *,
    base: str,
    exchange: str = "*",
    symbol: str = "*",
    source: str = "coinglass",
    note: str | None = None,
) -> int:
    """Import per-bar totals; the whole file commits at once or not at all.

    ``exchange``/``symbol`` ``*`` mean a total over venues / over every market of ``base``.
    """
    if symbol != "*" and symbol.split("/", 1)[0] != base:
        raise RealizedFileError(f"{path}: market {symbol!r} is not a {base} market")
    bars = read_realized_csv(path)
    rows = [
        RealizedTotal(
            source,
            exchange,
            base,
            symbol,
            bars.timeframe,
            ts,
            lo,
            sh,
            note=note or f"imported from {path.name}",
        )
        for ts, lo, sh in zip(bars.timestamps, bars.long_usd, bars.short_usd, strict=True)
    ]
    run_id = await jobs_store.start_job_run(
        rt.engine, "import", exchange, base if symbol == "*" else symbol, "realized", None
    )
    async with rt.engine.begin() as conn:
        written = await liquidations_store.write_realized_totals(conn, rows)
    await jobs_store.finish_job_run(
        rt.engine, run_id, "succeeded", written, to_datetime(bars.timestamps[-1])
    )
    log.info("realized liquidations imported", file=str(path), rows=written, base=base)
    return written


def coinglass_files(shared_dir: Path) -> list[tuple[Path, str]]:
    """The CoinGlass per-bar files of a shared-data folder, with their base asset."""
    folder = shared_dir / "coinglass"
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*_agg_liquidation_*.csv")):
        out.append((path, path.name.split("_", 1)[0].upper()))
    return out


async def run_collector_forever(
    rt: Runtime, exchange: str, *, standby_poll_s: float = 30.0
) -> None:
    """Collect while holding the exchange's collector lock; other workers wait as standbys.

    A session-level advisory lock on a dedicated connection: if this worker dies, PostgreSQL
    releases the lock with its connection and a standby takes over within ``standby_poll_s``.
    """
    import asyncio
    import zlib

    key = zlib.crc32(f"liqmap-collector:{exchange}".encode())
    while True:
        async with rt.engine.connect() as conn:
            got = await jobs_store.try_session_lock(conn, key)
            await conn.commit()
            if not got:
                await asyncio.sleep(standby_poll_s)
                continue
            try:
                log.info("liquidation collector started", exchange=exchange)
                await collect_liquidations(rt, exchange)
                if rt.settings.replay_dir is not None:
                    return  # a replay ends when its captures do
            except NotImplementedError:
                log.info("exchange has no public liquidation stream", exchange=exchange)
                return
            except Exception as exc:
                log.error(
                    "liquidation collector failed; restarting", exchange=exchange, error=repr(exc)
                )
                await asyncio.sleep(min(standby_poll_s, 5.0))
            finally:
                await jobs_store.release_session_lock(conn, key)
                await conn.commit()
