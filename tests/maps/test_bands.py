"""Leverage bands on stored buckets: graded rows and the compact blob, against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maps import bands, compact
from maps.grid import BucketVector
from tests.maps.test_compact import brute_layout

pytestmark = pytest.mark.unit


def test_masks_and_selection() -> None:
    assert bands.band_mask([]) == 0
    assert bands.band_mask([3, 4]) == 0b11000
    assert bands.FULL_MASK == 0b11111
    assert bands.bands_of(0b10010) == [1, 4]
    with pytest.raises(ValueError):
        bands.band_mask([5])
    rows = np.arange(20, dtype=np.float64).reshape(10, 2)  # channel c holds [2c, 2c + 1]
    long_usd, short_usd = bands.select_bands(rows, bands.band_mask([0, 4]))
    assert long_usd.tolist() == [0 + 8, 1 + 9]
    assert short_usd.tolist() == [10 + 18, 11 + 19]


# float32 edge values among the random ones: zero inside a range, the smallest subnormal, the top
SPECIAL = np.array([0.0, 1.4e-45, 1.0, 1e10], dtype=np.float32)


@st.composite
def band_rows(draw: st.DrawFn) -> np.ndarray:
    """Rows of 10 channels whose non-zero values sit in a random sub-range each (or none).

    Hypothesis draws the shape and the ranges; the values come from a drawn seed (drawing
    thousands of floats one by one made this the unit tier's slowest test), a tenth of them
    float32 edge values."""
    size = draw(st.integers(0, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = np.zeros((bands.CHANNELS, size))
    for c in range(bands.CHANNELS):
        if size == 0 or (c % 3 == 0 and not draw(st.booleans())):
            continue
        a = draw(st.integers(0, size - 1))
        b = draw(st.integers(a + 1, size))
        values = (rng.random(b - a) * 1e10).astype(np.float32)
        special = rng.random(b - a) < 0.1
        values[special] = rng.choice(SPECIAL, int(special.sum()))
        rows[c, a:b] = values
    return rows


@settings(max_examples=200, deadline=None)
@given(rows=band_rows())
def test_band_blob_round_trips_against_brute_force(rows: np.ndarray) -> None:
    blob = bands.encode_band_blob(rows)
    back = bands.decode_band_blob(blob, rows.shape[1])
    assert back.dtype == np.float32 and back.shape == rows.shape
    assert np.array_equal(back, rows.astype(np.float32))  # exact at float32
    # brute force: header of (first non-zero, length) per channel, then the kept values
    header = np.frombuffer(blob[:80], dtype="<i4").reshape(10, 2)
    kept = 0
    for c in range(bands.CHANNELS):
        nz = [i for i, v in enumerate(rows[c].tolist()) if v != 0.0]
        want = (nz[0], nz[-1] + 1 - nz[0]) if nz else (0, 0)
        assert tuple(header[c].tolist()) == want
        kept += want[1]
    assert len(blob) == 80 + 4 * kept  # nothing stored outside a channel's non-zero range


def test_band_blob_rejects_damage() -> None:
    rows = np.zeros((bands.CHANNELS, 5))
    rows[2, 1:3] = [1.0, 2.0]
    blob = bands.encode_band_blob(rows)
    with pytest.raises(ValueError):
        bands.decode_band_blob(blob[:40], 5)
    with pytest.raises(ValueError):
        bands.decode_band_blob(blob[:-4], 5)
    with pytest.raises(ValueError):
        bands.decode_band_blob(blob, 2)  # reaches past the snapshot
    with pytest.raises(ValueError):
        bands.encode_band_blob(np.zeros((4, 5)))


@settings(max_examples=150, deadline=None)
@given(
    first=st.integers(-2000, 2000),
    size=st.integers(1, 300),
    center=st.integers(-2000, 2000),
    fine=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_graded_rows_match_the_vector_layout_and_brute_force(
    first: int, size: int, center: int, fine: int, seed: int
) -> None:
    rows = np.random.default_rng(seed).uniform(0, 1e6, (bands.CHANNELS, size))
    rows[rows < 3e5] = 0.0
    q0, graded = compact.encode_rows(first, rows, center, fine)
    # the same layout as the totals: the encoded vector of the band sums
    total = compact.encode(
        BucketVector(first, rows[:5].sum(axis=0), rows[5:].sum(axis=0)), center, fine
    )
    assert q0 == total.q_first and graded.shape[1] == total.long_usd.size
    np.testing.assert_allclose(graded[:5].sum(axis=0), total.long_usd, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(graded[5:].sum(axis=0), total.short_usd, rtol=1e-12, atol=1e-6)
    # brute force, bucket by bucket
    layout = brute_layout(fine, max(abs(first - center), abs(first + size - center)) + 2)
    want = np.zeros_like(graded)
    for i in range(size):
        want[:, layout[first + i - center][0] - q0] += rows[:, i]
    np.testing.assert_allclose(graded, want, rtol=1e-12, atol=1e-6)
    # back on the grid: each stored bucket spread over its grid buckets, as decode() does
    g0, back = compact.decode_rows(center, fine, q0, graded)
    vector = compact.decode(compact.CompactVector(center, fine, q0, graded[0], graded[5]))
    assert g0 == vector.first
    np.testing.assert_allclose(back[0], vector.long_usd, rtol=1e-12)
    np.testing.assert_allclose(back[5], vector.short_usd, rtol=1e-12)
    np.testing.assert_allclose(back.sum(axis=1), rows.sum(axis=1), rtol=1e-12, atol=1e-6)
