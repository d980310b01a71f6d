"""graded heatmap snapshots: the full span stored with near-price detail (model v2)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Model v2 snapshots span the whole book (at least ±30 % of the price) instead of ±10 %. They are
stored in graded buckets (``maps.compact``): every grid bucket within ``fine_buckets`` of the
price's bucket ``center_index``, wider ones farther out; ``compact_first`` is the stored index
of element 0 of ``long_usd``/``short_usd``. ``fine_buckets = 0`` is a plain grid vector, as every
row written before this migration (model v1) is, so old snapshots read as they did.
``bucket_origin`` stays the lower edge of the first grid bucket the vectors cover. Downgrade
drops the columns (graded rows then read wrongly: recompute them with the v1 model first).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name, kind in (
        ("fine_buckets", sa.SmallInteger()),
        ("center_index", sa.Integer()),
        ("compact_first", sa.Integer()),
    ):
        op.add_column(
            "heatmap_snapshots", sa.Column(name, kind, server_default="0", nullable=False)
        )


def downgrade() -> None:
    for name in ("compact_first", "center_index", "fine_buckets"):
        op.drop_column("heatmap_snapshots", name)
