"""The ``leverage`` argument of the map fields: which leverage bands (``maps.bands``) to keep."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np

from api.errors import BadUserInput, NoLeverageBands
from api.types.scalars import LeverageBand
from maps.bands import FULL_MASK, LEVERAGE_BANDS, band_mask, bands_of
from maps.grid import BucketVector
from models.heatmap_store import Snapshot


def band_filter(leverage: list[LeverageBand] | None) -> int:
    """The band mask a ``leverage`` argument asks for: 0 (the totals) when omitted or every
    band, so the unfiltered answer is the same bytes either way."""
    if leverage is None:
        return 0
    if not leverage:
        raise BadUserInput("leverage needs at least one band (omit it for every band)")
    mask = band_mask(int(b.value) for b in leverage)
    return 0 if mask == FULL_MASK else mask


def band_labels(mask: int) -> list[str]:
    """Labels of the bands a mask keeps (every band for 0), lowest leverage first."""
    return [LEVERAGE_BANDS[b] for b in bands_of(mask or FULL_MASK)]


def no_leverage_bands(first_without: datetime, hint: str) -> NoLeverageBands:
    """The error of a band filter over maps stored without bands, naming the first such bar;
    ``hint`` ends the sentence (what to ask instead)."""
    return NoLeverageBands(
        "leverage bands are not stored for these maps (snapshots of model v1/v2, e.g. the bar "
        f"opening {first_without.isoformat()}): {hint}",
        first_without_bands=first_without.isoformat(),
    )


def only_bands(snap: Snapshot, mask: int) -> Snapshot:
    """A stored snapshot restricted to the bands of ``mask``: its vector the sum of those bands
    (float64, on the same buckets) and its bands those bands only; the snapshot itself for 0.
    A snapshot stored without bands (model v1/v2) is ``NO_LEVERAGE_BANDS``."""
    if mask == 0:
        return snap
    if snap.bands is None:
        raise no_leverage_bands(snap.ts, "omit leverage")
    picked = tuple(snap.bands[b] for b in bands_of(mask))
    vector = BucketVector(
        snap.vector.first,
        np.sum([b.long_usd for b in picked], axis=0),
        np.sum([b.short_usd for b in picked], axis=0),
    )
    return dataclasses.replace(snap, vector=vector, bands=picked)
