"""The API's `limits` field: what it publishes is what its settings and the stored snapshots
say, and the rule it states (spans, whole columns, sub-hour intervals from fineResolutionFrom)
is the rule the heatmap resolver applies — checked by asking the heatmap itself."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from api.limits import ApiLimits
from api.types.scalars import Interval
from tests.viewer.conftest import EMPTY_SYMBOL, SYMBOL, ViewerData

LIMITS = """{ limits { maxSpanDays maxHeatmapColumns maxMatrixCells maxLevels maxPageSize
  maxSeriesPoints baseIntervalSeconds recentDays intervals { interval seconds needsBaseSnapshots }
} }"""
FINE = """query ($symbol: String!, $exchanges: [String!]) {
  limits { fineResolutionFrom(symbol: $symbol, exchanges: $exchanges) } }"""
HEATMAP = """query ($start: DateTime!, $end: DateTime!, $interval: Interval) {
  heatmap(symbol: "BTC/USDT:USDT", start: $start, end: $end, interval: $interval,
          priceMin: 60000, priceMax: 60100) { columns stepSeconds } }"""


async def gql(app: Starlette, query: str, **variables: Any) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://viewer.test") as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables})
    body: dict[str, Any] = response.json()
    return body


async def test_limits_are_the_settings(viewer_app: Starlette, viewer_data: ViewerData) -> None:
    body = await gql(viewer_app, LIMITS)
    assert "errors" not in body, body
    published = body["data"]["limits"]
    limits = ApiLimits.from_settings(viewer_data.settings)
    assert published["maxSpanDays"] == limits.max_span_days == 400
    assert published["maxHeatmapColumns"] == limits.max_heatmap_columns == 2000
    assert published["maxMatrixCells"] == limits.max_matrix_cells
    assert published["maxLevels"] == limits.max_levels
    assert published["maxPageSize"] == limits.max_page_size
    assert published["maxSeriesPoints"] == limits.max_series_points
    assert published["baseIntervalSeconds"] == 300  # the 5m base bar
    assert published["recentDays"] == viewer_data.settings.recent_days
    assert published["intervals"] == [
        {"interval": i.name, "seconds": i.seconds, "needsBaseSnapshots": i.seconds % 3600 != 0}
        for i in Interval
    ]


async def test_fine_resolution_from_is_the_oldest_base_snapshot(
    viewer_app: Starlette, viewer_data: ViewerData
) -> None:
    for exchanges, scope in ((None, "all"), (["binanceusdm"], "binanceusdm")):
        sid = await viewer_data.series_id(scope)
        async with viewer_data.engine.connect() as conn:
            oldest = (
                await conn.execute(
                    text(
                        "SELECT min(ts) FROM heatmap_snapshots WHERE series_id = :s "
                        "AND resolution = '5m'"
                    ),
                    {"s": sid},
                )
            ).scalar_one()
        body = await gql(viewer_app, FINE, symbol=SYMBOL, exchanges=exchanges)
        published = datetime.fromisoformat(body["data"]["limits"]["fineResolutionFrom"])
        assert published == oldest
        # about recentDays before the newest bar: 5-minute snapshots are not kept for all time
        newest = datetime.fromtimestamp(viewer_data.cut_ms / 1000, UTC)
        assert timedelta(days=6) < newest - published < timedelta(days=8)
    empty = await gql(viewer_app, FINE, symbol=EMPTY_SYMBOL, exchanges=None)
    assert empty["data"]["limits"]["fineResolutionFrom"] is None  # nothing stored
    unknown = await gql(viewer_app, FINE, symbol="DOGE/USDT:USDT", exchanges=None)
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def predicted_refusal(
    limits: dict[str, Any], fine_from: datetime, start: datetime, end: datetime, seconds: int
) -> str | None:
    """The rule as `limits` states it (what the page computes), written out independently."""
    if end - start > timedelta(days=limits["maxSpanDays"]):
        return "RANGE_TOO_LARGE"
    if seconds % 3600 and start < fine_from:
        return "BAD_USER_INPUT"
    columns = math.ceil(end.timestamp() / seconds) - math.floor(start.timestamp() / seconds)
    if columns > limits["maxHeatmapColumns"]:
        return "RANGE_TOO_LARGE"
    return None


async def test_the_published_rule_is_the_one_the_heatmap_applies(
    viewer_app: Starlette, viewer_data: ViewerData
) -> None:
    limits = (await gql(viewer_app, LIMITS))["data"]["limits"]
    fine = await gql(viewer_app, FINE, symbol=SYMBOL, exchanges=None)
    fine_from = datetime.fromisoformat(fine["data"]["limits"]["fineResolutionFrom"])
    end = datetime.fromtimestamp(viewer_data.cut_ms / 1000, UTC)
    spans = [timedelta(hours=12), timedelta(days=1), timedelta(days=6), timedelta(days=7)]
    spans += [timedelta(days=7, minutes=-5), timedelta(days=20), timedelta(days=30)]
    spans += [timedelta(days=83), timedelta(days=84), timedelta(days=365), timedelta(days=401)]
    outcomes = {None: 0, "BAD_USER_INPUT": 0, "RANGE_TOO_LARGE": 0}
    for span in spans:
        for interval in limits["intervals"]:
            start = end - span
            expected = predicted_refusal(limits, fine_from, start, end, interval["seconds"])
            body = await gql(
                viewer_app,
                HEATMAP,
                start=start.isoformat(),
                end=end.isoformat(),
                interval=interval["interval"],
            )
            got = body["errors"][0]["extensions"]["code"] if "errors" in body else None
            assert got == expected, (span, interval["interval"], body)
            outcomes[expected] += 1
    assert all(n > 0 for n in outcomes.values()), outcomes  # every kind of answer was seen
