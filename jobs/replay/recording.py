"""A recording: what one exchange answered, in its own wire format, plus the replay clock.

``static`` holds whole responses (instrument lists, tier brackets) under a name the exchange's
wire module chooses; ``series`` holds time-ordered wire rows (klines, open-interest points,
funding events) that the wire module's handlers slice to answer range queries exactly as the
venue would; ``ws_messages`` holds websocket frames in arrival order. ``metadata`` says where
every number came from and which fields were derived.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORDING_SUFFIX = ".recording.json"


@dataclass(slots=True)
class Recording:
    exchange_id: str
    now_ms: int  # the replay clock: end of the recorded data
    metadata: dict[str, Any] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict)
    ws_messages: list[Any] = field(default_factory=list)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.exchange_id}{RECORDING_SUFFIX}"
        with path.open("w") as handle:
            json.dump(asdict(self), handle, separators=(",", ":"))
        return path

    @classmethod
    def load(cls, path: Path) -> Recording:
        with path.open() as handle:
            data = json.load(handle)
        return cls(**data)
