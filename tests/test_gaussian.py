"""Gaussian expectations (dmft.gaussian) against closed forms and independent quadratures.

Every reference here is computed independently of the code under test: closed forms written
out in this file, scipy.integrate.quad, or plain numpy grids in rotated coordinates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

import dmft
from dmft import gaussian as G
from solvers.numerics.quadrature_inner import piecewise_exact_nodes

SQ2PI = math.sqrt(2 * math.pi)


def phi(x):
    return np.exp(-0.5 * np.asarray(x) ** 2) / SQ2PI


def arccos_relu(q1, q2, c):
    """E[relu(u1) relu(u2)], (u1, u2) ~ N(0, [[q1, c], [c, q2]]) (Cho & Saul arc-cosine kernel)."""
    rho = np.clip(c / math.sqrt(q1 * q2), -1, 1)
    th = math.acos(rho)
    return math.sqrt(q1 * q2) / (2 * math.pi) * (math.sin(th) + (math.pi - th) * math.cos(th))


def step_step(q1, q2, c):
    """E[1(u1 > 0) 1(u2 > 0)] = (pi - theta) / (2 pi)."""
    return (math.pi - math.acos(np.clip(c / math.sqrt(q1 * q2), -1, 1))) / (2 * math.pi)


def relu_smooth(m, s):
    """E[relu(m + s eps)], eps ~ N(0, 1)."""
    m = np.asarray(m, dtype=float)
    if s == 0:
        return np.maximum(m, 0)
    return m * special.ndtr(m / s) + s * phi(m / s)


def paper_target(z1, z2):
    return np.tanh(z1 + z2**3 - 3 * z2)


def fine_grid(h=0.01, R=9.0):
    z = np.arange(-R, R + h / 2, h)
    w = h * phi(z)
    return z, w


# ------------------------------------------------------------------------------ rules
@pytest.mark.parametrize("kinks", [[0.3], [-0.4, 1.2], [-6.0, -5.5], [-9.0, 9.0], [2.0, 2.0], []])
def test_piecewise_rule_exact_for_cubics_on_every_piece(kinks):
    nk = len(kinks)
    x, w, tails = np.empty(10), np.empty(10), np.empty((4, 2, 4))
    n = piecewise_exact_nodes(np.array(kinks + [0.0]), nk, x, w, tails)
    x, w = x[:n], w[:n]
    edges = [-np.inf] + sorted(kinks) + [np.inf]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        sel = (x >= lo) & (x <= hi)
        for p in range(4):
            exact = integrate.quad(lambda t, p=p: t**p * phi(t), lo, hi, epsabs=0,
                                   epsrel=1e-13, limit=200)[0]
            got = np.sum(w[sel] * x[sel] ** p)
            assert abs(got - exact) <= 1e-9 * abs(exact) + 1e-16, (lo, hi, p, got, exact)


def test_student_noise_factor():
    M = np.array([[0.3, -0.2], [0.1, 0.4]])
    Q = np.array([[1.2, 0.3], [0.3, 0.9]])
    S = G.student_noise_factor(M, Q)
    assert S.shape == (2, 2) and S[0, 1] == 0.0
    np.testing.assert_allclose(S @ S.T, Q - M @ M.T, atol=1e-14)
    # rank deficient: Q = M M^T + v v^T
    v = np.array([[0.5], [0.25]])
    S1 = G.student_noise_factor(M, M @ M.T + v @ v.T)
    assert S1.shape == (2, 1)
    np.testing.assert_allclose(S1 @ S1.T, v @ v.T, atol=1e-14)
    assert G.student_noise_factor(M, M @ M.T).shape == (2, 0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        G.student_noise_factor(M, 0.5 * M @ M.T)


# ---------------------------------------------------------------- engine vs closed forms
@pytest.mark.parametrize("q1,q2,c", [(1.0, 1.0, 0.0), (1.3, 0.7, 0.6), (1.0, 2.0, -1.3),
                                     (0.5, 0.5, 0.5)])  # the last one is singular (rho = 1)
def test_kink_polar_relu_moments_vs_arccos_kernel(q1, q2, c):
    cov = np.array([[q1, c], [c, q2]])
    val, se, desc = G.expect(lambda x: np.column_stack([
        np.maximum(x[:, 0], 0) * np.maximum(x[:, 1], 0), (x[:, 0] > 0) * (x[:, 1] > 0)]),
        cov, kink_rows=(0, 1))
    assert "kink-polar" in desc and np.all(se == 0)
    assert abs(val[0] - arccos_relu(q1, q2, c)) < 1e-12
    assert abs(val[1] - step_step(q1, q2, c)) < 1e-12


def test_pair_moments_closed_forms_vs_generic_engine():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 3))
    Q = (A @ A.T / 3 + 0.2 * np.eye(3))[None]
    for name in ("relu", "erf", "quadratic", "linear"):
        act = dmft.ACTIVATIONS[name]
        closed = G.pair_moments(act, Q)[0]
        kinks = (0, 1) if name == "relu" else ()
        for j in range(3):
            for k in range(3):
                cov = Q[0][np.ix_([j, k], [j, k])]
                # Gauss-Hermite converges slowly for erf(2x)^2: 200 nodes per dimension
                num = G.expect(lambda x, act=act: act(x[:, 0]) * act(x[:, 1]), cov, kinks,
                               n_gh=200)[0]
                assert abs(closed[j, k] - num) < 1e-10, (name, j, k)


def test_tanh_pair_moment_vs_nested_quad():
    q1, q2, c = 1.4, 0.8, 0.5
    # u2 | u1 ~ N(c u1 / q1, q2 - c^2 / q1)
    s2 = math.sqrt(q2 - c * c / q1)

    def inner(u1):
        return integrate.quad(lambda e: np.tanh(c * u1 / q1 + s2 * e) * phi(e), -12, 12,
                              epsabs=1e-14, epsrel=1e-13)[0]

    ref = integrate.quad(lambda e1: np.tanh(math.sqrt(q1) * e1) * inner(math.sqrt(q1) * e1)
                         * phi(e1), -12, 12, epsabs=1e-13, epsrel=1e-12)[0]
    got = G.pair_moments(dmft.ACTIVATIONS["tanh"], np.array([[[q1, c], [c, q2]]]))[0, 0, 1]
    assert abs(got - ref) < 1e-10


def test_tanh_cross_moment_vs_quad():
    """E[tanh(z) tanh(u)] with (u, z) ~ N(0, [[q, m], [m, 1]]), generic inner rule (tanh)."""
    m, q = 0.6, 1.1
    s = math.sqrt(q - m * m)

    def inner(z):
        return integrate.quad(lambda e: np.tanh(m * z + s * e) * phi(e), -12, 12,
                              epsabs=1e-14, epsrel=1e-13)[0]

    ref = integrate.quad(lambda z: np.tanh(z) * inner(z) * phi(z), -12, 12, epsabs=1e-13,
                         epsrel=1e-12)[0]
    prob = dmft.Problem(target="tanh", P=1, activation="tanh")
    got, se = G.cross_moments(prob, np.array([[[m]]]), np.array([[[q]]]))
    assert se[0, 0] == 0 and abs(got[0, 0] - ref) < 1e-10


# --------------------------------------------------------------------------- gen_error
def test_linear_student_linear_target_gen_error_exact():
    rng = np.random.default_rng(0)
    prob = dmft.Problem(target="linear", P=2, activation="linear")
    T = 5
    M = 0.5 * rng.standard_normal((T, 2, 1))
    B = rng.standard_normal((T, 2, 2))
    Q = M @ M.transpose(0, 2, 1) + 0.3 * B @ B.transpose(0, 2, 1)
    a = prob.a
    expected = 0.5 * (1 - 2 * (M[..., 0] @ a) + np.einsum("j,tjk,k->t", a, Q, a))
    e, se = G.gen_error(prob, M, Q)
    np.testing.assert_allclose(e, expected, rtol=0, atol=1e-13)
    assert np.all(se == 0)
    # label noise: test error against noisy labels adds noise / 2
    e_noisy, _ = G.gen_error(prob.replace(noise=0.3), M, Q)
    np.testing.assert_allclose(e_noisy, expected + 0.15, rtol=0, atol=1e-13)


def _relu_gen_error_reference(a, M, Q):
    """Paper target, ReLU: closed-form smoothing over u | z and arc-cosine kernels, z on a fine
    grid (independent of the code under test)."""
    z, w = fine_grid(0.01)
    Z1, Z2 = np.meshgrid(z, z, indexing="ij")
    W = np.outer(w, w)
    Y = paper_target(Z1, Z2)
    P = len(a)
    cross = np.empty(P)
    for j in range(P):
        s = math.sqrt(max(Q[j, j] - M[j] @ M[j], 0.0))
        cross[j] = np.sum(W * Y * relu_smooth(M[j, 0] * Z1 + M[j, 1] * Z2, s))
    pairs = np.array([[arccos_relu(Q[j, j], Q[k, k], Q[j, k]) for k in range(P)]
                      for j in range(P)])
    return 0.5 * (np.sum(W * Y * Y) - 2 * a @ cross + a @ pairs @ a)


def test_relu_gen_error_paper_setting_vs_independent_computation():
    prob = dmft.Problem()  # paper setting: tanh-he1-he3, P = 2, ReLU
    pts = [(np.zeros((2, 2)), np.eye(2)),
           (np.array([[0.28, -0.24], [-0.28, 0.24]]), np.array([[0.65, 0.21], [0.21, 0.65]])),
           (np.array([[0.3, -0.1], [-0.25, 0.15]]), np.array([[1.2, 0.3], [0.3, 1.1]])),
           (np.array([[0.6, 0.0], [0.0, 0.5]]), np.array([[0.5, 0.1], [0.1, 0.4]]))]
    M = np.array([p[0] for p in pts])
    Q = np.array([p[1] for p in pts])
    e, se = G.gen_error(prob, M, Q)
    ref = np.array([_relu_gen_error_reference(prob.a, m, q) for m, q in pts])
    np.testing.assert_allclose(e, ref, rtol=0, atol=1e-9)
    assert np.all(se == 0)


def test_relu_gen_error_singular_omega_q_equals_m_mt():
    """Q = M M^T: u = M z exactly (kink in z-space, kink-polar fallback)."""
    prob = dmft.Problem(target="tanh", P=1)
    m = 0.7
    e, _ = G.gen_error(prob, np.array([[[m]]]), np.array([[[m * m]]]))
    ref = integrate.quad(lambda z: 0.5 * (np.tanh(z) - max(m * z, 0.0)) ** 2 * phi(z),
                         -12, 12, points=[0.0], epsabs=1e-14, epsrel=1e-12)[0]
    assert abs(e[0] - ref) < 1e-8
    # P = 2 with one singular unit and one regular one, paper target
    prob2 = dmft.Problem()
    M = np.array([[0.5, -0.3], [0.1, 0.2]])
    Q = np.array([[0.34, 0.0], [0.0, 1.0]])  # Q_00 = |M_0|^2
    Q[0, 1] = Q[1, 0] = M[0] @ M[1]  # unit 0 entirely in the teacher span
    e2, _ = G.gen_error(prob2, M[None], Q[None])
    assert abs(e2[0] - _relu_gen_error_reference(prob2.a, M, Q)) < 1e-9


@pytest.mark.parametrize("ratio", [0.3, 0.15, 0.1, 0.05, 0.02, 0.0])
def test_relu_cross_moment_nearly_sharp_kink_along_a_grid_axis(ratio):
    """s_j / |M_j| small with M_j along a z-axis (worst case for a grid rule): He2 target."""
    prob = dmft.Problem(target="he2", P=1)
    m = 0.6
    s = ratio * m
    if s > 0:
        f = lambda z: (z * z - 1) * relu_smooth(m * z, s) * phi(z)  # noqa: E731
    else:
        f = lambda z: (z * z - 1) * max(m * z, 0.0) * phi(z)  # noqa: E731
    ref = integrate.quad(f, -12, 12, points=[0.0], epsabs=1e-14, epsrel=1e-13, limit=500)[0]
    got, se = G.cross_moments(prob, np.array([[[m]]]), np.array([[[m * m + s * s]]]))
    assert se[0, 0] == 0 and abs(got[0, 0] - ref) < 1e-9


def test_gen_error_validation():
    prob = dmft.Problem()
    with pytest.raises(ValueError, match="shape"):
        G.gen_error(prob, np.zeros((3, 2, 1)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        G.gen_error(prob, np.zeros((3, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="finite"):
        G.gen_error(prob, np.full((1, 2, 2), np.nan), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="not a valid overlap"):
        G.gen_error(prob, np.ones((1, 2, 2)), np.eye(2)[None])


def test_quadrature_options_validation():
    with pytest.raises(ValueError, match="method"):
        G.QuadratureOptions(method="exact")
    with pytest.raises(ValueError, match="z_h"):
        G.QuadratureOptions(z_h=0.0)
    with pytest.raises(ValueError, match="qmc_replicas"):
        G.QuadratureOptions(qmc_replicas=1)
    with pytest.raises(TypeError, match="unknown quadrature option"):
        G.QuadratureOptions.from_kwargs(None, nodes=3)


# -------------------------------------------------------------------------------- QMC
def test_qmc_path_within_its_standard_error():
    q1, q2, c = 1.3, 0.7, 0.6
    cov = np.array([[q1, c], [c, q2]])
    val, se, desc = G.expect(lambda x: np.maximum(x[:, 0], 0) * np.maximum(x[:, 1], 0), cov,
                             (0, 1), method="qmc", qmc_log2=12, qmc_replicas=16, seed=5)
    assert "qmc" in desc and 0 < se < 1e-3
    assert abs(val - arccos_relu(q1, q2, c)) < 4 * se
    # a smooth 4-D integrand: QMC vs tensor Gauss-Hermite
    A = np.random.default_rng(1).standard_normal((4, 4))
    cov4 = A @ A.T / 4 + 0.1 * np.eye(4)

    def f(x):
        return np.tanh(x[:, 0] + x[:, 1] * x[:, 2]) * np.cos(x[:, 3])

    gh, gh_se, gh_desc = G.expect(f, cov4, (), n_gh=30)
    assert "gauss-hermite" in gh_desc and gh_se == 0
    q, q_se, _ = G.expect(f, cov4, (), method="qmc", qmc_log2=14, seed=2)
    assert abs(q - gh) < 4 * q_se


# ------------------------------------------------------------------------ target moments
def test_target_moments_paper_target_vs_fine_grid():
    z, w = fine_grid(0.005)
    Z1, Z2 = np.meshgrid(z, z, indexing="ij")
    W = np.outer(w, w)
    Y = paper_target(Z1, Z2)
    mom = G.target_moments("tanh-he1-he3")
    assert abs(mom["second"] - np.sum(W * Y * Y)) < 1e-10
    np.testing.assert_allclose(mom["C1"], [np.sum(W * Y * Z1), np.sum(W * Y * Z2)], atol=1e-10)


def test_first_hermite_paper_target_vs_nested_quad():
    """C_1 = (E[tanh(z1 + He3(z2)) z1], E[... z2]) by nested scipy quad."""

    def inner(z2, k):
        c = z2**3 - 3 * z2
        pts = [-c] if abs(c) < 9 else None
        f = (lambda z1: np.tanh(z1 + c) * z1 * phi(z1)) if k == 0 else \
            (lambda z1: np.tanh(z1 + c) * z2 * phi(z1))
        return integrate.quad(f, -9, 9, points=pts, epsabs=1e-14, epsrel=1e-12, limit=200)[0]

    roots = [-math.sqrt(3), 0.0, math.sqrt(3)]
    ref = [integrate.quad(lambda z2, k=k: inner(z2, k) * phi(z2), -9, 9, points=roots,
                          epsabs=1e-13, epsrel=1e-11, limit=400)[0] for k in range(2)]
    c1 = dmft.first_hermite("tanh-he1-he3")
    assert c1.shape == (2,)
    np.testing.assert_allclose(c1, ref, atol=1e-9)
    # |M_1 row| = eta alpha |a_j| E[sigma'] |C_1| = 0.0988 in the paper setting
    # (docs/theory/learnability.md)
    assert abs(0.2 * 3 / math.sqrt(2) * 0.5 * np.linalg.norm(c1) - 0.0988) < 5e-5


def test_first_hermite_polynomial_and_symmetric_targets():
    assert abs(dmft.first_hermite("he3")[0]) < 1e-12
    assert abs(dmft.first_hermite("he2")[0]) < 1e-12
    assert abs(dmft.first_hermite("he4")[0]) < 1e-12
    np.testing.assert_allclose(dmft.first_hermite("linear"), [1.0], atol=1e-12)
    np.testing.assert_allclose(dmft.first_hermite("staircase"), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(dmft.first_hermite("staircase2"), [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(dmft.first_hermite("z1z2z3-he3"), np.zeros(4), atol=1e-12)
    # tanh: E[tanh(z) z] = E[1 - tanh(z)^2] (Stein), by quad
    ref = integrate.quad(lambda z: (1 - np.tanh(z) ** 2) * phi(z), -12, 12, epsabs=1e-14)[0]
    assert abs(dmft.first_hermite("tanh")[0] - ref) < 1e-12
    # user target
    tgt = dmft.Target(lambda z: np.sin(z[0]) + 2 * z[1], K=2, name="sin-lin")
    np.testing.assert_allclose(dmft.first_hermite(tgt), [math.exp(-0.5), 2.0], atol=1e-12)
