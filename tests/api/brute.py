"""Brute-force readings of stored vectors, walking them one bucket at a time (test oracles)."""

from __future__ import annotations

import numpy as np


def brute_force_walls(values: np.ndarray) -> list[tuple[int, int, float]]:
    """Runs ``(start, stop, notional)`` of buckets ≥ the mean non-empty bucket."""
    nonzero = [float(v) for v in values if v > 0]
    if not nonzero:
        return []
    threshold = sum(nonzero) / len(nonzero)
    runs, start = [], None
    for i, v in enumerate([*values.tolist(), 0.0]):
        if v >= threshold and v > 0 and start is None:
            start = i
        elif (v < threshold or v == 0) and start is not None:
            runs.append((start, i, float(sum(float(x) for x in values[start:i]))))
            start = None
    return runs
