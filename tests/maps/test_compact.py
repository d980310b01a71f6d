"""Graded buckets against a brute-force walk: every grid bucket in the right stored bucket,
every USD kept, and the stored widths as the layout promises."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maps import compact
from maps.grid import BucketVector

pytestmark = pytest.mark.unit


def brute_layout(fine: int, reach: int) -> dict[int, tuple[int, int, int]]:
    """offset → (stored index, first offset, width), built by walking outward bucket by
    bucket: ``fine`` stored buckets of width 1, then ``fine`` of width 2, 4, …, each side."""
    out: dict[int, tuple[int, int, int]] = {}
    for direction in (1, -1):
        q, width, made, offset = 0, 1, 0, 0  # offset: grid buckets walked away from the center
        while offset < reach:
            members = [offset + i for i in range(width)]
            grid_offsets = members if direction == 1 else [-1 - m for m in members]
            stored = q if direction == 1 else -1 - q
            first = min(grid_offsets)
            for o in grid_offsets:
                out[o] = (stored, first, width)
            offset += width
            q += 1
            made += 1
            if made == fine:
                made, width = 0, width * 2
    return out


@pytest.mark.parametrize("fine", [1, 2, 3, 8, 35, 64])
def test_every_grid_offset_lands_in_the_walked_bucket(fine: int) -> None:
    reach = fine * 70 + 13
    layout = brute_layout(fine, reach)
    offsets = np.array(sorted(o for o in layout if -reach < o < reach))
    q = compact.compact_index(offsets, fine)
    assert q.tolist() == [layout[int(o)][0] for o in offsets]
    first, width = compact.compact_edges(q, fine)
    assert first.tolist() == [layout[int(o)][1] for o in offsets]
    assert width.tolist() == [layout[int(o)][2] for o in offsets]
    assert np.all(np.diff(q) >= 0)  # monotonic: stored buckets are contiguous runs


def test_a_known_layout_by_hand() -> None:
    # fine 2: offsets 0, 1 alone; [2, 4) and [4, 6) in pairs; [6, 10), [10, 14) fours; below
    # the mirror: −1, −2 alone, [−4, −2) and [−6, −4) pairs, [−10, −6) four
    q = compact.compact_index([-7, -6, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 9, 10], 2)
    assert q.tolist() == [-5, -4, -3, -2, -1, 0, 1, 2, 2, 3, 3, 4, 4, 5]
    first, width = compact.compact_edges([-5, -4, -1, 0, 2, 4, 5], 2)
    assert first.tolist() == [-10, -6, -1, 0, 2, 6, 10]
    assert width.tolist() == [4, 2, 1, 1, 2, 4, 4]


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(-3000, 3000),
    values=st.lists(st.tuples(st.floats(0, 1e9), st.floats(0, 1e9)), min_size=1, max_size=400),
    center=st.integers(-3000, 3000),
    fine=st.integers(1, 50),
)
def test_encoding_conserves_every_usd_in_its_bucket(
    first: int, values: list[tuple[float, float]], center: int, fine: int
) -> None:
    longs = np.array([v[0] for v in values])
    shorts = np.array([v[1] for v in values])
    vector = BucketVector(first, longs, shorts)
    packed = compact.encode(vector, center, fine)
    layout = brute_layout(fine, max(abs(first - center), abs(first + len(values) - center)) + 2)
    expect_long: dict[int, float] = {}
    expect_short: dict[int, float] = {}
    for i in range(len(values)):
        stored = layout[first + i - center][0]
        expect_long[stored] = expect_long.get(stored, 0.0) + float(longs[i])
        expect_short[stored] = expect_short.get(stored, 0.0) + float(shorts[i])
    got_q = range(packed.q_first, packed.q_first + packed.long_usd.size)
    assert min(expect_long) == packed.q_first and max(expect_long) == got_q[-1]
    for q, lo, sh in zip(got_q, packed.long_usd, packed.short_usd, strict=True):
        assert lo == pytest.approx(expect_long.get(q, 0.0), rel=1e-12, abs=1e-6)
        assert sh == pytest.approx(expect_short.get(q, 0.0), rel=1e-12, abs=1e-6)
    # totals conserved, and reading back spreads each stored bucket over its grid buckets
    back = compact.decode(packed)
    assert back.long_usd.sum() == pytest.approx(longs.sum(), rel=1e-12, abs=1e-6)
    assert back.short_usd.sum() == pytest.approx(shorts.sum(), rel=1e-12, abs=1e-6)
    assert back.first == packed.first_grid <= first
    assert back.end >= first + len(values)
    # the grid buckets the stored ones cover, against the walked layout
    q_last = packed.q_first + packed.long_usd.size - 1
    walked = [k for k, (stored, _, _) in layout.items() if stored == q_last]
    assert compact.covered_grid(fine, center, packed.q_first, packed.long_usd.size) == (
        packed.first_grid,
        center + max(walked) + 1,
    )
    for k in range(back.first, back.end):
        stored, _, width = layout[k - center]
        expected = expect_long.get(stored, 0.0) / width
        assert back.long_usd[k - back.first] == pytest.approx(expected, rel=1e-12, abs=1e-6)


def test_near_the_price_every_grid_bucket_is_kept() -> None:
    rng = np.random.default_rng(7)
    vector = BucketVector(900, rng.random(200), rng.random(200))
    packed = compact.encode(vector, 1000, 35)
    back = compact.decode(packed)
    lo, hi = 1000 - 35, 1000 + 35  # within ``fine`` of the center: unchanged
    np.testing.assert_array_equal(
        back.long_usd[lo - back.first : hi - back.first], vector.long_usd[lo - 900 : hi - 900]
    )


def test_fine_buckets_follow_the_price() -> None:
    # 2.5 % of 70,000 on a 50 USD grid: 1,750 / 50 = 35 buckets; a tiny price keeps a floor
    assert compact.fine_buckets(70_000.0, 50.0) == 35
    assert compact.fine_buckets(10.0, 50.0) == compact.MIN_FINE
    # a plain grid vector (fine 0, v1 rows) reads back unchanged
    plain = compact.CompactVector(0, 0, 5, np.array([1.0, 2.0]), np.array([0.0, 3.0]))
    back = compact.decode(plain)
    assert (back.first, back.long_usd.tolist(), back.short_usd.tolist()) == (5, [1, 2], [0, 3])
