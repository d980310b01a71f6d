"""Tiered maintenance margin: ``MM = notional · rate_k − amount_k`` on the tier the notional is in.

Every venue uses this form (liquidation-math.md §1). The maintenance amount (Binance ``cum``,
Bybit ``mmDeduction``, Hyperliquid ``maintenance_deduction``) keeps MM continuous across tier
boundaries: ``amount_k = amount_{k−1} + floor_k · (rate_k − rate_{k−1})``, ``amount_1 = 0``.

Notional is in quote currency for linear contracts and in coin for inverse ones; the table does
not care which, the caller must be consistent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

SHIPPED_BINANCE_TIERS = (
    Path(__file__).resolve().parent / "data" / "binance_leverage_tiers_BTC_ETH_2024-10-24.json"
)


def _readonly(values: npt.ArrayLike) -> FloatArray:
    array = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    array.setflags(write=False)
    return array


def maintenance_amounts(floors: npt.ArrayLike, rates: npt.ArrayLike) -> FloatArray:
    """The §1 recursion: the deduction that makes MM continuous at every tier floor.

    Summed in decimal on the shortest repr of each float: tables are published in decimal, so
    e.g. Binance's ``cum`` 950 comes out as 950.0, not 949.9999999999998.
    """
    floor = np.asarray(floors, dtype=np.float64).reshape(-1)
    rate = np.asarray(rates, dtype=np.float64).reshape(-1)
    amounts = np.zeros(rate.size, dtype=np.float64)
    total = Decimal(0)
    for k in range(1, rate.size):
        step = Decimal(repr(float(rate[k]))) - Decimal(repr(float(rate[k - 1])))
        total += Decimal(repr(float(floor[k]))) * step
        amounts[k] = float(total)
    return amounts


@dataclass(frozen=True, eq=False)
class MarginTiers:
    """A maintenance-margin table, tiers ascending by notional (read-only float64 arrays)."""

    floor: FloatArray
    cap: FloatArray
    maintenance_margin_rate: FloatArray
    maintenance_amount: FloatArray
    max_leverage: FloatArray

    def __post_init__(self) -> None:
        for name in (
            "floor",
            "cap",
            "maintenance_margin_rate",
            "maintenance_amount",
            "max_leverage",
        ):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        size = self.floor.size
        if size == 0:
            raise ValueError("a tier table needs at least one tier")
        for name in ("cap", "maintenance_margin_rate", "maintenance_amount", "max_leverage"):
            if getattr(self, name).size != size:
                raise ValueError(
                    f"tier column {name!r} has {getattr(self, name).size} values, floor has {size}"
                )
        if not np.all(np.isfinite(self.floor)) or np.any(self.floor < 0):
            raise ValueError("tier floors must be finite and non-negative")
        if np.any(np.diff(self.floor) <= 0):
            raise ValueError("tier floors must be strictly ascending")
        if np.any(self.cap <= self.floor):
            raise ValueError("every tier cap must exceed its floor")
        rate = self.maintenance_margin_rate
        if not np.all(np.isfinite(rate)) or np.any(rate < 0) or np.any(rate >= 1):
            raise ValueError("maintenance margin rates must be fractions in [0, 1)")
        if not np.all(np.isfinite(self.maintenance_amount)):
            raise ValueError("maintenance amounts must be finite")

    def __len__(self) -> int:
        return int(self.floor.size)

    @classmethod
    def from_rates(
        cls,
        floors: npt.ArrayLike,
        caps: npt.ArrayLike,
        rates: npt.ArrayLike,
        max_leverage: npt.ArrayLike | None = None,
    ) -> MarginTiers:
        """A table from floors, caps and rates; maintenance amounts by the §1 recursion.

        ``max_leverage`` may be omitted (NaN) when only maintenance matters.
        """
        floor = np.asarray(floors, dtype=np.float64).reshape(-1)
        rate = np.asarray(rates, dtype=np.float64).reshape(-1)
        if rate.size != floor.size:
            raise ValueError(f"{rate.size} rates for {floor.size} floors")
        leverage = (
            np.full(floor.size, np.nan)
            if max_leverage is None
            else np.asarray(max_leverage, dtype=np.float64)
        )
        return cls(
            floor=floor,
            cap=np.asarray(caps, dtype=np.float64),
            maintenance_margin_rate=rate,
            maintenance_amount=maintenance_amounts(floor, rate),
            max_leverage=leverage,
        )

    @classmethod
    def from_ccxt(cls, leverage_tiers: Sequence[Mapping[str, Any]]) -> MarginTiers:
        """A table from ccxt ``LeverageTier`` dicts (any order).

        ccxt has no deduction field: it is read from ``info['cum']`` (Binance) or
        ``info['mmDeduction']`` (Bybit) when every tier has it, else derived by the recursion.
        """
        if not leverage_tiers:
            raise ValueError("no leverage tiers")
        rows = sorted(leverage_tiers, key=lambda t: float(t["minNotional"]))
        floor = np.array([float(t["minNotional"]) for t in rows])
        cap = np.array([float(t["maxNotional"]) for t in rows])
        rate = np.array([float(t["maintenanceMarginRate"]) for t in rows])
        leverage = np.array(
            [math.nan if t.get("maxLeverage") is None else float(t["maxLeverage"]) for t in rows]
        )
        published = [_published_amount(t.get("info")) for t in rows]
        amount = (
            np.array(published, dtype=np.float64)
            if all(a is not None for a in published)
            else maintenance_amounts(floor, rate)
        )
        return cls(
            floor=floor,
            cap=cap,
            maintenance_margin_rate=rate,
            maintenance_amount=amount,
            max_leverage=leverage,
        )

    @classmethod
    def single(
        cls, rate: float, *, maintenance_amount: float = 0.0, max_leverage: float = math.nan
    ) -> MarginTiers:
        """One tier over every notional, e.g. Hyperliquid ``m = 1/(2·maxLeverage)``, D = 0.

        A non-zero ``maintenance_amount`` stands for a published (rate, amount) pair used as is.
        """
        return cls(
            floor=np.array([0.0]),
            cap=np.array([np.inf]),
            maintenance_margin_rate=np.array([rate]),
            maintenance_amount=np.array([maintenance_amount]),
            max_leverage=np.array([max_leverage]),
        )

    @classmethod
    def hyperliquid(cls, floors: npt.ArrayLike, max_leverage: npt.ArrayLike) -> MarginTiers:
        """Hyperliquid margin tiers: rate ``1/(2·maxLeverage)``, deduction by the recursion."""
        floor = np.asarray(floors, dtype=np.float64).reshape(-1)
        leverage = np.asarray(max_leverage, dtype=np.float64).reshape(-1)
        cap = np.append(floor[1:], np.inf)
        return cls.from_rates(floor, cap, 1.0 / (2.0 * leverage), leverage)

    def tier_index(self, notional: npt.ArrayLike) -> IntArray:
        """Index of the tier each notional falls in (floor inclusive; clipped to the table)."""
        values = np.asarray(notional, dtype=np.float64)
        index = np.searchsorted(self.floor, values, side="right") - 1
        return np.clip(index, 0, len(self) - 1).astype(np.intp)

    def maintenance_margin(self, notional: npt.ArrayLike) -> FloatArray:
        """``notional · rate − amount`` on the tier the notional is in."""
        values = np.asarray(notional, dtype=np.float64)
        k = self.tier_index(values)
        return np.asarray(
            values * self.maintenance_margin_rate[k] - self.maintenance_amount[k], dtype=np.float64
        )


def _published_amount(info: object) -> float | None:
    if not isinstance(info, Mapping):
        return None
    for key in ("cum", "mmDeduction"):
        value = info.get(key)
        if value not in (None, ""):
            return float(value)
    return None


@lru_cache(maxsize=1)
def _shipped_binance_file() -> tuple[dict[str, list[dict[str, Any]]], str, date]:
    with SHIPPED_BINANCE_TIERS.open() as handle:
        data = json.load(handle)
    source = data["_source"]
    changed = datetime.fromisoformat(str(source["file_last_changed_commit"]).split()[-1]).date()
    label = (
        f"shipped:{SHIPPED_BINANCE_TIERS.name}@{changed.isoformat()} "
        f"({source['repo']} {source['path']} @ {str(source['commit'])[:8]})"
    )
    return data["tiers"], label, changed


def shipped_binance_symbols() -> tuple[str, ...]:
    """Symbols (ccxt form) the shipped Binance bracket file covers."""
    return tuple(_shipped_binance_file()[0])


def load_shipped_binance_tiers(symbol: str) -> tuple[MarginTiers, str, date]:
    """(tiers, source label, date valid from) of the Binance brackets shipped in ``engine/data``.

    The no-API-key fallback: ``/fapi/v1/leverageBracket`` is a signed endpoint.
    """
    tables, label, valid_from = _shipped_binance_file()
    if symbol not in tables:
        raise KeyError(
            f"no shipped Binance tiers for {symbol!r}; shipped: {', '.join(sorted(tables))}"
        )
    return MarginTiers.from_ccxt(tables[symbol]), label, valid_from


def binance_btcusdt_tiers_2024() -> MarginTiers:
    """Binance BTCUSDT brackets as of 2024-10-24 (liquidation-math.md §2.3, Table B)."""
    return load_shipped_binance_tiers("BTC/USDT:USDT")[0]
