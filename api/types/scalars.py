"""Scalars and enums shared by several types."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import NewType

import dateutil.parser
import strawberry
from strawberry.types.scalar import ScalarDefinition

Matrix = NewType("Matrix", object)
JSON = NewType("JSON", object)

MATRIX_SCALAR = strawberry.scalar(
    name="Matrix",
    description=(
        "A rows × columns matrix of USD values. With encoding FLOAT32_BASE64 it is a base64 string "
        "of little-endian float32 values in row-major order (row 0 = lowest price, column 0 = "
        "earliest time; element [i, j] at index i·columns + j). With encoding JSON it is a list "
        "of rows, each a list of numbers."
    ),
    serialize=lambda value: value,
    parse_value=lambda value: value,
)

JSON_SCALAR = strawberry.scalar(
    name="JSON",
    description="Arbitrary JSON (the model's assumptions, as the engine records them).",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)


@strawberry.enum(description="How a heatmap matrix is encoded.")
class MatrixEncoding(Enum):
    FLOAT32_BASE64 = strawberry.enum_value(
        "FLOAT32_BASE64", description="base64 of little-endian float32, row-major (default)."
    )
    JSON = strawberry.enum_value("JSON", description="Nested lists: one list per price row.")


@strawberry.enum(
    description="A leverage band of a model map: the leverage of the positions behind the USD. "
    "A leverage on a bound is in the band below it (10x is UP_TO_10X). Labels as in "
    "LiquidationMap.leverageBands."
)
class LeverageBand(Enum):
    UP_TO_10X = strawberry.enum_value(0, description="Up to 10x (label 1-10).")
    FROM_10X_TO_25X = strawberry.enum_value(1, description="Above 10x, up to 25x (11-25).")
    FROM_25X_TO_50X = strawberry.enum_value(2, description="Above 25x, up to 50x (26-50).")
    FROM_50X_TO_100X = strawberry.enum_value(3, description="Above 50x, up to 100x (51-100).")
    ABOVE_100X = strawberry.enum_value(4, description="Above 100x (101+).")


@strawberry.enum(description="Time step of a heatmap or series.")
class Interval(Enum):
    FIVE_MINUTES = strawberry.enum_value(300, description="5 minutes (the base bar).")
    FIFTEEN_MINUTES = strawberry.enum_value(900, description="15 minutes.")
    THIRTY_MINUTES = strawberry.enum_value(1800, description="30 minutes.")
    ONE_HOUR = strawberry.enum_value(3600, description="1 hour.")
    FOUR_HOURS = strawberry.enum_value(14_400, description="4 hours.")
    ONE_DAY = strawberry.enum_value(86_400, description="1 day.")

    @property
    def seconds(self) -> int:
        return int(self.value)


@strawberry.enum(description="Stored snapshot resolution.")
class SnapshotResolution(Enum):
    FIVE_MINUTES = strawberry.enum_value(
        "5m", description="Every base bar; kept for the most recent days only."
    )
    ONE_HOUR = strawberry.enum_value("1h", description="Every hour; kept for all history.")


@strawberry.enum(description="Which positions a level or wall would liquidate.")
class Side(Enum):
    LONG = strawberry.enum_value("LONG", description="Long positions (liquidated as price falls).")
    SHORT = strawberry.enum_value(
        "SHORT", description="Short positions (liquidated as price rises)."
    )


NAIVE_TIME = (
    "a DateTime must name its time zone (Z or an offset such as +00:00), e.g. "
    "2026-06-22T11:45:00Z; {value!r} has none"
)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = (
    "{value!r} is outside the instants this API accepts, 1970-01-01T00:00:00Z (inclusive) to "
    "2200-01-01T00:00:00Z (exclusive)"
)


def parse_datetime(value: object) -> datetime:
    """An ISO-8601 timestamp with its zone. One without would be read in some zone the client
    did not say, silently: refused instead (``BAD_USER_INPUT``)."""
    if not isinstance(value, str):
        raise ValueError(f"a DateTime is an ISO-8601 string, not {type(value).__name__}")
    try:
        parsed = dateutil.parser.isoparse(value)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{value!r} is not an ISO-8601 timestamp (e.g. 2026-06-22T11:45:00Z)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(NAIVE_TIME.format(value=value))
    if not EARLIEST <= parsed < LATEST:
        # checked here, once for every argument: resolvers step bars back and forth from these
        # instants, which near year 1 or 9999 leaves the range of datetime (OverflowError)
        raise ValueError(OUT_OF_RANGE.format(value=value))
    return parsed


DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant as an ISO-8601 string with its time zone, e.g. 2026-06-22T11:45:00Z or "
        "2026-06-22T13:45:00+02:00. Answers are in UTC (+00:00). A timestamp without a zone, or "
        "outside 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z, is refused with BAD_USER_INPUT."
    ),
    serialize=lambda value: value.isoformat(),
    parse_value=parse_datetime,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    Matrix: MATRIX_SCALAR,
    JSON: JSON_SCALAR,
    datetime: DATETIME_SCALAR,
}
