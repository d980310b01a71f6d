"""The retry loop around a run: transient ccxt errors are retried, permanent ones fail at once.

Faults are injected into the recorded transport, below ccxt: ccxt's own error mapping turns them
into its exception types, exactly as on a live response.
"""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest
from sqlalchemy import text

from jobs.ingest import ingest_dataset
from jobs.runtime import Runtime

SYMBOL = "BTC/USDT:USDT"
BAR = 300_000
DAY = 86_400_000
KLINES = "/fapi/v1/klines"


async def _one_page(runtime: Runtime) -> tuple[int, int]:
    """A day of candles: one klines request per attempt (fapi pages hold 1500 bars)."""
    now = runtime.adapter("binanceusdm").now_ms()
    start = now - now % BAR - DAY
    return start, start + DAY


def _klines_requests(runtime: Runtime) -> int:
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    return sum(1 for r in transport.requests if r.path == KLINES)


async def _runs(runtime: Runtime) -> list[tuple[str, str | None, int]]:
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT status, error, rows_written FROM job_runs"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fault", "times", "requests"),
    [("timeout", 2, 3), ("disconnect", 2, 3), (429, 1, 2), (503, 1, 2), (504, 1, 2)],
)
async def test_transient_errors_are_retried_until_the_page_is_stored(
    runtime: Runtime, fault: int | str, times: int, requests: int
) -> None:
    since, until = await _one_page(runtime)
    await runtime.market("binanceusdm", SYMBOL)  # markets loaded: only klines requests follow
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    injection = transport.inject(KLINES, fault, times=times)
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=since, until_ms=until
    )
    assert (result.status, result.rows_written, result.error) == ("succeeded", 288, None)
    assert injection.hits == times
    assert _klines_requests(runtime) == requests
    assert await _runs(runtime) == [("succeeded", None, 288)]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, '{"code":-1121,"msg":"Invalid symbol."}', "BadSymbol"),
        (
            401,
            '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
            "AuthenticationError",
        ),
        (
            400,
            '{"code":-1130,"msg":"Data sent for parameter \'limit\' is not valid."}',
            "BadRequest",
        ),
    ],
)
async def test_permanent_errors_fail_after_one_request_with_the_message(
    runtime: Runtime, status: int, body: str, error: str
) -> None:
    since, until = await _one_page(runtime)
    await runtime.market("binanceusdm", SYMBOL)
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    transport.inject(KLINES, status, body=body, times=None)
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=since, until_ms=until
    )
    assert result.status == "failed" and result.rows_written == 0
    assert _klines_requests(runtime) == 1  # never retried
    message = body.split('"msg":"')[1].rstrip('"}')
    assert result.error is not None
    assert result.error.startswith(f"{error}: ") and message in result.error
    assert await _runs(runtime) == [("failed", result.error, 0)]


async def test_a_fault_that_does_not_clear_fails_after_the_configured_attempts(
    runtime: Runtime,
) -> None:
    since, until = await _one_page(runtime)
    await runtime.market("binanceusdm", SYMBOL)
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    transport.inject(KLINES, ccxt.ExchangeNotAvailable("binanceusdm is down"), times=None)
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=since, until_ms=until
    )
    assert (result.status, result.error) == ("failed", "ExchangeNotAvailable: binanceusdm is down")
    assert _klines_requests(runtime) == runtime.settings.retry_attempts == 4
    assert await _runs(runtime) == [("failed", result.error, 0)]


async def test_a_retry_resumes_after_the_last_committed_page(runtime: Runtime) -> None:
    """A timeout on the second page: the first page stays committed and is not fetched again."""
    now = runtime.adapter("binanceusdm").now_ms()
    since = now - now % BAR - 10 * DAY  # 2880 bars: two fapi pages
    await runtime.market("binanceusdm", SYMBOL)
    transport = runtime.adapter("binanceusdm").transport
    assert transport is not None
    second_page = str(since + 1500 * BAR)
    transport.inject(f"startTime={second_page}", "timeout", times=1)
    result = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, "candles", since_ms=since, until_ms=since + 10 * DAY
    )
    assert (result.status, result.rows_written) == ("succeeded", 2880)
    starts = [r.params["startTime"] for r in transport.requests if r.path == KLINES]
    assert starts == [str(since), second_page, second_page]
