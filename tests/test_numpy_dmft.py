"""Tests of the plain-numpy multi-pass DMFT (benchmarks/numpy_dmft.py) against the mathematics.

Every statistical check compares with an independent number (an exact formula, an analytic
value, published or freshly run finite-d simulations, or the other estimator) with a
tolerance of k combined standard errors. Standard errors come from B fully independent
sub-solves (``solve_numpy_replicas``), so they include the kernels' own noise. k = 3 for a
handful of comparisons and k = 4 where one test makes dozens (team rule).
"""

from __future__ import annotations

from math import pi

import numpy as np
import pytest

import dmft
from benchmarks.numpy_dmft import psd_cholesky_extend, solve_numpy, solve_numpy_replicas
from dmft import Bernoulli, Cyclic, Problem
from dmft.stats import agree, dof_from_provenance, mean_se, z_scores
from solvers.numerics.gauss_hermite import gauss_hermite


def _z(diff: np.ndarray, se: np.ndarray) -> np.ndarray:
    """diff / se; entries that are exactly 0 with se = 0 give 0, others +-inf."""
    return z_scores(diff, se, 0.0, 0.0)


def _paired_z(runs_a: list[dict], runs_b: list[dict], key: str) -> np.ndarray:
    """z-scores of the mean paired difference of ``key`` over replicas sharing random draws."""
    return _z(*mean_se(np.stack([a[key] - b[key] for a, b in zip(runs_a, runs_b, strict=True)])))


# ------------------------------------------------------------------------------ exact linear case
@pytest.mark.parametrize(
    ("P", "estimator"),
    [(1, "stein"), (2, "stein"), (2, "pathwise")],
)
def test_linear_case_matches_marchenko_pastur(P, estimator, linear_exact):
    # A linear student with P units and |a| = 1 is the P = 1 linear model in the direction a,
    # so 2 e_train(t) is the same MP formula. For P = 2, F is always parallel to a: C is rank
    # one, which exercises the semi-definite Cholesky and the Stein pseudo-inverse.
    problem = Problem(target="linear", P=P, activation="linear", alpha=3.0, eta=0.2, T=7)
    mean, se = solve_numpy_replicas(problem, 32 * 40_000, seed=11, replicas=32,
                                    estimator=estimator)
    exact = linear_exact.e_train[:7]  # dmft.exact, docs/validation.md
    # 7 entries, SEs from 32 replicas: family-wise 3 sigma with Student-t tails
    ok = agree(mean["e_train"], se["e_train"], 32 - 1, exact, 0.0, np.inf, n_tests=7)
    assert ok.all(), _z(mean["e_train"] - exact, se["e_train"])


# ------------------------------------------------------------------------------ smooth case
def test_smooth_tanh_case_matches_simulations():
    # docs/validation.md (a smooth nonlinear case): d = 3000, 12 seeds. Dropping sigma'' gives
    # 0.7105 at t = 2 (25 SE away) and independent noise per step 0.8660 at t = 5 (34 SE
    # away), so this test separates them.
    problem = Problem(target="tanh", P=1, activation="tanh", a=[1.0], alpha=3.0, eta=0.5, T=6)
    mean, se = solve_numpy_replicas(problem, 16 * 60_000, seed=3, replicas=16)
    sims = {2: (0.7569, 0.0019), 3: (0.8336, 0.0011), 5: (0.8934, 0.0008)}
    for t, (m_sim, se_sim) in sims.items():
        z = (mean["M"][t, 0, 0] - m_sim) / np.hypot(se_sim, se["M"][t, 0, 0])
        assert abs(z) < 3, (t, mean["M"][t, 0, 0], z)


# ------------------------------------------------------------------------------ two estimators
def test_stein_and_pathwise_agree_for_tanh_committee():
    # Asymmetric a makes J non-symmetric under exchange of units, so the order of the
    # product in R = alpha E[J chi] matters: with E[chi J] instead, R differs by ~27 SE here.
    problem = Problem(target="tanh-he1-he3", P=2, activation="tanh", a=[1.0, -0.5],
                      alpha=3.0, eta=0.5, T=6)
    seeds = np.random.SeedSequence(5).spawn(32)
    stein = [solve_numpy(problem, 25_000, s, "stein") for s in seeds]
    stein_exact = [solve_numpy(problem, 25_000, s, "stein", stein_cw="exact") for s in seeds]
    pathwise = [solve_numpy(problem, 25_000, s, "pathwise") for s in seeds]
    for key in ("M", "Lam", "R", "Q"):
        z = _paired_z(stein, pathwise, key)
        assert np.all(np.abs(z) < 4), (key, np.abs(z).max())
        z = _paired_z(stein, stein_exact, key)
        assert np.all(np.abs(z) < 4), ("stein_cw", key, np.abs(z).max())


# ------------------------------------------------------------------------------ paper ReLU case
@pytest.fixture(scope="module")
def relu_paper_runs():
    problem = Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    seeds = np.random.SeedSequence(2).spawn(16)
    return [solve_numpy(problem, 100_000, s, "stein") for s in seeds]


def _mean_se(runs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    return mean_se(np.stack([run[key] for run in runs]))


def test_relu_lambda0_matches_analytic_value(relu_paper_runs):
    # alpha E[J(0)] with h(0) ~ N(0, I): Gauss-Newton part alpha a_j a_k E[s'(h_j) s'(h_k)]
    # (1/2 on, 1/4 off the diagonal), Dirac part -alpha a_j phi(0) E[y - f | h_j = 0]
    # = alpha a_j a_k / (2 pi) on the diagonal (k the other unit, E[y] = 0 by oddness).
    lam0, se = _mean_se(relu_paper_runs, "Lam")
    a_sq = 0.5
    expected = 3.0 * np.array([[a_sq / 2 - a_sq / (2 * pi), -a_sq / 4],
                               [-a_sq / 4, a_sq / 2 - a_sq / (2 * pi)]])
    np.testing.assert_allclose(expected, [[0.5113, -0.375], [-0.375, 0.5113]], atol=5e-5)
    z = (lam0[0] - expected) / se[0]
    assert np.all(np.abs(z) < 3), z


def test_relu_R10_matches_reference(relu_paper_runs):
    R, se = _mean_se(relu_paper_runs, "R")
    z = (np.diag(R[1, 0]) - 0.200) / np.hypot(0.002, np.diag(se[1, 0]))
    assert np.all(np.abs(z) < 3), (np.diag(R[1, 0]), z)


def _check_overlaps_against_d5000(runs, pairs):
    # 24 entries, SEs from 16 replicas and 32 seeds: family-wise 3 sigma with Student-t tails
    for key, sims in pairs:
        dmft_mean, dmft_se = _mean_se(runs, key)
        sim_mean, sim_se = mean_se(sims)
        # t = 0 is the initial condition, identical on both sides
        ok = agree(dmft_mean[1:], dmft_se[1:], len(runs) - 1, sim_mean[1:], sim_se[1:],
                   sims.shape[0] - 1, n_tests=24)
        z = (dmft_mean[1:] - sim_mean[1:]) / np.hypot(dmft_se[1:], sim_se[1:])
        assert ok.all(), (key, np.abs(z).max())


def test_relu_overlaps_match_own_d5000_simulations(relu_paper_runs, paper_sims_d5000):
    _check_overlaps_against_d5000(relu_paper_runs, (("M", paper_sims_d5000["M_d5000"]),
                                                    ("Q", paper_sims_d5000["Q_d5000"])))


def test_relu_overlaps_match_authors_simulations(relu_paper_runs, authors_sims_d5000):
    _check_overlaps_against_d5000(relu_paper_runs, (("M", authors_sims_d5000["magnetisation_list"]),
                                                    ("Q", authors_sims_d5000["norm_list"])))


def test_noise_has_full_cross_time_covariance(relu_paper_runs):
    # The Monte Carlo covariance of the cavity field w (built from the sampled zeta) must equal
    # the deterministic Qperp recursion, which uses C(t, s) for all pairs: drawing the noise
    # afresh each step (error 1 of docs/theory/authors-script.md) breaks the cross-time blocks.
    T = relu_paper_runs[0]["Cw"].shape[0]
    diff = np.stack([run["Cw"] - run["Qperp"] for run in relu_paper_runs])
    z = _z(*mean_se(diff))
    assert np.all(np.abs(z) < 4), np.abs(z).max()
    # and the comparison has something to detect: later noise is correlated with earlier
    qperp = np.mean([run["Qperp"] for run in relu_paper_runs], axis=0)
    assert np.abs(qperp[T - 1, 1]).max() > 0.1


@pytest.mark.slow
def test_sharp_case_matches_extrapolated_simulations(sharp_simulations):
    # alpha 3, eta 0.5, T 12 (docs/validation.md): the authors' script gives M_00(11) = 0.446,
    # far from the extrapolated ~0.366. 77 independent entries (M, and Q's upper triangle) for
    # t >= 1, family-wise 3 sigma with Student-t tails (16 replicas; >= 80 seeds per d).
    limit = dmft.extrapolate(sharp_simulations)
    mean, se = solve_numpy_replicas(limit.problem, 16 * 100_000, seed=0, replicas=16)
    for key in ("M", "Q"):
        ok = agree(mean[key][1:], se[key][1:], 16 - 1, getattr(limit, key)[1:],
                   getattr(limit, key + "_se")[1:], dof_from_provenance(limit.provenance),
                   n_tests=77)
        assert ok.all(), (key, _z(mean[key][1:] - getattr(limit, key)[1:],
                                  np.hypot(se[key][1:], getattr(limit, key + "_se")[1:])))


# ------------------------------------------------------------------------------ schedules
def test_trivial_schedules_reproduce_full_batch():
    base = Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=4)
    full = solve_numpy(base, 20_000, 7)
    for schedule in (Cyclic(1), Bernoulli(1.0)):
        other = solve_numpy(base.replace(schedule=schedule), 20_000, 7)
        for key in ("M", "Q", "e_train", "C", "R", "Lam"):
            np.testing.assert_allclose(other[key], full[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("schedule", "fraction"), [(Bernoulli(0.3), 0.3), (Cyclic(4), 0.25)])
def test_first_step_overlap_scales_with_active_fraction(schedule, fraction):
    # docs/theory/learnability.md (the first step) with a fraction of the batch active:
    # M_1 = eta alpha b a E[s'(h)] E[g* z]; for tanh student and teacher with a = 1,
    # E[tanh(z) z] = E[tanh'(z)] (Stein), so M_1 = eta alpha b E[sech^2]^2 (Gauss-Hermite
    # quadrature).
    nodes, weights = gauss_hermite(80)
    mean_sech2 = weights @ (1 - np.tanh(nodes) ** 2)
    expected = 0.5 * 3.0 * fraction * mean_sech2**2
    problem = Problem(target="tanh", P=1, activation="tanh", a=[1.0], alpha=3.0, eta=0.5, T=2,
                      schedule=schedule)
    mean, se = solve_numpy_replicas(problem, 16 * 20_000, seed=4, replicas=16)
    z = (mean["M"][1, 0, 0] - expected) / se["M"][1, 0, 0]
    assert abs(z) < 3, (mean["M"][1, 0, 0], expected, z)


def _simulate_tanh(schedule, d: int, seeds: int, T: int, seed: int) -> dict:
    """Finite-d GD for P = K = 1, tanh student and teacher, a = 1, alpha 3, eta 0.5 (numpy)."""
    alpha, eta = 3.0, 0.5
    n = int(alpha * d)
    M_runs, e_runs = [], []
    for child in np.random.SeedSequence(seed).spawn(seeds):
        rng = np.random.default_rng(child)
        X = rng.standard_normal((n, d))
        y = np.tanh(X[:, 0])  # teacher W* = sqrt(d) e_1
        w = np.zeros(d)
        w[1] = np.sqrt(d)  # |w|^2 / d = 1, orthogonal to the teacher
        M_t, e_t = [], []
        for t in range(T):
            u = X @ w / np.sqrt(d)
            resid = y - np.tanh(u)
            M_t.append(w[0] / np.sqrt(d))
            e_t.append(0.5 * np.mean(resid**2))
            if isinstance(schedule, Cyclic):
                active = (np.arange(n) * schedule.n_blocks // n) == t % schedule.n_blocks
            else:
                active = rng.random(n) < schedule.b
            F = -resid * (1 - np.tanh(u) ** 2) * active
            w = w - eta * (X.T @ F) / np.sqrt(d)
        M_runs.append(M_t)
        e_runs.append(e_t)
    out = {}
    for key, runs in (("M", np.array(M_runs)), ("e_train", np.array(e_runs))):
        out[key], out[key + "_se"] = mean_se(runs)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [Cyclic(2), Bernoulli(0.5)])
def test_minibatch_schedules_match_finite_d_simulation(schedule):
    T = 6
    sims = _simulate_tanh(schedule, d=1000, seeds=40, T=T, seed=9)
    problem = Problem(target="tanh", P=1, activation="tanh", a=[1.0], alpha=3.0, eta=0.5, T=T,
                      schedule=schedule)
    mean, se = solve_numpy_replicas(problem, 16 * 50_000, seed=9, replicas=16)
    # 2 T - 1 entries; SEs from 16 replicas and 40 seeds: family-wise 3 sigma, Student-t tails
    okM = agree(mean["M"][1:, 0, 0], se["M"][1:, 0, 0], 16 - 1, sims["M"][1:], sims["M_se"][1:],
                40 - 1, n_tests=2 * T - 1)
    oke = agree(mean["e_train"], se["e_train"], 16 - 1, sims["e_train"], sims["e_train_se"],
                40 - 1, n_tests=2 * T - 1)
    assert okM.all(), _z(mean["M"][1:, 0, 0] - sims["M"][1:],
                         np.hypot(se["M"][1:, 0, 0], sims["M_se"][1:]))
    assert oke.all(), _z(mean["e_train"] - sims["e_train"],
                         np.hypot(se["e_train"], sims["e_train_se"]))


# ------------------------------------------------------------------------------ building blocks
def test_psd_cholesky_extend_semidefinite_and_causal():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((8, 3))
    A = B @ B.T  # rank 3 of 8
    L4 = psd_cholesky_extend(np.zeros((0, 0)), A[:4, :4])
    L = psd_cholesky_extend(L4, A)
    np.testing.assert_allclose(L @ L.T, A, atol=1e-10)
    assert np.all(np.triu(L, 1) == 0)
    np.testing.assert_array_equal(L[:4, :4], L4)  # past rows never change
    np.testing.assert_allclose(psd_cholesky_extend(np.zeros((0, 0)), A), L, atol=1e-12)
    assert np.count_nonzero(np.diag(L)) == 3
    assert np.all(psd_cholesky_extend(np.zeros((0, 0)), np.zeros((3, 3))) == 0)


def test_bad_input_is_refused():
    relu = Problem(target="tanh-he1-he3", P=2, activation="relu", T=3)
    with pytest.raises(ValueError, match="pathwise"):
        solve_numpy(relu, 100, 0, "pathwise")
    with pytest.raises(ValueError, match="estimator"):
        solve_numpy(relu, 100, 0, "gauss-newton")
    with pytest.raises(ValueError, match="samples"):
        solve_numpy(relu, 1, 0)
    with pytest.raises(ValueError, match="one-pass"):
        solve_numpy(relu.replace(schedule="one-pass"), 100, 0)
