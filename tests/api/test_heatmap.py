"""heatmap: decoded matrices equal the stored snapshot vectors, cell by cell."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.api.conftest import GraphQLClient
from tests.api.seed import BUCKET, SYMBOL, Seeded

HEATMAP = """
query ($symbol: String!, $exchanges: [String!], $start: DateTime!, $end: DateTime,
       $interval: Interval, $priceMin: Float, $priceMax: Float, $encoding: MatrixEncoding,
       $bucketSize: Float) {
  heatmap(symbol: $symbol, exchanges: $exchanges, start: $start, end: $end, interval: $interval,
          priceMin: $priceMin, priceMax: $priceMax, encoding: $encoding, bucketSize: $bucketSize) {
    symbol exchanges start end stepSeconds columns resolution priceMin priceStep rows encoding
    maxUsd filledColumns long short
    candles { ts open high low close }
    coverage { lastBar }
  }
}
"""


def decode(text: str, rows: int, columns: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(rows, columns)


def expected_matrix(
    snapshots, resolution: str, start: datetime, step: int, columns: int, first_row: int, rows: int,
    side: str,
) -> np.ndarray:  # fmt: skip
    """Cell by cell from the stored rows: column j = the last snapshot whose bar closes in
    (start + j·step, start + (j+1)·step]; row i = grid bucket first_row + i."""
    out = np.zeros((rows, columns), np.float32)
    for snap in snapshots:
        if snap.resolution != resolution:
            continue
        close = snap.ts + timedelta(minutes=5)
        j = int(np.ceil((close - start).total_seconds() / step)) - 1
        if not 0 <= j < columns:
            continue
        values = getattr(snap, side)
        origin = round(snap.bucket_origin / BUCKET)
        for k, value in enumerate(values):
            i = origin + k - first_row
            if 0 <= i < rows:
                out[i, j] = value  # later bars overwrite: the column holds its close
    return out


async def test_float32_heatmap_decodes_to_the_stored_snapshots(
    gql: GraphQLClient, seeded: Seeded
) -> None:
    start = seeded.bars.ts[0] + timedelta(hours=6)
    end = start + timedelta(hours=24)
    data = (
        await gql.data(
            HEATMAP, symbol=SYMBOL, start=start.isoformat(), end=end.isoformat(),
            interval="FIVE_MINUTES", priceMin=60_000.0, priceMax=85_000.0,
        )
    )["heatmap"]  # fmt: skip
    assert data["encoding"] == "FLOAT32_BASE64"
    assert (data["stepSeconds"], data["columns"], data["rows"]) == (300, 288, 500)
    assert data["priceMin"] == 60_000.0 and data["priceStep"] == BUCKET
    assert data["start"] == start.isoformat() and data["end"] == end.isoformat()
    assert data["filledColumns"] == 288
    for side, field in (("long_usd", "long"), ("short_usd", "short")):
        got = decode(data[field], 500, 288)
        want = expected_matrix(seeded.snapshots["all"], "5m", start, 300, 288, 1200, 500, side)
        np.testing.assert_array_equal(got, want)
        assert want.sum() > 0
    # the last column is the snapshot of the bar closing at `end`
    last = next(s for s in seeded.snapshots["all"]
                if s.resolution == "5m" and s.ts == end - timedelta(minutes=5))  # fmt: skip
    column = decode(data["long"], 500, 288)[:, -1]
    origin = round(last.bucket_origin / BUCKET)
    for i in range(500):
        k = 1200 + i - origin
        assert column[i] == (last.long_usd[k] if 0 <= k < last.long_usd.size else 0.0)
    assert data["maxUsd"] == pytest.approx(
        max(decode(data["long"], 500, 288).max(), decode(data["short"], 500, 288).max())
    )
    # candles of the same columns (Binance's market), straight from the CSV bars
    i0 = seeded.bars.ts.index(start)
    candles = data["candles"]
    assert len(candles) == 288
    assert candles[0]["open"] == seeded.bars.open[i0]
    assert candles[-1]["close"] == seeded.bars.close[i0 + 287]


async def test_json_encoding_hourly_columns_and_rebucketing(
    gql: GraphQLClient, seeded: Seeded
) -> None:
    start = seeded.bars.ts[0]
    end = start + timedelta(hours=36)
    common = dict(symbol=SYMBOL, exchanges=["binanceusdm"], start=start.isoformat(),
                  end=end.isoformat(), interval="ONE_HOUR", priceMin=65_000.0,
                  priceMax=75_000.0)  # fmt: skip
    as_json = (await gql.data(HEATMAP, **common, encoding="JSON"))["heatmap"]
    as_b64 = (await gql.data(HEATMAP, **common))["heatmap"]
    assert as_json["resolution"] == "1h" and as_json["columns"] == 36 and as_json["rows"] == 200
    np.testing.assert_array_equal(
        np.array(as_json["long"], np.float32), decode(as_b64["long"], 200, 36)
    )
    want = expected_matrix(seeded.snapshots["binanceusdm"], "1h", start, 3600, 36, 1300, 200,
                           "short_usd")  # fmt: skip
    np.testing.assert_array_equal(np.array(as_json["short"], np.float32), want)
    # hourly candles aggregate twelve 5m bars each
    c = as_json["candles"][3]
    assert c["high"] == seeded.bars.high[36:48].max() and c["low"] == seeded.bars.low[36:48].min()
    assert c["open"] == seeded.bars.open[36] and c["close"] == seeded.bars.close[47]

    coarse = (await gql.data(HEATMAP, **common, bucketSize=500.0))["heatmap"]
    assert coarse["rows"] == 20 and coarse["priceStep"] == 500.0
    merged = decode(coarse["long"], 20, 36)
    fine = decode(as_b64["long"], 200, 36)
    np.testing.assert_allclose(merged, fine.reshape(20, 10, 36).sum(axis=1), rtol=1e-6)


async def test_default_price_axis_spans_the_traded_range(
    gql: GraphQLClient, seeded: Seeded
) -> None:
    start = seeded.bars.ts[0]
    data = (
        await gql.data(HEATMAP, symbol=SYMBOL, start=start.isoformat(),
                       end=(start + timedelta(hours=12)).isoformat())
    )["heatmap"]  # fmt: skip
    closes = seeded.bars.close[:144]
    assert data["stepSeconds"] == 300  # the finest interval that fits
    assert data["priceMin"] <= closes.min() * 0.9 < data["priceMin"] + BUCKET
    top = data["priceMin"] + data["rows"] * data["priceStep"]
    assert top - BUCKET < closes.max() * 1.1 <= top


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "BAD_USER_INPUT"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "RANGE_TOO_LARGE"),
        (
            {
                "start": "2026-06-01T00:00:00Z",
                "end": "2026-06-02T00:00:00Z",
                "priceMin": 1.0,
                "priceMax": 1_000_000.0,
            },
            "RANGE_TOO_LARGE",
        ),
        (
            {
                "start": "2026-05-01T00:00:00Z",
                "end": "2026-05-02T00:00:00Z",
                "interval": "FIVE_MINUTES",
            },
            "BAD_USER_INPUT",
        ),
        ({"start": "2026-06-01T00:00:00Z", "bucketSize": 0.0}, "BAD_USER_INPUT"),
    ],
)
async def test_heatmap_errors(
    gql: GraphQLClient, seeded: Seeded, variables: dict, code: str
) -> None:
    body = await gql(HEATMAP, symbol=SYMBOL, **variables)
    assert body["errors"][0]["extensions"]["code"] == code, body


async def test_naive_times_are_utc(gql: GraphQLClient, seeded: Seeded) -> None:
    data = (
        await gql.data(HEATMAP, symbol=SYMBOL, start="2026-06-01T01:00:00",
                       end="2026-06-01T02:00:00", priceMin=70_000.0, priceMax=71_000.0)
    )["heatmap"]  # fmt: skip
    assert data["start"] == datetime(2026, 6, 1, 1, tzinfo=UTC).isoformat()
    assert data["columns"] == 12
