"""A recording: what one exchange answered, in its own wire format, plus the replay clock.

``static`` holds whole responses (instrument lists, tier brackets) under a name the exchange's
wire module chooses; ``series`` holds time-ordered wire rows (klines, open-interest points,
funding events) that the wire module's handlers slice to answer range queries exactly as the
venue would; ``ws_messages`` holds websocket frames in arrival order. ``metadata`` says where
every number came from and which fields were derived; ``metadata["windows"]`` gives each replay
window's clock and the markets recorded in it, ``metadata["datasets"]`` what was recorded per
market and ``metadata["missing"]`` why the rest was not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from jobs.errors import RecordingError

RECORDING_SUFFIX = ".recording.json"


@dataclass(slots=True)
class Recording:
    exchange_id: str
    now_ms: int  # the replay clock of the default window (the wire handlers see the running one)
    metadata: dict[str, Any] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict)
    ws_messages: list[Any] = field(default_factory=list)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.exchange_id}{RECORDING_SUFFIX}"
        # the fields hold JSON values only: dumped as they are, without asdict's deep copy
        # (which took longer than the dump itself: 0.85 s against 0.12 s for Binance's)
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        with path.open("w") as handle:
            json.dump(data, handle, separators=(",", ":"))
        return path

    @classmethod
    def load(cls, path: Path) -> Recording:
        with path.open() as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as exc:  # one line naming the place, not a traceback
                raise RecordingError(
                    f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg} (the recording is "
                    "truncated or damaged; write it again with scripts/build_recordings.py)"
                ) from None
        return cls(**data)

    def window(self, name: str) -> dict[str, Any]:
        """The replay window ``name``: ``now_ms``, ``start_ms``, ``markets``, ``description``."""
        windows: dict[str, dict[str, Any]] = self.metadata.get("windows", {})
        if name not in windows:
            raise ValueError(
                f"unknown replay window {name!r} for {self.exchange_id}; "
                f"valid: {', '.join(windows) or 'none'}"
            )
        return windows[name]

    def unrecorded(self, symbol: str, dataset: str) -> str | None:
        """Why ``dataset`` of ``symbol`` has no recording (None when it has one)."""
        if dataset in self.metadata.get("datasets", {}).get(symbol, ()):
            return None
        missing: dict[str, str] = self.metadata.get("missing", {})
        reason = missing.get(f"{dataset}:{symbol}") or missing.get(dataset)
        if reason is None:
            recorded = sorted(
                m for m, d in self.metadata.get("datasets", {}).items() if dataset in d
            )
            reason = f"recorded for {', '.join(recorded) or 'no market'} only"
        return f"{self.exchange_id} replay: no {dataset} of {symbol} was recorded ({reason})"
