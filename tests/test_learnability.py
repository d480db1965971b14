"""Learnability analysis (docs/theory/learnability.md): quadrature, Hermite coefficients,
exponents, M_1, verdicts.

References are independent of the code under test: Gaussian moments and Hermite algebra in
closed form, scipy's adaptive 1-D quadrature, brute force over orderings, and a Monte Carlo
of the first GD step that calls the shared loss kernel (solvers.numerics.committee).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e as He
from scipy import integrate

import dmft
from dmft import learnability as L
from dmft.cli import build_parser, main
from dmft.targets import TARGETS, Target, hermite


def _phi(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _quad_1d(f):
    """E[f(x)], x ~ N(0,1), by adaptive quadrature on both half-lines."""
    lo = integrate.quad(lambda x: f(x) * _phi(x), -np.inf, 0, epsabs=1e-13, epsrel=1e-12)[0]
    hi = integrate.quad(lambda x: f(x) * _phi(x), 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    return lo + hi


def _tanh_hermite(k):
    """E[tanh(x) He_k(x)] / sqrt(k!) by adaptive quadrature."""
    return _quad_1d(lambda x: math.tanh(x) * float(hermite(k, np.array(x)))) / math.sqrt(
        math.factorial(k))


def _gauss_expect_poly(coeffs_power):
    """E[p(x)] for p given by power-series coefficients (E[x^2m] = (2m-1)!!)."""
    return sum(c * (math.prod(range(k - 1, 0, -2)) if k % 2 == 0 else 0.0)
               for k, c in enumerate(coeffs_power))


# ------------------------------------------------------------------ reports, computed once
@pytest.fixture(scope="module")
def reports():
    return {name: L.analyze(name) for name in
            ("he2", "he3", "he4", "tanh", "staircase", "tanh-sum", "tanh-he1-he3", "z1z2z3-he3")}


# ------------------------------------------------------------------ quadrature
def test_gaussian_grid_integrates_polynomials_exactly():
    z, w = L.gaussian_grid(3, 6)
    assert z.shape == (3, 216) and w.shape == (216,)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    # E[z1^4 z2^2 z3^0] = 3 * 1; E[z1^10] = 945 needs 2n - 1 >= 10
    assert w @ (z[0] ** 4 * z[1] ** 2) == pytest.approx(3.0, rel=1e-12)
    assert w @ z[2] ** 10 == pytest.approx(945.0, rel=1e-12)
    assert abs(w @ (z[0] * z[1] ** 2)) < 1e-14


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (5, ValueError), (2.5, ValueError),
                                      (True, TypeError), ("2", TypeError)])
def test_gaussian_grid_rejects_bad_K(bad, exc):
    with pytest.raises(exc, match="K must be"):
        L.gaussian_grid(bad, 10)


def test_gaussian_grid_accepts_integral_floats():
    """As every integer argument of the package (dmft.validation): 2.0 means 2."""
    z, w = L.gaussian_grid(2.0, 10.0)
    z_int, w_int = L.gaussian_grid(2, 10)
    np.testing.assert_array_equal(z, z_int)
    np.testing.assert_array_equal(w, w_int)
    with pytest.raises(ValueError, match="n must be"):
        L.gaussian_grid(2, 1)


def test_quadrature_error_estimate_bounds_the_actual_error():
    """For the hard (non-polynomial) paper target, the reported error (largest difference to the
    rules with ~3n/4 and ~n/2 nodes) must bound the actual error, measured against a much finer
    rule, also in the pre-asymptotic regime."""
    tgt = TARGETS["tanh-he1-he3"]
    for v in ([0.3, -1.0], [1.0, 0.0], [0.0, 1.0]):
        ref, ref_err = L.hermite_coefficients(tgt, v, degree=5, nodes=1200)
        assert np.all(ref_err < 1e-7)
        for n in (60, 100, 160, 240):
            coef, err = L.hermite_coefficients(tgt, v, degree=5, nodes=n)
            actual = np.abs(coef - ref)
            assert np.all(actual <= err + 1e-12), (v, n, actual, err)
            assert actual.max() > 1e-7  # the rule is visibly inexact: the check is not vacuous


def test_first_hermite_agrees_with_an_independent_rule():
    """The report's C_1 (Gauss-Hermite) vs scipy's 2-D adaptive quadrature of E[g* z1]."""
    rep = L.analyze("tanh-he1-he3", max_degree=1, leap_degree=1, k_max=1, cond_degree=0)

    def integrand(z2, z1, i):
        g = math.tanh(z1 + z2**3 - 3 * z2)
        return g * (z1, z2)[i] * _phi(z1) * _phi(z2)

    assert rep.C1_error.max() < 1e-5
    for i in range(2):
        val = integrate.dblquad(integrand, -9, 9, -9, 9, args=(i,), epsabs=1e-11)[0]
        assert abs(rep.C1[i] - val) <= rep.C1_error[i] + 1e-9


def test_report_C1_agrees_with_the_shared_first_hermite(reports):
    """The report's C_1 (tensor Gauss-Hermite) vs dmft.first_hermite (trapezoid / structured
    rule of dmft.gaussian): two independent rules agree within the reported error."""
    for name, rep in reports.items():
        shared = dmft.first_hermite(name)
        assert np.all(np.abs(rep.C1 - shared) <= rep.C1_error + 1e-9), name


# ------------------------------------------------------------------ Hermite coefficients
def test_hermite_coefficients_of_he3_are_exact():
    coef, err = L.hermite_coefficients("he3", [1.0], degree=6)
    expected = np.zeros(7)
    expected[3] = math.sqrt(6.0)  # E[He3^2] / sqrt(3!) = 6 / sqrt(6)
    np.testing.assert_allclose(coef, expected, atol=1e-10)
    assert err.max() < 1e-10


def test_hermite_coefficients_of_tanh_match_adaptive_quadrature():
    coef, _ = L.hermite_coefficients("tanh", [2.0], degree=5)  # v is normalised
    for k in range(6):
        assert coef[k] == pytest.approx(_tanh_hermite(k), abs=1e-10)


@pytest.mark.parametrize("theta", [0.0, 0.4, 1.1, math.pi / 2])
def test_hermite_coefficients_along_rotated_direction(theta):
    """g = z1 + z1 z2 along v = (cos, sin): c_1 = cos, c_2 = sqrt(2) cos sin, rest 0 (Hermite
    algebra: E[z1 z2 <v,z>^2] = 2 v1 v2)."""
    c, s = math.cos(theta), math.sin(theta)
    coef, _ = L.hermite_coefficients("staircase", [c, s], degree=4)
    np.testing.assert_allclose(coef, [0.0, c, math.sqrt(2) * c * s, 0.0, 0.0], atol=1e-12)


def test_tensor_coefficients_staircase_and_tanh_sum():
    exp = L.hermite_tensor_coefficients("staircase", degree=3)
    coef = dict(zip(map(tuple, exp.indices), exp.coef, strict=True))
    for alpha, c in coef.items():
        want = 1.0 if alpha in ((1, 0), (1, 1)) else 0.0
        assert c == pytest.approx(want, abs=1e-12), alpha
    assert exp.support() == [(1, 0), (1, 1)]

    exp = L.hermite_tensor_coefficients("tanh-sum", degree=4)
    for alpha, c in zip(map(tuple, exp.indices), exp.coef, strict=True):
        if alpha[1] == 0 and alpha[0] > 0:
            want = _tanh_hermite(alpha[0])
        elif alpha[0] == 0 and alpha[1] > 0:
            want = _tanh_hermite(alpha[1])
        else:
            want = 0.0
        assert c == pytest.approx(want, abs=1e-9), alpha


def test_tensor_coefficients_parseval_in_a_rotated_basis():
    """z1 + z1 z2 has degree 2, so in ANY orthonormal basis the squared coefficients up to
    degree 2 sum to E[g^2] = 2 and higher ones vanish."""
    th = 0.7
    B = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    exp = L.hermite_tensor_coefficients("staircase", degree=4, basis=B)
    deg = exp.indices.sum(axis=1)
    assert np.sum(exp.coef[deg <= 2] ** 2) == pytest.approx(2.0, rel=1e-12)
    assert np.abs(exp.coef[deg > 2]).max() < 1e-12
    with pytest.raises(ValueError, match="orthonormal"):
        L.hermite_tensor_coefficients("staircase", degree=2, basis=2 * B)


@pytest.mark.parametrize("name", ["tanh-he1-he3", "z1z2z3-he3", "tanh-sum"])
def test_coefficients_along_a_direction_from_the_tensor_expansion(name):
    """The Hermite addition formula used by the report agrees with direct quadrature along v."""
    K = TARGETS[name].K
    v = np.random.default_rng(5).standard_normal(K)
    exp = L.hermite_tensor_coefficients(name, degree=5)
    via, via_err = exp.along(v)
    direct, direct_err = L.hermite_coefficients(name, v, degree=5)
    np.testing.assert_allclose(via, direct, rtol=0, atol=1e-12)
    assert np.all(via_err >= direct_err - 1e-15)  # triangle inequality: never smaller


@pytest.mark.parametrize("name, v, ie", [
    ("he3", [1.0], 3), ("he4", [1.0], 4), ("he2", [1.0], 2), ("tanh", [1.0], 1),
    ("staircase", [1.0, 0.0], 1), ("staircase", [0.0, 1.0], None),
    ("z1z2z3-he3", [0, 0, 0, 1.0], 3), ("z1z2z3-he3", [1.0, 0, 0, 0], None),
    ("tanh-sum", [1.0, -1.0], None), ("tanh-sum", [1.0, 1.0], 1),
])
def test_information_exponent(name, v, ie):
    assert L.information_exponent(name, v) == ie


def test_information_exponent_beyond_max_degree_is_none():
    assert L.information_exponent("he4", [1.0], max_degree=3) is None


# ------------------------------------------------------------------ leap
def _brute_force_leap(S):
    best = None
    for order in itertools.permutations(S):
        reached, worst = set(), 0
        for alpha in order:
            worst = max(worst, sum(a for k, a in enumerate(alpha) if k not in reached))
            reached |= {k for k, a in enumerate(alpha) if a}
        best = worst if best is None else min(best, worst)
    return best


@pytest.mark.parametrize("S, leap", [
    ([(1, 0), (1, 1)], 1), ([(3,)], 3), ([(1, 1, 1, 0), (0, 0, 0, 3)], 3),
    ([(2, 0), (1, 1)], 2), ([(1, 0, 0), (1, 1, 0), (0, 1, 2)], 2), ([(0, 2), (2, 0)], 2),
])
def test_leap_of_support_examples(S, leap):
    got, order = L.leap_of_support(S)
    assert got == leap == _brute_force_leap(S)
    assert sorted(order) == sorted(S)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 3)] * 3).filter(lambda a: sum(a) > 0),
                min_size=1, max_size=5, unique=True))
def test_leap_of_support_matches_brute_force(S):
    assert L.leap_of_support(S)[0] == _brute_force_leap(S)


def test_leap_of_empty_support_is_none():
    assert L.leap_of_support([]) == (None, [])
    assert L.leap_of_support([(0, 0)]) == (None, [])


@pytest.mark.parametrize("name, leap", [
    ("he3", 3), ("he4", 4), ("he2", 2), ("staircase", 1), ("z1z2z3-he3", 3), ("tanh-sum", 1),
    ("tanh-he1-he3", 1),
])
def test_leap_exponent_of_paper_targets(name, leap):
    res = L.leap_exponent(name, degree=4)
    assert res.leap == leap and res.complete


def test_leap_flags_truncation():
    res = L.leap_exponent("he4", degree=3)
    assert res.leap is None and res.undetected == (0,) and not res.complete


def test_leap_depends_on_the_basis(reports):
    """tanh z1 + tanh z2: leap 1 in the standard basis, 2 in the (e1 + e2, e1 - e2) basis, where
    the second coordinate only appears at even degree."""
    rep = reports["tanh-sum"]
    assert rep.leap_standard.leap == 1
    assert rep.leap_learning.leap == 2


# ------------------------------------------------------------------ step-1 overlap
@pytest.mark.parametrize("act, q", [("relu", 0.3), ("relu", 2.0), ("tanh", 1.0), ("erf", 0.5),
                                    ("erf", 2.0), ("quadratic", 1.5), ("linear", 0.7)])
def test_mean_activation_derivative(act, q):
    got = L.mean_activation_derivative(act, q)
    if act == "relu":
        want = 0.5
    elif act == "erf":  # E[2/sqrt(pi) exp(-h^2)], h ~ N(0, q)
        want = 2 / math.sqrt(math.pi) / math.sqrt(1 + 2 * q)
    elif act == "quadratic":
        want = 0.0
    elif act == "linear":
        want = 1.0
    else:  # Stein: E[tanh'(z)] = E[tanh(z) z], computed by a different route
        want = _quad_1d(lambda x: math.tanh(x) * x)
    assert got == pytest.approx(want, abs=1e-10)


def test_step1_overlap_paper_value():
    """docs/theory/learnability.md: alpha 3, eta 0.2, ReLU, tanh(z1 + He3(z2)),
    a = +-1/sqrt(2): |M_1 row| = 0.0988."""
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2)
    M1 = L.step1_overlap(prob)
    np.testing.assert_allclose(np.linalg.norm(M1, axis=1), 0.0988, atol=5e-5)
    np.testing.assert_allclose(
        M1, L.step1_overlap("tanh-he1-he3", "relu", prob.a, 3.0, 0.2), rtol=0, atol=1e-14)


@pytest.mark.parametrize("target, act", [("tanh-he1-he3", "relu"), ("staircase", "tanh"),
                                         ("tanh-sum", "softplus")])
def test_step1_overlap_matches_monte_carlo_of_the_gd_step(target, act):
    """M_1 = -eta alpha E[F(h0, y) z^T], h0 ~ N(0, Q0), z ~ N(0, I): Monte Carlo with the shared
    loss kernel, asymmetric second layer and a non-identity Q0; |diff| < 4 SE (P K entries)."""
    from solvers.numerics.committee import batch_F

    P, alpha, eta = 3, 2.5, 0.3
    a = np.array([0.8, -0.3, 0.5])
    Q0 = np.array([[0.5, 0.1, 0.0], [0.1, 2.0, 0.3], [0.0, 0.3, 1.0]])
    prob = dmft.Problem(target=target, P=P, activation=act, alpha=alpha, eta=eta, a=a, Q0=Q0)
    closed = L.step1_overlap(prob)

    rng = np.random.default_rng(np.random.SeedSequence(11))
    S = 400_000
    z = rng.standard_normal((prob.K, S))
    h0 = np.linalg.cholesky(Q0) @ rng.standard_normal((P, S))
    y = prob.target(z)
    sig, dsig, _ = prob.activation.cfuncs()
    F, _ = batch_F(np.ascontiguousarray(h0.T), y, a, sig, dsig, np.ones(S),
                   prob.loss.kernel_args())
    samples = -eta * alpha * F[:, :, None] * z.T[:, None, :]  # (S, P, K)
    mc, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / math.sqrt(S)
    assert np.all(np.abs(closed - mc) < 4 * se), (closed, mc, se)
    assert np.abs(closed).max() > 20 * se.max()  # the comparison has power


def test_step1_overlap_bad_input():
    prob = dmft.Problem(target="tanh", P=1, M0=[[0.1]])
    with pytest.raises(ValueError, match="M0 = 0"):
        L.step1_overlap(prob)
    with pytest.raises(TypeError, match="needs all four"):
        L.step1_overlap("tanh", "relu")
    with pytest.raises(ValueError, match="alpha"):
        L.step1_overlap("tanh", "relu", [1.0], -1.0, 0.1)
    with pytest.raises(TypeError, match="no other model arguments"):
        L.step1_overlap(dmft.Problem(target="tanh", P=1), "relu")


# ------------------------------------------------------------------ moments and subspaces
def test_moment_vectors_of_he3_match_hermite_algebra():
    """E[He3(z)^k z] from numpy's HermiteE algebra (independent): zero for even k."""
    mom, err, scale = L.moment_vectors("he3", k_max=5)
    for k in range(1, 6):
        poly = He.hermepow([0, 0, 0, 1], k)
        poly = He.hermemul(poly, [0, 1])
        want = He.herme2poly(poly)
        assert mom[k - 1, 0] == pytest.approx(_gauss_expect_poly(want), rel=1e-10, abs=1e-8)
    assert mom[2, 0] > 100  # k = 3 is the first non-zero moment
    assert np.all(err < 1e-6 * scale[:, None])


@pytest.mark.parametrize("name, dim", [("he3", 1), ("he4", 0), ("he2", 0), ("staircase", 2),
                                       ("tanh-sum", 1), ("tanh-he1-he3", 2), ("z1z2z3-he3", 1)])
def test_two_step_moment_subspace(name, dim, reports):
    sub = reports[name].moments
    assert sub.dim == dim
    if name == "tanh-sum":
        np.testing.assert_allclose(np.abs(sub.basis[:, 0]), [1 / math.sqrt(2)] * 2, atol=1e-9)
    if name == "z1z2z3-he3":
        np.testing.assert_allclose(np.abs(sub.basis[:, 0]), [0, 0, 0, 1], atol=1e-9)


def test_rank_decisions_are_clear_cut(reports):
    """Every accepted direction is far above the tolerance and every rejected one far below:
    the verdicts do not hinge on the choice of SAFETY or the floor."""
    for name, rep in reports.items():
        subs = [rep.moments] + rep.one_pass.new + rep.multi_pass.new
        for sub in subs:
            if sub.dim:
                assert sub.strength.min() > 1e3 * sub.tol, (name, sub)
            if sub.rejected.size:
                assert sub.rejected.max() < 1e-3 * sub.tol, (name, sub)


# ------------------------------------------------------------------ symmetries
def test_even_symmetry_detection():
    assert L.is_even_symmetric("tanh-sum", [1, -1])
    assert not L.is_even_symmetric("tanh-sum", [1, 1])
    assert L.is_even_symmetric("he4", [1.0]) and L.is_even_symmetric("he2", [1.0])
    assert not L.is_even_symmetric("he3", [1.0])
    # z1 z2 z3: flipping z1 alone changes the sign; swapping z1 <-> -z2 does not
    assert not L.is_even_symmetric("z1z2z3-he3", [1, 0, 0, 0])
    assert L.is_even_symmetric("z1z2z3-he3", [1, 1, 0, 0])


def test_orthogonal_even_partner():
    w = L.orthogonal_even_partner("z1z2z3-he3", [1, 0, 0, 0])
    assert w is not None and abs(w[0]) < 1e-12
    z = np.random.default_rng(3).standard_normal((4, 50))
    g = TARGETS["z1z2z3-he3"]
    Rv = np.diag([-1.0, 1, 1, 1])
    Rw = np.eye(4) - 2 * np.outer(w, w)
    np.testing.assert_allclose(g(Rw @ Rv @ z), g(z), rtol=1e-10, atol=1e-10)
    assert L.orthogonal_even_partner("z1z2z3-he3", [0, 0, 0, 1]) is None
    assert L.orthogonal_even_partner("he3", [1.0]) is None


def test_student_symmetry_classes():
    got = {a: (s.sigma, s.dsigma) for a in dmft.ACTIVATIONS
           for s in [L.student_symmetry(a)]}
    assert got == {"relu": (None, "const+odd"), "tanh": ("odd", "even"), "erf": ("odd", "even"),
                   "linear": ("odd", "constant"), "softplus": (None, "const+odd"),
                   "quadratic": ("even", "odd")}


# ------------------------------------------------------------------ acceptance verdicts
def test_he3(reports):
    d = reports["he3"].direction("e1")
    assert d.information_exponent == 3
    assert d.multi_pass_step == 2 and d.one_pass_step is None
    assert d.first_moment == 3


@pytest.mark.parametrize("name", ["he2", "he4"])
def test_he2_he4_never(name, reports):
    d = reports[name].direction("e1")
    assert d.multi_pass_step is None and d.one_pass_step is None
    assert d.even_symmetric


def test_staircase(reports):
    rep = reports["staircase"]
    e1, e2 = rep.direction("e1"), rep.direction("e2")
    assert e1.one_pass_step == e1.multi_pass_step == 1
    assert e2.multi_pass_step == 2 and e2.one_pass_step == 2
    assert e2.information_exponent is None  # e2 only through the staircase / y^2
    assert e2.first_moment == 2


def test_tanh_sum(reports):
    rep = reports["tanh-sum"]
    for name in ("e1", "e2", "C1"):
        assert rep.direction(name).multi_pass_step == 1
    hard = rep.direction("C1_perp")
    np.testing.assert_allclose(np.abs(hard.v), [1 / math.sqrt(2)] * 2, atol=1e-12)
    assert hard.v[0] * hard.v[1] < 0  # e1 - e2
    assert hard.even_symmetric
    assert hard.multi_pass_step is None and hard.one_pass_step is None
    assert "even-symmetric" in hard.multi_pass_reason


def test_tanh_he1_he3(reports):
    rep = reports["tanh-he1-he3"]
    c1 = rep.direction("C1")
    np.testing.assert_allclose(c1.v, rep.C1 / np.linalg.norm(rep.C1), atol=1e-12)
    assert c1.multi_pass_step == 1 and c1.one_pass_step == 1
    perp = rep.direction("C1_perp")
    assert perp.multi_pass_step == 2
    assert perp.information_exponent == 3 and perp.first_moment == 3
    # generic student: the one-pass staircase through E[y He_2(z_C1) z_perp] reaches it too
    assert perp.one_pass_step == 2


def test_z1z2z3_he3(reports):
    rep = reports["z1z2z3-he3"]
    assert rep.direction("e4").multi_pass_step == 2
    assert rep.direction("e4").one_pass_step is None
    for name in ("e1", "e2", "e3"):
        d = rep.direction(name)
        assert d.multi_pass_step is None and d.one_pass_step is None
        assert not d.even_symmetric and d.partner is not None
    np.testing.assert_allclose(np.abs(rep.hard), np.eye(4)[:, :3], atol=1e-12)


def test_student_parities_change_verdicts():
    """ReLU: sigma' - 1/2 is odd, so the one-pass staircase needs odd q(z_U): for
    tanh(z1 + He3(z2)) only even q work (the target is odd), so one-pass never reaches C1_perp;
    multi-pass does. tanh student on z1 + z1 z2: the process is symmetric under
    (z1, y, h) -> -(z1, y, h), so e2 is never learned, even by multi-pass."""
    rep = L.analyze(dmft.Problem(target="tanh-he1-he3", activation="relu"))
    perp = rep.direction("C1_perp")
    assert perp.one_pass_step is None and perp.generic_one_pass_step == 2
    assert perp.multi_pass_step == 2
    rep = L.analyze(dmft.Problem(target="staircase", activation="tanh"))
    e2 = rep.direction("e2")
    assert e2.multi_pass_step is None and e2.one_pass_step is None
    assert e2.generic_multi_pass_step == 2
    assert "parity" in e2.multi_pass_reason
    rep = L.analyze(dmft.Problem(target="staircase", activation="relu"))
    assert rep.direction("e2").one_pass_step == 2


def test_linear_student_learns_only_C1():
    rep = L.analyze(dmft.Problem(target="staircase", activation="linear", P=1))
    assert rep.direction("e2").multi_pass_step is None


def test_report_prints_every_direction(reports):
    text = str(reports["tanh-he1-he3"])
    for token in ("C1_perp", "learned, step 2", "leap exponent", "quadrature error", "reasons"):
        assert token in text
    text = str(reports["z1z2z3-he3"])
    assert "orthogonally-even-symmetric" in text and "never (hard)" in text


def test_report_direction_lookup_and_verdict(reports):
    rep = reports["staircase"]
    with pytest.raises(KeyError):
        rep.direction("nope")
    assert rep.verdict([1.0, 1.0]) == (1, 1)
    assert rep.verdict([0.0, 1.0]) == (2, 2)


def test_user_target_and_bad_input():
    tgt = Target(lambda z: np.abs(z[0]) + z[1] * z[0] ** 2, 2, "user")
    rep = L.analyze(tgt, nodes=64)
    assert rep.direction("e2").multi_pass_step == 1  # E[g z2] = E[z1^2] = 1
    with pytest.raises(ValueError, match="k_max"):
        L.analyze("he3", k_max=0)
    with pytest.raises(ValueError, match="nodes"):
        L.analyze("he3", nodes=3)
    with pytest.raises(ValueError, match="K must be"):
        L.analyze(Target(lambda z: z[0], 5, "big"))
    with pytest.raises(ValueError, match="direction|v must"):
        L.hermite_coefficients("he3", [0.0])


# ------------------------------------------------------------------ CLI
def test_cli_analyze(capsys):
    assert "analyze" in build_parser().format_help()
    assert main(["analyze", "he3"]) == 0
    out = capsys.readouterr().out
    assert "learned, step 2" in out and "M_1" in out
    assert main(["analyze", "he4", "--generic"]) == 0
    out = capsys.readouterr().out
    assert "never (hard)" in out and "generic" in out
