"""What every exchange's wire module shares: replies, routing errors, range slicing."""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jobs.replay.recording import Recording


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str  # the raw HTTP body, exactly what the venue would send


def ok(payload: Any) -> Reply:
    return Reply(200, json.dumps(payload, separators=(",", ":")))


class Unrecorded(LookupError):
    """The recording has no answer for this request (the message says what is missing)."""


Params = Mapping[str, str]
Handler = Callable[[Recording, Params], Reply]
Routes = Mapping[tuple[str, str], Handler]  # (HTTP method, URL path) -> handler


def series(recording: Recording, key: str) -> list[Any]:
    rows = recording.series.get(key)
    if rows is None:
        recorded = ", ".join(sorted(recording.series)) or "none"
        raise Unrecorded(f"no recorded series {key!r} (recorded series: {recorded})")
    return rows


# The replay clock's reading while a request is answered (set by the transport): a venue has
# nothing stamped after its own now, so every range a handler slices ends there.
answering_at: ContextVar[int | None] = ContextVar("answering_at", default=None)


def window(times: Sequence[int], start: int | None, end: int | None) -> tuple[int, int]:
    """Index range [lo, hi) of ascending ``times`` within [start, end] (both inclusive) and not
    after the replay clock."""
    now = answering_at.get()
    if now is not None:
        end = now if end is None else min(end, now)
    lo = 0 if start is None else bisect.bisect_left(times, start)
    hi = len(times) if end is None else bisect.bisect_right(times, end)
    return lo, max(lo, hi)


def int_param(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return int(value)
