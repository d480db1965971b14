"""dmft.exact: the closed forms of GD on linear regression against the numbers quoted in
docs/validation.md, a direct finite-d recursion and random-matrix spectra."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import dmft
from dmft.exact import linear_gd, linear_overlaps, marchenko_pastur_moment
from dmft.stats import agree, mean_se

QUOTED_TRAIN_MSE = [2, 0.32, 0.1184, 0.0577, 0.0320, 0.0191, 0.0120]  # alpha 3, eta 0.2


def _linear(P=1, T=7, **kw):
    base = dict(target="linear", P=P, activation="linear", alpha=3.0, eta=0.2, T=T)
    return dmft.Problem(**{**base, **kw})


def test_train_mse_matches_the_quoted_values(linear_exact):
    np.testing.assert_allclose(2 * linear_exact.e_train[:7], QUOTED_TRAIN_MSE, atol=6e-5)
    # exact rationals: no cancellation at late times (terms grow like (1 + sqrt 3)^(4t))
    assert np.all(np.diff(linear_exact.e_train) < 0) and linear_exact.e_train[-1] > 0


def test_overlaps_first_steps_by_hand(linear_exact):
    # M_1 = eta m_1 = eta alpha = 0.6; M_2 = 2 eta m_1 - eta^2 m_2 = 1.2 - 0.04 * 12
    assert linear_exact.M[0, 0, 0] == 0.0 and linear_exact.Q[0, 0, 0] == 1.0
    assert math.isclose(linear_exact.M[1, 0, 0], 0.6, rel_tol=1e-14)
    assert math.isclose(linear_exact.M[2, 0, 0], 0.72, rel_tol=1e-14)
    # M_t -> 1 monotonically (GD on a well-posed linear problem, n > d); e_gen = (1-2M+Q)/2
    assert np.all(np.diff(linear_exact.M[:, 0, 0]) > 0) and linear_exact.M[-1, 0, 0] < 1
    np.testing.assert_allclose(linear_exact.e_gen,
                               (1 - 2 * linear_exact.M[:, 0, 0] + linear_exact.Q[:, 0, 0]) / 2)
    assert linear_exact.e_gen[0] == 1.0 and np.all(linear_exact.M_se == 0)
    assert linear_exact.method == "exact"


def test_marchenko_pastur_moments():
    # m_1 = alpha, m_2 = alpha + alpha^2, m_3 = alpha + 3 alpha^2 + alpha^3 (Narayana 1, 3, 1)
    for alpha in (Fraction(1, 2), Fraction(3)):
        assert marchenko_pastur_moment(0, alpha) == 1
        assert marchenko_pastur_moment(1, alpha) == alpha
        assert marchenko_pastur_moment(2, alpha) == alpha + alpha**2
        assert marchenko_pastur_moment(3, alpha) == alpha + 3 * alpha**2 + alpha**3
    assert marchenko_pastur_moment(2, 0.5) == Fraction(3, 4)


def test_moments_match_wishart_spectra():
    # tr((X^T X / d)^k) / d at d = 400, n = 1200, averaged over 4 draws; finite-d corrections
    # are O(1/d) relative, far below the 2 % tolerance
    rng = np.random.default_rng(0)
    d, alpha = 400, 3.0
    eig = np.concatenate([np.linalg.eigvalsh(X.T @ X / d)
                          for X in rng.standard_normal((4, int(alpha * d), d))])
    for k in (1, 2, 3, 4):
        assert np.mean(eig**k) == pytest.approx(float(marchenko_pastur_moment(k, alpha)),
                                                rel=0.02)


def test_closed_forms_match_a_direct_finite_d_recursion():
    # w_{t+1} - w* = (I - eta X^T X / d)(w_t - w*), |w*|^2 = |w_0|^2 = d, w_0 orthogonal to w*:
    # M_t, Q_t and the train loss over 12 seeds at d = 400 against the d -> infinity forms
    rng = np.random.default_rng(1)
    d, n, eta, T, seeds = 400, 1200, 0.2, 7, 12
    runs = {"M": np.empty((seeds, T)), "Q": np.empty((seeds, T)), "e_train": np.empty((seeds, T))}
    for s in range(seeds):
        X = rng.standard_normal((n, d))
        w_star = rng.standard_normal(d)
        w_star *= math.sqrt(d) / np.linalg.norm(w_star)
        w = rng.standard_normal(d)
        w -= (w @ w_star) / d * w_star
        w *= math.sqrt(d) / np.linalg.norm(w)
        for t in range(T):
            resid = X @ (w_star - w) / math.sqrt(d)
            runs["M"][s, t], runs["Q"][s, t] = w @ w_star / d, w @ w / d
            runs["e_train"][s, t] = resid @ resid / (2 * n)
            w = w + eta * X.T @ resid / math.sqrt(d)
    exact = linear_overlaps(3.0, eta, T)
    n_tests = 3 * (T - 1)  # t = 0 is fixed by construction (M = 0, Q = 1)
    for name, arr in runs.items():
        mean, se = mean_se(arr[:, 1:])
        assert agree(mean, se, seeds - 1, exact[name][1:], 0.0, np.inf, n_tests).all(), (
            name, (mean - exact[name][1:]) / se)


def test_several_units_are_one_unit_along_a():
    one, two = linear_gd(_linear(T=6, a=[1.0])), linear_gd(_linear(P=2, T=6))
    a = two.problem.a
    np.testing.assert_allclose(two.M[:, :, 0], one.M[:, 0, 0][:, None] * a, rtol=1e-14)
    np.testing.assert_array_equal(two.e_train, one.e_train)
    np.testing.assert_allclose(two.e_gen, one.e_gen, rtol=1e-14)
    # a.Q.a is the single unit's Q; the orthogonal direction keeps its initial norm
    np.testing.assert_allclose(np.einsum("j,tjk,k->t", a, two.Q, a), one.Q[:, 0, 0], rtol=1e-14)
    b = np.array([a[1], -a[0]])
    np.testing.assert_allclose(np.einsum("j,tjk,k->t", b, two.Q, b), 1.0, rtol=1e-14)


@pytest.mark.parametrize("change, needs", [
    ({"target": "tanh"}, "target 'linear'"),
    ({"activation": "tanh"}, "activation 'linear'"),
    ({"a": [0.5]}, r"\|a\| = 1"),
    ({"lam": 0.1}, "lam = 0"),
    ({"M0": [[0.1]]}, "M0 = 0"),
    ({"Q0": [[2.0]]}, "Q0 = I"),
    ({"noise": 0.1}, "noise = 0"),
    ({"schedule": dmft.Cyclic(2)}, "the full-batch schedule"),
])
def test_refuses_problems_outside_the_linear_case(change, needs):
    with pytest.raises(ValueError, match=f"the exact linear case needs {needs}"):
        linear_gd(_linear(**{"a": [1.0], **change}))
