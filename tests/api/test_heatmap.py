"""heatmap: decoded matrices equal the stored snapshot vectors, cell by cell."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.api.conftest import GraphQLClient
from tests.api.pipeline import BAR, SYMBOL, WITHOUT_OI, Snap, Stored

HEATMAP = """
query ($symbol: String!, $exchanges: [String!], $start: DateTime!, $end: DateTime,
       $interval: Interval, $priceMin: Float, $priceMax: Float, $encoding: MatrixEncoding,
       $bucketSize: Float, $withinPct: Float) {
  heatmap(symbol: $symbol, exchanges: $exchanges, start: $start, end: $end, interval: $interval,
          priceMin: $priceMin, priceMax: $priceMax, encoding: $encoding, bucketSize: $bucketSize,
          withinPct: $withinPct) {
    symbol exchanges start end stepSeconds columns resolution priceMin priceStep rows encoding
    maxUsd filledColumns long short
    candles { ts open high low close }
    model { version assumptions }
    coverage { exchanges lastBar staleness missingDatasets excludedExchanges { exchange reason } }
  }
}
"""


def decode(text: str, rows: int, columns: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(rows, columns)


def expected_matrix(
    snapshots: tuple[Snap, ...],
    start: datetime,
    step: int,
    columns: int,
    first_row: int,
    rows: int,
    side: str,
) -> np.ndarray:
    """Cell by cell from the stored rows: column j = the last snapshot whose bar closes in
    (start + j·step, start + (j+1)·step]; row i = grid bucket first_row + i."""
    out = np.zeros((rows, columns), np.float32)
    for snap in snapshots:
        j = int(np.ceil((snap.at - start).total_seconds() / step)) - 1
        if not 0 <= j < columns:
            continue
        values = getattr(snap, side)
        for k, value in enumerate(values):
            i = snap.first + k - first_row
            if 0 <= i < rows:
                out[i, j] = value  # later bars overwrite: the column holds its close
    return out


def last_full_day(stored: Stored) -> tuple[datetime, datetime]:
    """The last 24 hours ending on the hour before the newest materialized bar."""
    end = stored.latest("all").at.replace(minute=0)
    return end - timedelta(hours=24), end


async def test_float32_heatmap_decodes_to_the_stored_snapshots(
    gql: GraphQLClient, stored: Stored
) -> None:
    start, end = last_full_day(stored)
    snaps = [s for s in stored.snapshots("all", "5m") if start < s.at <= end]
    assert len(snaps) == 288
    bucket = snaps[0].bucket_size
    # cut through the lowest stored buckets, reach past the highest
    first_row = min(s.first for s in snaps) + 10
    end_row = max(s.first + s.long_usd.size for s in snaps) + 20
    rows = end_row - first_row
    data = (
        await gql.data(
            HEATMAP,
            symbol=SYMBOL,
            start=start.isoformat(),
            end=end.isoformat(),
            interval="FIVE_MINUTES",
            priceMin=first_row * bucket,
            priceMax=end_row * bucket,
        )
    )["heatmap"]
    assert data["encoding"] == "FLOAT32_BASE64"
    assert (data["stepSeconds"], data["columns"], data["rows"]) == (300, 288, rows)
    assert data["priceMin"] == first_row * bucket and data["priceStep"] == bucket
    assert data["start"] == start.isoformat() and data["end"] == end.isoformat()
    assert data["resolution"] == "5m"
    assert data["filledColumns"] == 288
    for side, field in (("long_usd", "long"), ("short_usd", "short")):
        got = decode(data[field], rows, 288)
        want = expected_matrix(tuple(snaps), start, 300, 288, first_row, rows, side)
        np.testing.assert_array_equal(got, want)
        assert want.sum() > 0
    # the last column is the snapshot of the bar closing at `end`
    last = stored.snapshot("all", "5m", end - BAR)
    column = decode(data["long"], rows, 288)[:, -1]
    for i in range(rows):
        k = first_row + i - last.first
        assert column[i] == (last.long_usd[k] if 0 <= k < last.long_usd.size else 0.0)
    assert data["maxUsd"] == pytest.approx(
        max(decode(data["long"], rows, 288).max(), decode(data["short"], rows, 288).max())
    )
    # candles of the same columns (Binance's market, the first exchange), straight from the CSV
    i0 = stored.bars.index(start)
    candles = data["candles"]
    assert len(candles) == 288
    assert candles[0]["ts"] == start.isoformat()
    np.testing.assert_array_equal([c["open"] for c in candles], stored.bars.open[i0 : i0 + 288])
    np.testing.assert_array_equal([c["close"] for c in candles], stored.bars.close[i0 : i0 + 288])


async def test_json_encoding_hourly_columns_and_rebucketing(
    gql: GraphQLClient, stored: Stored
) -> None:
    hourly = stored.snapshots("binanceusdm", "1h")
    start = (hourly[0].at + timedelta(days=1)).replace(hour=0)  # the first full day
    end = start + timedelta(hours=36)
    inside = [s for s in hourly if start < s.at <= end]
    assert len(inside) == 36
    low = 500.0 * (min(s.price for s in inside) * 0.95 // 500)
    high = 500.0 * -(-max(s.price for s in inside) * 1.05 // 500)
    rows = round((high - low) / 50)
    common = dict(
        symbol=SYMBOL,
        exchanges=["binanceusdm"],
        start=start.isoformat(),
        end=end.isoformat(),
        interval="ONE_HOUR",
        priceMin=low,
        priceMax=high,
    )
    as_json = (await gql.data(HEATMAP, **common, encoding="JSON"))["heatmap"]
    as_b64 = (await gql.data(HEATMAP, **common))["heatmap"]
    assert as_json["resolution"] == "1h" and as_json["columns"] == 36 and as_json["rows"] == rows
    np.testing.assert_array_equal(
        np.array(as_json["long"], np.float32), decode(as_b64["long"], rows, 36)
    )
    want = expected_matrix(tuple(inside), start, 3600, 36, round(low / 50), rows, "short_usd")
    np.testing.assert_array_equal(np.array(as_json["short"], np.float32), want)
    assert want.sum() > 0
    # hourly candles aggregate twelve 5m bars each (straight from the CSV)
    bars, i0 = stored.bars, stored.bars.index(start)
    c = as_json["candles"][3]
    a, b = i0 + 36, i0 + 48
    assert c["ts"] == (start + timedelta(hours=3)).isoformat()
    assert c["high"] == bars.high[a:b].max() and c["low"] == bars.low[a:b].min()
    assert c["open"] == bars.open[a] and c["close"] == bars.close[b - 1]

    coarse = (await gql.data(HEATMAP, **common, bucketSize=500.0))["heatmap"]
    assert coarse["rows"] == rows // 10 and coarse["priceStep"] == 500.0
    merged = decode(coarse["long"], rows // 10, 36)
    fine = decode(as_b64["long"], rows, 36)
    np.testing.assert_allclose(merged, fine.reshape(rows // 10, 10, 36).sum(axis=1), rtol=1e-6)


async def test_model_and_coverage_of_a_heatmap(gql: GraphQLClient, stored: Stored) -> None:
    start, end = last_full_day(stored)
    window = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "interval": "ONE_HOUR",
        "priceMin": 60000.0,
        "priceMax": 61000.0,
    }
    data = (await gql.data(HEATMAP, symbol=SYMBOL, exchanges=["binanceusdm"], **window))["heatmap"]
    version, params = stored.model_states()["binanceusdm"]
    venues = {"contributing": ["binanceusdm"], "excluded": {}}
    assumptions = dict(data["model"]["assumptions"])
    assert data["model"]["version"] == version
    assert {k: v for k, v in assumptions.pop("venues").items() if k != "openInterest"} == venues
    assert assumptions == params
    # what the engine ran with: its leverage, decay and entry assumptions, and the tier table
    assert {"version", "tier_tables", "half_life_hours", "entry_price"} <= params.keys()
    assert not params["tier_tables"][0]["source"].startswith("fallback")  # Binance's own
    coverage = data["coverage"]
    assert coverage["exchanges"] == ["binanceusdm"]
    assert coverage["lastBar"] == stored.latest("binanceusdm").at.isoformat()
    assert coverage["missingDatasets"] == stored.missing_datasets(["binanceusdm"]) == []

    both = (await gql.data(HEATMAP, symbol=SYMBOL, **window))["heatmap"]
    # the total: the venues with open interest (Binance alone), the others named as excluded
    assert both["exchanges"] == both["coverage"]["exchanges"] == ["binanceusdm"]
    assert both["model"]["version"] == version
    total = dict(both["model"]["assumptions"])
    total_venues = total.pop("venues")
    assert total == params  # one contributing venue: no perExchange
    assert total_venues["contributing"] == ["binanceusdm"]
    assert sorted(total_venues["excluded"]) == sorted(WITHOUT_OI)
    assert sorted(x["exchange"] for x in both["coverage"]["excludedExchanges"]) == sorted(
        WITHOUT_OI
    )
    np.testing.assert_array_equal(
        decode(both["long"], both["rows"], both["columns"]),
        decode(data["long"], data["rows"], data["columns"]),
    )

    # a venue without open interest: an empty heatmap that says why
    bybit = (await gql.data(HEATMAP, symbol=SYMBOL, exchanges=["bybit"], **window))["heatmap"]
    assert (bybit["exchanges"], bybit["filledColumns"], bybit["maxUsd"]) == ([], 0, 0.0)
    assert bybit["model"]["version"] == "unknown"
    assert bybit["model"]["assumptions"]["venues"]["contributing"] == []
    (excluded,) = bybit["coverage"]["excludedExchanges"]
    assert excluded["exchange"] == "bybit"
    assert stored.unavailable("bybit")["open_interest"] in excluded["reason"]


async def test_default_price_axis_is_the_maps_full_span(gql: GraphQLClient, stored: Stored) -> None:
    _, end = last_full_day(stored)
    start = end - timedelta(hours=12)
    window = {"symbol": SYMBOL, "start": start.isoformat(), "end": end.isoformat()}
    data = (await gql.data(HEATMAP, **window))["heatmap"]
    snaps = [s for s in stored.snapshots("all", "5m") if start < s.at <= end]
    assert len(snaps) == 144
    assert data["stepSeconds"] == 300  # the finest interval that fits
    bucket = data["priceStep"]
    assert bucket == snaps[0].bucket_size
    # rows from the lowest stored bucket edge to the highest, read off the stored rows
    low = min(s.bucket_origin for s in snaps)
    high = max(s.bucket_origin + len(s.long_usd) * s.bucket_size for s in snaps)
    assert data["priceMin"] == pytest.approx(low)
    assert data["priceMin"] + data["rows"] * bucket == pytest.approx(high)
    assert low <= min(s.price for s in snaps) * 0.7  # model v2 maps reach at least ±30 %
    assert high >= max(s.price for s in snaps) * 1.3
    # nothing is cut: every column holds its whole map
    long_m = decode(data["long"], data["rows"], data["columns"])
    short_m = decode(data["short"], data["rows"], data["columns"])
    for j, snap in enumerate(snaps[-data["columns"] :]):
        assert long_m[:, j].sum(dtype=np.float64) == pytest.approx(snap.long_usd.sum(), rel=1e-5)
        assert short_m[:, j].sum(dtype=np.float64) == pytest.approx(snap.short_usd.sum(), rel=1e-5)

    # withinPct: the traded range widened by that many percent
    near = (await gql.data(HEATMAP, withinPct=10.0, **window))["heatmap"]
    prices = [s.price for s in snaps]
    assert near["priceMin"] <= min(prices) * 0.9 < near["priceMin"] + bucket
    top = near["priceMin"] + near["rows"] * bucket
    assert top - bucket < max(prices) * 1.1 <= top
    # priceMin wins on its side
    mixed = (await gql.data(HEATMAP, withinPct=10.0, priceMin=60_000.0, **window))["heatmap"]
    assert mixed["priceMin"] == 60_000.0
    assert mixed["priceMin"] + mixed["rows"] * bucket == top
    for bad in (0.0, -1.0, 101.0):
        (error,) = (await gql(HEATMAP, withinPct=bad, **window))["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "BAD_USER_INPUT"),
        ({"start": "2024-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "RANGE_TOO_LARGE"),
        (
            {
                "start": "2026-06-20T00:00:00Z",
                "end": "2026-06-21T00:00:00Z",
                "priceMin": 1.0,
                "priceMax": 1_000_000.0,
            },
            "RANGE_TOO_LARGE",
        ),
        (  # 5m snapshots are kept for the newest 7 days only; this day has hourly ones
            {
                "start": "2026-06-01T00:00:00Z",
                "end": "2026-06-02T00:00:00Z",
                "interval": "FIVE_MINUTES",
            },
            "BAD_USER_INPUT",
        ),
        ({"start": "2026-06-01T00:00:00Z", "bucketSize": 0.0}, "BAD_USER_INPUT"),
        # a venue with no BTC/USDT:USDT market (OKX has one, without open interest: no error)
        ({"start": "2026-06-01T00:00:00Z", "exchanges": ["hyperliquid"]}, "NOT_FOUND"),
    ],
)
async def test_heatmap_errors(
    gql: GraphQLClient, stored: Stored, variables: dict, code: str
) -> None:
    body = await gql(HEATMAP, symbol=SYMBOL, **variables)
    assert body["errors"][0]["extensions"]["code"] == code, body


async def test_times_without_a_zone_are_refused(gql: GraphQLClient, stored: Stored) -> None:
    """A timestamp without a zone would be read in a zone the client never named: refused with
    BAD_USER_INPUT saying so, as a variable and as a literal; the same instant with Z or an
    offset is answered, and both spellings mean the same columns."""
    naive = await gql(HEATMAP, symbol=SYMBOL, start="2026-06-21T01:00:00", end=None)
    (error,) = naive["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "time zone" in error["message"] and "2026-06-21T01:00:00" in error["message"]
    literal = await gql('{ heatmap(symbol: "BTC/USDT:USDT", start: "2026-06-21T01:00") { rows } }')
    assert [e["extensions"]["code"] for e in literal["errors"]] == ["BAD_USER_INPUT"]
    assert "time zone" in literal["errors"][0]["message"]
    window = {"priceMin": 60_000.0, "priceMax": 61_000.0}
    zulu = {"start": "2026-06-21T01:00:00Z", "end": "2026-06-21T02:00:00Z"}
    utc = (await gql.data(HEATMAP, symbol=SYMBOL, **zulu, **window))["heatmap"]
    offset = (
        await gql.data(
            HEATMAP,
            symbol=SYMBOL,
            start="2026-06-21T03:00:00+02:00",
            end="2026-06-21T04:00:00+02:00",
            **window,
        )
    )["heatmap"]
    assert utc["start"] == offset["start"] == datetime(2026, 6, 21, 1, tzinfo=UTC).isoformat()
    assert utc["columns"] == offset["columns"] == 12
