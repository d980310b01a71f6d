"""What the loaders say about a selection of venues, on hand-built rows (no database)."""

from __future__ import annotations

from api.loaders import ExcludedVenue, UnavailableDataset, merge_assumptions, venue_status
from models.jobs_store import LatestRun

SYMBOL = "BTC/USDT:USDT"


def test_parameters_that_differ_between_venues_go_under_per_exchange() -> None:
    merged = merge_assumptions(
        {
            "binanceusdm": {"half_life_hours": 48, "tier_tables": ["binance"]},
            "okx": {"half_life_hours": 48, "tier_tables": ["fallback"]},
        }
    )
    assert merged == {
        "half_life_hours": 48,
        "perExchange": {
            "binanceusdm": {"tier_tables": ["binance"]},
            "okx": {"tier_tables": ["fallback"]},
        },
    }
    assert merge_assumptions({"binanceusdm": {"a": 1}}) == {"a": 1}
    assert merge_assumptions({}) == {}


def test_excluded_venues_say_why_they_have_no_map() -> None:
    runs = [
        LatestRun("binanceusdm", SYMBOL, "open_interest", "succeeded", None),  # contributes
        LatestRun("bybit", SYMBOL, "tiers", "unavailable", "no risk-limit table"),
        LatestRun("bybit", SYMBOL, "open_interest", "unavailable", "bybit: no open interest"),
        LatestRun("bybit", SYMBOL, "candles", "succeeded", None),
        LatestRun("okx", SYMBOL, "open_interest", "failed", "boom"),  # failed, nothing stored
        LatestRun("hyperliquid", SYMBOL, "open_interest", "succeeded", None),  # not mapped yet
    ]
    missing = ["bybit:open_interest", "bybit:tiers", "okx:open_interest"]
    status = venue_status(["bybit", "okx", "hyperliquid"], runs, missing)
    assert status.unavailable == [
        UnavailableDataset("bybit", "open_interest", "bybit: no open interest"),
        UnavailableDataset("bybit", "tiers", "no risk-limit table"),
    ]
    assert status.excluded == [
        ExcludedVenue("bybit", "no open interest, so no model positions: bybit: no open interest"),
        ExcludedVenue("okx", "no open interest stored, so no model positions"),
        ExcludedVenue("hyperliquid", "no snapshot materialized yet"),
    ]
