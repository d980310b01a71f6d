"""Pushed when price comes near a liquidation wall."""

from __future__ import annotations

from datetime import datetime

from api.types.base import described, field
from api.types.maps import Cluster


@described
class ClusterAlert:
    """Price came within withinPct of a wall of at least minUsd."""

    symbol: str = field("Unified symbol.")
    exchanges: list[str] = field("Exchanges included.")
    at: datetime = field("The instant of the snapshot that triggered the alert.")
    price: float = field("Price at that instant.")
    cluster: Cluster = field("The wall the price is near.")
