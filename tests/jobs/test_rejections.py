"""A page that breaks an invariant is rejected whole, every time, visibly, and moves nothing.

Each kind of bad row is made by rewriting the real recorded payload on its way to ccxt (the
recorded transport's payload injection), so it goes through ccxt's parsing and the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from jobs.ingest import ingest_dataset
from jobs.runtime import Runtime
from jobs.status import coverage

SYMBOL = "BTC/USDT:USDT"
BAR = 300_000
DAY = 86_400_000
FAR_FUTURE = 10 * DAY


def _kline(index: int, value: Any) -> Callable[[list[list[Any]]], list[list[Any]]]:
    def rewrite(klines: list[list[Any]]) -> list[list[Any]]:
        first = list(klines[0])
        first[index] = value
        return [first, *klines[1:]]

    return rewrite


def _swap_high_low(klines: list[list[Any]]) -> list[list[Any]]:
    first = list(klines[0])
    first[2], first[3] = first[3], first[2]
    return [first, *klines[1:]]


def _off_grid(klines: list[list[Any]]) -> list[list[Any]]:
    first = list(klines[0])
    first[0] = int(first[0]) + 1_000
    return [first, *klines[1:]]


def _kline_from_the_future(klines: list[list[Any]]) -> list[list[Any]]:
    late = list(klines[-1])
    late[0] = int(late[0]) + FAR_FUTURE
    late[6] = int(late[6]) + FAR_FUTURE
    return [*klines, late]


def _negative_interest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**rows[0], "sumOpenInterestValue": "-5.0", "sumOpenInterest": "-0.0001"}, *rows[1:]]


def _interest_from_the_future(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*rows, {**rows[-1], "timestamp": int(rows[-1]["timestamp"]) + FAR_FUTURE}]


CASES = [
    ("nan price", "candles", "/fapi/v1/klines", _kline(1, "NaN"), r"open = nan"),
    ("zero price", "candles", "/fapi/v1/klines", _kline(4, "0"), r"close = 0\.0"),
    ("negative price", "candles", "/fapi/v1/klines", _kline(3, "-1"), r"low = -1\.0"),
    ("high below low", "candles", "/fapi/v1/klines", _swap_high_low, r"high [\d.]+ < low [\d.]+"),
    ("off the grid", "candles", "/fapi/v1/klines", _off_grid, r"off the 300s period grid"),
    ("future bar", "candles", "/fapi/v1/klines", _kline_from_the_future, r"in the future"),
    (
        "negative open interest",
        "open_interest",
        "/futures/data/openInterestHist",
        _negative_interest,
        r"open_interest = -0\.0001",
    ),
    (
        "future open interest",
        "open_interest",
        "/futures/data/openInterestHist",
        _interest_from_the_future,
        r"in the future",
    ),
]


async def _watermark(rt: Runtime, dataset: str) -> int:
    async with rt.engine.connect() as conn:
        value = (
            await conn.execute(
                text("SELECT watermark FROM ingest_watermarks WHERE dataset = :d"), {"d": dataset}
            )
        ).scalar_one()
    return round(value.timestamp() * 1000)


async def _count(rt: Runtime, dataset: str) -> int:
    async with rt.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {dataset}"))).scalar_one())


@pytest.mark.parametrize(
    ("name", "dataset", "path", "rewrite", "reason"), CASES, ids=[c[0] for c in CASES]
)
async def test_a_bad_page_is_rejected_every_time_and_recorded(
    runtime: Runtime, name: str, dataset: str, path: str, rewrite: Any, reason: str
) -> None:
    adapter = runtime.adapter("binanceusdm")
    now = adapter.now_ms()
    start = now - now % BAR - 2 * DAY  # after a day stored, the rest is one page of each
    good = await ingest_dataset(
        runtime, "binanceusdm", SYMBOL, dataset, since_ms=start, until_ms=start + DAY
    )
    assert good.status == "succeeded", good.error
    watermark, stored = await _watermark(runtime, dataset), await _count(runtime, dataset)
    assert watermark == start + DAY

    assert adapter.transport is not None
    adapter.transport.inject(path, rewrite, times=None)  # the venue keeps sending the bad page
    for _ in range(2):  # refetched and rejected again on the next run: never stored
        bad = await ingest_dataset(runtime, "binanceusdm", SYMBOL, dataset)
        assert bad.status == "rejected"
        assert bad.error is not None and bad.error.startswith("batch rejected: row ")
        assert bad.rows_written == 0
        assert await _watermark(runtime, dataset) == watermark  # did not move
        assert await _count(runtime, dataset) == stored  # nothing of the page
    async with runtime.engine.connect() as conn:
        runs = (
            await conn.execute(
                text(
                    "SELECT status, error, rows_written, watermark_to FROM job_runs "
                    "WHERE dataset = :d ORDER BY id"
                ),
                {"d": dataset},
            )
        ).all()
    assert [r.status for r in runs] == ["succeeded", "rejected", "rejected"]
    for run in runs[1:]:
        assert run.error == bad.error
        assert run.rows_written == 0
        assert round(run.watermark_to.timestamp() * 1000) == watermark
    assert re.search(reason, bad.error), bad.error
    # `liqmap status` shows it: last run rejected, the reason as the last error
    (row,) = [c for c in await coverage(runtime) if c.dataset == dataset]
    assert (row.last_job, row.last_status, row.last_error) == ("ingest", "rejected", bad.error)
    assert row.rows == stored

    # the venue's page is fine again: the same run resumes from the unchanged watermark
    adapter.transport.clear_faults()
    fixed = await ingest_dataset(runtime, "binanceusdm", SYMBOL, dataset)
    assert fixed.status == "succeeded" and fixed.rows_written > 0
