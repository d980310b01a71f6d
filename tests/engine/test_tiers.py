"""Maintenance-margin tier tables: the §1 recursion, ccxt parsing, the shipped Binance brackets."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.tiers import (
    SHIPPED_BINANCE_TIERS,
    MarginTiers,
    binance_btcusdt_tiers_2024,
    load_shipped_binance_tiers,
    shipped_binance_symbols,
)

LATEST = Path("exchange_specs") / "binance_leverage_tiers_BTC_ETH_latest.json"


@pytest.fixture(scope="module")
def ccxt_tables(shared_data: Path) -> dict[str, list[dict[str, Any]]]:
    with (shared_data / LATEST).open() as handle:
        tables: dict[str, list[dict[str, Any]]] = json.load(handle)["tiers"]
    return tables


def test_recursion_reproduces_binance_cum_from_table_b() -> None:
    shipped = binance_btcusdt_tiers_2024()
    derived = MarginTiers.from_rates(
        shipped.floor, shipped.cap, shipped.maintenance_margin_rate, shipped.max_leverage
    )
    # published cum of the first five BTCUSDT brackets (liquidation-math.md §1, §2.3)
    np.testing.assert_array_equal(derived.maintenance_amount[:5], [0, 50, 950, 11450, 131450])
    # and every bracket: Binance's cum is exactly the continuity deduction
    np.testing.assert_allclose(
        derived.maintenance_amount, shipped.maintenance_amount, rtol=1e-12, atol=0
    )


def test_recursion_reproduces_table_a_and_the_faq_examples() -> None:
    # Table A (c. 2021): caps and rates as published; cum 0, 50, 1300, 16300, ... by recursion
    caps = [5e4, 2.5e5, 1e6, 1e7, 2e7, 5e7, 1e8, 2e8, 3e8, 5e8]
    rates = [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50]
    table = MarginTiers.from_rates([0, *caps[:-1]], caps, rates)
    np.testing.assert_allclose(
        table.maintenance_amount,
        [0, 50, 1300, 16300, 266300, 1266300, 2516300, 5016300, 25016300, 100016300],
        rtol=1e-12,
    )
    # FAQ [B1]: 264,000 USDT -> MMR 1 %; 500,000 USDT -> maintenance amount 1,300
    assert table.maintenance_margin_rate[table.tier_index(264_000)] == 0.01
    assert table.maintenance_amount[table.tier_index(500_000)] == 1300
    # MM is continuous at every floor
    floors = table.floor[1:]
    below = floors * table.maintenance_margin_rate[:-1] - table.maintenance_amount[:-1]
    np.testing.assert_allclose(table.maintenance_margin(floors), below, rtol=1e-12)


def test_from_ccxt_reads_every_shipped_table(
    ccxt_tables: dict[str, list[dict[str, Any]]],
) -> None:
    assert set(ccxt_tables) == {"BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USDC:USDC", "ETH/USDC:USDC"}
    for symbol, rows in ccxt_tables.items():
        tiers = MarginTiers.from_ccxt(rows)
        assert len(tiers) == len(rows)
        np.testing.assert_array_equal(
            tiers.floor, [float(r["info"]["notionalFloor"]) for r in rows]
        )
        np.testing.assert_array_equal(tiers.cap, [float(r["info"]["notionalCap"]) for r in rows])
        np.testing.assert_array_equal(
            tiers.maintenance_margin_rate, [float(r["info"]["maintMarginRatio"]) for r in rows]
        )
        np.testing.assert_array_equal(
            tiers.max_leverage, [float(r["info"]["initialLeverage"]) for r in rows]
        )
        np.testing.assert_array_equal(
            tiers.maintenance_amount, [float(r["info"]["cum"]) for r in rows]
        )
        # contiguous brackets, and Binance's cum agrees with the recursion
        np.testing.assert_array_equal(tiers.cap[:-1], tiers.floor[1:])
        derived = MarginTiers.from_rates(tiers.floor, tiers.cap, tiers.maintenance_margin_rate)
        np.testing.assert_allclose(
            derived.maintenance_amount, tiers.maintenance_amount, rtol=1e-9, err_msg=symbol
        )


def test_from_ccxt_without_cum_falls_back_to_the_recursion(
    ccxt_tables: dict[str, list[dict[str, Any]]],
) -> None:
    rows = [{k: v for k, v in r.items() if k != "info"} for r in ccxt_tables["ETH/USDT:USDT"]]
    rows.reverse()  # order must not matter
    tiers = MarginTiers.from_ccxt(rows)
    shipped = MarginTiers.from_ccxt(ccxt_tables["ETH/USDT:USDT"])
    np.testing.assert_allclose(tiers.maintenance_amount, shipped.maintenance_amount, rtol=1e-9)
    np.testing.assert_array_equal(tiers.floor, shipped.floor)


def test_from_ccxt_reads_bybit_mm_deduction() -> None:
    # Bybit risk-limit rows as ccxt parses them; mmDeduction may be "" -> recursion
    rows = [
        {
            "minNotional": 0,
            "maxNotional": 2e6,
            "maintenanceMarginRate": 0.005,
            "maxLeverage": 100,
            "info": {"mmDeduction": "0"},
        },
        {
            "minNotional": 2e6,
            "maxNotional": 4e6,
            "maintenanceMarginRate": 0.01,
            "maxLeverage": 50,
            "info": {"mmDeduction": "10000"},
        },
    ]
    np.testing.assert_array_equal(MarginTiers.from_ccxt(rows).maintenance_amount, [0, 10000])
    rows[1]["info"] = {"mmDeduction": ""}
    np.testing.assert_array_equal(MarginTiers.from_ccxt(rows).maintenance_amount, [0, 10000])


def test_shipped_file_is_the_shared_snapshot(shared_data: Path) -> None:
    assert SHIPPED_BINANCE_TIERS.read_bytes() == (shared_data / LATEST).read_bytes()
    assert set(shipped_binance_symbols()) == {
        "BTC/USDT:USDT",
        "ETH/USDT:USDT",
        "BTC/USDC:USDC",
        "ETH/USDC:USDC",
    }
    for symbol in shipped_binance_symbols():
        tiers, source, valid_from = load_shipped_binance_tiers(symbol)
        assert valid_from == date(2024, 10, 24)
        assert "2024-10-24" in source and "freqtrade" in source
        assert tiers.floor[0] == 0
    with pytest.raises(KeyError, match="DOGE"):
        load_shipped_binance_tiers("DOGE/USDT:USDT")


def test_table_b_brackets() -> None:
    tiers = binance_btcusdt_tiers_2024()
    np.testing.assert_array_equal(
        tiers.cap / 1e6, [0.05, 0.6, 3, 12, 70, 100, 230, 480, 600, 800, 1200, 1800]
    )
    np.testing.assert_array_equal(tiers.max_leverage, [125, 100, 75, 50, 25, 20, 10, 5, 4, 3, 2, 1])
    # floor inclusive: 50,000 is bracket 2; clipped beyond the table
    np.testing.assert_array_equal(
        tiers.tier_index([0, 49_999.99, 50_000, 599_999, 3e6, 5e9, -1]), [0, 0, 1, 1, 3, 11, 0]
    )


def test_single_and_hyperliquid_tables() -> None:
    flat = MarginTiers.single(0.01)
    assert flat.maintenance_margin(1e9) == pytest.approx(1e7)
    # Hyperliquid mainnet BTC [H2]: 0-150M at 40x, above at 20x -> rates 1.25 %, 2.5 %
    hl = MarginTiers.hyperliquid([0, 150e6], [40, 20])
    np.testing.assert_allclose(hl.maintenance_margin_rate, [0.0125, 0.025])
    np.testing.assert_allclose(hl.maintenance_amount, [0, 150e6 * 0.0125])


def test_rejects_malformed_tables() -> None:
    with pytest.raises(ValueError, match="ascending"):
        MarginTiers.from_rates([0, 10, 5], [10, 5, 20], [0.01, 0.02, 0.03])
    with pytest.raises(ValueError, match="rates"):
        MarginTiers.from_rates([0], [10], [1.5])
    with pytest.raises(ValueError, match="values"):
        MarginTiers.from_rates([0, 10], [10], [0.01, 0.02])
    table = binance_btcusdt_tiers_2024()
    with pytest.raises(ValueError):
        table.maintenance_margin_rate[0] = 0.5  # read-only
