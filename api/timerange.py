"""Validating and aligning the time arguments clients send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.errors import BadUserInput, RangeTooLarge


def utc(value: datetime) -> datetime:
    """Naive datetimes are read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def checked_range(
    start: datetime, end: datetime | None, max_days: float, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC; ``end`` defaults to ``now`` (the API's clock: the data's in a
    replay, see :mod:`api.clock`). Inverted or empty ranges are ``BAD_USER_INPUT``, spans over
    ``max_days`` are ``RANGE_TOO_LARGE``."""
    start = utc(start)
    end = utc(end) if end is not None else (now or datetime.now(UTC))
    if end <= start:
        raise BadUserInput(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if end - start > timedelta(days=max_days):
        raise RangeTooLarge(
            f"time span {(end - start).total_seconds() / 86_400:.1f} days exceeds the maximum of "
            f"{max_days:g} days; split the request",
            max_days=max_days,
        )
    return start, end


def floor_to(value: datetime, step_s: int) -> datetime:
    """Round down to a multiple of ``step_s`` since the epoch (UTC day boundaries for days)."""
    seconds = int(value.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step_s, tz=UTC)


def ceil_to(value: datetime, step_s: int) -> datetime:
    floored = floor_to(value, step_s)
    return floored if floored == value else floored + timedelta(seconds=step_s)


def timeframe_seconds(timeframe: str) -> int:
    units = {"m": 60, "h": 3600, "d": 86_400}
    try:
        return int(timeframe[:-1]) * units[timeframe[-1]]
    except (KeyError, ValueError):
        raise ValueError(f"unknown timeframe {timeframe!r}") from None
