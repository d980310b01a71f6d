"""What the maps domain refuses, and why: the caller's request, not a fault of the code.

Messages name the request's parameters the way clients write them (``priceMin``, ``bucketSize``
…): the API and the CLI pass them on as they are.
"""

from __future__ import annotations


class MapRequestError(ValueError):
    """A request for a map that cannot be answered as asked (bad input)."""


class TooLarge(MapRequestError):
    """The answer would exceed a size limit: ``limit`` names it, ``maximum`` is its value."""

    limit = "max_size"

    def __init__(self, message: str, maximum: float) -> None:
        super().__init__(message)
        self.maximum = maximum


class TooManyLevels(TooLarge):
    """More price levels than a map may have."""

    limit = "max_levels"


class TooManyColumns(TooLarge):
    """More time columns than a heatmap may have."""

    limit = "max_columns"


class TooManyCells(TooLarge):
    """More cells (rows × columns) than a heatmap may have."""

    limit = "max_cells"
