"""The shared Gauss-Hermite rule (solvers.numerics.gauss_hermite): numpy's rule where it works,
a bisection/Newton rule beyond, checked against an independent implementation (scipy's)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import roots_hermitenorm

from solvers.numerics.gauss_hermite import _large_rule, gauss_hermite


@pytest.mark.parametrize("n", [1, 2, 7, 40, 300])
def test_small_rules_are_numpys_bit_for_bit(n):
    """Up to 300 nodes the rule is hermegauss normalised: the stored one-pass results depend on
    it bit for bit."""
    x, w = gauss_hermite(n)
    x0, w0 = hermegauss(n)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0 / w0.sum())


@pytest.mark.parametrize("n", [301, 372, 801, 1201])
def test_large_rules_match_an_independent_implementation(n):
    """Beyond numpy's range (its weights are NaN from 372 nodes on): scipy's asymptotic rule."""
    x, w = gauss_hermite(n)
    x0, w0 = roots_hermitenorm(n)
    w0 = w0 / w0.sum()
    assert x.shape == w.shape == (n,)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(w)) and np.all(w >= 0)
    assert np.all(np.diff(x) > 0)
    np.testing.assert_array_equal(x, -x[::-1])
    np.testing.assert_array_equal(w, w[::-1])
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(x, x0, rtol=1e-12, atol=1e-13)
    big = w0 > 1e-250
    np.testing.assert_allclose(w[big], w0[big], rtol=1e-11)


@pytest.mark.parametrize("n", [301, 1000])
def test_large_rules_integrate_gaussian_moments(n):
    x, w = gauss_hermite(n)
    for k in range(1, 7):
        assert w @ x ** (2 * k) == pytest.approx(math.prod(range(2 * k - 1, 0, -2)), rel=1e-12)
        assert abs(w @ x ** (2 * k - 1)) < 1e-12


@pytest.mark.parametrize("n", [2, 3, 10, 51, 120])
def test_large_rule_agrees_with_numpy_where_both_work(n):
    x, w = _large_rule(n)
    x0, w0 = hermegauss(n)
    np.testing.assert_allclose(x, x0, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(w / w.sum(), w0 / w0.sum(), rtol=1e-12, atol=1e-300)


def test_rules_are_cached_and_read_only():
    x, w = gauss_hermite(500)
    assert gauss_hermite(500)[0] is x
    with pytest.raises(ValueError):
        x[0] = 0.0
    with pytest.raises(ValueError):
        w[0] = 0.0
