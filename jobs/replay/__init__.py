"""Offline replay: recorded exchange responses served to the real ccxt classes.

``open_recording(directory, exchange_id)`` accepts either ``../shared/data`` exactly as it is
(recordings are built in memory from its real files) or a folder written by
``scripts/build_recordings.py`` (``<exchange_id>.recording.json`` per exchange).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import ModuleType

from jobs.errors import ConfigurationError
from jobs.replay.recording import RECORDING_SUFFIX, Recording
from jobs.replay.transport import FAULT_NAMES, Injection, RecordedRequest, RecordedTransport
from jobs.replay.windows import DEFAULT_WINDOW, WINDOWS, ReplayWindow, window_named
from jobs.replay.wire import Routes
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)

__all__ = [
    "DEFAULT_WINDOW",
    "FAULT_NAMES",
    "REPLAY_EXCHANGES",
    "WINDOWS",
    "Injection",
    "RecordedRequest",
    "RecordedTransport",
    "Recording",
    "ReplayClock",
    "ReplayWindow",
    "build_recordings",
    "open_recording",
    "replay_settings",
    "routes_for",
    "window_named",
    "write_recordings",
]


@dataclass(frozen=True, slots=True)
class ReplayClock:
    """The wall clock of a replay: by default frozen at the end of the recorded data.

    A clock started earlier (``start``) runs at ``speed`` recorded seconds per wall second from
    the wall instant ``epoch_ms`` and stops at the recording's end (``end``), so a replay can
    hand the jobs one new bar per period as a live venue does. ``speed`` 0 holds it at ``start``.
    Without an epoch it runs from the process's start, so every adapter of a process shares one
    clock: a job worker restarted inside ``liqmap up --replay`` (after a database outage, say)
    continues the clock instead of starting it over at ``start``.
    """

    now: int  # the reading at epoch_ms (the recording's end for a frozen clock)
    end: int | None = None
    speed: float = 0.0
    epoch_ms: int = 0

    @classmethod
    def starting(
        cls, end: int, start: int | None, speed: float, epoch_ms: int | None
    ) -> ReplayClock:
        if start is None or start >= end:
            return cls(end)
        epoch = process_started_ms() if epoch_ms is None else epoch_ms
        return cls(start, end, speed, epoch)

    def now_ms(self) -> int:
        if not self.speed or self.end is None:
            return self.now
        elapsed = max(0.0, time.time() * 1000 - self.epoch_ms)
        return min(self.end, self.now + int(elapsed * self.speed))


@cache
def process_started_ms() -> int:
    """When this process started (epoch ms): the default epoch of its replay clocks."""
    import psutil

    return round(psutil.Process().create_time() * 1000)


_WIRE_MODULES = {
    "binanceusdm": "jobs.replay.binance_wire",
    "bybit": "jobs.replay.bybit_wire",
    "okx": "jobs.replay.okx_wire",
    "hyperliquid": "jobs.replay.hyperliquid_wire",
}
REPLAY_EXCHANGES = tuple(_WIRE_MODULES)


def _wire_module(exchange_id: str) -> ModuleType:
    if exchange_id not in _WIRE_MODULES:
        raise ValueError(
            f"no replay recordings for {exchange_id!r}; valid: {', '.join(_WIRE_MODULES)}"
        )
    return importlib.import_module(_WIRE_MODULES[exchange_id])


def routes_for(exchange_id: str) -> Routes:
    routes: Routes = _wire_module(exchange_id).ROUTES
    return routes


def build_recordings(shared_data: Path, exchange_ids: list[str] | None = None) -> list[Recording]:
    """Build wire-format recordings from the real files in ``shared_data``."""
    from jobs.replay.source import load_shared_data

    data = load_shared_data(shared_data.resolve())
    ids = exchange_ids or list(REPLAY_EXCHANGES)
    return [_wire_module(exchange_id).build(data) for exchange_id in ids]


def write_recordings(
    shared_data: Path, out_dir: Path, exchange_ids: list[str] | None = None
) -> list[Path]:
    """Write ``<exchange_id>.recording.json`` files that ``open_recording`` can replay."""
    return [r.save(out_dir) for r in build_recordings(shared_data, exchange_ids)]


@lru_cache(maxsize=16)
def _cached_recording(directory: Path, exchange_id: str) -> Recording:
    from jobs.replay.source import is_shared_data_dir

    if is_shared_data_dir(directory):
        return build_recordings(directory, [exchange_id])[0]
    path = directory / f"{exchange_id}{RECORDING_SUFFIX}"
    if path.is_file():
        return Recording.load(path)
    raise FileNotFoundError(
        f"{directory} is neither the shared data folder (binance/…klines_oi_funding.csv) nor a "
        f"recordings folder with {path.name} (write one with scripts/build_recordings.py)"
    )


def open_recording(directory: Path, exchange_id: str) -> Recording:
    """The recording of ``exchange_id`` in ``directory`` (cached; treat it as read-only)."""
    _wire_module(exchange_id)
    return _cached_recording(directory.resolve(), exchange_id)


def replay_settings(settings: Settings) -> Settings:
    """Replay defaults: track what the chosen window really recorded unless the user chose.

    Every venue replays only its own recorded values. Without explicit ``LIQMAP_EXCHANGES`` a
    replay tracks the exchanges of its window (``LIQMAP_REPLAY_WINDOW``), without
    ``LIQMAP_SYMBOLS`` the markets recorded there, and without ``LIQMAP_BACKFILL_DAYS`` at least
    the whole window. An exchange chosen explicitly that recorded nothing in the window is
    tracked as asked, with a warning naming the windows where it has data.
    """
    if settings.replay_dir is None:
        return settings
    try:
        window = window_named(settings.replay_window)
    except ValueError as exc:
        raise ConfigurationError(f"LIQMAP_REPLAY_WINDOW: {exc}") from None
    candidates = list(REPLAY_EXCHANGES)
    if "exchanges" in settings.model_fields_set:
        candidates = [e for e in settings.exchanges if e in REPLAY_EXCHANGES]
    recordings = {}
    for exchange_id in candidates:
        try:
            recordings[exchange_id] = open_recording(settings.replay_dir, exchange_id)
        except FileNotFoundError:
            continue
    update: dict[str, object] = {}
    if "exchanges" not in settings.model_fields_set:
        update["exchanges"] = [e for e in window.exchanges if e in recordings]
    exchanges = update.get("exchanges", settings.exchanges)
    assert isinstance(exchanges, list)
    for exchange_id in exchanges:
        recording = recordings.get(exchange_id)
        if recording is None or exchange_id in window.exchanges:
            continue
        elsewhere = [
            name
            for name, spec in recording.metadata.get("windows", {}).items()
            if spec.get("markets") or spec.get("tracked")
        ]
        log.warning(
            "this exchange recorded nothing in the replay window; it will have no data",
            exchange=exchange_id,
            window=window.name,
            recorded_in=elsewhere,
        )
    if "symbols" not in settings.model_fields_set:
        update["symbols"] = {
            e: list(r.window(window.name).get("markets", [])) for e, r in recordings.items()
        }
    if "backfill_days" not in settings.model_fields_set and recordings:
        spec = next(iter(recordings.values())).window(window.name)
        span_days = -(-(spec["now_ms"] - spec["start_ms"]) // 86_400_000)
        if span_days > settings.backfill_days:
            update["backfill_days"] = span_days
    return settings.model_copy(update=update) if update else settings
