"""The model's free parameters, and the calibrated values shipped in ``engine/params.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.leverage_profile import FloatArray, LeverageProfile, liquidation_profile
from engine.tiers import MarginTiers

MODEL_NAME = "oi-delta-cohorts"
PARAMS_FILE = Path(__file__).parent.with_name("params.json")

MAX_SPAN_BELOW = 0.95

SideSplit = Literal["even", "taker", "candle"]
EntryPrice = Literal["close", "typical", "vwap", "range"]


@dataclass(frozen=True)
class ModelParams:
    """Free parameters of the model. ``default()`` returns the shipped calibrated values."""

    leverage_levels: int = 40
    leverage_min: float = 2.0
    leverage_max: float = 200.0
    leverage_alpha: float = 0.0
    leverage_far_share: float = 0.0
    leverage_far_min: float = 3.0
    leverage_far_levels: int = 8
    position_usd: float = 10_000.0
    side_split: SideSplit = "even"
    side_skew: float = 0.0
    entry_price: EntryPrice = "close"
    entry_points: int = 1
    half_life_hours: float = 0.0
    turnover_per_day: float = 0.5
    seed_fraction: float = 0.0
    prune_fraction: float = 1e-9
    span_mass: float = 0.995
    span_min_fraction: float = 0.30
    span_room: float = 0.25
    version: str = f"{MODEL_NAME}/uncalibrated"

    def __post_init__(self) -> None:
        if not 0.0 <= self.leverage_far_share < 1.0:
            raise ValueError("leverage_far_share must be within [0, 1)")
        if self.leverage_far_levels < 1 or self.leverage_far_min < 1.0:
            # (leverage_far_min >= leverage_min is allowed: the far component is then empty)
            raise ValueError("leverage_far_levels must be >= 1 and leverage_far_min >= 1")
        if self.side_split not in ("even", "taker", "candle"):
            raise ValueError(f"side_split must be even, taker or candle, not {self.side_split!r}")
        if self.entry_price not in ("close", "typical", "vwap", "range"):
            raise ValueError(
                f"entry_price must be close, typical, vwap or range, not {self.entry_price!r}"
            )
        if self.entry_points < 1 or (self.entry_price != "range" and self.entry_points != 1):
            raise ValueError("entry_points must be 1 unless entry_price is 'range'")
        if not 0.0 <= self.side_skew <= 1.0:
            raise ValueError("side_skew must be within [0, 1]")
        if self.half_life_hours < 0 or self.turnover_per_day < 0:
            raise ValueError("half_life_hours and turnover_per_day must be >= 0")
        if not 0.0 <= self.seed_fraction <= 1.0:
            raise ValueError("seed_fraction must be within [0, 1]")
        if not 0.0 < self.prune_fraction < 1.0:
            raise ValueError("prune_fraction must be within (0, 1)")
        if not 0.5 <= self.span_mass <= 1.0:
            raise ValueError("span_mass must be within [0.5, 1]")
        if not 0.0 < self.span_min_fraction < 1.0:
            raise ValueError("span_min_fraction must be within (0, 1)")
        if not 0.0 <= self.span_room < 1.0:
            raise ValueError("span_room must be within [0, 1)")
        if self.position_usd <= 0:
            raise ValueError("position_usd must be positive")

    def span(self, profile: LeverageProfile) -> tuple[float, float]:
        """How far a snapshot reaches below and above the price, as fractions of the price.

        Per side, ``d`` is the distance from entry to liquidation within which ``span_mass`` of
        the leverage profile's weight lies (the lowest leverages reach farthest). The span is
        ``d / (1 − span_room)``, so the outer ``span_room`` of it holds only positions opened at
        other prices that drifted there, and never less than ``span_min_fraction``. Below the
        price it stays under 100 % (at most 0.95).
        """
        below = _mass_distance(1.0 - profile.long_ratio, profile.weight, self.span_mass)
        above = _mass_distance(profile.short_ratio - 1.0, profile.weight, self.span_mass)
        grow = 1.0 / (1.0 - self.span_room)
        return (
            min(max(self.span_min_fraction, below * grow), MAX_SPAN_BELOW),
            max(self.span_min_fraction, above * grow),
        )

    @classmethod
    def default(cls) -> ModelParams:
        """The calibrated defaults shipped in ``engine/params.json`` (see engine/calibration)."""
        if PARAMS_FILE.exists():
            data = json.loads(PARAMS_FILE.read_text())
            return cls.from_dict(data["params"])
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model parameters: {', '.join(unknown)}")
        return cls(**data)

    def profile(
        self, tiers: MarginTiers, *, inverse: bool = False, reference_price: float = 1.0
    ) -> LeverageProfile:
        """The leverage levels and their LP/EP ratios under ``tiers`` (see leverage_profile)."""
        return liquidation_profile(
            self.leverage_levels,
            self.leverage_min,
            self.leverage_max,
            self.leverage_alpha,
            tiers,
            self.position_usd,
            inverse=inverse,
            reference_price=reference_price,
            far_share=self.leverage_far_share,
            far_min=self.leverage_far_min,
            far_levels=self.leverage_far_levels,
        )


def _mass_distance(distance: FloatArray, weight: FloatArray, mass: float) -> float:
    """The smallest distance within which ``mass`` of the weight lies."""
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(weight[order])
    at = int(np.searchsorted(cumulative, mass * cumulative[-1] * (1 - 1e-12)))
    return float(distance[order][min(at, len(order) - 1)])
