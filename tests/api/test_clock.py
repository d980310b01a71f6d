"""The API's "now": the data's clock in a replay, the wall clock live.

The tests' database holds the replayed Binance window (2026-05-25 → 2026-06-22), months before
the machine's wall clock. Against an app in replay mode (``replay_dir`` set, as
``liqmap up --replay`` runs it) open ranges end at the newest ingested bar and freshness is
measured from there; the same app live measures against the wall clock. Expected instants are
read back with plain SQL (the newest stored candle) and the shared CSV, never from the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import build_app
from tests.api.pipeline import BAR, SYMBOL, Stored

QUERY = """
query ($start: DateTime!) {
  liquidationMap: liquidationLevels(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"]) {
    at coverage { lastBar staleness }
  }
  candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: $start) { ts close }
  heatmap(symbol: "BTC/USDT:USDT", exchanges: ["binanceusdm"], start: $start,
          interval: ONE_HOUR, priceMin: 55000, priceMax: 75000) {
    end columns filledColumns
  }
}
"""


@pytest.fixture
async def clients(
    api_engine: AsyncEngine, api_database_url: str, stored: Stored
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    apps = {
        "replay": build_app(api_engine, api_database_url, replay_dir=stored.shared_data),
        "live": build_app(api_engine, api_database_url),
    }
    out = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        for name, app in apps.items()
    }
    yield out
    for name, client in out.items():
        await client.aclose()
        await apps[name].state.hub.close()


async def ask(client: httpx.AsyncClient, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": QUERY, "variables": variables})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def test_in_a_replay_now_is_the_newest_ingested_bar(
    clients: dict[str, httpx.AsyncClient], stored: Stored
) -> None:
    newest_candle: datetime = stored.one("SELECT max(ts) FROM candles")
    data_now = newest_candle + BAR  # the newest ingested bar's close
    start = data_now - timedelta(days=2)
    replay = await ask(clients["replay"], start=start.isoformat())

    # freshness is measured from the data's clock: the newest map is that bar's
    last_bar = datetime.fromisoformat(replay["liquidationMap"]["coverage"]["lastBar"])
    staleness = replay["liquidationMap"]["coverage"]["staleness"]
    assert staleness == pytest.approx((data_now - last_bar).total_seconds())
    assert 0 <= staleness <= 3600, staleness
    # an open range ends there: two days of candles up to the newest, none beyond
    candles = replay["candles"]
    assert len(candles) == 2 * 288
    assert datetime.fromisoformat(candles[-1]["ts"]) == newest_candle
    closes = dict(zip(stored.bars.ts, stored.bars.close, strict=True))
    assert candles[-1]["close"] == pytest.approx(closes[newest_candle])
    # and a heatmap with only start covers the data, not months of empty columns
    heatmap = replay["heatmap"]
    hour = timedelta(hours=1)
    first = start.replace(minute=0)  # columns are aligned to the interval
    last = data_now if data_now.minute == 0 else data_now.replace(minute=0) + hour
    assert datetime.fromisoformat(heatmap["end"]) == last
    assert heatmap["columns"] == (last - first) / hour
    assert heatmap["filledColumns"] >= heatmap["columns"] - 1  # all but an unfinished hour


async def test_live_now_is_the_wall_clock(
    clients: dict[str, httpx.AsyncClient], stored: Stored
) -> None:
    """The same database served live: the wall clock is "now", so the replayed data is stale."""
    newest_map = stored.latest("binanceusdm")
    before = datetime.now(UTC)
    live = await ask(clients["live"], start=(before - timedelta(days=1)).isoformat())
    staleness = live["liquidationMap"]["coverage"]["staleness"]
    assert staleness == pytest.approx((before - newest_map.at).total_seconds(), abs=60)
    assert live["candles"] == []  # nothing was ingested in the last day of the wall clock
    end = datetime.fromisoformat(live["heatmap"]["end"])
    assert before <= end <= datetime.now(UTC) + timedelta(hours=1)
    assert live["heatmap"]["filledColumns"] == 0


async def test_the_data_clock_follows_ingestion(
    clients: dict[str, httpx.AsyncClient], stored: Stored
) -> None:
    """The data's clock is the newest candle watermark over every market, re-read at most a
    second apart: a replay's "now" moves as the worker ingests bars (answers that depend on it
    are kept by the response cache for its short TTL, 5 s, at most)."""
    client = clients["replay"]
    query = (
        '{ liquidationMap: liquidationLevels(symbol: "BTC/USDT:USDT") '
        "{ coverage { lastBar staleness } } }"
    )

    async def coverage() -> tuple[datetime, float]:
        body = (await client.post("/graphql", json={"query": query})).json()
        found = body["data"]["liquidationMap"]["coverage"]
        return datetime.fromisoformat(found["lastBar"]), found["staleness"]

    last_bar, staleness = await coverage()
    market = stored.market_id("binanceusdm", SYMBOL)
    mark: datetime = stored.watermark("binanceusdm", "candles")
    assert staleness == pytest.approx((mark - last_bar).total_seconds())
    later = mark + timedelta(hours=3)
    update = (
        "UPDATE ingest_watermarks SET watermark = %s WHERE market_id = %s "
        "AND dataset = 'candles' RETURNING 1"
    )
    stored.rows(update, (later, market))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while (moved := await coverage())[1] != pytest.approx(staleness + 3 * 3600):
            assert asyncio.get_running_loop().time() < deadline, moved
            await asyncio.sleep(0.2)
        assert moved[0] == last_bar
    finally:
        stored.rows(update, (mark, market))
