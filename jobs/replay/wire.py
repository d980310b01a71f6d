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


def window(
    rows: Sequence[Any], start: int | None, end: int | None, time: Callable[[Any], int]
) -> tuple[int, int]:
    """Index range [lo, hi) of ``rows`` (ascending by ``time(row)``) stamped within [start, end]
    (both inclusive) and not after the replay clock.

    Bisected through ``time``: a page costs O(log n) reads of the recording, not a new list of
    all its n stamps (a month of 1-minute bars is ~45,000 rows, paged 100 at a time).
    """
    now = answering_at.get()
    if now is not None:
        end = now if end is None else min(end, now)
    lo = 0 if start is None else bisect.bisect_left(rows, start, key=time)
    hi = len(rows) if end is None else bisect.bisect_right(rows, end, key=time)
    return lo, max(lo, hi)


def stamp_at(index: int) -> Callable[[Any], int]:
    """``time`` for ``window``: a row's stamp at position ``index`` of a wire list, as an int."""
    return lambda row: int(row[index])


def stamp_of(name: str) -> Callable[[Any], int]:
    """``time`` for ``window``: a row's stamp under ``name`` of a wire object, as an int."""
    return lambda row: int(row[name])


def int_param(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return int(value)
