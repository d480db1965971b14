"""Counter-seeded normals of the DMFT kernels against the exact normal law (scipy), with
tolerances from the sampling standard error (fixed seeds: deterministic outcomes)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import stats

from solvers._random import fill_normals, next_uniform, stream

N_STREAMS, PER_STREAM = 2000, 1000  # 2e6 normals: 2000 blocks, as the kernels draw them


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


@pytest.mark.parametrize("c", [0.5, 1.5, 2.5, 3.654152885361009, 4.2])
def test_tail_probabilities_including_the_ziggurat_tail(normals, c):
    # 3.654... is where the ziggurat's base layer hands over to its exact tail algorithm
    p = 2 * stats.norm.sf(c)
    freq = np.mean(np.abs(normals) > c)
    assert abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / normals.size), (c, freq, p)


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
def _uniforms(key, n):
    out = np.empty(n)
    state = stream(key, 1, 2, 3)
    for i in range(n):
        out[i], state = next_uniform(state)
    return out


def test_uniforms_are_uniform_on_the_unit_interval():
    u = _uniforms(np.uint64(11), 10**6)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3
