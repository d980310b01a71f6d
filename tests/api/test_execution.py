"""The flat-list completion fast path returns exactly what graphql-core's generic path does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.execution import FlatListExecutionContext
from tests.api.pipeline import Stored

QUERY = """{
  liquidationLevels(symbol: "BTC/USDT:USDT", priceMin: 60000, priceMax: 80000) {
    levels { __typename price p: price longUsd shortUsd cumulativeLongUsd cumulativeShortUsd
             intensity priceHigh }
    clusters(limit: 30) { side priceLow priceHigh notionalUsd distancePct }
  }
  candles(symbol: "BTC/USDT:USDT", exchange: "binanceusdm", start: "2026-06-01T00:00:00Z",
          end: "2026-06-01T12:00:00Z") { ts open high low close volume takerBuyVolume }
}"""


async def test_fast_path_equals_generic_path(
    client: httpx.AsyncClient, stored: Stored, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    original = FlatListExecutionContext._complete_flat_list

    def spy(self: Any, *args: Any) -> Any:
        out = original(self, *args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(FlatListExecutionContext, "_complete_flat_list", spy)
    fast = (await client.post("/graphql", json={"query": QUERY})).json()
    assert calls.count(True) == 3  # levels, clusters, candles took the fast path
    monkeypatch.setattr(FlatListExecutionContext, "_complete_flat_list", lambda *_: None)
    slow = (await client.post("/graphql", json={"query": QUERY + " "})).json()
    assert "errors" not in fast
    assert fast == slow
    assert len(fast["data"]["liquidationLevels"]["levels"]) == 400
    assert fast["data"]["liquidationLevels"]["levels"][0]["__typename"] == "LiquidationLevel"
