"""The snapshot span (model v2): derived from the leverage profile, the whole book inside it.

Hand-calculated spans, the plain-Python reference's own walk over the levels, and the real
Binance month: each side's USD inside the span, the share in its outermost tenth, and where
max pain lands.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.leverage_profile import LeverageProfile
from engine.model import Bars, EngineState, ModelParams, simulate
from engine.reference import reference_span
from engine.tiers import MarginTiers
from maps.grid import BucketVector, PriceGrid
from maps.view import MapView

HOUR = 3_600_000


def hand_profile() -> LeverageProfile:
    # three levels: 50 % of the weight 1 % away, 30 % 10 % away, 20 % 40 % (longs) / 36 %
    # (shorts) away
    return LeverageProfile(
        leverage=np.array([100.0, 10.0, 2.5]),
        weight=np.array([0.5, 0.3, 0.2]),
        long_ratio=np.array([0.99, 0.90, 0.60]),
        short_ratio=np.array([1.01, 1.10, 1.36]),
    )


@pytest.mark.unit
def test_span_by_hand() -> None:
    profile = hand_profile()
    # 99.5 % of the weight needs all three levels: 0.40 / (1 − 0.25) = 0.5333 below,
    # 0.36 / 0.75 = 0.48 above
    below, above = ModelParams().span(profile)
    assert below == pytest.approx(0.40 / 0.75) and above == pytest.approx(0.36 / 0.75)
    # 80 % of the weight is within 10 %: 0.10 / 0.75 = 0.133, under the 30 % floor
    assert ModelParams(span_mass=0.8).span(profile) == (0.30, 0.30)
    # without room the span is the distance itself; a wider floor wins over it
    assert ModelParams(span_room=0.0).span(profile) == pytest.approx((0.40, 0.36))
    assert ModelParams(span_min_fraction=0.6).span(profile) == (0.6, 0.6)
    # below the price the span stays under 100 %
    far = LeverageProfile(
        np.array([1.1]), np.array([1.0]), np.array([0.1]), np.array([1.9])
    )  # 90 % away
    assert ModelParams().span(far) == (0.95, pytest.approx(0.9 / 0.75))


@pytest.mark.unit
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"leverage_min": 5.0, "leverage_alpha": 2.5},
        {"leverage_min": 2.0, "leverage_alpha": 2.5},
        {"leverage_min": 1.5, "leverage_alpha": 0.0, "span_mass": 0.9},
        {"leverage_min": 20.0, "leverage_max": 125.0, "span_room": 0.0},
    ],
)
def test_span_equals_the_reference_walk(tiers: MarginTiers, changes: dict[str, float]) -> None:
    params = ModelParams(**changes)  # type: ignore[arg-type]
    assert params.span(params.profile(tiers)) == pytest.approx(reference_span(params, tiers))


@pytest.mark.parametrize("leverage_min", [None, 2.0])
def test_the_real_book_fits_in_the_span_and_dies_out_before_its_edge(
    binance_5m: Bars, tiers: MarginTiers, leverage_min: float | None
) -> None:
    """On the real Binance month (shipped parameters, and with leverage down to 2x): at ten
    points of the run ≥ 99.5 % of each side's open USD lies inside the span; at every hourly
    snapshot less than 5 % of a side's USD in the span sits in its outermost tenth, and max
    pain is never in that outermost tenth."""
    params = ModelParams.default()
    if leverage_min is not None:
        params = ModelParams.from_dict({**params.to_dict(), "leverage_min": leverage_min})
    below, above = params.span(params.profile(tiers))
    assert below >= 0.30 and above >= 0.30
    grid = PriceGrid(bucket_size=50.0)
    bars = binance_5m
    hourly = (bars.timestamp + 300_000) % HOUR == 0
    state: EngineState | None = None
    worst_outside = 0.0
    outer_shares: list[float] = []
    pain_reach: list[float] = []
    for a in range(0, len(bars), len(bars) // 10 + 1):
        b = min(a + len(bars) // 10 + 1, len(bars))
        part = simulate(bars.slice(a, b), params, grid, tiers, state, hourly[a:b])
        state = part.state
        assert state is not None
        price = float(bars.close[b - 1])
        inside = state.levels(grid, price, (below, above))
        scale = state.quantum * np.exp(state.log_scale - state.ref_log_scale)
        for units, kept in ((state.long_units, inside.long), (state.short_units, inside.short)):
            total = float(units.sum()) * scale
            if a > 0:  # past the first tenth of the run the book is built up
                worst_outside = max(worst_outside, 1.0 - float(kept.sum()) / total)
        for snap in part.snapshots:
            if not (snap.long.sum() > 0 and snap.short.sum() > 0):
                assert snap.timestamp < bars.timestamp[0] + HOUR  # only before any position
                continue
            p = snap.price
            lows = grid.lower_price(snap.bucket_origin_index + np.arange(len(snap.long)))
            highs = lows + grid.bucket_size
            outer_long = snap.long[highs <= p * (1 - 0.9 * below)].sum() / snap.long.sum()
            outer_short = snap.short[lows >= p * (1 + 0.9 * above)].sum() / snap.short.sum()
            outer_shares += [float(outer_long), float(outer_short)]
            view = MapView(BucketVector(snap.bucket_origin_index, snap.long, snap.short), 50.0, p)
            for pain, span in ((view.max_pain_long(), below), (view.max_pain_short(), above)):
                assert pain is not None
                pain_reach.append(pain.distance_pct / 100 / span)
    assert worst_outside <= 0.005, worst_outside
    assert len(outer_shares) > 1000
    assert max(outer_shares) < 0.05, max(outer_shares)
    assert max(pain_reach) < 0.9, max(pain_reach)
