"""leverage bands on heatmap snapshots (model v3)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Model v3 splits every snapshot's levels by leverage band (``maps.bands``: ≤ 10x, 10–25x,
25–50x, 50–100x, > 100x, per side). ``band_usd`` holds them in one compact blob on the same
graded buckets as ``long_usd``/``short_usd`` (``maps.bands.encode_band_blob``: per band its
non-zero range as float32, with an int32 header of offsets and lengths). The totals columns are
unchanged, so unfiltered reads do not touch the blob. NULL: a snapshot without bands (every row
of model v1/v2), which reads as before. Downgrade drops the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("heatmap_snapshots", sa.Column("band_usd", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("heatmap_snapshots", "band_usd")
