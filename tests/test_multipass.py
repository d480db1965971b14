"""Multi-pass DMFT solver: exact cases, quoted simulations, estimator agreement, mechanics.

Statistical checks are family-wise 3-sigma tests (``dmft.stats.agree`` or ``dmft.compare``):
Bonferroni over the entries one test compares, with Student-t tails for standard errors
estimated from replicas or seeds, unless said otherwise; the references are independent of the
solver (closed forms, published simulations).
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np
import pytest

import dmft
from dmft.stats import agree, dof_from_provenance
from solvers.multipass import ESTIMATORS, cavity_covariance, release_buffers, solve_multipass


def _dof(traj: dmft.Trajectory) -> float:
    """Degrees of freedom of a solve's standard errors (replicas - 1)."""
    return dof_from_provenance(traj.provenance)


@pytest.fixture(scope="module")
def linear_problem():
    return dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=0.2, T=20,
                        a=[1.0])


@pytest.mark.parametrize("T", [7, 20])
def test_exact_linear_case(linear_problem, linear_exact, T):
    traj = solve_multipass(linear_problem.replace(T=T), samples=200_000, seed=11)
    exact = 2 * linear_exact.e_train[:T]  # the train MSE of docs/validation.md
    mse, mse_se = 2 * traj.e_train, 2 * traj.e_train_se
    assert np.all(mse_se > 0)
    ok = agree(mse, mse_se, _dof(traj), exact, 0.0, np.inf, n_tests=T)
    assert ok.all(), (mse - exact) / mse_se


def test_linear_case_C_diagonal_equals_twice_alpha_train_loss(linear_problem):
    traj = solve_multipass(linear_problem.replace(T=5), samples=50_000, seed=1)
    # here F = f - y, so C(t,t)/alpha = E[(y - f)^2] = 2 e_train(t) sample by sample
    np.testing.assert_allclose(traj.C[np.arange(5), np.arange(5), 0, 0] / 3.0, 2 * traj.e_train,
                               rtol=1e-10)


@pytest.fixture(scope="module")
def tanh_problem():
    return dmft.Problem(target="tanh", P=1, activation="tanh", alpha=3.0, eta=0.5, T=6, a=[1.0])


def test_smooth_tanh_case_against_quoted_simulations(tanh_problem):
    traj = solve_multipass(tanh_problem, samples=400_000, seed=3)
    sims = {2: (0.7569, 0.0019), 3: (0.8336, 0.0011), 5: (0.8934, 0.0008)}  # 12 seeds
    ts = list(sims)
    m, se = np.array([sims[t] for t in ts]).T
    ok = agree(traj.M[ts, 0, 0], traj.M_se[ts, 0, 0], _dof(traj), m, se, 12 - 1, n_tests=3)
    assert ok.all(), (traj.M[ts, 0, 0], m)
    # the two wrong variants of docs/validation.md are far outside: dropping sigma'' gives
    # 0.7105 at t=2
    assert abs(traj.M[2, 0, 0] - 0.7105) > 10 * traj.M_se[2, 0, 0]


@pytest.mark.parametrize("activation", ["tanh", "erf"])
def test_stein_and_pathwise_agree_P2(activation):
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation=activation, alpha=3.0, eta=0.3,
                        T=5)
    stein = solve_multipass(prob, samples=200_000, seed=5, estimator="stein")
    path = solve_multipass(prob, samples=200_000, seed=6, estimator="pathwise")
    names = ("M", "Q", "Lam", "R")
    n_tests = sum(int(np.count_nonzero(getattr(stein, n + "_se") > 0)) for n in names)
    for name in names:
        a, b = getattr(stein, name), getattr(path, name)
        ase, bse = getattr(stein, name + "_se"), getattr(path, name + "_se")
        exact = (ase == 0) & (bse == 0)
        np.testing.assert_allclose(a[exact], b[exact], atol=1e-12)
        ok = agree(a[~exact], ase[~exact], _dof(stein), b[~exact], bse[~exact], _dof(path),
                   n_tests=n_tests, threshold=2.576)  # family-wise false-alarm rate 1 %
        assert ok.all(), (name, np.max(np.abs(a - b)[~exact] / np.hypot(ase, bse)[~exact]))


def test_pathwise_refused_for_relu():
    with pytest.raises(ValueError, match="pathwise.*relu.*stein"):
        solve_multipass(dmft.Problem(), samples=10_000, estimator="pathwise")


@pytest.fixture(scope="module")
def paper_traj():
    return solve_multipass(dmft.Problem(), samples=1_000_000, seed=0)


def _check_paper_relu_case(paper_traj, runs_by_name):
    # mean and SE over the simulations' 32 seeds; t = 0 is the initialisation, exact on both
    # sides (up to round-off in theirs); M and Q (upper triangle) at t >= 1: 42 entries
    sims = dmft.Trajectory.from_runs(paper_traj.problem, runs_by_name,
                                     {"method": "finite-d (reference file)", "d": 5000})
    report = dmft.compare(paper_traj, sims)
    assert report.n_tests == 42 and report.n_exact == 4 + 3
    assert report.passed, str(report)


def test_paper_relu_case_against_own_d5000_simulations(paper_traj, paper_sims_d5000):
    _check_paper_relu_case(paper_traj, {"M": paper_sims_d5000["M_d5000"],
                                        "Q": paper_sims_d5000["Q_d5000"]})


def test_paper_relu_case_against_authors_simulations(paper_traj, authors_sims_d5000):
    _check_paper_relu_case(paper_traj, {"M": authors_sims_d5000["magnetisation_list"],
                                        "Q": authors_sims_d5000["norm_list"]})


def test_paper_relu_lambda0_is_the_analytic_value(paper_traj):
    lam0, se = paper_traj.Lam[0], paper_traj.Lam_se[0]
    # analytic (docs/theory/estimators.md): diagonal 0.5113 (Dirac part of sigma'' included),
    # off-diagonal -0.375
    values, errors = np.r_[np.diag(lam0), lam0[0, 1]], np.r_[np.diag(se), se[0, 1]]
    ok = agree(values, errors, _dof(paper_traj), [0.5113, 0.5113, -0.375], 0.0, np.inf, 3)
    assert ok.all(), lam0
    # the Gauss-Newton value (sigma'' dropped) would be 0.75
    assert np.all(np.abs(np.diag(lam0) - 0.75) > 20 * np.diag(se))


def test_cavity_covariance_matches_monte_carlo():
    # the deterministic Qperp recursion against a direct Monte Carlo of the cavity process
    prob = dmft.Problem(T=4)
    traj = solve_multipass(prob, samples=200_000, seed=2)
    qperp = cavity_covariance(traj.Lam, traj.R, traj.C, prob.Qperp0, prob.eta)
    # direct simulation of w with the solver's mean kernels and a Cholesky noise
    rng = np.random.default_rng(0)
    S, T, P = 400_000, prob.T, prob.P
    Cmat = traj.C.transpose(0, 2, 1, 3).reshape(T * P, T * P)
    Lchol = np.linalg.cholesky(Cmat + 1e-12 * np.eye(T * P))
    zeta = (rng.standard_normal((S, T * P)) @ Lchol.T).reshape(S, T, P)
    w = np.zeros((S, T, P))
    w[:, 0] = rng.standard_normal((S, P))
    for t in range(T - 1):
        mem = sum(w[:, u] @ traj.R[t, u].T for u in range(t)) if t else 0.0
        w[:, t + 1] = w[:, t] + prob.eta * (-w[:, t] @ traj.Lam[t].T + mem + zeta[:, t])
    for t in range(T):
        emp = w[:, t].T @ w[:, t] / S
        se = np.sqrt((w[:, t, :, None] * w[:, t, None, :]).var(0) / S)
        # S samples: normal tails; T P (P + 1) / 2 distinct entries
        ok = agree(qperp[t], 0.0, np.inf, emp, se, np.inf, n_tests=T * P * (P + 1) // 2)
        assert ok.all(), (t, qperp[t], emp)


def test_results_independent_of_thread_count():
    prob = dmft.Problem(T=4)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = solve_multipass(prob, samples=40_000, seed=9)
        numba.set_num_threads(max(2, before))
        many = solve_multipass(prob, samples=40_000, seed=9)
    finally:
        numba.set_num_threads(before)
    for name in ("M", "Q", "e_train", "C", "R", "Lam"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name))


@pytest.mark.parametrize("estimator, chunk_size", [("stein", 4096), ("pathwise", 4096),
                                                    ("stein", 1024), ("pathwise", 1000)])
def test_replay_equals_stored(estimator, chunk_size):
    # 2500 samples per replica: one replayed chunk (4096), or three (1024; 1000 -> whole blocks)
    prob = dmft.Problem(activation="tanh", T=5)
    kw = dict(samples=40_000, seed=4, estimator=estimator, chunk_size=chunk_size)
    stored = solve_multipass(prob, storage="stored", **kw)
    replay = solve_multipass(prob, storage="replay", **kw)
    assert stored.provenance["storage"] == "stored" and replay.provenance["storage"] == "replay"
    # same counter streams per block, same block-ordered sums: identical to the last bit
    for name in ("M", "Q", "C", "R", "Lam", "e_train", "e_gen"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(replay, name))


def test_seed_reproducible_and_seeds_differ():
    prob = dmft.Problem(T=3)
    a = solve_multipass(prob, samples=20_000, seed=1)
    b = solve_multipass(prob, samples=20_000, seed=1)
    c = solve_multipass(prob, samples=20_000, seed=2)
    np.testing.assert_array_equal(a.M, b.M)
    assert not np.array_equal(a.M, c.M)


@pytest.mark.parametrize(
    "target, P, K",
    [("staircase", 8, 2), ("z1z2z3-he3", 8, 4)],
)
def test_general_P_and_K_first_step_closed_form(target, P, K):
    prob = dmft.Problem(target=target, P=P, activation="relu", alpha=5.0, eta=0.2, T=3)
    traj = solve_multipass(prob, samples=64_000, seed=0)
    assert traj.M.shape == (3, P, K) and traj.C.shape == (3, 3, P, P)
    assert np.all(np.isfinite(traj.Q)) and np.all(np.isfinite(traj.e_gen))
    # docs/theory/learnability.md: M_1 = eta alpha (a * E[relu'(h)]) C_1^T with E[relu'] = 1/2
    # and C_1 = E[g* z] by hand:
    # staircase z1 + z1 z2 -> (1, 0); z1 z2 z3 + He3(z4) -> 0 (no first Hermite component)
    c1 = {"staircase": np.array([1.0, 0.0]), "z1z2z3-he3": np.zeros(4)}[target]
    expected = prob.eta * prob.alpha * np.outer(prob.a * 0.5, c1)
    ok = agree(traj.M[1], traj.M_se[1], _dof(traj), expected, 0.0, np.inf, n_tests=P * K)
    assert ok.all(), traj.M[1] - expected


def test_user_activation_runs_and_matches_registry_twin():
    def my_tanh(x):
        return math.tanh(x)

    def my_tanh_d1(x):
        t = math.tanh(x)
        return 1.0 - t * t

    def my_tanh_d2(x):
        t = math.tanh(x)
        return -2.0 * t * (1.0 - t * t)

    user = dmft.Activation(my_tanh, my_tanh_d1, my_tanh_d2, name="mytanh")
    prob = dmft.Problem(activation=user, T=3)
    ours = solve_multipass(prob, samples=20_000, seed=0)
    twin = solve_multipass(prob.replace(activation="tanh"), samples=20_000, seed=0)
    np.testing.assert_allclose(ours.M, twin.M, rtol=1e-12, atol=1e-14)


def test_divergence_raises_with_partial_trajectory():
    prob = dmft.Problem(target="he3", P=1, activation="quadratic", alpha=3.0, eta=3.0, T=30,
                        a=[1.0])
    with pytest.raises(dmft.DivergenceError) as info:
        solve_multipass(prob, samples=20_000, seed=0)
    err = info.value
    assert 0 < err.step < 30
    assert err.partial is not None and err.partial.T == err.step
    assert np.all(np.isfinite(err.partial.M))
    assert "eta=3" in str(err)


def test_runaway_growth_at_a_large_step_names_eta_and_the_largest_stable_one():
    # eta = 50 on the paper's problem used to run to e_gen = 1e21 at T = 7 without a word
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=50.0, T=7)
    with pytest.raises(dmft.DivergenceError) as info:
        solve_multipass(prob, samples=2**15, seed=0, progress=False)
    err = info.value
    assert 0 < err.step < 7 and err.partial.T == err.step
    assert np.all(err.partial.Q < 1e12)
    message = str(err)
    assert "eta=50" in message and "largest stable eta" in message
    # the estimate from Lambda(0) and the Marchenko-Pastur edge, here ~0.9
    from solvers.divergence import stable_eta

    estimate = stable_eta(err.partial.Lam[None, 0], prob.alpha, prob.lam)
    assert 0.5 < estimate < 1.5 and f"{estimate:.3g}" in message


def test_largest_stable_eta_is_exact_for_the_linear_model():
    # linear student and target: GD diverges iff eta (1 + sqrt(alpha))^2 > 2 (Lambda = alpha)
    from solvers.divergence import stable_eta

    edge = 2 / (1 + np.sqrt(3.0)) ** 2
    assert stable_eta(np.full((4, 1, 1), 3.0), alpha=3.0, lam=0.0) == pytest.approx(edge)
    base = dict(target="linear", P=1, activation="linear", alpha=3.0, T=60)
    stable = solve_multipass(dmft.Problem(eta=0.9 * edge, **base), samples=2**15, seed=0)
    assert np.all(np.isfinite(stable.Q))
    with pytest.raises(dmft.DivergenceError, match="below it|Reduce eta below"):
        solve_multipass(dmft.Problem(eta=1.2 * edge, **base), samples=2**15, seed=0)


def _nan_target(z):
    y = np.tanh(z[0])
    y[::7] = np.nan
    return y


def test_non_finite_labels_are_not_blamed_on_eta():
    target = dmft.Target(_nan_target, K=1, name="holey")
    with pytest.raises((ValueError, dmft.DivergenceError), match="holey") as info:
        prob = dmft.Problem(target=target, P=1, activation="relu", alpha=2.0, eta=0.1, T=3)
        solve_multipass(prob, samples=2**14, seed=0, progress=False)
    assert "eta=" not in str(info.value) and "reduce eta" not in str(info.value).lower()


def test_degenerate_cavity_covariance_takes_the_pseudo_inverse_and_resumes():
    # Qperp0 = Q0 - M0 M0^T of rank 1 < P: cw is singular from t = 0, every step is finished
    # by the pseudo-inverse (outside the stored-steps kernel) and the kernel resumes after it
    M0 = np.array([[0.3], [-0.2]])
    v = np.array([[1.0], [0.5]])
    prob = dmft.Problem(target="he3", P=2, activation="tanh", alpha=2.0, eta=0.3, T=5, M0=M0,
                        Q0=M0 @ M0.T + v @ v.T)
    kw = dict(samples=16 * 2048, seed=5, progress=False)
    stored = solve_multipass(prob, storage="stored", **kw)
    replay = solve_multipass(prob, storage="replay", chunk_size=4096, **kw)
    for name in ("M", "Q", "Lam", "R", "C"):
        np.testing.assert_array_equal(getattr(stored, name), getattr(replay, name))
    assert np.all(np.isfinite(stored.diagnostics["cond_Cw"]))
    # Stein misses R(t, 0) on Qperp0's null space only, where r(0) = 0: M and Q unaffected
    path = solve_multipass(prob, estimator="pathwise", **kw)
    for name in ("M", "Q"):  # t >= 1 (t = 0 is exact in both)
        a, b = getattr(stored, name)[1:], getattr(path, name)[1:]
        ok = agree(a, getattr(stored, name + "_se")[1:], _dof(stored), b,
                   getattr(path, name + "_se")[1:], _dof(path), n_tests=a.size)
        assert ok.all(), name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"samples": 0}, "samples"),
        ({"samples": 1.5}, "samples"),
        ({"replicas": 1}, "replicas"),
        ({"estimator": "magic"}, "estimator"),
        ({"storage": "disk"}, "storage"),
        ({"samples": 100}, "per replica"),
    ],
)
def test_invalid_options_rejected(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        solve_multipass(dmft.Problem(T=3), **kwargs)


def test_error_bars_calibrated_over_20_seeds():
    """The spread of 20 independent solves matches the reported SE within 30% (pooled), for
    M and for e_gen (whose SE comes from the delta method, not from the replicas directly)."""
    prob = dmft.Problem(T=5)
    runs = [solve_multipass(prob, samples=32_000, seed=100 + k) for k in range(20)]
    for name in ("M", "e_gen"):
        value = np.stack([getattr(r, name)[1:] for r in runs])  # t >= 1 (t = 0 is exact)
        se = np.stack([getattr(r, name + "_se")[1:] for r in runs])
        observed = value.std(axis=0, ddof=1)  # spread of one run's estimate
        reported = np.sqrt(np.mean(se**2, axis=0))
        ratio = np.sqrt(np.mean(observed**2) / np.mean(reported**2))  # pooled over t, entries
        assert 0.7 < ratio < 1.3, (name, ratio)


def test_sharp_case_against_extrapolated_simulations(sharp_sims):
    """Sharp case (eta 0.5, T 12; docs/validation.md): M and Q vs our d = 1000/2000/4000
    simulations extrapolated in 1/d, every entry; Q at t = 1 also against its exact value
    (Gaussian integrals alone, computed here by quadrature, independently of the solver).
    """
    ref = sharp_sims
    prob = dmft.Problem(eta=0.5, T=12)
    traj = solve_multipass(prob, samples=1_000_000, seed=0)
    inv_d = np.array([1 / 1000, 1 / 2000, 1 / 4000])
    for name in ("M", "Q"):
        means = np.stack([ref[f"{name}_d{d}"].mean(0) for d in (1000, 2000, 4000)])
        ses = np.stack([ref[f"{name}_d{d}"].std(0, ddof=1) / math.sqrt(ref[f"{name}_d{d}"].shape[0])
                        for d in (1000, 2000, 4000)])
        ext, ext_se = _wls_intercept(inv_d, means[:, 1:], ses[:, 1:])
        ours, ours_se = getattr(traj, name)[1:], getattr(traj, name + "_se")[1:]
        z = (ours - ext) / np.hypot(ours_se, ext_se)
        if name == "Q":
            exact_q1 = _exact_first_step_Q(prob)
            ok = agree(traj.Q[1], traj.Q_se[1], _dof(traj), exact_q1, 0.0, np.inf, n_tests=3)
            assert ok.all(), (traj.Q[1], exact_q1)
        assert np.all(np.abs(z) <= 3.0), (name, np.round(z, 2))
    # M_00(t = 11): about 0.366 extrapolated; the authors' script gives 0.446
    assert abs(traj.M[11, 0, 0] - 0.446) > 20 * traj.M_se[11, 0, 0]


def _wls_intercept(x, means, ses):
    """Per-entry weighted least-squares fit mean = a + b x; returns a and its standard error."""
    X = np.stack([np.ones_like(x), x], axis=1)
    flat_m = means.reshape(len(x), -1)
    flat_s = ses.reshape(len(x), -1)
    a = np.empty(flat_m.shape[1])
    a_se = np.empty(flat_m.shape[1])
    for k in range(flat_m.shape[1]):
        w = 1.0 / np.maximum(flat_s[:, k], 1e-300) ** 2
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        a[k] = (cov @ X.T @ (w * flat_m[:, k]))[0]
        a_se[k] = math.sqrt(cov[0, 0])
    return a.reshape(means.shape[1:]), a_se.reshape(means.shape[1:])


def _relu_moment(exponents, indicators) -> float:
    """E[prod_c relu(h_c)^e_c 1(h_c > 0)^i_c] for independent standard normals h_c (closed form)."""
    out = 1.0
    for e, ind in zip(exponents, indicators, strict=True):
        out *= {0: 0.5 if ind else 1.0, 1: 1 / math.sqrt(2 * math.pi), 2: 0.5}[e]
    return out


def _exact_first_step_Q(prob):
    """Q_1 for a P = 2 ReLU committee from M_0 = 0, Q_0 = I, independently of the solver.

    Q_1 = (I - eta Lam0)(I - eta Lam0)^T + eta^2 C00 + M_1 M_1^T with Lam0 = alpha E[dF/dh]
    (Dirac term of relu'' included), C00 = alpha E[F F^T], M_1 = -eta alpha E[F z^T]. At t = 0
    h ~ N(0, I) is independent of z, so h-expectations are closed forms (relu moments) and the
    target enters through E[y], E[y^2], E[y z] (tensor Gauss-Hermite, 120 nodes per axis).
    """
    x, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    Z1, Z2 = np.meshgrid(x, x, indexing="ij")
    wz = np.outer(w, w)
    y = prob.target(np.stack([Z1.ravel(), Z2.ravel()])).reshape(Z1.shape)
    Ey, Ey2 = (wz * y).sum(), (wz * y**2).sum()
    Eyz = np.array([(wz * y * Z1).sum(), (wz * y * Z2).sum()])
    a, alpha, eta = prob.a, prob.alpha, prob.eta

    def E(relu_pows, inds):  # E[relu(h0)^p0 relu(h1)^p1 1(h0>0)^i0 1(h1>0)^i1]
        return _relu_moment(relu_pows, inds)

    C00 = np.empty((2, 2))
    lam0 = np.empty((2, 2))
    for j in range(2):
        for k in range(2):
            ind = [int(j == 0 or k == 0), int(j == 1 or k == 1)]
            gg = a[j] * a[k] * E([0, 0], ind)
            Ef = sum(a[i] * E([int(i == 0), int(i == 1)], ind) for i in range(2))
            Ef2 = sum(a[i] * a[l] * E([int(i == 0) + int(l == 0), int(i == 1) + int(l == 1)], ind)
                      for i in range(2) for l in range(2))
            # F_j F_k = (y - f)^2 g_j g_k with g_j = a_j 1(h_j > 0), y independent of h
            C00[j, k] = alpha * a[j] * a[k] * (Ey2 * E([0, 0], ind) - 2 * Ey * Ef + Ef2)
            lam0[j, k] = alpha * gg
        other = 1 - j
        # Dirac part of relu'': -E[(y - f) a_j delta(h_j)] = -a_j phi(0) E[y - a_other relu(h)]
        phi0 = 1 / math.sqrt(2 * math.pi)
        lam0[j, j] -= alpha * a[j] * phi0 * (Ey - a[other] * phi0)
    m1 = eta * alpha * np.outer(a * 0.5, Eyz)  # -E[F z^T] = E[y z] a_j E[1(h_j > 0)]
    eye = np.eye(2)
    return (eye - eta * lam0) @ (eye - eta * lam0).T + eta**2 * C00 + m1 @ m1.T


def _fresh_stein(A, Cw):
    """Gamma = A Cw^{-1} and the conditioning indicator as the solver computes them: by a
    Cholesky factor grown from scratch, or by the pseudo-inverse when a pivot is dropped."""
    from solvers.numerics.linalg import stein_by_pseudo_inverse, stein_solve

    n = Cw.shape[0]
    info = np.array([0.0, 1.0])
    gamma, cond, solved = stein_solve(A, Cw, np.zeros((n, n)), np.zeros((n, n)), 0, info, 1e-12)
    return (gamma, cond) if solved else stein_by_pseudo_inverse(A, Cw, 1e-12)


def test_overflowed_cavity_covariance_is_reported_as_non_finite():
    # an inf Cw must not come back as Gamma = 0 (which would hide a divergence)
    A = np.ones((2, 4))
    Cw = np.eye(4)
    Cw[3, 3] = np.inf
    gamma, cond = _fresh_stein(A, Cw)
    assert gamma.shape == (2, 4) and np.all(np.isnan(gamma)) and cond == np.inf
    finite, _ = _fresh_stein(A, np.eye(4))
    np.testing.assert_allclose(finite, A)


def test_stein_solve_grown_by_rows_equals_a_direct_solve_and_pseudo_inverse_when_singular():
    from solvers.numerics.linalg import stein_solve

    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 40))
    Cw = X @ X.T / 40
    A = rng.standard_normal((2, 6))
    lw, lwt, info = np.zeros((6, 6)), np.zeros((6, 6)), np.array([0.0, 1.0])
    for n in (2, 4, 6):  # the factor grows by a block row per call, as in the solver
        gamma, cond, solved = stein_solve(A[:, :n], Cw[:n, :n], lw[:n, :n], lwt[:n, :n], n - 2,
                                          info, 1e-12)
        np.testing.assert_array_equal(lwt[:n, :n], lw[:n, :n].T)
        assert solved
        np.testing.assert_allclose(gamma, np.linalg.solve(Cw[:n, :n], A[:, :n].T).T,
                                   rtol=1e-10)
    assert 1 <= cond < np.inf
    # a component that is a linear function of the others: pseudo-inverse on the range
    Y = np.vstack([X[:3], X[0] + 2 * X[1]])
    Cs = Y @ Y.T / 40
    As = rng.standard_normal((2, 4)) @ Cs  # in the row space of Cs
    gamma, cond = _fresh_stein(As, Cs)
    np.testing.assert_allclose(gamma, As @ np.linalg.pinv(Cs, rcond=1e-12), rtol=1e-8)
    assert cond < 1e8


@pytest.mark.parametrize("estimator, storage", [("stein", "stored"), ("pathwise", "stored"),
                                                ("stein", "replay"), ("pathwise", "replay")])
def test_buffers_kept_between_solves_are_never_read_before_written(estimator, storage):
    # the per-sample buffers a solve keeps for the next one hold old values: poison them and
    # check that the next solve does not see them
    from solvers.multipass import buffers

    prob = dmft.Problem(target="he3", P=2, activation="tanh", alpha=2.0, eta=0.4, T=4,
                        schedule="bernoulli(0.7)")
    kw = dict(samples=16 * 1500, seed=8, estimator=estimator, storage=storage,
              chunk_size=1024, progress=False)
    release_buffers()
    fresh = solve_multipass(prob, **kw)
    assert buffers._kept.chunks, "small runs keep their buffers"
    for chunk in buffers._kept.chunks.values():
        assert len(chunk) >= 8
        for arr in chunk:  # including the rows' padding
            arr.fill(np.nan if arr.dtype.kind == "f" else 255)
    again = solve_multipass(prob, **kw)
    for name in ("M", "Q", "C", "R", "Lam", "e_train", "e_gen", "M_se", "R_se"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fresh, name), err_msg=name)
    release_buffers()
    assert buffers._kept.chunks == {}


def _tanh_he1_he3_numpy(z):
    return np.tanh(z[0] + z[1] ** 3 - 3 * z[1])


@pytest.mark.parametrize("noise, schedule", [(0.0, "full"), (0.3, "cyclic(3)")])
def test_labels_computed_in_the_kernel_match_a_user_target(noise, schedule):
    # registry targets are evaluated inside the draw kernel (solvers.numerics.teachers), user
    # targets by calling them from Python: the same formula both ways gives the same run, up to the
    # labels' rounding (<= 2 ulp)
    kw = dict(P=2, activation="relu", alpha=3.0, eta=0.3, T=5, noise=noise, schedule=schedule)
    registry = dmft.Problem(target="tanh-he1-he3", **kw)
    user = dmft.Problem(target=dmft.Target(_tanh_he1_he3_numpy, K=2, name="mine"), **kw)
    runs = [solve_multipass(prob, samples=16 * 2000, seed=3, progress=False)
            for prob in (registry, user)]
    for name in ("M", "Q", "C", "R", "Lam", "e_train", "e_gen"):
        np.testing.assert_allclose(getattr(runs[0], name), getattr(runs[1], name),
                                   rtol=1e-9, atol=1e-12, err_msg=name)


def _delta_method_se(prob, M, Q, step=1e-5):
    """std over replicas of grad f(mean) . (theta_b - mean) / sqrt(B), f = e_gen by the
    accurate rule, the gradient by central differences over every entry of M and Q (Q's
    off-diagonal entries moved symmetrically)."""
    from dmft.gaussian import gen_error

    B, T, P, K = M.shape
    M_mean, Q_mean = M.mean(axis=0), Q.mean(axis=0)
    dev = np.zeros((B, T))
    for j in range(P):
        for k in range(K):
            Mp, Mm = M_mean.copy(), M_mean.copy()
            Mp[:, j, k] += step
            Mm[:, j, k] -= step
            grad = (gen_error(prob, Mp, Q_mean)[0] - gen_error(prob, Mm, Q_mean)[0]) / (2 * step)
            dev += grad * (M[:, :, j, k] - M_mean[:, j, k])
        for k in range(j, P):
            Qp, Qm = Q_mean.copy(), Q_mean.copy()
            for a, b in {(j, k), (k, j)}:
                Qp[:, a, b] += step
                Qm[:, a, b] -= step
            grad = (gen_error(prob, M_mean, Qp)[0] - gen_error(prob, M_mean, Qm)[0]) / (2 * step)
            dev += grad * (Q[:, :, j, k] - Q_mean[:, j, k])
    return dev.std(axis=0, ddof=1) / np.sqrt(B)


@pytest.mark.parametrize("setting, spread_rtol, check_curvature", [
    (dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=5), 0.02, True),
    # here e_gen's curvature over a replica's deviations is 0.22 SE at 4096 per replica
    (dict(target="he3", P=2, activation="tanh", alpha=2.0, eta=0.5, T=5, lam=0.1), 0.05, False),
])
def test_e_gen_and_its_error_bar_match_the_accurate_rule_replica_by_replica(
        setting, spread_rtol, check_curvature):
    # independent computations by the accurate quadrature: the delta-method SE of e_gen at the
    # mean overlaps (what the solver reports, there by a coarse rule and per-unit forward
    # differences), and e_gen of every replica's (M, Q), whose spread also holds e_gen's
    # curvature over the replicas' deviations (measured 0.2% of the SE for relu, 2.9% for tanh
    # at 4096 samples per replica; the SE's own sampling error is ~18% with 16 replicas)
    from dmft.gaussian import gen_error
    from solvers.multipass import driver

    prob = dmft.Problem(**setting)
    captured = {}
    real = driver.gen_error_mean_se

    def spy(problem, M, Q):
        captured["M"], captured["Q"] = M.copy(), Q.copy()
        return real(problem, M, Q)

    driver.gen_error_mean_se = spy
    try:
        traj = solve_multipass(prob, samples=16 * 4096, seed=11)
    finally:
        driver.gen_error_mean_se = real
    M, Q = captured["M"], captured["Q"]
    B, T = M.shape[:2]
    # t = 0 is deterministic (M0, Q0): every error bar is rounding there
    np.testing.assert_allclose(traj.e_gen_se[1:], _delta_method_se(prob, M, Q)[1:], rtol=0.01)
    per_replica = gen_error(prob, M.reshape(B * T, 2, -1), Q.reshape(B * T, 2, 2))[0]
    per_replica = per_replica.reshape(B, T)
    se = per_replica.std(axis=0, ddof=1) / np.sqrt(B)
    np.testing.assert_allclose(traj.e_gen_se[1:], se[1:], rtol=spread_rtol)
    # f(mean) and mean(f) differ by the curvature times the overlaps' variance: << SE
    if check_curvature:
        assert np.all(np.abs(traj.e_gen - per_replica.mean(axis=0)) <= 0.2 * se + 1e-12)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="helpers run on two or more cores only")
def test_helper_process_runs_queued_tasks_and_reports_them():
    from solvers.numerics import precompile

    task = "os.path:exists:/"  # a task that compiles nothing
    precompile.start([task])
    precompile.wait(task, timeout=60)
    assert precompile.started(task) and task in precompile._helper.get("done", {task})
    precompile.wait("never-queued")  # returns at once


_PRECOMPILE_CHECK = """
import json, sys
import dmft
from solvers.numerics import fields, measure, precompile, step, streams
est = sys.argv[1]
precompile.compile_finish(est)
precompile.compile_sums(est)
precompile.compile_forward(est)
before = {f.py_func.__name__: len(f.signatures) for f in
          (step.finish_step_stein, step.finish_step_pathwise, fields.block_fields,
           measure.measure_block, streams.fill_block_normals)}
prob = dmft.Problem(target="he3", P=2, activation="tanh", alpha=2.0, eta=0.3, T=3)
dmft.solve(prob, samples=2**13, seed=0, estimator=est, progress=False)
after = {f.py_func.__name__: len(f.signatures) for f in
         (step.finish_step_stein, step.finish_step_pathwise, fields.block_fields,
          measure.measure_block, streams.fill_block_normals)}
print(json.dumps([before, after]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_kernels_compiled_ahead_have_the_types_the_solver_uses(tmp_path, estimator):
    # on a first run the update is compiled in a helper process and the forward kernels before
    # the entry kernels: only exact argument types let the solver use them (no second compile)
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _PRECOMPILE_CHECK, estimator], env=env,
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert after == before
    assert before[f"finish_step_{estimator}"] == 1 and before["block_fields"] == 1


@pytest.mark.parametrize("prob", [
    dmft.Problem(T=100),
    dmft.Problem(T=40, target="he3", P=1, activation="tanh", lam=0.1, M0=[[0.3]], Q0=[[1.2]]),
], ids=["paper-T100", "general-init-T40"])
def test_Q_from_the_cavity_coefficients_equals_the_cavity_recursion_to_rounding(prob,
                                                                                monkeypatch):
    # Q = Wg Wg^T + M M^T (O(T^2)) replaced the O(T^3) recursion of cavity_covariance: the
    # same quantity with sums in another order, equal up to rounding amplified by the
    # conditioning of the noise covariance C (provenance: noise_cond_lower_bound)
    from solvers.multipass import driver

    got = {}
    assemble = driver._assemble

    def grab(problem, reps, Q, *args, **kw):
        got.update(reps=reps, Q=Q)
        return assemble(problem, reps, Q, *args, **kw)

    monkeypatch.setattr(driver, "_assemble", grab)
    traj = solve_multipass(prob, samples=2 * 2**11, replicas=2, seed=1, progress=False)
    r = got["reps"]
    ref = (cavity_covariance(r.Lam, r.R, r.C, prob.Qperp0, prob.eta)
           + r.M @ r.M.transpose(0, 1, 3, 2))
    rel = np.abs(got["Q"] - ref).max() / np.abs(ref).max()
    assert rel <= 1e-13 * max(10.0, traj.provenance["noise_cond_lower_bound"]), rel
