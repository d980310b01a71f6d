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

from jobs.replay.recording import RECORDING_SUFFIX, Recording
from jobs.replay.transport import FAULT_NAMES, Injection, RecordedRequest, RecordedTransport
from jobs.replay.wire import Routes
from liqmap.logs import get_logger
from liqmap.settings import Settings

log = get_logger(__name__)

__all__ = [
    "FAULT_NAMES",
    "REPLAY_EXCHANGES",
    "Injection",
    "RecordedRequest",
    "RecordedTransport",
    "Recording",
    "ReplayClock",
    "build_recordings",
    "open_recording",
    "replay_settings",
    "routes_for",
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
    """Replay defaults: track what the recordings really hold unless the user chose otherwise.

    The shared folder carries real market data for Binance only; the Bybit and OKX recordings
    replay those same Binance numbers in their own wire formats, to exercise ccxt's parsing.
    Ingesting them by default would triple-count one market in the cross-exchange aggregate, so
    without explicit ``LIQMAP_EXCHANGES`` a replay tracks only exchanges whose recordings carry
    their own values, and without ``LIQMAP_SYMBOLS`` only the markets that were recorded.
    """
    if settings.replay_dir is None:
        return settings
    recordings = {}
    for exchange_id in settings.exchanges:
        if exchange_id in REPLAY_EXCHANGES:
            try:
                recordings[exchange_id] = open_recording(settings.replay_dir, exchange_id)
            except FileNotFoundError:
                continue
    update: dict[str, object] = {}
    if "exchanges" not in settings.model_fields_set:
        real = [e for e, r in recordings.items() if r.metadata.get("values_of", e) == e]
        if real:
            update["exchanges"] = real
    exchanges = update.get("exchanges", settings.exchanges)
    assert isinstance(exchanges, list)
    for exchange_id in exchanges:
        recording = recordings.get(exchange_id)
        values_of = recording.metadata.get("values_of", exchange_id) if recording else None
        if values_of not in (None, exchange_id):
            log.warning(
                "this replay carries another exchange's values in this exchange's wire format; "
                "its numbers are not this exchange's market",
                exchange=exchange_id,
                values_of=values_of,
            )
    if "symbols" not in settings.model_fields_set:
        update["symbols"] = {
            e: list(r.metadata.get("recorded_markets", [])) for e, r in recordings.items()
        }
    return settings.model_copy(update=update) if update else settings
