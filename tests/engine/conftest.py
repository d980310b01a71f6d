"""Fixtures of the engine tests: the shipped Binance tiers and the real Binance 5m month."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model import Bars
from engine.tiers import MarginTiers, load_shipped_binance_tiers


@pytest.fixture(scope="module")
def tiers() -> MarginTiers:
    return load_shipped_binance_tiers("BTC/USDT:USDT")[0]


@pytest.fixture(scope="session")
def binance_5m(binance_rows: list[dict[str, str]]) -> Bars:
    """The real month as engine bars, built once per run; read-only, so that no test can
    change what the others are given."""
    rows = binance_rows

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    bars = Bars(
        np.array([int(r["timestamp"]) for r in rows], dtype=np.int64),
        col("price_open"),
        col("price_high"),
        col("price_low"),
        col("price_close"),
        col("open_interest_usd"),
    )
    for array in (bars.timestamp, bars.open, bars.high, bars.low, bars.close):
        array.flags.writeable = False
    bars.open_interest_usd.flags.writeable = False
    return bars
