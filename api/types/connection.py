"""A Relay-style connection over historical snapshots, with keyset (time) cursors."""

from __future__ import annotations

from api.types.base import described, field
from api.types.maps import LiquidationMap


@described
class PageInfo:
    """Where a page sits in the full list."""

    has_next_page: bool = field("True when more snapshots follow endCursor.")
    has_previous_page: bool = field("True when this page started after a cursor.")
    start_cursor: str | None = field("Cursor of the first edge.")
    end_cursor: str | None = field("Cursor of the last edge; pass it as after for the next page.")


@described
class SnapshotEdge:
    """One snapshot and its cursor."""

    cursor: str = field("Opaque keyset cursor (encodes the snapshot's time).")
    node: LiquidationMap = field("The liquidation map at that time.")


@described
class SnapshotConnection:
    """A page of historical snapshots, oldest first."""

    edges: list[SnapshotEdge] = field("The snapshots of this page.")
    page_info: PageInfo = field("Paging information.")
