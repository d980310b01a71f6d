"""Pauses of Python's cyclic garbage collector, as a Prometheus histogram by generation.

A collection stops the whole process, and with it every request in flight on the API's one
event loop, so its length bounds the API's worst latencies: this is where to look when a p99
jumps without a slow query behind it (see ``cli.runner.freeze_startup_heap``). Collections
are process-wide, so one callback records them for every app in the process; each app's
registry exposes the same figures.
"""

from __future__ import annotations

import gc
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
GENERATIONS = (0, 1, 2)


class GcPauses:
    """Counts of collection pauses per generation and duration bucket since installation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {g: [0] * (len(BUCKETS_S) + 1) for g in GENERATIONS}
        self._sums = dict.fromkeys(GENERATIONS, 0.0)
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        elapsed = time.perf_counter() - self._started
        self._started = None
        generation = int(info.get("generation", 2))
        with self._lock:
            self._counts[generation][bisect_left(BUCKETS_S, elapsed)] += 1
            self._sums[generation] += elapsed

    def snapshot(self) -> dict[int, tuple[list[int], float]]:
        with self._lock:
            return {g: (list(self._counts[g]), self._sums[g]) for g in GENERATIONS}


_PAUSES = GcPauses()


def install() -> GcPauses:
    """Start recording (once per process) and return the process's recorder."""
    if _PAUSES not in gc.callbacks:
        gc.callbacks.append(_PAUSES)
    return _PAUSES


class GcPauseCollector(Collector):
    def __init__(self, pauses: GcPauses) -> None:
        self.pauses = pauses

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "liqmap_gc_pause_seconds",
            "Pauses of the cyclic garbage collector by generation (2: full collections).",
            labels=["generation"],
        )
        for generation, (counts, total) in self.pauses.snapshot().items():
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS_S, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            family.add_metric([str(generation)], buckets, total)
        yield family
