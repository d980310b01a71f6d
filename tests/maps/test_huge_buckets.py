"""Re-bucketing costs memory in proportion to the stored vectors, never to the merge factor:
a bucket of 10¹⁰ grid steps is answered from the same few kilobytes, with the sums a brute-force
loop over the buckets gives."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from maps import grid
from maps.errors import MapRequestError
from maps.heatmap import RowWindow, matrices
from maps.request import MAX_REBUCKET_FACTOR, rebucket_factor

FACTORS = (1, 2, 3, 7, 1000, 20_000_000, 10_000_000_000)


def brute_rebucket(first: int, values: np.ndarray, factor: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for k, value in enumerate(values):
        merged = (first + k) // factor  # Python's floor division: floor for negatives too
        out[merged] = out.get(merged, 0.0) + float(value)
    return out


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("first", [-13, 0, 1234, 19_999_990])
def test_rebucket_matches_a_brute_force_sum_with_small_memory(first: int, factor: int) -> None:
    rng = np.random.default_rng(abs(first) + factor)
    values = rng.uniform(0, 1e6, 500)
    vector = grid.BucketVector(first, values, values[::-1].copy())
    tracemalloc.start()
    merged = grid.rebucket(vector, factor)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000, f"{peak} bytes for factor {factor}"
    want = brute_rebucket(first, values, factor)
    assert merged.first == min(want)
    assert merged.end == max(want) + 1
    for index, value in want.items():
        assert merged.long_usd[index - merged.first] == pytest.approx(value, rel=1e-12)
    assert merged.short_usd.sum() == pytest.approx(values.sum(), rel=1e-12)


def test_rebucket_of_an_empty_vector_is_at_most_one_empty_bucket() -> None:
    empty = grid.BucketVector(5, np.zeros(0), np.zeros(0))
    merged = grid.rebucket(empty, 10_000_000_000)
    assert merged.first == 0 and merged.long_usd.tolist() == merged.short_usd.tolist() == [0.0]
    assert grid.rebucket(grid.BucketVector(20, np.zeros(0), np.zeros(0)), 10).long_usd.size == 0


@pytest.mark.parametrize("factor", FACTORS)
def test_rebucket_rows_matches_a_brute_force_sum(factor: int) -> None:
    rng = np.random.default_rng(factor)
    matrix = rng.uniform(0, 100, (40, 3)).astype(np.float32)
    first_row = 1195
    merged, first = grid.rebucket_rows(matrix, first_row, factor)
    assert first == first_row // factor
    want = np.zeros_like(merged)
    for i in range(40):
        want[(first_row + i) // factor - first] += matrix[i]
    np.testing.assert_allclose(merged, want, rtol=1e-5)
    assert merged.dtype == np.float32  # merged heatmaps stay 4 bytes a cell


@pytest.mark.parametrize("factor", FACTORS)
def test_matrices_merge_placements_with_memory_of_the_output(factor: int) -> None:
    rng = np.random.default_rng(factor)
    placements = [
        [(j, 1180 + 7 * j, rng.uniform(0, 10, 60), rng.uniform(0, 10, 60)) for j in range(4)],
        [(j, 1200, rng.uniform(0, 10, 30), rng.uniform(0, 10, 30)) for j in (0, 3)],
    ]
    # rows covering grid buckets [1190, 1230) at factor 1, the one merged row beyond
    first_row = 1190 // factor
    count = -(-1230 // factor) - first_row
    rows = RowWindow(first_row, count)
    tracemalloc.start()
    long_m, short_m = matrices(rows, 4, factor, placements)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000, f"{peak} bytes for factor {factor}"
    assert long_m.shape == short_m.shape == (count, 4) and long_m.dtype == np.float32
    want = np.zeros((count, 4))
    for series in placements:
        for column, first, long_usd, _ in series:
            for k, value in enumerate(long_usd):
                g = first + k
                if first_row * factor <= g < (first_row + count) * factor:
                    want[g // factor - first_row, column] += value
    np.testing.assert_allclose(long_m, want, rtol=1e-5)
    assert want.sum() > 0


def test_rebucket_factor_refuses_absurd_buckets_before_anything_is_read() -> None:
    assert rebucket_factor(50.0 * MAX_REBUCKET_FACTOR, 50.0) == MAX_REBUCKET_FACTOR
    assert rebucket_factor(5e11, 50.0) == 10_000_000_000
    for absurd in (50.0 * MAX_REBUCKET_FACTOR * 2, 1e300, 1.7976931348623157e308):
        with pytest.raises(MapRequestError, match="at most"):
            rebucket_factor(absurd, 50.0)
