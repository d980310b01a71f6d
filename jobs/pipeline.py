"""The main job's steps, callable once (``liqmap up --once``, tests) or as a worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from jobs.ingest import DATASETS, UNAVAILABLE, IngestResult, ingest_dataset
from jobs.runtime import ConfigurationError, Runtime
from liqmap.database import DatabaseTarget, create_engine
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)


@dataclass
class PipelineReport:
    ingest: list[IngestResult] = field(default_factory=list)
    realized_rows: int = 0
    liquidation_events: int = 0
    snapshots: int = 0
    known_snapshots: int = 0  # known-position snapshots stored (recorded ones and a round)


def open_runtime(settings: Settings, target: DatabaseTarget) -> Runtime:
    from jobs.replay import replay_settings

    settings = replay_settings(settings)
    engine = create_engine(
        target.url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    return Runtime(settings=settings, engine=engine)


def check_configuration(settings: Settings) -> None:
    """What settings alone can get wrong: unknown exchange ids, a bar a venue cannot serve.

    Raises ConfigurationError listing the valid values; needs no network.
    """
    from jobs.exchanges import SUPPORTED_EXCHANGES, adapter_class

    errors: list[str] = []
    unknown = [e for e in settings.exchanges if e not in SUPPORTED_EXCHANGES]
    if unknown:
        errors.append(
            f"unknown exchange {', '.join(repr(e) for e in unknown)} in LIQMAP_EXCHANGES; "
            f"valid: {', '.join(SUPPORTED_EXCHANGES)}"
        )
    for exchange in settings.exchanges:
        if exchange in unknown:
            continue
        served = adapter_class(exchange).open_interest_timeframes
        if settings.timeframe not in served:
            errors.append(
                f"{exchange} serves open-interest history at {', '.join(served)} only, not at "
                f"LIQMAP_TIMEFRAME={settings.timeframe}"
            )
    stray = sorted(set(settings.symbols) - set(settings.exchanges) - set(SUPPORTED_EXCHANGES))
    if stray:
        errors.append(
            f"unknown exchange {', '.join(repr(e) for e in stray)} in LIQMAP_SYMBOLS; "
            f"valid: {', '.join(SUPPORTED_EXCHANGES)}"
        )
    if errors:
        raise ConfigurationError("; ".join(errors))


async def sync_all_markets(rt: Runtime, *, tolerate_network_errors: bool = False) -> None:
    """Load every configured market; unknown exchanges/markets stop start-up with valid names.

    With ``tolerate_network_errors`` (a worker starting while a venue is unreachable) a
    transient error is logged and that venue's markets load when its first job runs.
    """
    import ccxt.async_support as ccxt

    check_configuration(rt.settings)
    errors: list[str] = []
    for exchange in rt.settings.exchanges:
        try:
            await rt.sync_markets(exchange)
        except ConfigurationError as exc:
            errors.append(str(exc))
        except ccxt.NetworkError as exc:
            if not tolerate_network_errors:
                raise
            log.warning(
                "markets not loaded at start; the jobs will retry",
                exchange=exchange,
                error=repr(exc),
            )
    if errors:
        raise ConfigurationError("; ".join(errors))


async def ingest_exchange(rt: Runtime, exchange: str) -> list[IngestResult]:
    results = []
    for symbol in rt.settings.symbols_for(exchange):
        for dataset in DATASETS:
            results.append(await ingest_dataset(rt, exchange, symbol, dataset))
    return results


async def ingest_all(rt: Runtime) -> list[IngestResult]:
    """Every exchange concurrently: one failing exchange never stalls the others."""
    per_exchange = await asyncio.gather(
        *(ingest_exchange(rt, exchange) for exchange in rt.settings.exchanges),
        return_exceptions=True,
    )
    results: list[IngestResult] = []
    for exchange, outcome in zip(rt.settings.exchanges, per_exchange, strict=True):
        if isinstance(outcome, BaseException):
            log.error("exchange ingest crashed", exchange=exchange, error=repr(outcome))
            continue
        results.extend(outcome)
    return results


async def import_replay_realized(rt: Runtime, report: PipelineReport) -> None:
    """Replay mode: load realized liquidations that the shared data folder carries."""
    from jobs.liquidations import coinglass_files, collect_liquidations, import_realized_file

    replay = rt.settings.replay_dir
    if replay is None:
        return
    for path, base in coinglass_files(replay):
        report.realized_rows += await import_realized_file(
            rt, path, base=base, note="CoinGlass aggregated history (Binance+Bybit+OKX)"
        )
    for exchange in rt.settings.exchanges:
        try:
            collected = await collect_liquidations(rt, exchange)
        except NotImplementedError:
            continue
        report.liquidation_events += collected.events


async def collect_known(rt: Runtime, report: PipelineReport) -> None:
    """Known positions (Hyperliquid accounts) when that venue is tracked; an exchange error is
    logged and leaves the rest of the run alone."""
    import ccxt.async_support as ccxt

    from jobs.known_positions import VENUE, collect_known_positions

    if VENUE not in rt.settings.exchanges:
        return
    try:
        known = await collect_known_positions(rt)
    except ccxt.BaseError as exc:
        log.error("known positions not read", venue=VENUE, error=repr(exc))
        return
    report.known_snapshots += known.recorded_snapshots + (known.round_id is not None)


async def materialize_all(rt: Runtime, report: PipelineReport) -> None:
    from jobs.materialize import materialize_symbol

    symbols = sorted({s for e in rt.settings.exchanges for s in rt.settings.symbols_for(e)})
    for symbol in symbols:
        result = await materialize_symbol(rt, symbol)
        report.snapshots += result.snapshots_written


async def run_pipeline_once(settings: Settings, target: DatabaseTarget) -> PipelineReport:
    from jobs.app import fail_runs_of_dead_processes

    rt = open_runtime(settings, target)
    report = PipelineReport()
    try:
        await fail_runs_of_dead_processes(rt.engine)  # a previous `up` killed mid-pipeline
        await sync_all_markets(rt)
        report.ingest = await ingest_all(rt)
        await import_replay_realized(rt, report)
        await collect_known(rt, report)
        await materialize_all(rt, report)
    finally:
        await rt.close()
        await rt.engine.dispose()
    failed = [r for r in report.ingest if r.status not in ("succeeded", UNAVAILABLE)]
    unavailable = [
        f"{r.exchange}:{r.symbol}:{r.dataset}" for r in report.ingest if r.status == UNAVAILABLE
    ]
    log.info(
        "pipeline run finished",
        ingested_rows=sum(r.rows_written for r in report.ingest),
        failed=len(failed),
        unavailable=unavailable,
        realized_rows=report.realized_rows,
        liquidation_events=report.liquidation_events,
        snapshots=report.snapshots,
        known_snapshots=report.known_snapshots,
    )
    return report


async def run_worker(settings: Settings, target: DatabaseTarget, *, concurrency: int = 2) -> None:
    """A job worker; a configuration error (unknown exchange or market) stops it at start."""
    from jobs.app import run_queue_worker

    rt = open_runtime(settings, target)
    try:
        await sync_all_markets(rt, tolerate_network_errors=True)
        await run_queue_worker(rt, target.url, concurrency=concurrency)
    finally:
        await rt.close()
        await rt.engine.dispose()
