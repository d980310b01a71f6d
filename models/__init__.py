"""The storage room: the tables (SQLAlchemy models; Alembic migrations own the schema) and the one
storage layer jobs, API and CLI read and write through. Every statement is named in
``queries.sql``; the ``*_store`` modules run them (``market_store`` for the tables of ``market``,
``heatmap_store`` for those of ``heatmap`` …) and return small typed rows."""

from models.auth import ApiKey
from models.base import PARTITIONED_TABLES, Base
from models.heatmap import EngineStateRow, HeatmapSeries, HeatmapSnapshot, SweptLevel
from models.jobs import IngestWatermark, JobRun
from models.known_positions import (
    KnownLevelBin,
    KnownLiquidation,
    KnownPositionRow,
    KnownSnapshot,
    KnownSnapshotAccount,
    KnownSnapshotMarket,
)
from models.liquidations import LiquidationEvent, RealizedLiquidation
from models.market import Exchange, MarginTier, Market
from models.market_data import Candle, FundingRate, OpenInterest

metadata = Base.metadata

__all__ = [
    "PARTITIONED_TABLES",
    "ApiKey",
    "Base",
    "Candle",
    "EngineStateRow",
    "Exchange",
    "FundingRate",
    "HeatmapSeries",
    "HeatmapSnapshot",
    "IngestWatermark",
    "JobRun",
    "KnownLevelBin",
    "KnownLiquidation",
    "KnownPositionRow",
    "KnownSnapshot",
    "KnownSnapshotAccount",
    "KnownSnapshotMarket",
    "LiquidationEvent",
    "MarginTier",
    "Market",
    "OpenInterest",
    "RealizedLiquidation",
    "SweptLevel",
    "metadata",
]
