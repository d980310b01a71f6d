"""What the loaders say about a selection of venues, on hand-built rows (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from api.loaders import ExcludedVenue, UnavailableDataset, merge_assumptions, venue_status
from models.jobs_store import MarketDatasetCoverage

T = datetime(2026, 1, 1, tzinfo=UTC)


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


def _row(market: int, dataset: str, status: str | None, error: str | None, first: object = None):  # type: ignore[no-untyped-def]
    return MarketDatasetCoverage(market, dataset, first, first, None, status, error)  # type: ignore[arg-type]


def test_excluded_venues_say_why_they_have_no_map() -> None:
    rows = [
        _row(1, "open_interest", "succeeded", None, T),  # binance: contributes
        _row(2, "open_interest", "unavailable", "bybit replay: no open_interest recorded"),
        _row(2, "tiers", "unavailable", "no risk-limit table"),
        _row(2, "candles", "succeeded", None, T),
        _row(3, "open_interest", "failed", "boom"),  # okx: a failed run, nothing stored
        _row(4, "open_interest", "succeeded", None, T),  # stored, not materialized yet
    ]
    names = {1: "binanceusdm", 2: "bybit", 3: "okx", 4: "hyperliquid"}
    status = venue_status(["bybit", "okx", "hyperliquid"], rows, names)
    assert status.unavailable == [
        UnavailableDataset("bybit", "open_interest", "bybit replay: no open_interest recorded"),
        UnavailableDataset("bybit", "tiers", "no risk-limit table"),
    ]
    assert status.excluded == [
        ExcludedVenue(
            "bybit",
            "no open interest, so no model positions: bybit replay: no open_interest recorded",
        ),
        ExcludedVenue("okx", "no open interest stored, so no model positions"),
        ExcludedVenue("hyperliquid", "no snapshot materialized yet"),
    ]
