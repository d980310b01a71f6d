"""The heatmap the page will ask for first, known while the page is being sent.

For the default kind of view (a preset range at auto resolution, no price range, bucket or band
filter in the address) ``first.js`` sends the heatmap as soon as it has loaded, with variables it
derives from the address and from the ``limits`` and ``Latest`` answers embedded in the page.
The server derives the same variables here (the rules of ``state.js`` ``fromUrl`` and
``heatmapVariables`` and of ``limits.js`` ``options``, for that kind of view) and names that
query in the page as a ``GET /graphql`` address with ``<link rel="preload">``: the browser
requests it while it reads the page's head, long before the modules have loaded, and
``first.js``'s fetch of the same address is answered from that request. ``main.js`` uses the
answer only if its own view asks exactly the same (it compares the variables), so a
disagreement costs the head start, never a wrong picture. tests/viewer/test_first_view.py runs
first.js in Node against these rules; tests/viewer/test_views.py checks the preload in Chromium.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from api.viewer.shared import style

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# address parameters that do not change the first heatmap's variables (only how it is drawn)
_DRAWING_ONLY = frozenset(
    {"symbol", "exchanges", "range", "axis", "side", "scale", "within", "overlays"}
)


def epoch_ms(text: str) -> int:
    """``Date.parse`` of an ISO 8601 time the API wrote (with its offset), in whole ms."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(ms: int) -> str:
    """``new Date(ms).toISOString()``: UTC, milliseconds, ``Z``."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def ranges() -> dict[str, int]:
    """The range presets in ms (``format.js`` ``DURATIONS``)."""
    return {k: v * 1000 for k, v in style()["ranges"].items() if not k.startswith("$")}


def auto_window(
    limits: Mapping[str, Any], fine_from: int | None, newest: int, duration: int
) -> tuple[int, int] | None:
    """The [start, end) in ms of a preset shown at auto resolution: the first interval, finest
    first, whose window (ending at its last whole column of the newest data) the API accepts
    and whose snapshots are stored (``limits.js`` ``options(...).auto``); None if none is."""
    for interval in limits["intervals"]:
        step = int(interval["seconds"]) * 1000
        end = newest // step * step
        start = end - duration
        needs_base = bool(interval["needsBaseSnapshots"])
        columns = -(-end // step) - start // step
        accepted = (
            end - start <= limits["maxSpanDays"] * DAY_MS
            and interval["seconds"] >= limits["baseIntervalSeconds"]
            and not (needs_base and fine_from is not None and start < fine_from)
            and columns <= limits["maxHeatmapColumns"]
        )
        if accepted and not (needs_base and fine_from is None):
            return start, end
    return None


def latest_variables(params: Mapping[str, str]) -> dict[str, Any]:
    """The ``Latest`` variables first.js derives from the page's address (``symbol`` or the
    default, ``exchanges`` split at commas), which it compares with the embedded ones."""
    exchanges = [e.strip() for e in (params.get("exchanges") or "").split(",") if e.strip()]
    return {
        "symbol": params.get("symbol") or style()["defaults"]["symbol"],
        "exchanges": exchanges or None,
    }


def first_heatmap_variables(
    params: Mapping[str, str],
    limits_answer: Mapping[str, Any],
    latest_answer: Mapping[str, Any],
) -> dict[str, Any] | None:
    """The variables of the heatmap ``first.js`` sends for the page at this address, given the
    page's embedded answers; None for any other kind of view (the page then asks as it always
    did, without a preload)."""
    if any(name not in _DRAWING_ONLY for name in params) or params.get("range") == "custom":
        return None
    limits = (limits_answer.get("data") or {}).get("limits")
    data = latest_answer.get("data") or {}
    newest_map = data.get("liquidationMap")
    if not limits or not newest_map:
        return None
    presets = ranges()
    duration = presets.get(params.get("range") or "", presets["24h"])
    fine_text = (data.get("limits") or {}).get("fineResolutionFrom")
    fine_from = epoch_ms(fine_text) if fine_text else None
    window = auto_window(limits, fine_from, epoch_ms(newest_map["at"]), duration)
    if window is None:
        return None
    axes = [k for k in style()["price_axes"] if not k.startswith("$")]
    axis = params.get("axis") if params.get("axis") in axes else style()["defaults"]["price_axis"]
    market = latest_variables(params)
    # the keys in heatmapVariables' order (first.js and main.js compare them as JSON)
    return {
        "symbol": market["symbol"],
        "exchanges": market["exchanges"],
        "start": iso_ms(window[0]),
        "end": iso_ms(window[1]),
        "interval": None,
        "priceMin": None,
        "priceMax": None,
        "withinPct": style()["defaults"]["near_price_pct"] if axis == "near" else None,
        "bucketSize": None,
        "leverage": None,
    }
