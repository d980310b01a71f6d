"""Incremental, resumable ingest of one (exchange, market, dataset).

Each run starts at the stored watermark (or ``backfill_days`` back), walks the exchange's pages
forward, and commits every page together with the watermark that covers it. A crash at any point
therefore loses at most the page in flight, and the next run resumes exactly where the last
commit left off: no duplicates (upserts on natural keys), no gaps (the watermark only moves past
rows that are stored).

Transient exchange errors (ccxt ``NetworkError`` and its children: ``RequestTimeout``,
``RateLimitExceeded``, ``ExchangeNotAvailable``, ``DDoSProtection``) are retried with exponential
backoff and jitter, resuming from the last committed page. Other errors (``BadSymbol``,
``AuthenticationError``, ``BadRequest`` …) fail the run at once with the message recorded. A page
that breaks an invariant is rejected whole: nothing of it is written, the reason is logged and
stored on the job run, and the watermark stays before it.

A dataset the venue cannot serve at all (``ExchangeAdapter.unavailable``: in a replay, one that
was never recorded, such as Bybit's open interest) is not fetched: the run is recorded as
``unavailable`` with the reason, logged once per process, and nothing else happens. It is never
filled from another venue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from jobs.runtime import Runtime
from jobs.validation import (
    BatchRejected,
    validate_candles,
    validate_funding,
    validate_open_interest,
)
from liqmap.logs import get_logger
from liqmap.timeframes import timeframe_ms
from models import jobs_store, market_data_store, market_store
from models.records import to_datetime, to_ms

log = get_logger(__name__)

DATASETS = ("candles", "open_interest", "funding", "tiers")
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (ccxt.NetworkError,)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class IngestResult:
    exchange: str
    symbol: str
    dataset: str
    status: str  # succeeded | failed | rejected | unavailable
    rows_written: int
    watermark_ms: int | None
    error: str | None = None


Progress = Callable[[int, int], None]  # (rows written so far, current position ms)

UNAVAILABLE = "unavailable"
_told_unavailable: set[tuple[str, str, str]] = set()  # logged once per process, then debug


async def ingest_dataset(
    rt: Runtime,
    exchange: str,
    symbol: str,
    dataset: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    job: str = "ingest",
    progress: Progress | None = None,
    queue_job_id: int | None = None,
) -> IngestResult:
    """Ingest one dataset of one market from its watermark (or ``since_ms``) to ``until_ms``.

    The job run names this process (``host:pid``) and ``queue_job_id`` the procrastinate job
    running it, so a run left behind by a worker that died can be found and failed.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    market = await rt.market(exchange, symbol)
    adapter = rt.adapter(exchange)
    settings = rt.settings
    step = timeframe_ms(settings.timeframe)
    now = adapter.now_ms()

    async with rt.engine.connect() as conn:
        stored = await jobs_store.watermark(conn, market.id, dataset)
    if since_ms is not None:
        start = since_ms
    elif stored is not None:
        start = to_ms(stored)
    else:
        start = now - settings.backfill_days * DAY_MS
    if dataset in ("candles", "open_interest"):
        start -= start % step  # bars: back to the grid (funding watermarks sit after an event)
    end = min(until_ms, now) if until_ms is not None else now

    run_id = await jobs_store.start_job_run(
        rt.engine,
        job,
        exchange,
        symbol,
        dataset,
        to_datetime(start),
        procrastinate_job_id=queue_job_id,
    )
    reason = adapter.unavailable(symbol, dataset)
    if reason is not None:
        key = (exchange, symbol, dataset)
        say = log.debug if key in _told_unavailable else log.info
        _told_unavailable.add(key)
        say("dataset unavailable; not fetched", exchange=exchange, symbol=symbol, reason=reason)
        await jobs_store.finish_job_run(rt.engine, run_id, UNAVAILABLE, 0, None, reason)
        kept = None if stored is None else to_ms(stored)
        return IngestResult(exchange, symbol, dataset, UNAVAILABLE, 0, kept, reason)
    written = 0
    cursor = start
    bound = log.bind(exchange=exchange, symbol=symbol, dataset=dataset, run=run_id)

    async def one_pass() -> None:
        nonlocal written, cursor
        if dataset == "tiers":
            table = await adapter.fetch_tiers(symbol)
            if not table.tiers:
                raise BatchRejected("exchange returned an empty tier table")
            async with rt.engine.begin() as conn:
                written += await market_store.write_tier_table(conn, market.id, table)
                cursor = max(cursor, table.valid_from)
                await jobs_store.set_watermark(conn, market.id, dataset, to_datetime(now))
            return
        async for page in _pages(rt, exchange, symbol, dataset, cursor, end):
            if not page:
                continue
            # validate before opening the transaction: a rejected page never touches the database
            if dataset == "candles":
                validate_candles(page, step, now)
            elif dataset == "open_interest":
                # bar t holds the snapshot stamped t + step: it must not be after now
                validate_open_interest(page, step, now - step)
            else:
                validate_funding(page, now)
            await market_data_store.prepare_partitions(
                rt.engine, dataset, [r.timestamp for r in page]
            )
            async with rt.engine.begin() as conn:
                if dataset == "candles":
                    written += await market_data_store.write_candles(
                        conn, market.id, settings.timeframe, page
                    )
                    next_cursor = page[-1].timestamp + step
                elif dataset == "open_interest":
                    written += await market_data_store.write_open_interest(
                        conn, market.id, settings.timeframe, page
                    )
                    next_cursor = page[-1].timestamp + step
                else:
                    written += await market_data_store.write_funding_rates(conn, market.id, page)
                    next_cursor = page[-1].timestamp + 1
                await jobs_store.set_watermark(conn, market.id, dataset, to_datetime(next_cursor))
            cursor = max(cursor, next_cursor)
            if progress is not None:
                progress(written, cursor)

    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            # exponential backoff plus up to one initial interval of random jitter
            wait=wait_exponential(multiplier=settings.retry_initial_s, max=settings.retry_max_s)
            + wait_random(0, settings.retry_initial_s),
            stop=stop_after_attempt(settings.retry_attempts),
            reraise=True,
            before_sleep=lambda state: bound.warning(
                "transient exchange error; retrying from the last committed page",
                attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None,
            ),
        ):
            with attempt:
                await one_pass()
    except BatchRejected as exc:
        reason = f"batch rejected: {exc}"
        bound.error("batch rejected; nothing written, watermark unchanged", reason=str(exc))
        await jobs_store.finish_job_run(
            rt.engine, run_id, "rejected", written, to_datetime(cursor), reason
        )
        return IngestResult(exchange, symbol, dataset, "rejected", written, cursor, reason)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        bound.error("ingest failed", error=reason)
        await jobs_store.finish_job_run(
            rt.engine, run_id, "failed", written, to_datetime(cursor), reason
        )
        return IngestResult(exchange, symbol, dataset, "failed", written, cursor, reason)
    await jobs_store.finish_job_run(rt.engine, run_id, "succeeded", written, to_datetime(cursor))
    bound.info("ingested", rows=written, watermark=cursor)
    return IngestResult(exchange, symbol, dataset, "succeeded", written, cursor)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def _pages(
    rt: Runtime, exchange: str, symbol: str, dataset: str, since: int, until: int
) -> AsyncIterator[list[Any]]:
    adapter = rt.adapter(exchange)
    tf = rt.settings.timeframe
    if dataset == "candles":
        return adapter.fetch_candles(symbol, tf, since, until)
    if dataset == "open_interest":
        return adapter.fetch_open_interest(symbol, tf, since, until)
    return adapter.fetch_funding_rates(symbol, since, until)
