"""Tests of the finite-d GD simulator (solvers/finite_d.py).

Statistical checks compare against independent computations (closed forms, quadrature done
here, the authors' published simulations) with tolerances from standard errors.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy.integrate import quad

import dmft
from dmft.stats import agree
from solvers import finite_d


def _z(diff, se):
    """|diff| / se, entries with zero combined SE must agree to rounding (z = 0 or inf)."""
    diff, se = np.abs(diff), np.asarray(se)
    return np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff < 1e-12, 0.0, np.inf))


# ------------------------------------------------------------------------------ exact facts
def test_initial_overlaps_equal_M0_Q0_for_general_init():
    M0 = np.array([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.0]])
    # Q0 - M0 M0^T = B B^T with B of rank 2 < P = 3: PSD but singular (eigh square root path)
    B = np.array([[0.7, 0.1], [0.2, -0.5], [0.3, 0.4]])
    Q0 = M0 @ M0.T + B @ B.T
    prob = dmft.Problem(target="tanh-sum", P=3, activation="tanh", T=2, M0=M0, Q0=Q0)
    traj = dmft.simulate(prob, d=300, seeds=3, seed=5)
    M_runs, Q_runs = traj.diagnostics["M_runs"], traj.diagnostics["Q_runs"]
    np.testing.assert_allclose(M_runs[:, 0], np.broadcast_to(M0, M_runs[:, 0].shape), atol=1e-12)
    np.testing.assert_allclose(Q_runs[:, 0], np.broadcast_to(Q0, Q_runs[:, 0].shape), atol=1e-12)
    assert np.all(traj.M_se[0] < 1e-12) and np.all(traj.Q_se[0] < 1e-12)


def test_linear_model_train_loss_matches_marchenko_pastur(linear_exact):
    """Linear student and target: e_train(t) equals the Marchenko-Pastur closed form
    (docs/validation.md, dmft.exact).

    The formula is the d -> infinity limit. At d = 400 the exact finite-d expectation (from
    Wishart spectra, measured once with 200 independent draws) differs from it by at most
    4e-4 at t = 1 and 1.5e-4 at t >= 2 (0.1-0.3 %), far below the standard error of 20 runs
    (1-2 %, dominated by the random initial direction), so it is not included.
    """
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=0.2, T=7)
    traj = dmft.simulate(prob, d=400, seeds=20, seed=11)
    exact = linear_exact.e_train[:7]
    # 7 correlated comparisons, SEs from 20 seeds: family-wise 3 sigma with Student-t tails
    ok = agree(traj.e_train, traj.e_train_se, traj.provenance["seeds"] - 1, exact, 0.0, np.inf,
               n_tests=7)
    assert ok.all(), _z(traj.e_train - exact, traj.e_train_se)


def _first_hermite_tanh_he1_he3() -> np.ndarray:
    """E[g*(z) z] for g* = tanh(z1 + z2^3 - 3 z2), by quadrature (Stein for the z1 entry)."""
    x, w = hermegauss(80)
    w = w / w.sum()

    def phi(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def he3(z):
        return z**3 - 3 * z

    def mean_dtanh(c):  # E_z1[tanh'(z1 + c)] = E_z1[tanh(z1 + c) z1]
        return float(np.sum(w * (1 - np.tanh(x + c) ** 2)))

    def mean_tanh(c):
        return float(np.sum(w * np.tanh(x + c)))

    c1 = quad(lambda z: mean_dtanh(he3(z)) * phi(z), -12, 12, limit=500, epsabs=1e-12)[0]
    c2 = quad(lambda z: mean_tanh(he3(z)) * z * phi(z), -12, 12, limit=500, epsabs=1e-12)[0]
    return np.array([c1, c2])


def test_one_step_mean_overlap_matches_closed_form():
    """E[M_1] = eta alpha (a * E[sigma'(u)]) E[g* z]^T, exact at any d when M0 = 0
    (docs/theory/learnability.md).

    At finite d the student fields u are exactly independent of z (W0 rows orthogonal to W*),
    so the closed form holds in expectation for every d with alpha d integer. ReLU: E[sigma'] = 1/2.
    """
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=2)
    c = _first_hermite_tanh_he1_he3()
    expected = prob.eta * prob.alpha * np.outer(prob.a * 0.5, c)
    # the paper's number (docs/theory/learnability.md) for the quadrature above
    assert np.linalg.norm(expected, axis=1) == pytest.approx([0.0988, 0.0988], abs=1e-4)
    traj = dmft.simulate(prob, d=1000, seeds=16, seed=3)
    z = _z(traj.M[1] - expected, traj.M_se[1])
    assert np.all(z < 3), z


# ------------------------------------------------------------------------------ schedules
def _small_problem(**kw):
    """ReLU committee, P = 2, on He3 (whose e_gen quadrature is fast); T = 4 by default."""
    base = dict(target="he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=4)
    base.update(kw)
    return dmft.Problem(**base)


def _runs(traj):
    diag = traj.diagnostics
    return diag["M_runs"], diag["Q_runs"], diag["e_train_runs"]


def test_cyclic_one_block_equals_full_bitwise():
    full = dmft.simulate(_small_problem(), d=200, seeds=2, seed=7)
    cyc = dmft.simulate(_small_problem(schedule=dmft.Cyclic(1)), d=200, seeds=2, seed=7)
    for a, b in zip(_runs(full), _runs(cyc), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bernoulli_one_equals_full_bitwise():
    full = dmft.simulate(_small_problem(), d=200, seeds=2, seed=7)
    ber = dmft.simulate(_small_problem(schedule=dmft.Bernoulli(1.0)), d=200, seeds=2, seed=7)
    for a, b in zip(_runs(full), _runs(ber), strict=True):
        np.testing.assert_array_equal(a, b)


def _relu_reference_gd(prob, d, run_ss, schedule):
    """Plain numpy GD for a ReLU committee on the simulator's data (independent update code)."""
    n = round(prob.alpha * d)
    rng = np.random.default_rng(run_ss)
    Wstar, W = finite_d._initial_weights(prob, d, rng)
    X = np.empty((n, d))
    finite_d._fill_gaussian(X, run_ss, threads=1)
    y = prob.target((X @ Wstar.T / np.sqrt(d)).T)
    a, eta = prob.a, prob.eta
    M, e_train = [], []
    for t in range(prob.T):
        M.append(W @ Wstar.T / d)
        U = X @ W.T / np.sqrt(d)
        resid = y - np.maximum(U, 0) @ a
        e_train.append(np.mean(resid**2) / 2)
        F = -resid[:, None] * a[None, :] * (U > 0)
        if schedule == "full":
            mask = np.ones(n)
        elif schedule == "bernoulli":
            mask = (rng.random(n) < prob.schedule.b) * 1.0 if t < prob.T - 1 else np.ones(n)
        else:  # cyclic: consecutive blocks, block t mod n_blocks
            nb = prob.schedule.n_blocks
            lo, hi = (t % nb) * n // nb, (t % nb + 1) * n // nb
            mask = np.zeros(n)
            mask[lo:hi] = 1.0
        W = (1 - eta * prob.lam) * W - eta * (F * mask[:, None]).T @ X / np.sqrt(d)
    return np.array(M), np.array(e_train)


@pytest.mark.parametrize(
    "schedule, name",
    [("full", "full"), (dmft.Cyclic(3), "cyclic"), (dmft.Cyclic(150), "cyclic"),
     (dmft.Bernoulli(0.4), "bernoulli")],
)
def test_schedules_match_plain_numpy_reference(schedule, name):
    """The simulator equals a plain numpy GD written here on the same data and masks.

    Cyclic(150) at n = 300 has blocks of 2 samples and runs in the numba loop; e_train is then
    recorded only at epoch starts with train_loss="auto", so "every" is forced here.
    """
    prob = _small_problem(schedule=schedule, T=5, lam=0.05)
    traj = dmft.simulate(prob, d=100, seeds=2, seed=13, train_loss="every")
    run_ss = np.random.SeedSequence(13).spawn(2)
    for i in range(2):
        M_ref, e_ref = _relu_reference_gd(prob, 100, run_ss[i], name)
        np.testing.assert_allclose(traj.diagnostics["M_runs"][i], M_ref, rtol=0, atol=1e-11)
        np.testing.assert_allclose(traj.diagnostics["e_train_runs"][i], e_ref, rtol=1e-11)


def test_cyclic_numba_and_blas_paths_agree():
    # n = 60, blocks of 2, a bit more than two epochs
    prob = _small_problem(schedule=dmft.Cyclic(30), T=70, eta=0.5)
    fast = dmft.simulate(prob, d=20, seeds=2, seed=1, cyclic_kernel="numba")
    blas = dmft.simulate(prob, d=20, seeds=2, seed=1, cyclic_kernel="blas")
    for a, b in zip(_runs(fast), _runs(blas), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # n_blocks = 30 > AUTO_EVERY_MAX_BLOCKS: e_train only at epoch starts
    e = fast.diagnostics["e_train_runs"]
    assert np.all(np.isfinite(e[:, ::30])) and np.all(np.isnan(e[:, 1:30]))


def test_one_pass_first_step_equals_full_then_differs():
    # the first batch is the same data as the full-batch run; later batches are fresh
    full = dmft.simulate(_small_problem(), d=200, seeds=2, seed=4)
    one = dmft.simulate(_small_problem(schedule="one-pass"), d=200, seeds=2, seed=4)
    M_f, _, e_f = _runs(full)
    M_o, _, e_o = _runs(one)
    np.testing.assert_array_equal(M_f[:, :2], M_o[:, :2])
    assert e_f[0, 0] == e_o[0, 0]
    assert not np.allclose(M_f[:, 2], M_o[:, 2])
    assert not np.allclose(e_f[:, 1], e_o[:, 1])


# ------------------------------------------------------------------------------ seeds, threads
def test_seeds_reproducible_and_distinct():
    a = dmft.simulate(_small_problem(), d=150, seeds=3, seed=21)
    b = dmft.simulate(_small_problem(), d=150, seeds=3, seed=21)
    c = dmft.simulate(_small_problem(), d=150, seeds=3, seed=22)
    np.testing.assert_array_equal(a.diagnostics["M_runs"], b.diagnostics["M_runs"])
    np.testing.assert_array_equal(a.e_gen, b.e_gen)
    assert not np.allclose(a.diagnostics["M_runs"][:, 1], c.diagnostics["M_runs"][:, 1])
    runs = a.diagnostics["M_runs"][:, 1]
    assert not np.allclose(runs[0], runs[1])  # the runs are independent


def test_independent_of_thread_count():
    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            # d = 3000: several data chunks, so the generation pool is exercised
            out.append(dmft.simulate(_small_problem(T=3), d=3000, seeds=1, seed=2))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(_runs(out[0]), _runs(out[1]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_single_seed_gives_nan_standard_errors():
    traj = dmft.simulate(_small_problem(T=2), d=100, seeds=1, seed=0)
    assert np.all(np.isfinite(traj.M)) and np.all(np.isnan(traj.M_se))
    assert np.all(np.isnan(traj.e_train_se))


def test_float32_data_close_to_float64():
    """float32 storage rounds the same Gaussian numbers: only rounding-level differences."""
    prob = _small_problem(T=7)
    f64 = dmft.simulate(prob, d=1000, seeds=2, seed=9)
    f32 = dmft.simulate(prob, d=1000, seeds=2, seed=9, dtype="float32")
    diff = np.abs(f64.diagnostics["M_runs"] - f32.diagnostics["M_runs"]).max()
    # float32 rounding is 6e-8 relative; far below the seed-to-seed spread (~1e-2)
    assert 0 < diff < 1e-5
    assert f32.provenance["dtype"] == "float32"


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs, exc",
    [
        (dict(d=0), ValueError), (dict(d=2), ValueError), (dict(d=50.5), ValueError),
        (dict(d="50"), TypeError), (dict(d=True), TypeError), (dict(d=50, seeds=0), ValueError),
        (dict(d=50, seeds=2.5), ValueError), (dict(d=50, seed=-1), ValueError),
        (dict(d=50, dtype="int8"), ValueError), (dict(d=50, train_loss="sometimes"), ValueError),
    ],
)
def test_invalid_arguments_rejected(kwargs, exc):
    with pytest.raises(exc):
        dmft.simulate(_small_problem(), **kwargs)


def test_integral_floats_accepted_for_counts():
    ints = dmft.simulate(_small_problem(), d=50, seeds=2, seed=1, progress=False)
    floats = dmft.simulate(_small_problem(), d=50.0, seeds=2.0, seed=1.0, progress=False)
    np.testing.assert_array_equal(floats.M, ints.M)
    assert floats.provenance["d"] == 50 and isinstance(floats.provenance["d"], int)


def test_invalid_alpha_d_combinations_rejected():
    with pytest.raises(ValueError, match="n_blocks"):
        dmft.simulate(_small_problem(schedule=dmft.Cyclic(200)), d=50)  # n = 150 < 200
    with pytest.raises(ValueError, match="round"):
        dmft.simulate(_small_problem(alpha=0.01), d=40)  # n = 0


def test_divergence_raises_with_partial_trajectory():
    # linear model at eta = 2: |1 - eta lambda_max| ~ 14, so the training loss passes 10^6 times
    # its initial value within a few steps (and would overflow after ~130)
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=2.0, T=400)
    with pytest.raises(dmft.DivergenceError) as info:
        dmft.simulate(prob, d=20, seeds=2, seed=0)
    err = info.value
    assert 0 < err.step < 20
    assert err.partial is not None and err.partial.T == err.step
    assert np.all(np.isfinite(err.partial.M))
    assert "eta=2" in str(err) and "reduce eta" in str(err).lower()


def test_runaway_growth_at_a_large_step_is_a_divergence_naming_eta():
    # eta = 50 on the paper's problem: finite numbers for a while, but Q grows ~600x per step
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=50.0, T=7)
    with pytest.raises(dmft.DivergenceError, match="eta=50") as info:
        dmft.simulate(prob, d=200, seeds=2, seed=0, progress=False)
    assert 0 < info.value.step < 7
    assert np.all(info.value.partial.Q < 1e12)


def _nan_target(z):
    y = np.tanh(z[0])
    y[::7] = np.nan
    return y


def test_non_finite_labels_are_the_targets_fault_not_etas():
    target = dmft.Target(_nan_target, K=1, name="holey")
    with pytest.raises(ValueError, match="holey") as info:  # at construction or when simulated
        prob = dmft.Problem(target=target, P=1, activation="relu", alpha=2.0, eta=0.1, T=3)
        dmft.simulate(prob, d=50, seeds=1, seed=0, progress=False)
    assert "eta=" not in str(info.value) and "reduce eta" not in str(info.value).lower()


# ------------------------------------------------------------------------------ d = 5000 data
def _reference_runs(ref, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-seed M, Q and e_gen of a d = 5000 reference file (ours or the authors')."""
    if source == "authors":
        return ref["magnetisation_list"], ref["norm_list"], ref["gen_error_list"]
    return ref["M_d5000"], ref["Q_d5000"], ref["gen_d5000"]


def _compare_with_reference(ref, source: str, seeds: int, threshold: float):
    M_runs, Q_runs, gen_runs = _reference_runs(ref, source)
    n_ref = M_runs.shape[0]
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    traj = dmft.simulate(prob, d=5000, seeds=seeds, seed=0)
    # t = 0 is M0 = 0, Q0 = I in both (their spread there is rounding, ~1e-17): exact check
    for runs, mine, init in ((M_runs, traj.M, 0.0), (Q_runs, traj.Q, np.eye(2))):
        np.testing.assert_allclose(runs[:, 0], np.broadcast_to(init, runs[:, 0].shape), atol=1e-12)
        np.testing.assert_allclose(mine[0], init, atol=1e-12)
    checks = {
        "M": (M_runs[:, 1:], traj.M[1:], traj.M_se[1:]),
        "Q": (Q_runs[:, 1:], traj.Q[1:], traj.Q_se[1:]),
        "e_gen": (gen_runs, traj.e_gen, traj.e_gen_se),
    }
    for name, (runs, mine, mine_se) in checks.items():
        ref_mean = runs.mean(0)
        ref_se = runs.std(0, ddof=1) / np.sqrt(n_ref)
        z = _z(mine - ref_mean, np.sqrt(mine_se**2 + ref_se**2))
        assert np.all(z < threshold), (name, z.max(), np.unravel_index(z.argmax(), z.shape))


def test_reproduces_own_d5000_simulations_reduced(paper_sims_d5000):
    """8 fresh seeds against the project's own d = 5000, 32-seed file (other seeds); 42
    non-trivial M, Q entries and 7 e_gen values are compared, hence 4 combined SE."""
    _compare_with_reference(paper_sims_d5000, "own", seeds=8, threshold=4.0)


def test_reproduces_authors_simulations_reduced(authors_sims_d5000):
    """The same against the authors' published d = 5000 simulations (an independent code)."""
    _compare_with_reference(authors_sims_d5000, "authors", seeds=8, threshold=4.0)


@pytest.mark.slow
def test_reproduces_authors_simulations_full(authors_sims_d5000):
    """32 seeds at d = 5000 as in the authors' file; every (t, entry) within 3 combined SE."""
    _compare_with_reference(authors_sims_d5000, "authors", seeds=32, threshold=3.0)
