"""The heatmap's colours in numpy: the colour map, scales and legend of ``static/viewer.json``.

The page does the same in ``static/colormap.js``; both read their numbers from viewer.json, and
tests/viewer checks the two give the same colour for the same value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from api.viewer.labels import usd
from api.viewer.shared import style


@cache
def lut() -> NDArray[np.uint8]:
    """The colour map: 256 × RGB bytes."""
    colours = style()["colormap"]["colours"]
    return np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in colours], np.uint8)


@dataclass(frozen=True, slots=True)
class Scale:
    """value / (largest value shown) → position t (0–1) on the colour bar, and back."""

    name: str
    kind: str  # "power" or "log"
    label: str
    exponent: float = 1.0
    decades: float = 3.0

    def forward(self, values: ArrayLike) -> NDArray[np.float64]:
        x: NDArray[np.float64] = np.asarray(values, np.float64)
        if self.kind == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                t = 1 + np.log10(x) / self.decades
            return np.where(x > 0, np.maximum(0.0, t), 0.0)
        x = np.maximum(x, 0.0)
        # sqrt and identity exactly as the page computes them (Math.sqrt is correctly rounded)
        if self.exponent == 0.5:
            return np.sqrt(x)
        return x if self.exponent == 1 else np.power(x, self.exponent)

    def inverse(self, positions: ArrayLike) -> NDArray[np.float64]:
        t: NDArray[np.float64] = np.asarray(positions, np.float64)
        if self.kind == "log":
            return np.where(t > 0, 10.0 ** (self.decades * (t - 1)), 0.0)
        t = np.maximum(t, 0.0)
        if self.exponent == 0.5:
            return t * t
        return t if self.exponent == 1 else np.power(t, 1 / self.exponent)


def scale_names() -> tuple[str, ...]:
    return tuple(style()["scales"])


def scale(name: str) -> Scale:
    spec = style()["scales"][name]
    return Scale(
        name=name,
        kind=spec["kind"],
        label=spec["label"],
        exponent=float(spec.get("exponent", 1.0)),
        decades=float(spec.get("decades", 3.0)),
    )


def colour_index(values: ArrayLike, scale: Scale, vmax: float | None = None) -> NDArray[np.uint8]:
    """Colour-map index per value: 0 where empty, else ⌊t · (n − 0.001)⌋, at least filled_from.

    ``vmax`` defaults to the largest value; like the page, the values are scaled by its
    reciprocal (``v * (1 / vmax)``), so both round alike.
    """
    v = np.asarray(values, np.float64)
    top = float(v.max(initial=0.0)) if vmax is None else float(vmax)
    inv = 1.0 / top if top > 0 else 0.0
    n = len(lut())
    t = scale.forward(v * inv)
    index = np.clip(np.floor(t * (n - 0.001)), style()["colormap"]["filled_from"], n - 1)
    return np.where(v > 0, index, 0).astype(np.uint8)


def legend_ticks(vmax: float, scale: Scale) -> list[tuple[float, str]]:
    """Positions on the colour bar and their USD labels (``–`` while there is nothing to show)."""
    ticks = [float(t) for t in style()["legend"]["ticks"]]
    return [(t, usd(vmax * float(scale.inverse(t))) if vmax > 0 or t == 0 else "–") for t in ticks]


def legend_caption(side: str, scale: Scale) -> str:
    template: str = style()["legend"]["caption"]
    side_text = style()["sides"][side]["legend"]
    return template.replace("{side}", side_text).replace("{scale}", scale.label)
