"""Fixtures of the engine tests: the shipped Binance tiers and the real Binance 5m month."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from engine.model import Bars
from engine.tiers import MarginTiers, load_shipped_binance_tiers


@pytest.fixture(scope="module")
def tiers() -> MarginTiers:
    return load_shipped_binance_tiers("BTC/USDT:USDT")[0]


@pytest.fixture(scope="module")
def binance_5m(shared_data: Path) -> Bars:
    path = shared_data / "binance" / "BTCUSDT_perp_5m_klines_oi_funding.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    return Bars(
        np.array([int(r["timestamp"]) for r in rows], dtype=np.int64),
        col("price_open"),
        col("price_high"),
        col("price_low"),
        col("price_close"),
        col("open_interest_usd"),
    )
