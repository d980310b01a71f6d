"""Declarative base, naming conventions and the column types shared by every table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations and `alembic check` agree across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every time column is timestamptz.
TimestampTZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: TimestampTZ}  # noqa: RUF012


# Tables partitioned by month on their time column. Child partitions are named
# <table>_yYYYYmMM plus <table>_default and are created by models.partitions, so Alembic's
# autogenerate must not see them as drift.
PARTITIONED_TABLES = ("candles", "open_interest", "heatmap_snapshots", "swept_levels")
