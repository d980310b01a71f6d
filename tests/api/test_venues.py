"""Venues as they are, through the API: each venue's own series, and the real-position layer.

Bybit, OKX and Binance ETH carry their own January candles and funding (checked against their
files, not Binance's BTC file); Hyperliquid's known levels equal the recorded top-trader file's
sums; the comparison's shares equal a brute-force walk over the stored map and the file's bins.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.api.conftest import GraphQLClient
from tests.api.pipeline import (
    BAR,
    ETH,
    HL_BTC,
    KNOWN_ACCOUNT,
    SYMBOL,
    Snap,
    Stored,
    read_known_levels,
    read_venue_bars,
    read_venue_funding,
)

SERIES = """query ($symbol: String!, $ex: String!, $s: DateTime!, $e: DateTime!) {
  candles(symbol: $symbol, exchange: $ex, start: $s, end: $e) { ts open high low close volume }
  fundingRates(symbol: $symbol, exchange: $ex, start: $s, end: $e) { ts fundingRate }
  openInterest(symbol: $symbol, exchange: $ex, start: $s, end: $e) { ts openInterestUsd }
}"""
JANUARY_DAY = datetime(2026, 1, 10, tzinfo=UTC)  # inside the January files of every venue
BANDS = (0.01, 0.02, 0.05, 0.10, 0.20)


async def test_a_replayed_bybit_candle_is_the_bybit_files_row(
    gql: GraphQLClient, stored: Stored
) -> None:
    """Bybit's own January bars and 8h settlements, row for row; no open interest."""
    bars = read_venue_bars(stored.shared_data, "bybit", SYMBOL)
    funding = read_venue_funding(stored.shared_data, "bybit", SYMBOL)
    start, end = JANUARY_DAY, JANUARY_DAY + timedelta(hours=20)
    data = await gql.data(SERIES, symbol=SYMBOL, ex="bybit", s=start.isoformat(), e=end.isoformat())
    i = bars.ts.index(start)
    assert [c["ts"] for c in data["candles"]] == [t.isoformat() for t in bars.ts[i : i + 240]]
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(
            [c[name] for c in data["candles"]], getattr(bars, name)[i : i + 240]
        )
    settled = sorted((t, r) for t, r in funding.items() if start <= t < end)
    assert [(f["ts"], f["fundingRate"]) for f in data["fundingRates"]] == [
        (t.isoformat(), r) for t, r in settled
    ]
    assert len(settled) == 3 and data["openInterest"] == []


def okx_5m_from_1m(shared_data: Path, start: datetime, end: datetime) -> list[tuple]:
    """OKX's 5m bars rebuilt from its 1m file: complete runs of five 1m bars only."""
    path = shared_data / "okx" / "BTC-USDT-SWAP_perp_1m_klines_funding.csv"
    groups: dict[datetime, list[dict[str, str]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            ts = datetime.fromtimestamp(int(row["timestamp"]) / 1000, tz=UTC)
            if start <= ts < end:
                groups.setdefault(ts.replace(minute=ts.minute - ts.minute % 5), []).append(row)
    out = []
    for ts, rows in sorted(groups.items()):
        if len(rows) == 5:
            out.append(
                (
                    ts.isoformat(),
                    float(rows[0]["price_open"]),
                    max(float(r["price_high"]) for r in rows),
                    min(float(r["price_low"]) for r in rows),
                    float(rows[-1]["price_close"]),
                )
            )
    return out


async def test_every_venue_serves_its_own_series(gql: GraphQLClient, stored: Stored) -> None:
    """OKX's 5m bars are its own 1m file's, Binance ETH's its ETH file's: three venues, three
    different series over the same hours (no venue replays another's numbers)."""
    start, end = JANUARY_DAY, JANUARY_DAY + timedelta(hours=6)
    window = {"s": start.isoformat(), "e": end.isoformat()}
    okx = (await gql.data(SERIES, symbol=SYMBOL, ex="okx", **window))["candles"]
    expected = okx_5m_from_1m(stored.shared_data, start, end)
    assert len(expected) == 72
    assert [(c["ts"], c["open"], c["high"], c["low"], c["close"]) for c in okx] == expected
    eth = await gql.data(SERIES, symbol=ETH, ex="binanceusdm", **window)
    eth_bars = read_venue_bars(stored.shared_data, "binanceusdm", ETH)
    i = eth_bars.ts.index(start)
    np.testing.assert_array_equal([c["close"] for c in eth["candles"]], eth_bars.close[i : i + 72])
    eth_funding = read_venue_funding(stored.shared_data, "binanceusdm", ETH)
    assert [f["fundingRate"] for f in eth["fundingRates"]] == [
        r for t, r in sorted(eth_funding.items()) if start <= t < end
    ]
    assert eth["openInterest"] == []
    bybit = (await gql.data(SERIES, symbol=SYMBOL, ex="bybit", **window))["candles"]
    okx_close = np.array([c["close"] for c in okx])
    bybit_close = np.array([c["close"] for c in bybit])
    assert okx_close.size == bybit_close.size == 72
    assert (okx_close != bybit_close).sum() > 60  # two venues: close, never copies
    assert np.max(np.abs(okx_close / bybit_close - 1)) < 0.005


# --- known levels ------------------------------------------------------------------------------
KNOWN = """query ($symbol: String!, $at: DateTime, $bucket: Float, $ex: String) {
  knownLevels(symbol: $symbol, at: $at, bucketSize: $bucket, exchange: $ex) {
    exchange symbol at price bucketSize sourceBins leverageBands totalLongUsd totalShortUsd
    levels { price priceHigh longUsd shortUsd longUsdByLeverage shortUsdByLeverage positions }
    coverage {
      exchange source selection accountsPlanned accountsRead accountsFailed accounts positions
      longUsd shortUsd venueOpenInterestUsd openInterestShare stateFrom stateTo note
    }
    distance { withinPct longShare shortShare }
  }
}"""


def stamp(line: dict) -> datetime:
    """A line's lastUpdated, at the millisecond the job keeps (times are epoch ms)."""
    at = datetime.fromisoformat(line["lastUpdated"].replace("Z", "+00:00"))
    return datetime.fromtimestamp(round(at.timestamp() * 1000) / 1000, tz=UTC)


def bin_width(raw: dict) -> float:
    """The file's bins are evenly spaced (centres rounded to cents): the span of the centres
    over the number of gaps in it, counted in the smallest gap."""
    keys = ("longLiquidations", "shortLiquidations")
    centres = np.array(sorted({r["price"] for key in keys for r in raw[key]}))
    span = centres[-1] - centres[0]
    return float(span / round(span / np.min(np.diff(centres))))


async def test_known_levels_equal_the_recorded_files_sums(
    gql: GraphQLClient, stored: Stored
) -> None:
    lines = read_known_levels(stored.shared_data)
    assert len(lines) == 34
    for line, at in ((lines[-1], None), (lines[5], stamp(lines[6]) - timedelta(seconds=1))):
        data = (await gql.data(KNOWN, symbol=HL_BTC, at=None if at is None else at.isoformat()))[
            "knownLevels"
        ]
        raw = line["data"]["BTC"]
        longs, shorts = raw["longLiquidations"], raw["shortLiquidations"]
        assert datetime.fromisoformat(data["at"]) == stamp(line)
        assert (data["exchange"], data["symbol"], data["price"]) == (
            "hyperliquid",
            HL_BTC,
            raw["currentPrice"],
        )
        assert data["sourceBins"] is True
        assert data["bucketSize"] == pytest.approx(bin_width(raw), abs=0.01)
        assert data["bucketSize"] == pytest.approx(0.012 * raw["currentPrice"], rel=1e-9)
        # the totals: the file's sums of its bins, and its own totals
        assert data["totalLongUsd"] == pytest.approx(sum(r["value"] for r in longs), rel=1e-12)
        assert data["totalShortUsd"] == pytest.approx(sum(r["value"] for r in shorts), rel=1e-12)
        coverage = data["coverage"]
        assert (coverage["longUsd"], coverage["shortUsd"]) == (
            raw["totalLongValue"],
            raw["totalShortValue"],
        )
        assert coverage["longUsd"] == pytest.approx(data["totalLongUsd"], rel=1e-9)
        assert (coverage["accountsPlanned"], coverage["positions"]) == (
            line["tradersCount"],
            raw["positionCount"],
        )
        assert coverage["accounts"] is None and coverage["accountsRead"] is None
        assert coverage["openInterestShare"] is None  # the venue's OI was not recorded
        assert "not the market" in coverage["note"]
        # every bin in its bucket, with its leverage split (10x, 25x, 50x, 100x of the file)
        assert data["leverageBands"] == ["1-10", "11-25", "26-50", "51+"]
        by_centre = {round((lv["price"] + lv["priceHigh"]) / 2, 4): lv for lv in data["levels"]}
        assert len(by_centre) == len({r["price"] for r in longs + shorts})
        for side, rows in (("long", longs), ("short", shorts)):
            for r in rows:
                lv = by_centre[round(r["price"], 4)]
                assert lv[f"{side}Usd"] == pytest.approx(r["value"], rel=1e-12)
                assert lv[f"{side}UsdByLeverage"] == pytest.approx(
                    [r["10x"], r["25x"], r["50x"], r["100x"]], rel=1e-12, abs=1e-9
                )
                assert lv["priceHigh"] - lv["price"] == pytest.approx(data["bucketSize"])
        prices = [lv["price"] for lv in data["levels"]]
        assert prices == sorted(prices)
    # before the first recorded snapshot there is nothing to show
    early = (stamp(lines[0]) - timedelta(minutes=1)).isoformat()
    assert (await gql.data(KNOWN, symbol=HL_BTC, at=early))["knownLevels"] is None


async def test_known_positions_read_live_are_binned_at_their_own_prices(
    gql: GraphQLClient, stored: Stored, shared_data: Path
) -> None:
    """The live round over the recorded account: its one position, at the venue's
    liquidation price, binned at the requested width."""
    extract = json.loads(
        (shared_data / "ccxt_fixtures" / "hyperliquid_response_extract.json").read_text()
    )
    state = extract["fetchPositions_isolated_with_liquidationPx"]["httpResponse"]
    (raw,) = [p["position"] for p in state["assetPositions"]]
    symbol = "FLX-CRCL/USDC:USDC"
    data = (await gql.data(KNOWN, symbol=symbol, bucket=0.5))["knownLevels"]
    lp, value = float(raw["liquidationPx"]), float(raw["positionValue"])
    (level,) = data["levels"]
    assert data["sourceBins"] is False and data["bucketSize"] == 0.5
    assert level["price"] == 0.5 * (lp // 0.5) and level["priceHigh"] == level["price"] + 0.5
    assert (level["longUsd"], level["shortUsd"], level["positions"]) == (value, 0.0, 1)
    leverage = float(raw["leverage"]["value"])
    assert leverage <= 10 and level["longUsdByLeverage"] == [value, 0.0, 0.0, 0.0]
    coverage = data["coverage"]
    assert coverage["accounts"] == [f"{KNOWN_ACCOUNT}@flx"]
    assert (coverage["accountsPlanned"], coverage["accountsRead"], coverage["accountsFailed"]) == (
        1,
        1,
        0,
    )
    state_at = datetime.fromtimestamp(int(state["time"]) / 1000, tz=UTC)
    assert datetime.fromisoformat(coverage["stateFrom"]) == state_at
    # the price is the position's value over its size (no mark price was recorded): the
    # liquidation price lies (price - lp) / price below it
    price = value / float(raw["szi"])
    assert data["price"] == pytest.approx(price)
    below = (price - lp) / price
    for band in data["distance"]:
        assert band["longShare"] == (1.0 if band["withinPct"] / 100 >= below else 0.0)
        assert band["shortShare"] == 0.0


async def test_known_liquidations_are_the_accounts_own_fills(
    gql: GraphQLClient, stored: Stored, shared_data: Path
) -> None:
    extract = json.loads(
        (shared_data / "ccxt_fixtures" / "hyperliquid_response_extract.json").read_text()
    )
    fills = [f for f in extract["fetchMyTrades_liquidation_fills"] if f["coin"] == "HYPE"]
    data = await gql.data(
        """query ($s: DateTime!, $e: DateTime!) {
          knownLiquidations(symbol: "HYPE/USDC:USDC", start: $s, end: $e) {
            ts account side price quantity usdValue } }""",
        s="2026-01-01T00:00:00Z",
        e="2026-02-08T00:00:00Z",
    )
    assert [
        (
            datetime.fromisoformat(r["ts"]).timestamp() * 1000,
            r["account"],
            r["side"],
            r["price"],
            r["quantity"],
        )
        for r in data["knownLiquidations"]
    ] == [
        (int(f["time"]), f["liquidation"]["liquidatedUser"], "long", float(f["px"]), float(f["sz"]))
        for f in fills
    ]
    # kept apart from the market's realized liquidations
    assert (
        stored.one("SELECT count(*) FROM realized_liquidations WHERE exchange = 'hyperliquid'") == 0
    )


@pytest.mark.parametrize(
    ("variables", "code", "fragment"),
    [
        ({"symbol": "BTC/USDT:USDT"}, "NOT_FOUND", "BTC/USDC:USDC"),
        ({"symbol": HL_BTC, "ex": "binanceusdm"}, "NOT_FOUND", "hyperliquid"),
        ({"symbol": HL_BTC, "bucket": -1.0}, "BAD_USER_INPUT", "bucketSize"),
    ],
)
async def test_known_levels_errors(
    gql: GraphQLClient, stored: Stored, variables: dict, code: str, fragment: str
) -> None:
    body = await gql(KNOWN, **variables)
    assert body["errors"][0]["extensions"]["code"] == code
    assert fragment in body["errors"][0]["message"]


# --- the comparison ----------------------------------------------------------------------------
COMPARE = """query ($at: DateTime, $knownAt: DateTime) {
  knownLevelsComparison(symbol: "BTC/USDT:USDT", at: $at, knownAt: $knownAt) {
    model { ...side }
    known { ...side }
    sameVenues secondsApart note
  }
}
fragment side on DistanceProfileSide {
  kind exchanges symbol at price longUsd shortUsd bands { withinPct longShare shortShare }
}"""


def brute_shares(
    edges: list[tuple[float, float, float, bool]], price: float
) -> tuple[list[float], list[float]]:
    """Per band, walk every level (lower edge, width, USD, is long): the part of its width
    inside [price·(1-b), price] (longs) or [price, price·(1+b)] (shorts), over the side's USD."""
    longs = sum(u for _, _, u, is_long in edges if is_long)
    shorts = sum(u for _, _, u, is_long in edges if not is_long)
    long_share, short_share = [], []
    for b in BANDS:
        below = above = 0.0
        for lo, width, usd, is_long in edges:
            a, z = (price * (1 - b), price) if is_long else (price, price * (1 + b))
            part = max(0.0, min(lo + width, z) - max(lo, a)) / width
            if is_long:
                below += usd * part
            else:
                above += usd * part
        long_share.append(below / longs)
        short_share.append(above / shorts)
    return long_share, short_share


def model_edges(snap: Snap) -> list[tuple[float, float, float, bool]]:
    out = []
    for k in range(snap.long_usd.size):
        lo = snap.bucket_origin + k * snap.bucket_size
        out.append((lo, snap.bucket_size, float(snap.long_usd[k]), True))
        out.append((lo, snap.bucket_size, float(snap.short_usd[k]), False))
    return out


def known_edges(raw: dict) -> list[tuple[float, float, float, bool]]:
    width = bin_width(raw)
    return [
        (r["price"] - width / 2, width, r["value"], key == "longLiquidations")
        for key in ("longLiquidations", "shortLiquidations")
        for r in raw[key]
    ]


async def test_the_comparison_says_which_venue_and_when_and_matches_a_brute_force(
    gql: GraphQLClient, stored: Stored
) -> None:
    data = (await gql.data(COMPARE))["knownLevelsComparison"]
    model, known = data["model"], data["known"]
    snap = stored.latest("all")
    line = read_known_levels(stored.shared_data)[-1]  # newest before the May map: February's
    raw = line["data"]["BTC"]
    # labels: whose levels, when; in the replay the two sides are different windows
    assert (model["kind"], model["exchanges"], model["symbol"]) == (
        "model",
        ["binanceusdm"],
        SYMBOL,
    )
    assert (known["kind"], known["exchanges"], known["symbol"]) == (
        "known",
        ["hyperliquid"],
        HL_BTC,
    )
    assert datetime.fromisoformat(model["at"]) == snap.at
    assert datetime.fromisoformat(known["at"]) == stamp(line)
    assert data["sameVenues"] is False
    assert data["secondsApart"] == pytest.approx((stamp(line) - snap.at).total_seconds())
    assert data["secondsApart"] < -100 * 86_400  # about 140 days before the map
    for words in ("different venues", "different times", "different recorded windows"):
        assert words in data["note"]
    assert "not the market" in data["note"]
    # the shares, against a walk over the stored vectors and the file's bins
    assert model["price"] == pytest.approx(snap.price)
    assert known["price"] == raw["currentPrice"]
    # (the file's bin centres are rounded to cents, so its bins' edges are known to ~1e-7)
    for side, edges, price, tolerance in (
        (model, model_edges(snap), snap.price, 1e-9),
        (known, known_edges(raw), raw["currentPrice"], 1e-6),
    ):
        long_share, short_share = brute_shares(edges, price)
        assert [b["withinPct"] for b in side["bands"]] == [1.0, 2.0, 5.0, 10.0, 20.0]
        assert [b["longShare"] for b in side["bands"]] == pytest.approx(long_share, abs=tolerance)
        assert [b["shortShare"] for b in side["bands"]] == pytest.approx(short_share, abs=tolerance)
        assert side["longUsd"] == pytest.approx(sum(u for _, _, u, lg in edges if lg), rel=1e-9)
    # an earlier known reading on request, the model's instant unchanged
    earlier = read_known_levels(stored.shared_data)[0]
    picked = await gql.data(COMPARE, knownAt=stamp(earlier).isoformat())
    assert datetime.fromisoformat(picked["knownLevelsComparison"]["known"]["at"]) == stamp(earlier)


async def test_no_model_map_no_comparison(gql: GraphQLClient, stored: Stored) -> None:
    first = min(stored.snapshots("all", res)[0].at for res in ("5m", "1h"))
    before = (first - BAR).isoformat()
    assert (await gql.data(COMPARE, at=before))["knownLevelsComparison"] is None
