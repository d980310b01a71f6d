"""Liquidation prices against published exchange examples, real API positions and brute force.

Vectors V1-V11 are from liquidation-math.md §§2-5 with its §10 tolerances: V1, V2 and V8 after
rounding to 2 dp (the published values are rounded), V11 rel 1e-7, V6 abs 0.05, V10 rel 1e-4,
and rel 1e-9 for the derived V3-V5, V7, V9 (checked against the hand calculation written out in
the test, and against the spec's printed digits after rounding).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.liquidation import (
    binance_coinm_cross_liquidation_price,
    binance_cross_liquidation_price,
    bybit_inverse_bankruptcy_price,
    bybit_inverse_isolated_liquidation_price,
    bybit_linear_bankruptcy_price,
    bybit_linear_isolated_liquidation_price,
    hyperliquid_liquidation_price,
    inverse_liquidation_price,
    isolated_liquidation_price,
    linear_hedge_liquidation_price,
    linear_liquidation_price,
    okx_linear_isolated_liquidation_price,
)
from engine.tiers import MarginTiers, binance_btcusdt_tiers_2024

TABLE_B = binance_btcusdt_tiers_2024()
# Binance USDⓈ-M BTCUSDT, Table A (c. 2021, §2.3): the brackets of the FAQ's worked example
TABLE_A_CAPS = [5e4, 2.5e5, 1e6, 1e7, 2e7, 5e7, 1e8, 2e8, 3e8, 5e8]
TABLE_A = MarginTiers.from_rates(
    [0, *TABLE_A_CAPS[:-1]],
    TABLE_A_CAPS,
    [0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50],
)


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def scalar(x: np.ndarray) -> float:
    return float(np.asarray(x).reshape(()))


# --- V1, V2: Binance's worked cross example and its isolated variants ----------------------

WB_V1 = 1_535_443.01
BTC_V1 = {"qty": 109.488, "entry": 32_481.98, "mark": 31_967.27}
ETH_V1 = {"qty": 3_683.979, "entry": 1_456.84, "mark": 1_335.18}
# the FAQ gives ETH's bracket at the mark as 10 % / 135,365 (an ETH table we do not have)
ETH_V1_TIER = MarginTiers.single(0.10, maintenance_amount=135_365)


def upnl(position: dict[str, float]) -> float:
    return position["qty"] * (position["mark"] - position["entry"])


def test_v1_inputs_maintenance_margins_at_the_mark() -> None:
    btc_mm = scalar(TABLE_A.maintenance_margin(BTC_V1["qty"] * BTC_V1["mark"]))
    eth_mm = scalar(ETH_V1_TIER.maintenance_margin(ETH_V1["qty"] * ETH_V1["mark"]))
    assert round(btc_mm, 2) == 71_200.81  # 3,500,032.458 · 2.5 % − 16,300
    assert round(eth_mm, 3) == 356_512.508  # 4,918,775.081 · 10 % − 135,365
    assert round(upnl(BTC_V1), 2) == -56_354.57
    assert round(upnl(ETH_V1), 2) == -448_192.89


def test_v1_binance_cross_example() -> None:
    btc_mm = scalar(TABLE_A.maintenance_margin(BTC_V1["qty"] * BTC_V1["mark"]))
    eth_mm = scalar(ETH_V1_TIER.maintenance_margin(ETH_V1["qty"] * ETH_V1["mark"]))
    eth = binance_cross_liquidation_price(
        WB_V1,
        ETH_V1_TIER,
        side_both=1,
        position_both=ETH_V1["qty"],
        entry_both=ETH_V1["entry"],
        other_maintenance=btc_mm,
        other_upnl=upnl(BTC_V1),
    )
    btc = binance_cross_liquidation_price(
        WB_V1,
        TABLE_A,
        side_both=1,
        position_both=BTC_V1["qty"],
        entry_both=BTC_V1["entry"],
        other_maintenance=eth_mm,
        other_upnl=upnl(ETH_V1),
    )
    assert round(scalar(eth), 2) == 1_153.26
    assert round(scalar(btc), 2) == 26_316.89
    # BTC's bracket is picked at the LP notional (2.88M, Table A's 2.5 % / 16,300 bracket)
    assert TABLE_A.tier_index(BTC_V1["qty"] * scalar(btc)) == 3
    # one-way form gives the same number
    same = linear_liquidation_price(
        1,
        BTC_V1["qty"],
        BTC_V1["entry"],
        WB_V1,
        TABLE_A,
        other_maintenance=eth_mm,
        other_upnl=upnl(ETH_V1),
    )
    assert rel(scalar(same), scalar(btc)) < 1e-12


def test_v2_isolated_variants() -> None:
    eth = linear_liquidation_price(1, ETH_V1["qty"], ETH_V1["entry"], WB_V1, ETH_V1_TIER)
    btc = linear_liquidation_price(1, BTC_V1["qty"], BTC_V1["entry"], WB_V1, TABLE_A)
    assert round(scalar(eth), 2) == 1_114.78
    assert round(scalar(btc), 2) == 18_778.73


# --- V3: API back-solve ---------------------------------------------------------------------


def test_v3_api_back_solve() -> None:
    lp, qty, entry = 8_465.58529116, 0.001, 61_788.9
    wallet = (lp * (-1 + 0.004) + entry) * qty  # what the LP implies (tier 1: 0.4 %, cum 0)
    assert round(wallet, 4) == 53.3572
    again = binance_cross_liquidation_price(
        wallet, TABLE_B, side_both=1, position_both=qty, entry_both=entry
    )
    assert rel(scalar(again), lp) < 1e-9


# --- V4: bracket iteration (Table B) --------------------------------------------------------


def test_v4_bracket_at_the_liquidation_price() -> None:
    side = np.array([1, -1, 1], dtype=np.int8)
    qty = np.array([1.0, 1.0, 20.0])
    wallet = np.array([6_000.0, 6_000.0, 60_000.0])
    lp = linear_liquidation_price(side, qty, 60_000.0, wallet, TABLE_B)
    # hand calculation with the bracket of the notional at LP (entry brackets: 2, 2, 3)
    expected = np.array(
        [
            (60_000 - 6_000 - 50) / 0.995,  # tier 2 (0.5 %, 50): tier 1 would give 54,216.87
            (60_000 + 6_000 + 50) / 1.005,
            (20 * 60_000 - 60_000 - 950) / (20 * (1 - 0.0065)),  # tier 3 (0.65 %, 950)
        ]
    )
    np.testing.assert_allclose(lp, expected, rtol=1e-9)
    np.testing.assert_array_equal(np.round(lp, 4), [54_221.1055, 65_721.3930, 57_325.1132])
    np.testing.assert_array_equal(TABLE_B.tier_index(qty * lp), [1, 1, 2])
    # the same positions opened at 10x, 10x, 20x isolated
    iso = isolated_liquidation_price(side, 60_000.0, [10, 10, 20], qty, TABLE_B)
    np.testing.assert_allclose(iso, expected, rtol=1e-12)
    # the popular shortcut EP·(1 − 1/L + MMR) is not Binance's formula
    assert pytest.approx(54_240) == 60_000 * (1 - 1 / 10 + 0.004)
    assert abs(lp[0] - 60_000 * (1 - 1 / 10 + 0.005)) > 70


# --- V5: hedge mode, cross ------------------------------------------------------------------


def test_v5_hedge_mode() -> None:
    lp = scalar(linear_hedge_liquidation_price(2, 60_000, 1, 62_000, 10_000, TABLE_B))
    # long leg in tier 2 (0.5 %/50), short leg in tier 1 (0.4 %/0) at LP
    hand = (10_000 + 50 + 0 - 2 * 60_000 + 1 * 62_000) / (2 * 0.005 + 1 * 0.004 - 2 + 1)
    assert rel(lp, hand) < 1e-9
    assert round(lp, 4) == 48_630.8316
    assert TABLE_B.tier_index(2 * lp) == 1 and TABLE_B.tier_index(1 * lp) == 0
    equity = 10_000 + 2 * (lp - 60_000) - 1 * (lp - 62_000)
    mm = scalar(TABLE_B.maintenance_margin(2 * lp) + TABLE_B.maintenance_margin(1 * lp))
    assert rel(equity, mm) < 1e-9
    assert round(equity, 2) == round(mm, 2) == 630.83
    # the FAQ call in hedge form agrees
    faq = binance_cross_liquidation_price(
        10_000, TABLE_B, position_long=2, entry_long=60_000, position_short=1, entry_short=62_000
    )
    assert rel(scalar(faq), lp) < 1e-12


def test_hedge_with_one_empty_leg_is_one_way() -> None:
    rng = np.random.default_rng(5)
    n = 400
    qty = rng.uniform(0.001, 3_000, n)
    entry = rng.uniform(5_000, 120_000, n)
    wallet = qty * entry / rng.uniform(1.2, 120, n)
    side = rng.choice(np.array([-1, 1], dtype=np.int8), n)
    one_way = linear_liquidation_price(side, qty, entry, wallet, TABLE_B)
    hedge = linear_hedge_liquidation_price(
        np.where(side > 0, qty, 0), entry, np.where(side < 0, qty, 0), entry, wallet, TABLE_B
    )
    np.testing.assert_allclose(hedge, one_way, rtol=1e-12)
    # also with a deduction in every tier (a published rate/amount pair used as one tier, as
    # ETH's in V1), and legs under one contract: the empty leg adds no maintenance margin
    qty = qty / 3_000
    wallet = qty * entry / 5
    one_way = linear_liquidation_price(side, qty, entry, wallet, ETH_V1_TIER)
    hedge = linear_hedge_liquidation_price(
        np.where(side > 0, qty, 0), entry, np.where(side < 0, qty, 0), entry, wallet, ETH_V1_TIER
    )
    np.testing.assert_allclose(hedge, one_way, rtol=1e-12)


# --- V6, V7: COIN-M -------------------------------------------------------------------------


def test_v6_coin_m_calculator() -> None:
    def lp(cum: float) -> float:
        tier = MarginTiers.single(0.125, maintenance_amount=cum)
        return scalar(inverse_liquidation_price(1, 100_000, 45_000, 101, tier, contract_size=100))

    assert abs(lp(11.605) - 33_599.42) <= 0.05
    assert abs(lp(11.605) - 33_599.40) <= 0.05  # what Binance's calculator shows [B7]
    assert abs(lp(11.81) - 33_578.86) <= 0.05  # the older maintenance amount


def test_v6_through_the_coin_m_faq_formula() -> None:
    """The one-way (BOTH) case of the §2.5 formula reproduces V6 and the one-way solver."""
    tier = MarginTiers.single(0.125, maintenance_amount=11.605)
    faq = binance_coinm_cross_liquidation_price(
        101, tier, contract_size=100, position_both=100_000, entry_both=45_000
    )
    assert abs(scalar(faq) - 33_599.42) <= 0.05
    # hand calculation: (B·MMR + B) / ((WB + cum)/CM + B/EP)
    by_hand = (100_000 * 0.125 + 100_000) / ((101 + 11.605) / 100 + 100_000 / 45_000)
    assert rel(scalar(faq), by_hand) < 1e-12


def test_coin_m_hedge_matches_a_price_scan(coin_m_tiers: MarginTiers) -> None:
    """Cross hedge LONG + SHORT of BTCUSD_PERP: equity = maintenance at the root, found by scan."""
    rng = np.random.default_rng(14)
    n = 200
    size = 100.0
    long_q = np.exp(rng.uniform(np.log(1), np.log(2e5), n))
    short_q = long_q * rng.uniform(0, 2, n)
    long_ep = rng.uniform(20_000, 100_000, n)
    short_ep = long_ep * rng.uniform(0.9, 1.1, n)
    wallet = (long_q / long_ep + short_q / short_ep) * size / rng.uniform(2, 100, n)
    closed = binance_coinm_cross_liquidation_price(
        wallet,
        coin_m_tiers,
        contract_size=size,
        position_long=long_q,
        entry_long=long_ep,
        position_short=short_q,
        entry_short=short_ep,
    )
    prices = np.geomspace(1e-4, 1e9, 60_001)
    found_any = 0
    for i in range(n):
        equity = (
            wallet[i]
            + long_q[i] * size * (1 / long_ep[i] - 1 / prices)
            - short_q[i] * size * (1 / short_ep[i] - 1 / prices)
        )
        maintenance = coin_m_tiers.maintenance_margin(long_q[i] * size / prices) * (
            long_q[i] > 0
        ) + coin_m_tiers.maintenance_margin(short_q[i] * size / prices) * (short_q[i] > 0)
        gap = equity - maintenance
        up = np.flatnonzero((gap[:-1] < 0) & (gap[1:] >= 0))  # liquidated by a fall below
        down = np.flatnonzero((gap[:-1] >= 0) & (gap[1:] < 0))  # liquidated by a rise above
        first, second = (up, down) if long_q[i] > short_q[i] else (down, up)
        found = first if first.size else second
        if found.size == 0:
            assert np.isnan(closed[i]), i
            continue
        found_any += 1
        j = int(found[0])
        assert prices[j] <= closed[i] <= prices[j + 1], i
    assert found_any > n // 2
    # a one-legged hedge is the one-way position
    one_way = inverse_liquidation_price(
        1, long_q, long_ep, wallet, coin_m_tiers, contract_size=size
    )
    legged = binance_coinm_cross_liquidation_price(
        wallet, coin_m_tiers, contract_size=size, position_long=long_q, entry_long=long_ep
    )
    np.testing.assert_allclose(legged, one_way, rtol=1e-12)
    # with V6's published rate/amount as the only tier (a deduction in every tier) and legs of
    # under one contract too: the empty leg adds no maintenance margin, long or short
    v6 = MarginTiers.single(0.125, maintenance_amount=11.605)
    small = long_q / 1_000
    funds = small * size / long_ep / 3 - 11.605  # above MM at entry, a root either way
    for side, leg in ((1, "long"), (-1, "short")):
        alone = inverse_liquidation_price(side, small, long_ep, funds, v6, contract_size=size)
        hedged = binance_coinm_cross_liquidation_price(
            funds, v6, contract_size=size, **{f"position_{leg}": small, f"entry_{leg}": long_ep}
        )
        assert np.isfinite(alone).sum() > n // 4, side
        np.testing.assert_allclose(hedged, alone, rtol=1e-12)


def test_okx_tiers_are_looked_up_by_contracts() -> None:
    # floors in contracts: 0–1,000 at 0.4 %, 1,000–5,000 at 1 %
    tiers = MarginTiers.from_rates([0, 1_000], [1_000, 5_000], [0.004, 0.01])
    small = okx_linear_isolated_liquidation_price(1, 3_000, 2.0, 600, tiers, contracts=200)
    large = okx_linear_isolated_liquidation_price(1, 3_000, 20.0, 6_000, tiers, contracts=2_000)
    assert rel(scalar(small), (3_000 - 300) / (1 - 0.004)) < 1e-12
    assert rel(scalar(large), (3_000 - 300) / (1 - 0.01)) < 1e-12
    with pytest.raises(ValueError, match=r"^OKX tiers are keyed on contracts: pass contracts=$"):
        okx_linear_isolated_liquidation_price(1, 3_000, 2.0, 600, tiers)


def test_v7_coin_m_maintenance_margin(coin_m_tiers: MarginTiers) -> None:
    coin_notional = 100 * 100 / 25_000  # 100 contracts of 100 USD at mark 25,000
    assert coin_notional == pytest.approx(0.4)
    assert rel(scalar(coin_m_tiers.maintenance_margin(coin_notional)), 0.4 * 0.004) < 1e-9


# --- V8-V10: Bybit --------------------------------------------------------------------------


def test_v8_bybit_linear_isolated() -> None:
    tier = MarginTiers.single(0.005)
    assert round(scalar(bybit_linear_isolated_liquidation_price(1, 20_000, 1, 50, tier)), 2) == (
        19_700.00
    )  # IM 400, MM 100
    # the exact-at-mark solution of §1 for the same position
    assert round(scalar(isolated_liquidation_price(1, 20_000, 50, 1, tier)), 2) == 19_698.49
    # short mirror and extra margin: EP + (IM − MM)/Size + Extra/Size
    short = bybit_linear_isolated_liquidation_price(-1, 20_000, 2, 50, tier, extra_margin=100)
    assert rel(scalar(short), 20_000 + (800 - 200) / 2 + 100 / 2) < 1e-12
    # bankruptcy prices [Y1, Y4]
    assert scalar(bybit_linear_bankruptcy_price(1, 20_000, 50)) == pytest.approx(19_600)
    assert round(scalar(bybit_linear_bankruptcy_price(1, 10_000, 50)), 2) == 9_800.00


def test_v9_bybit_inverse_isolated_versions() -> None:
    tier = MarginTiers.single(0.005)
    legacy = scalar(
        bybit_inverse_isolated_liquidation_price(1, 60_000, 50_000, 10, tier, version="legacy")
    )
    current = scalar(bybit_inverse_isolated_liquidation_price(1, 60_000, 50_000, 10, tier))
    pv = 60_000 / 50_000
    assert rel(legacy, 60_000 / (pv + pv / 10 - pv * 0.005)) < 1e-9
    assert rel(current, 60_000 * 1.005 / (pv + pv / 10)) < 1e-9
    assert (round(legacy, 2), round(current, 2)) == (45_662.10, 45_681.82)
    # "current" is §1 (fee 0): the generic inverse solver agrees, also for a short
    for side in (1, -1):
        generic = isolated_liquidation_price(
            side, 50_000, 10, 60_000, tier, inverse=True, contract_size=1.0
        )
        bybit = bybit_inverse_isolated_liquidation_price(side, 60_000, 50_000, 10, tier)
        assert rel(scalar(bybit), scalar(generic)) < 1e-12


def test_v10_bybit_legacy_inverse_cross() -> None:
    tier = MarginTiers.single(0.005)
    fee = 0.00075  # Bybit's taker fee in the example
    bankruptcy = scalar(bybit_inverse_bankruptcy_price(1, 10_000, 8_000, 0.5, fee_rate=fee))
    assert round(bankruptcy, 2) == 5_718.57
    lp = bybit_inverse_isolated_liquidation_price(
        1, 10_000, 8_000, math.inf, tier, extra_margin=0.5, fee_rate=fee, version="legacy"
    )
    assert rel(scalar(lp), 5_739.50) < 1e-4


# two risk-limit tiers with the continuous deduction (§1): 0.5 % up to 10 (coin or USD value
# alike), 1 % above with D = 10·(1 % − 0.5 %) = 0.05
TWO_TIERS = MarginTiers.from_rates([0, 10], [10, math.inf], [0.005, 0.01])


def test_bybit_inverse_current_with_a_tier_deduction_extra_margin_and_fee() -> None:
    """[Y2, 2026] written out by hand for a position in the second tier: 600,000 USD @ 50,000
    (PV 12 BTC, tier 2: MMR 1 %, deduction 0.05), 20x (IM 0.6), 0.3 BTC extra margin, 0.06 %
    fee: ``LP = Qty·(1 ± MMR)/(PV ± (IM + Extra/(1 + fee) + ded))``."""
    assert TWO_TIERS.maintenance_amount[1] == pytest.approx(0.05)
    qty, ep, extra, fee = 600_000.0, 50_000.0, 0.3, 0.0006
    got = bybit_inverse_isolated_liquidation_price(
        [1, -1], qty, ep, 20, TWO_TIERS, extra_margin=extra, fee_rate=fee
    )
    margin = 0.6 + extra / 1.0006 + 0.05
    by_hand = [qty * 1.01 / (12 + margin), qty * 0.99 / (12 - margin)]
    np.testing.assert_allclose(got, by_hand, rtol=1e-12)
    assert 40_000 < got[0] < ep < got[1] < 60_000
    # V9's position (PV 1.2) is in the first tier of the same table: V9's value
    first = bybit_inverse_isolated_liquidation_price(1, 60_000, 50_000, 10, TWO_TIERS)
    assert rel(scalar(first), 60_000 * 1.005 / (1.2 + 0.12)) < 1e-12


def test_bybit_inverse_legacy_fee_is_the_cost_of_closing_at_the_bankruptcy_price() -> None:
    """The legacy formula with ``fee_rate`` [Y3]: the position margin less the taker fee to
    close at the bankruptcy price, built here from bybit_inverse_bankruptcy_price (V10 checks
    that one against Bybit's printed 5,718.57), then ``Qty/(PV ± (M − MM))`` with ``MM = PV·MMR
    − deduction`` of the second tier."""
    qty, ep, fee = 600_000.0, 50_000.0, 0.00075
    pv, margin = 12.0, 12.0 / 20 + 0.3
    for side in (1, -1):
        bankruptcy = scalar(bybit_inverse_bankruptcy_price(side, qty, ep, margin, fee_rate=fee))
        close_fee = fee * qty / bankruptcy  # coin paid to close qty USD at that price
        mm = pv * 0.01 - 0.05
        by_hand = qty / (pv + side * (margin - close_fee - mm))
        got = bybit_inverse_isolated_liquidation_price(
            side, qty, ep, 20, TWO_TIERS, extra_margin=0.3, fee_rate=fee, version="legacy"
        )
        assert rel(scalar(got), by_hand) < 1e-12, side
    # without a fee, the bankruptcy price is where the margin is gone: Qty/(PV ± margin)
    plain = bybit_inverse_bankruptcy_price([1, -1], qty, ep, margin)
    np.testing.assert_allclose(plain, [qty / (pv + margin), qty / (pv - margin)], rtol=1e-15)


def test_bybit_linear_isolated_takes_the_tier_of_the_entry_value() -> None:
    """[Y1] for a position past the first tier: 1 BTC @ 20 is worth 20 (tier 2: MMR 1 %,
    deduction 0.05), 10x: IM 2, MM 0.2 − 0.05 = 0.15, ``LP = EP ∓ (IM − MM)/Size``."""
    got = bybit_linear_isolated_liquidation_price([1, -1], 20.0, 1.0, 10, TWO_TIERS)
    np.testing.assert_allclose(got, [20 - (2 - 0.15), 20 + (2 - 0.15)], rtol=1e-15)
    # in the first tier (worth 5: MMR 0.5 %, no deduction)
    first = bybit_linear_isolated_liquidation_price(1, 5.0, 1.0, 10, TWO_TIERS)
    assert rel(scalar(first), 5 - (0.5 - 0.025)) < 1e-15


def test_inverse_isolated_margin_counts_the_contract_size() -> None:
    """Binance COIN-M style isolated: Q contracts of CS USD, margin ``Q·CS/(EP·lev)`` coin, then
    §1 inverse ``LP = Q·CS·(m + s)/(margin + D + s·Q·CS/EP)`` of the tier its root lies in."""
    q, ep, lev = 100.0, 40_000.0, 5.0
    for cs in (100.0, 10.0):
        value = q * cs
        margin = value / (ep * lev)
        for side in (1, -1):
            got = isolated_liquidation_price(
                side, ep, lev, q, TWO_TIERS, inverse=True, contract_size=cs
            )
            # each tier's root by hand; the coin notional at the root picks the tier
            tiers = ((0.005, 0.0, 0.0, 10.0), (0.01, 0.05, 10.0, math.inf))  # MMR, D, floor, cap
            roots = [value * (m + side) / (margin + d + side * value / ep) for m, d, _, _ in tiers]
            consistent = [
                x for x, (*_, lo, hi) in zip(roots, tiers, strict=True) if lo <= value / x < hi
            ]
            assert len(consistent) == 1
            assert rel(scalar(got), consistent[0]) < 1e-12, (cs, side)
    # the default contract size is one unit of quote currency
    default = isolated_liquidation_price(1, ep, lev, q, TWO_TIERS, inverse=True)
    one = isolated_liquidation_price(1, ep, lev, q, TWO_TIERS, inverse=True, contract_size=1.0)
    assert scalar(default) == scalar(one)


def test_roots_exactly_on_a_tier_boundary_are_found() -> None:
    """Positions liquidated exactly where the notional crosses Table B's 50,000 bracket: both
    tiers' closed forms give the boundary, up to rounding that can put each just outside its
    own tier (found among 200,000 such positions; the bounds are widened by BOUNDARY_RTOL)."""
    cases = [  # quantity, price now, equity
        (8.522002801303124, 6793.595193239215, 8095.037267704029),
        (8.420739439505944, 8599.80608265245, 22616.726252294597),
        (2.0416396821136296, 28567.686527780108, 8524.922441298797),
    ]
    q, p0, e0 = (np.array(c) for c in zip(*cases, strict=True))
    lp = linear_liquidation_price(1, q, p0, e0, TABLE_B)
    np.testing.assert_allclose(q * lp, 50_000, rtol=1e-12)


def test_prices_at_or_below_zero_and_infinite_ones_are_no_liquidation() -> None:
    # 1x long: bankrupt only at 0, which no mark price reaches
    assert np.isnan(scalar(bybit_linear_bankruptcy_price(1, 100.0, 1.0)))
    # MMR + fee = 100 % for a long: the OKX approximation divides by zero
    assert np.isnan(
        scalar(
            okx_linear_isolated_liquidation_price(
                1, 100.0, 1.0, 10.0, 0.9995, taker_fee_rate=0.0005
            )
        )
    )


# --- OKX (approximation) --------------------------------------------------------------------


def test_okx_linear_isolated_approximation() -> None:
    # fee 0: identical to §1 with no deduction
    for side in (1, -1):
        okx = okx_linear_isolated_liquidation_price(side, 3_000, 2.0, 600, 0.01)
        exact = linear_liquidation_price(side, 2.0, 3_000, 600, MarginTiers.single(0.01))
        assert rel(scalar(okx), scalar(exact)) < 1e-12
    with_fee = okx_linear_isolated_liquidation_price(
        [1, -1], 3_000, 2.0, 600, 0.01, taker_fee_rate=0.0005
    )
    np.testing.assert_allclose(
        with_fee, [(3_000 - 300) / (1 - 0.0105), (3_000 + 300) / (1 + 0.0105)], rtol=1e-12
    )


# --- V11: Hyperliquid -----------------------------------------------------------------------

V11 = [  # coin, side, size, entry, margin, max leverage at recording, exchange liquidationPrice
    ("ETH", 1, 0.0199, 2459.5, 24.454895, 50, 1243.0411908),
    ("BTC", -1, 0.00069, 68595.0, 23.64871, 50, 101849.99354283),
    ("SOL", 1, 0.6, 173.06, 20.735658, 20, 142.05186667),
    ("DOGE", -1, 351.0, 0.14333, 25.136807, 20, 0.20970228),
    ("BTC", 1, 0.0015, 66930.0, 20.043862, 50, 54108.51043771),
    ("XYZ-AAPL", 1, 0.5, 250.0, 25.0, 10, 210.5263157894737),
]


def test_v11_hyperliquid_returned_liquidation_prices() -> None:
    _, side, size, entry, margin, max_lev, expected = (np.array(c) for c in zip(*V11, strict=True))
    lp = hyperliquid_liquidation_price(side.astype(np.int8), size, entry, margin, max_lev)
    np.testing.assert_allclose(lp, expected.astype(float), rtol=1e-7)
    # equal to §1 with m = 1/(2·maxLev), D = 0, equity = margin
    for row, value in zip(V11, lp, strict=True):
        _, s, q, ep, m, lev, _ = row
        exact = linear_liquidation_price(s, q, ep, m, MarginTiers.single(1 / (2 * lev)))
        assert rel(scalar(exact), float(value)) < 1e-12


# --- the two real Binance positions with Binance-computed liquidationPrice -----------------


@pytest.fixture(scope="module")
def binance_extract(shared_data: Path) -> dict[str, Any]:
    with (shared_data / "ccxt_fixtures" / "binance_response_extract.json").open() as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@pytest.fixture(scope="module")
def coin_m_tiers(binance_extract: dict[str, Any]) -> MarginTiers:
    """ccxt's BTC/USD:BTC bracket option ([coin floor, MMR] pairs) as a table, cum by §1."""
    pairs = binance_extract["options"]["leverageBrackets"]["BTC/USD:BTC"]
    floors = [float(f) for f, _ in pairs]
    return MarginTiers.from_rates(floors, [*floors[1:], math.inf], [float(r) for _, r in pairs])


def positions(extract: dict[str, Any], description: str) -> tuple[dict[str, Any], dict[str, Any]]:
    case = next(c for c in extract["methods"]["fetchPositions"] if c["description"] == description)
    return case["httpResponse"][0], case["parsedResponse_subset"][0]


def test_real_usdm_cross_long(binance_extract: dict[str, Any]) -> None:
    """0.009 BTC cross long @ 67,445.9; Binance says LP 64,846.98753790.

    How Binance got it: ``positionRisk`` does not return the cross wallet balance, but the
    position's own numbers pin everything else. Its maintMargin is notional·0.4 % − 0, i.e.
    Table B bracket 1 at the mark; at LP the notional (≈ 584 USDT) is still bracket 1, so cum = 0,
    and LP = (Q·EP − E0)/(Q·(1 − 0.004)) with E0 = crossWalletBalance − TMM1 + UPNL1 (§2.1).
    ccxt's ``collateral`` (also in the fixture) is exactly that E0, back-solved by ccxt from
    the LP with the bracket-1 rate; feeding it to our solver returns Binance's LP. A second
    response a mark 79.5 USDT higher shows the LP does not follow the position's own mark.
    """
    raw, parsed = positions(binance_extract, "Fetch linear positions without symbols")
    qty, entry = float(raw["positionAmt"]), float(raw["entryPrice"])
    mark, binance_lp = float(raw["markPrice"]), float(raw["liquidationPrice"])
    assert qty > 0 and raw["positionSide"] == "BOTH" and parsed["marginMode"] == "cross"
    # Binance's maintenance margin at the mark = our Table B bracket at the mark notional
    notional = float(raw["notional"])
    assert rel(notional, qty * mark) < 1e-8
    assert abs(scalar(TABLE_B.maintenance_margin(notional)) - float(raw["maintMargin"])) < 1e-8
    assert float(raw["unRealizedProfit"]) == pytest.approx(qty * (mark - entry), abs=1e-8)

    equity = float(parsed["collateral"])  # cross equity at LP-formula reference (8 dp)
    assert equity > float(raw["initialMargin"])  # a cross account holds more than the IM
    lp = scalar(linear_liquidation_price(1, qty, entry, equity, TABLE_B))
    assert rel(lp, binance_lp) < 1e-9
    assert TABLE_B.tier_index(qty * lp) == 0
    # at that price equity = MM, by Binance's own MM rule
    assert (equity + qty * (lp - entry)) == pytest.approx(qty * lp * 0.004, rel=1e-9)

    # the later response (mark 67,582.2): same equity predicts its LP to within 0.2 USDT; the
    # account's other equity moved by ~0.0018 USDT in between (ccxt's collateral differs by that)
    raw2, parsed2 = positions(binance_extract, "Fetch linear positions with symbols")
    lp2 = scalar(linear_liquidation_price(1, qty, entry, equity, TABLE_B))
    assert abs(lp2 - float(raw2["liquidationPrice"])) < 0.25
    moved = float(parsed2["collateral"]) - equity
    assert abs(moved) < 0.002
    lp2_exact = scalar(linear_liquidation_price(1, qty, entry, equity + moved, TABLE_B))
    assert rel(lp2_exact, float(raw2["liquidationPrice"])) < 1e-9


def test_real_coin_m_cross_short(
    binance_extract: dict[str, Any], coin_m_tiers: MarginTiers
) -> None:
    """3 contracts BTCUSD_PERP cross short @ 68,911.00000037; Binance says LP 72,491.16879818.

    COIN-M: LP = Q·CS·(m − 1)/(E0 + cum − Q·CS/EP) with CS = 100 USD, coin notional ≈ 0.0044 BTC
    → bracket 1 (0.4 %, cum 0). E0 (cross equity, coin) is not in the raw response; ccxt's
    ``collateral`` 0.00023156 BTC is it, back-solved and rounded to 8 dp, which limits the match
    to ±0.1 USD (dLP/dE0 ≈ 1.8e7 USD per BTC here). Binance did *not* use the isolated margin at
    the position's 20x (that gives ≈ 72,249) nor the shortcut EP·(1 + 1/L − MMR) (≈ 72,081).
    """
    raw, parsed = positions(binance_extract, "inverse positions")
    contracts = abs(float(raw["positionAmt"]))
    side = -1 if float(raw["positionAmt"]) < 0 else 1
    entry, mark = float(raw["entryPrice"]), float(raw["markPrice"])
    size = float(parsed["contractSize"])
    binance_lp = float(raw["liquidationPrice"])
    assert side == -1 and size == 100 and raw["marginType"] == "cross"
    assert rel(abs(float(raw["notionalValue"])), contracts * size / mark) < 1e-6

    equity = float(parsed["collateral"])
    lp = scalar(
        inverse_liquidation_price(side, contracts, entry, equity, coin_m_tiers, contract_size=size)
    )
    assert abs(lp - binance_lp) < 0.1
    assert coin_m_tiers.tier_index(contracts * size / lp) == 0

    leverage = float(raw["leverage"])
    isolated = scalar(
        isolated_liquidation_price(
            side, entry, leverage, contracts, coin_m_tiers, inverse=True, contract_size=size
        )
    )
    assert abs(isolated - binance_lp) > 200
    assert abs(entry * (1 + 1 / leverage - 0.004) - binance_lp) > 400


# --- properties: the root is exact, the tier is consistent, brute force agrees -------------

sides = st.sampled_from([1, -1])


@settings(max_examples=300, deadline=None)
@given(
    side=sides,
    notional=st.floats(10, 2e9),
    entry=st.floats(0.01, 200_000),
    leverage=st.floats(1.05, 125),
)
def test_linear_root_is_exact_and_its_tier_contains_it(
    side: int, notional: float, entry: float, leverage: float
) -> None:
    qty = notional / entry
    equity = notional / leverage
    lp = scalar(linear_liquidation_price(side, qty, entry, equity, TABLE_B))
    assert math.isfinite(lp) and lp > 0
    k = int(TABLE_B.tier_index(qty * lp))
    m, d = TABLE_B.maintenance_margin_rate[k], TABLE_B.maintenance_amount[k]
    assert TABLE_B.floor[k] * (1 - 1e-12) <= qty * lp <= TABLE_B.cap[k] * (1 + 1e-12) or k == 11
    # LP is that tier's closed form, and equity equals MM there
    assert rel(lp, (side * qty * entry - equity - d) / (qty * (side - m))) < 1e-9
    equity_at_lp = equity + side * qty * (lp - entry)
    mm_at_lp = qty * lp * m - d
    assert math.isclose(equity_at_lp, mm_at_lp, rel_tol=1e-9, abs_tol=1e-12 * notional)


@settings(max_examples=300, deadline=None)
@given(
    side=sides,
    coin_notional=st.floats(1e-4, 3e3),
    entry=st.floats(100, 200_000),
    leverage=st.floats(1.05, 125),
)
def test_inverse_root_is_exact_and_its_tier_contains_it(
    side: int, coin_notional: float, entry: float, leverage: float, coin_m_tiers: MarginTiers
) -> None:
    size = 100.0
    contracts = coin_notional * entry / size
    equity = coin_notional / leverage
    lp = scalar(
        inverse_liquidation_price(side, contracts, entry, equity, coin_m_tiers, contract_size=size)
    )
    assert math.isfinite(lp) and lp > 0
    at_lp = contracts * size / lp
    mm = scalar(coin_m_tiers.maintenance_margin(at_lp))
    equity_at_lp = equity + side * contracts * size * (1 / entry - 1 / lp)
    assert math.isclose(equity_at_lp, mm, rel_tol=1e-9, abs_tol=1e-12 * coin_notional)


def brute_force_linear(
    side: np.ndarray, qty: np.ndarray, entry: np.ndarray, equity: np.ndarray, tiers: MarginTiers
) -> np.ndarray:
    """Bisection on price of equity − tiered MM (which is monotone for one position)."""

    def gap(price: np.ndarray) -> np.ndarray:
        return equity + side * qty * (price - entry) - tiers.maintenance_margin(qty * price)

    lo = np.full_like(entry, 1e-12)
    hi = entry * 1e6
    # a long is liquidated where gap turns from negative (below) to positive; a short the reverse
    exists = np.where(side > 0, gap(lo) < 0, gap(hi) < 0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = (gap(mid) < 0) == (side > 0)  # root lies above mid
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(exists, 0.5 * (lo + hi), np.nan)


def test_closed_form_matches_bisection_linear() -> None:
    rng = np.random.default_rng(11)
    n = 3_000
    side = rng.choice(np.array([-1, 1], dtype=np.int8), n)
    entry = np.exp(rng.uniform(np.log(0.05), np.log(150_000), n))
    notional = np.exp(rng.uniform(np.log(5), np.log(2e9), n))
    equity = notional / np.exp(rng.uniform(np.log(0.5), np.log(150), n))  # incl. < 1x: no LP
    qty = notional / entry
    closed = linear_liquidation_price(side, qty, entry, equity, TABLE_B)
    brute = brute_force_linear(side.astype(float), qty, entry, equity, TABLE_B)
    np.testing.assert_array_equal(np.isnan(closed), np.isnan(brute))
    assert np.isnan(closed).sum() > 50  # the no-liquidation case was exercised
    np.testing.assert_allclose(closed, brute, rtol=1e-9)


def test_closed_form_matches_bisection_inverse(coin_m_tiers: MarginTiers) -> None:
    rng = np.random.default_rng(12)
    n = 2_000
    side = rng.choice(np.array([-1, 1]), n).astype(float)
    entry = rng.uniform(1_000, 150_000, n)
    contracts = np.exp(rng.uniform(0, np.log(2e6), n))
    coin_notional = contracts * 100 / entry
    equity = coin_notional / np.exp(rng.uniform(np.log(0.7), np.log(120), n))
    closed = inverse_liquidation_price(
        side, contracts, entry, equity, coin_m_tiers, contract_size=100
    )

    def gap(price: np.ndarray) -> np.ndarray:
        pnl = side * contracts * 100 * (1 / entry - 1 / price)
        return equity + pnl - coin_m_tiers.maintenance_margin(contracts * 100 / price)

    lo, hi = entry * 1e-4, entry * 1e4
    exists = np.where(side > 0, gap(lo) < 0, gap(hi) < 0)
    for _ in range(200):
        mid = np.sqrt(lo * hi)
        above = (gap(mid) < 0) == (side > 0)
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    brute = np.where(exists, np.sqrt(lo * hi), np.nan)
    np.testing.assert_array_equal(np.isnan(closed), np.isnan(brute))
    np.testing.assert_allclose(closed, brute, rtol=1e-9)


def test_hedge_matches_a_price_scan() -> None:
    rng = np.random.default_rng(13)
    n = 300
    long_q = np.exp(rng.uniform(np.log(0.01), np.log(5_000), n))
    short_q = long_q * rng.uniform(0, 2, n)
    long_ep = rng.uniform(20_000, 100_000, n)
    short_ep = long_ep * rng.uniform(0.9, 1.1, n)
    wallet = (long_q * long_ep + short_q * short_ep) / rng.uniform(2, 100, n)
    closed = linear_hedge_liquidation_price(long_q, long_ep, short_q, short_ep, wallet, TABLE_B)

    prices = np.geomspace(1e-2, 1e11, 40_001)
    for i in range(n):
        gap = (
            wallet[i]
            + long_q[i] * (prices - long_ep[i])
            - short_q[i] * (prices - short_ep[i])
            - TABLE_B.maintenance_margin(long_q[i] * prices)
            - TABLE_B.maintenance_margin(short_q[i] * prices)
        )
        up = np.flatnonzero((gap[:-1] < 0) & (gap[1:] >= 0))  # liquidated by a fall below
        down = np.flatnonzero((gap[:-1] >= 0) & (gap[1:] < 0))  # liquidated by a rise above
        first, second = (up, down) if long_q[i] > short_q[i] else (down, up)
        found = first if first.size else second
        assert found.size <= 1
        if found.size == 0:
            assert np.isnan(closed[i])
            continue
        j = int(found[0])
        assert prices[j] <= closed[i] <= prices[j + 1], i


# --- vectorization --------------------------------------------------------------------------


def test_vectorized_equals_scalar_calls(coin_m_tiers: MarginTiers) -> None:
    rng = np.random.default_rng(21)
    n = 200
    side = rng.choice(np.array([-1, 1], dtype=np.int8), n)
    entry = rng.uniform(100, 120_000, n)
    qty = np.exp(rng.uniform(np.log(1e-3), np.log(1e4), n))
    lev = rng.uniform(1.1, 125, n)
    equity = qty * entry / lev
    cases = [
        (
            linear_liquidation_price(side, qty, entry, equity, TABLE_B),
            lambda i: linear_liquidation_price(int(side[i]), qty[i], entry[i], equity[i], TABLE_B),
        ),
        (
            isolated_liquidation_price(side, entry, lev, qty, TABLE_B),
            lambda i: isolated_liquidation_price(int(side[i]), entry[i], lev[i], qty[i], TABLE_B),
        ),
        (
            isolated_liquidation_price(
                side, entry, lev, qty, coin_m_tiers, inverse=True, contract_size=100
            ),
            lambda i: isolated_liquidation_price(
                int(side[i]),
                entry[i],
                lev[i],
                qty[i],
                coin_m_tiers,
                inverse=True,
                contract_size=100,
            ),
        ),
        (
            linear_hedge_liquidation_price(qty, entry, qty[::-1], entry[::-1], equity, TABLE_B),
            lambda i: linear_hedge_liquidation_price(
                qty[i], entry[i], qty[::-1][i], entry[::-1][i], equity[i], TABLE_B
            ),
        ),
    ]
    for vector, one in cases:
        assert vector.shape == (n,)
        singles = np.array([scalar(one(i)) for i in range(n)])
        np.testing.assert_array_equal(vector, singles)


def test_broadcasting_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = np.array([[50_000.0], [60_000.0], [70_000.0]])
    lev = np.array([2.0, 10, 50, 100, 125])
    grid = isolated_liquidation_price(np.int8(1), entry, lev, 1.0, TABLE_B)
    assert grid.shape == (3, 5)
    for i, j in np.ndindex(grid.shape):
        assert grid[i, j] == scalar(
            isolated_liquidation_price(1, entry[i, 0], lev[j], 1.0, TABLE_B)
        )
    # row blocks do not change results
    import engine.liquidation as liquidation

    monkeypatch.setattr(liquidation, "BLOCK_ROWS", 4)
    np.testing.assert_array_equal(
        isolated_liquidation_price(np.int8(1), entry, lev, 1.0, TABLE_B), grid
    )


def test_no_liquidation_and_bad_input() -> None:
    # 1x long cannot be liquidated (LP ≤ 0); a short always can
    lp = isolated_liquidation_price([1, -1], 100.0, 1.0, 1.0, TABLE_B)
    assert np.isnan(lp[0]) and lp[1] > 100
    assert np.isnan(scalar(linear_liquidation_price(1, 0.0, 100.0, 10.0, TABLE_B)))
    with pytest.raises(ValueError, match=r"^side must be \+1 \(long\) or -1 \(short\)$"):
        linear_liquidation_price(0, 1.0, 100.0, 10.0, TABLE_B)
    with pytest.raises(ValueError, match="version"):
        bybit_inverse_isolated_liquidation_price(
            1,
            1.0,
            1.0,
            1.0,
            TABLE_B,
            version="old",  # type: ignore[arg-type]
        )


def test_one_way_and_hedge_positions_become_a_long_and_a_short_leg() -> None:
    """Binance's BOTH / LONG / SHORT terms (engine.liquidation._legs), each case by hand."""
    from engine.liquidation import _legs

    def legs(side: int, both: float, long_: float = 0.0, short: float = 0.0) -> list[float]:
        return [float(x) for x in _legs(side, both, 100.0, long_, 90.0, short, 110.0)]

    assert legs(1, 2.0) == [2.0, 100.0, 0.0, 100.0]  # one-way long: the short leg empty
    assert legs(-1, 3.0) == [0.0, 100.0, 3.0, 100.0]  # one-way short: the long leg empty
    assert legs(1, 0.0, long_=1.0, short=2.0) == [1.0, 90.0, 2.0, 110.0]  # hedge: both legs
    assert legs(-1, 0.0, short=2.0) == [0.0, 100.0, 2.0, 110.0]  # hedge, short leg only
    for mixed in ({"long_": 1.0}, {"short": 1.0}):
        with pytest.raises(
            ValueError,
            match=r"^a contract is either one-way \(BOTH\) or hedge \(LONG/SHORT\), not both$",
        ):
            legs(1, 2.0, **mixed)
    long_q, _, short_q, _ = _legs([1, -1, 1], [2.0, 3.0, 0.0], 100.0, [0, 0, 4], 90.0, 0.0, 0)
    assert long_q.tolist() == [2.0, 0.0, 4.0] and short_q.tolist() == [0.0, 3.0, 0.0]
