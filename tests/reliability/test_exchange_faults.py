"""Exchange faults the ingest tests elsewhere leave out: 418 bans and malformed JSON mid-run.

Through the recorded transport (real ccxt parsing and error mapping) on the real Binance replay:

* HTTP 418 (Binance's ban after ignoring 429s; ccxt ``DDoSProtection``) is retried with backoff
  until the page is stored;
* a truncated JSON body on the *second* page of a run fails the run (``BadResponse``, never
  retried) with exactly the first page stored and the watermark right after it — nothing of the
  broken page, no partial rows — and the next run completes the range without a duplicate;
* malformed JSON on every open-interest request stores nothing and leaves no watermark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.ingest import ingest_dataset
from jobs.runtime import Runtime
from liqmap.settings import Settings

SYMBOL = "BTC/USDT:USDT"
KLINES = "/fapi/v1/klines"
BAR = 300_000
DAY = 86_400_000


@pytest.fixture
async def runtime(db: AsyncEngine, shared_data: Path) -> AsyncIterator[Runtime]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        exchanges=["binanceusdm"],
        symbols={"binanceusdm": [SYMBOL]},
        replay_dir=shared_data,
        retry_initial_s=0.01,
        retry_max_s=0.05,
        retry_attempts=4,
    )
    rt = Runtime(settings=settings, engine=db)
    await rt.market("binanceusdm", SYMBOL)  # markets loaded: only data requests follow
    yield rt
    await rt.close()


async def _scalar(engine: AsyncEngine, sql: str) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


def _window(rt: Runtime, days: int) -> tuple[int, int]:
    now = rt.adapter("binanceusdm").now_ms()
    start = now - now % BAR - days * DAY
    return start, start + days * DAY


async def test_418_ban_is_retried_until_the_page_is_stored(runtime: Runtime) -> None:
    since, until = _window(runtime, 1)
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    ban = transport.inject(
        KLINES,
        418,
        body='{"code":-1003,"msg":"Way too many requests; IP banned until 1782128700000."}',
        times=2,
    )
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=since, until_ms=until
    )
    assert (result.status, result.rows_written, result.error) == ("succeeded", 288, None)
    assert ban.hits == 2
    assert await _scalar(runtime.engine, "SELECT count(*) FROM candles") == 288


async def test_malformed_json_mid_run_fails_the_run_with_nothing_partial(runtime: Runtime) -> None:
    since, until = _window(runtime, 10)  # 2,880 bars: two fapi pages of 1,500
    second_page = since + 1500 * BAR
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    broken = transport.inject(f"startTime={second_page}", "malformed_json", times=None)
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=since, until_ms=until
    )
    assert result.status == "failed" and result.error is not None
    assert result.error.startswith("BadResponse"), result.error
    assert broken.hits == 1  # a malformed answer is not retried
    assert result.rows_written == 1500
    engine = runtime.engine
    assert await _scalar(engine, "SELECT count(*) FROM candles") == 1500
    assert (
        await _scalar(engine, "SELECT (extract(epoch FROM max(ts)) * 1000)::bigint FROM candles")
        == second_page - BAR
    )
    watermark = await _scalar(
        engine,
        "SELECT (extract(epoch FROM watermark) * 1000)::bigint FROM ingest_watermarks "
        "WHERE dataset = 'candles'",
    )
    assert watermark == second_page
    assert await _scalar(engine, "SELECT status FROM job_runs ORDER BY id DESC LIMIT 1") == "failed"

    # the venue answers properly again: the next run resumes at the watermark, no duplicate
    transport.clear_faults()
    again = await ingest_dataset(runtime, "binanceusdm", SYMBOL, "candles", until_ms=until)
    assert (again.status, again.rows_written) == ("succeeded", 1380)
    assert await _scalar(engine, "SELECT count(*) FROM candles") == 2880
    assert await _scalar(engine, "SELECT count(DISTINCT ts) FROM candles") == 2880


async def test_malformed_json_every_time_stores_nothing(runtime: Runtime) -> None:
    since, until = _window(runtime, 1)
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    transport.inject("openInterestHist", "malformed_json", times=None)
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "open_interest", since_ms=since, until_ms=until
    )
    assert result.status == "failed" and result.rows_written == 0
    assert await _scalar(runtime.engine, "SELECT count(*) FROM open_interest") == 0
    assert await _scalar(runtime.engine, "SELECT count(*) FROM ingest_watermarks") == 0
