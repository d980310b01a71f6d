"""The distance-from-price profile: hand-computed cases and a brute force on a real snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maps.distance import DEFAULT_BANDS, distance_profile

LEVELS = Path("hyperliquid") / "top_trader_liq_levels_dev.jsonl"


def test_points_by_hand() -> None:
    # longs at 1 %, 3 %, 15 % below 100 and one above it (already past: in no band)
    prices = np.array([99.5, 97.0, 85.0, 101.0, 100.5, 110.0])
    longs = np.array([10.0, 20.0, 60.0, 10.0, 0.0, 0.0])
    shorts = np.array([0.0, 0.0, 0.0, 0.0, 30.0, 10.0])
    profile = distance_profile(prices, 0.0, longs, shorts, 100.0)
    assert profile.bands == DEFAULT_BANDS
    assert profile.long_share == pytest.approx((0.1, 0.1, 0.3, 0.3, 0.9))
    assert profile.short_share == pytest.approx((0.75, 0.75, 0.75, 1.0, 1.0))
    assert (profile.long_usd, profile.short_usd) == (100.0, 40.0)


def test_a_bucket_spreads_its_usd_over_its_width() -> None:
    # one long bucket [98, 100): ±1 % reaches 99, half the bucket; ±2 % all of it
    profile = distance_profile(np.array([98.0]), 2.0, np.array([100.0]), np.array([0.0]), 100.0)
    assert profile.long_share[:2] == pytest.approx((0.5, 1.0))
    assert profile.short_share == (0.0,) * 5  # no shorts: shares of nothing are 0


def test_a_recorded_snapshot_matches_a_brute_force(shared_data: Path) -> None:
    with (shared_data / LEVELS).open() as handle:
        line = json.loads(handle.readline())
    data = line["data"]["BTC"]
    price = float(data["currentPrice"])
    width = 0.012 * price  # the file's bins: 50 over ± 30 %
    levels = [(r["price"], r["value"], 0.0) for r in data["longLiquidations"]] + [
        (r["price"], 0.0, r["value"]) for r in data["shortLiquidations"]
    ]
    centres = np.array([c for c, _, _ in levels])
    longs = np.array([lo for _, lo, _ in levels])
    shorts = np.array([sh for _, _, sh in levels])
    profile = distance_profile(centres - width / 2, width, longs, shorts, price)
    # brute force: each bin as 20,000 equal points across its width
    k = 20_000
    offsets = (np.arange(k) + 0.5) / k * width - width / 2
    points = (centres[:, None] + offsets[None, :]).ravel()
    for i, band in enumerate(DEFAULT_BANDS):
        lo_mask = (points >= price * (1 - band)) & (points <= price)
        hi_mask = (points >= price) & (points <= price * (1 + band))
        brute_long = float((np.repeat(longs / k, k) * lo_mask).sum()) / longs.sum()
        brute_short = float((np.repeat(shorts / k, k) * hi_mask).sum()) / shorts.sum()
        assert profile.long_share[i] == pytest.approx(brute_long, abs=1e-4)
        assert profile.short_share[i] == pytest.approx(brute_short, abs=1e-4)
    assert profile.long_usd == pytest.approx(data["totalLongValue"], rel=1e-9)
