"""Counter-seeded normals of the DMFT kernels against the exact normal law (scipy), with
tolerances from the sampling standard error (fixed seeds: deterministic outcomes)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from solvers.numerics import streams as R
from solvers.numerics.streams import fill_block_normals, next_normal, next_uniform, stream

N_STREAMS, PER_STREAM = 2000, 1000  # 2e6 normals: 2000 blocks, as the kernels draw them


@numba.njit
def fill_normals(key, a, n_streams, per_stream, out):
    """out[k * per_stream + i] = normal i of stream (key, a, k, 0), k < n_streams, each a block
    row of :func:`fill_block_normals` (as the kernels draw them)."""
    rows = out.reshape(n_streams, per_stream)
    bad = np.empty(8 * ((per_stream + 7) // 8), dtype=np.uint8)
    for k in range(n_streams):
        fill_block_normals(stream(key, a, k, 0), rows[k:k + 1], 0, per_stream, bad)


@pytest.fixture(scope="module")
def normals() -> np.ndarray:
    out = np.empty(N_STREAMS * PER_STREAM)
    fill_normals(np.uint64(20261127), 3, N_STREAMS, PER_STREAM, out)
    return out


def test_kolmogorov_smirnov_against_the_normal_cdf(normals):
    assert stats.kstest(normals, "norm").pvalue > 1e-3


@pytest.mark.parametrize("k, exact", [(1, 0.0), (2, 1.0), (3, 0.0), (4, 3.0), (6, 15.0)])
def test_moments_within_4_standard_errors(normals, k, exact):
    powers = normals**k
    se = powers.std() / np.sqrt(powers.size)
    assert abs(powers.mean() - exact) <= 4 * se, (k, powers.mean(), se)


@pytest.mark.parametrize("c", [0.5, 1.5, 2.5, 3.654152885361009, 4.038849846109505, 4.5])
def test_tail_probabilities_including_the_ziggurat_tail(normals, c):
    # 4.0388... is where the ziggurat's base layer hands over to its exact tail algorithm
    p = 2 * stats.norm.sf(c)
    freq = np.mean(np.abs(normals) > c)
    assert abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / normals.size), (c, freq, p)


def test_chi_square_on_400_equiprobable_cells(normals):
    # fine cells resolve a misplaced layer edge, which KS and moments would average out
    edges = stats.norm.ppf(np.linspace(0.0, 1.0, 401))
    counts, _ = np.histogram(normals, bins=edges)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_ziggurat_layers_have_equal_areas_and_close_at_the_top():
    n, m1 = R._ZIG_LAYERS, 2.0**52
    x = R._WI * m1  # right edge of each layer (layer 0: the base's pseudo-width v / f(r))
    v = R._ZIG_V
    assert R._ZIG_R == R._tail_start(n)
    assert x[n - 1] == R._ZIG_R
    assert abs(x[0] * np.exp(-0.5 * R._ZIG_R**2) - v) <= 1e-14 * v  # base layer incl. tail
    areas = x[1:] * (R._FI[:-1] - R._FI[1:])  # layer i: [0, x_i] x [f(x_i), f(x_{i-1})]
    np.testing.assert_allclose(areas, v, rtol=1e-9)
    np.testing.assert_allclose(R._FI[1:], np.exp(-0.5 * x[1:] ** 2), rtol=1e-15)
    # core of layer i: |x| < x_{i-1} (all of the base rectangle's x < r)
    np.testing.assert_allclose(R._KI[2:] / m1, x[1:-1] / x[2:], rtol=1e-15, atol=2 / m1)
    assert R._KI[0] / m1 == pytest.approx(R._ZIG_R / x[0], abs=2 / m1)
    # the bisection reproduces Marsaglia & Tsang's published tail starts (the closure is
    # ill-conditioned: the root is known to ~1e-12, the published 128-layer value to 12 digits)
    assert R._tail_start(128) == pytest.approx(3.442619855899, abs=5e-12)
    assert R._tail_start(256) == pytest.approx(3.6541528853610088, rel=1e-15)


def test_blocks_are_uncorrelated_with_their_neighbours(normals):
    blocks = normals.reshape(N_STREAMS, PER_STREAM)
    # lag-1 correlation within a stream and between adjacent streams: ~N(0, 1/n)
    within = np.mean(blocks[:, 1:] * blocks[:, :-1])
    across = np.mean(blocks[1:] * blocks[:-1])
    assert abs(within) <= 4 / np.sqrt(blocks[:, 1:].size)
    assert abs(across) <= 4 / np.sqrt(blocks[1:].size)


def test_streams_are_reproducible_and_named_streams_differ():
    a, b, c = (np.empty(4000) for _ in range(3))
    fill_normals(np.uint64(7), 0, 4, 1000, a)
    fill_normals(np.uint64(7), 0, 4, 1000, b)
    fill_normals(np.uint64(7), 1, 4, 1000, c)
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)


@numba.njit
def _serial(key, n, draw):
    """n values of one stream drawn one after another with ``draw(state)``."""
    out = np.empty(n)
    state = stream(key, 1, 2, 3)
    for i in range(n):
        out[i], state = draw(state)
    return out


def test_uniforms_are_uniform_on_the_unit_interval():
    u = _serial(np.uint64(11), 10**6, next_uniform)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_scalar_ziggurat_of_the_rejection_fallback_is_normal():
    # next_normal finishes the rejected candidates of the vectorised fill: test it on its own
    x = _serial(np.uint64(13), 10**6, next_normal)
    assert stats.kstest(x, "norm").pvalue > 1e-3
    for k, exact in ((2, 1.0), (4, 3.0)):
        p = x**k
        assert abs(p.mean() - exact) <= 4 * p.std() / np.sqrt(p.size)


def test_block_rows_do_not_depend_on_block_length_or_row_count():
    base = stream(np.uint64(5), 1, 2, 3)
    full = np.full((3, 1030), np.nan)
    fill_block_normals(base, full, 3, 1024, np.empty(1024, dtype=np.uint8))
    assert np.all(np.isnan(full[:, :3])) and np.all(np.isnan(full[:, 1027:]))
    part = np.empty((2, 100))
    fill_block_normals(base, part, 0, 100, np.empty(104, dtype=np.uint8))
    np.testing.assert_array_equal(part, full[:2, 3:103])
    # rows are distinct streams
    assert not np.any(full[0, 3:1027] == full[1, 3:1027])
