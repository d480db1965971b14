"""One-pass theory (docs/theory/one-pass.md): closed forms, an exact linear recursion, QMC,
DMFT step 1, and finite-d one-pass simulations extrapolated to d -> infinity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

import dmft
from dmft import gaussian as G
from solvers.onepass import onepass_expectations, solve_onepass


def phi(x):
    return np.exp(-0.5 * np.asarray(x) ** 2) / math.sqrt(2 * math.pi)


def paper_c1(h=0.005, R=9.0):
    """C_1 of tanh(z1 + He3(z2)) on a fine grid (independent of dmft.gaussian)."""
    z = np.arange(-R, R + h / 2, h)
    w = h * phi(z)
    Z1, Z2 = np.meshgrid(z, z, indexing="ij")
    Y = np.tanh(Z1 + Z2**3 - 3 * Z2) * np.outer(w, w)
    return np.array([np.sum(Y * Z1), np.sum(Y * Z2)])


# ------------------------------------------- closed forms (docs/theory/learnability.md)
def test_first_step_closed_form_paper_setting():
    """M_1 = eta alpha (a * E[sigma'(h0)]) C_1^T at M_0 = 0, Q_0 = I (ReLU: E[sigma'] = 1/2)."""
    prob = dmft.Problem(T=2)  # paper: tanh-he1-he3, P = 2, ReLU, alpha 3, eta 0.2
    traj = solve_onepass(prob)
    expected = prob.eta * prob.alpha * np.outer(prob.a * 0.5, paper_c1())
    np.testing.assert_allclose(traj.M[1], expected, atol=1e-10)
    # the number quoted in the paper
    np.testing.assert_allclose(np.linalg.norm(traj.M[1], axis=1), 0.0988, atol=5e-5)
    assert np.all(traj.M_se == 0) and np.all(traj.Q_se == 0)


def test_first_step_closed_form_tanh_student():
    """Same formula with E[tanh'(z)] = E[1 - tanh(z)^2] from quad, single index, P = 1."""
    prob = dmft.Problem(target="tanh", P=1, activation="tanh", alpha=2.0, eta=0.3, T=2)
    ds = integrate.quad(lambda x: (1 - np.tanh(x) ** 2) * phi(x), -12, 12, epsabs=1e-14)[0]
    c1 = ds  # E[tanh(z) z] = E[1 - tanh^2] (Stein)
    traj = solve_onepass(prob)
    assert abs(traj.M[1, 0, 0] - prob.eta * prob.alpha * ds * c1) < 1e-10


# ------------------------------------------------------------------- exact linear recursion
def linear_recursion(a, alpha, eta, lam, noise, M0, Q0, T):
    """Exact one-pass recursion for sigma = id, g*(z) = z (K = 1), any P.

    Derivation. With W (P x d), w* (d,), |w*|^2 = d, the fresh batch X (n x d), n = alpha d:
    u_mu = W x_mu / sqrt d, z_mu = w* . x_mu / sqrt d, f = a . u, F_mu = a (a . u_mu - y_mu),
    y_mu = z_mu + sqrt(noise) xi_mu. With v = W^T a - w* (d,) and A = X^T X / d,

        W' = c W - eta a v^T A - eta a (sqrt(noise) / sqrt d) sum_mu xi_mu x_mu^T / sqrt d,
        c = 1 - eta lam.

    E[A] = alpha I and E[A^2] = alpha (alpha + 1 + 1/d) I (Wishart: E[(X^T X)^2] =
    n (n + d + 1) I). So M' = W' w* / d = c M - eta alpha a (a^T M - 1), and
    Q' = W' W'^T / d = c^2 Q - eta alpha c (a (a^T Q - M^T) + (Q a - M) a^T)
         + eta^2 alpha (alpha + 1) (a^T Q a - 2 a^T M + 1) a a^T + eta^2 alpha noise a a^T
    as d -> infinity (v^T W^T / d = a^T Q - M^T, |v|^2 / d = a^T Q a - 2 a^T M + 1; the noise
    term: eta^2 noise a a^T sum_mu xi_mu^2 |x_mu|^2 / d^2 -> eta^2 alpha noise a a^T; cross
    terms with the noise vanish). Everything is a Gaussian second moment: no quadrature.
    """
    P = a.shape[0]
    c = 1 - eta * lam
    M = np.zeros((T, P, 1))
    Q = np.zeros((T, P, P))
    M[0], Q[0] = M0, Q0
    A = np.outer(a, a)
    for t in range(T - 1):
        m, q = M[t], Q[t]
        M[t + 1] = c * m - eta * alpha * a[:, None] * (a @ m - 1.0)
        cross = np.outer(a, a @ q - m[:, 0]) + np.outer(q @ a - m[:, 0], a)
        resid = a @ q @ a - 2 * a @ m[:, 0] + 1.0
        Q[t + 1] = (c * c * q - eta * alpha * c * cross
                    + eta**2 * alpha * (alpha + 1) * resid * A + eta**2 * alpha * noise * A)
    return M, Q


@pytest.mark.parametrize("P,lam,noise,eta", [(1, 0.0, 0.0, 0.2), (2, 0.3, 0.0, 0.1),
                                            (3, 0.1, 0.5, 0.15), (2, 0.0, 0.2, 0.05)])
def test_linear_student_linear_target_exact_recursion(P, lam, noise, eta):
    rng = np.random.default_rng(P)
    M0 = 0.3 * rng.standard_normal((P, 1))
    B = rng.standard_normal((P, P))
    Q0 = M0 @ M0.T + 0.5 * B @ B.T / P + 0.1 * np.eye(P)
    prob = dmft.Problem(target="linear", P=P, activation="linear", alpha=2.5, eta=eta,
                        lam=lam, noise=noise, T=6, M0=M0, Q0=Q0)
    # P = 3: generic Gauss-Hermite in K + P = 4 dimensions, exact for these low-degree
    # polynomials already with 8 nodes per dimension
    traj = solve_onepass(prob, n_gh=8)
    assert ("structured" if P <= 2 else "gauss-hermite") in traj.provenance["quadrature"]
    M, Q = linear_recursion(prob.a, prob.alpha, eta, lam, noise, M0, Q0, prob.T)
    tol = 1e-11
    np.testing.assert_allclose(traj.M, M, atol=tol)
    np.testing.assert_allclose(traj.Q, Q, atol=tol)
    a = prob.a
    e = 0.5 * (1 - 2 * M[..., 0] @ a + np.einsum("j,tjk,k->t", a, Q, a) + noise)
    np.testing.assert_allclose(traj.e_gen, e, atol=tol)
    np.testing.assert_allclose(traj.e_train, traj.e_gen, atol=0)


def test_singular_omega_linear_exact():
    """Q_0 = M_0 M_0^T (Omega singular at t = 0): still the exact recursion."""
    M0 = np.array([[0.6]])
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=0.2, T=5,
                        M0=M0, Q0=M0 @ M0.T)
    traj = solve_onepass(prob)
    M, Q = linear_recursion(prob.a, 3.0, 0.2, 0.0, 0.0, M0, M0 @ M0.T, 5)
    np.testing.assert_allclose(traj.M, M, atol=1e-11)
    np.testing.assert_allclose(traj.Q, Q, atol=1e-11)


def test_singular_omega_relu_vs_qmc():
    """ReLU with Q_0 = M_0 M_0^T: kink-polar fallback agrees with QMC within its error."""
    M0 = np.array([[0.5, -0.2], [0.1, 0.4]])
    prob = dmft.Problem(T=3, M0=M0, Q0=M0 @ M0.T)
    quad = solve_onepass(prob)
    assert np.all(quad.M_se == 0)
    qmc = solve_onepass(prob, method="qmc", qmc_log2=14, qmc_replicas=16, seed=3)
    zM = np.abs(quad.M - qmc.M)[1:] / qmc.M_se[1:]
    zQ = np.abs(quad.Q - qmc.Q)[1:] / qmc.Q_se[1:]
    assert zM.max() < 4 and zQ.max() < 4, (zM.max(), zQ.max())


# ------------------------------------------------------------------------ QMC and checks
def test_qmc_path_agrees_with_quadrature_within_its_se():
    prob = dmft.Problem(T=4)
    quad = solve_onepass(prob)
    qmc = solve_onepass(prob, method="qmc", qmc_log2=13, qmc_replicas=16, seed=7)
    assert qmc.provenance["qmc_replicas"] == 16
    assert qmc.diagnostics["M_runs"].shape == (16, 4, 2, 2)
    for name in ("M", "Q", "e_gen"):
        se = getattr(qmc, name + "_se")[1:]
        assert np.all(se > 0)
        z = np.abs(getattr(qmc, name)[1:] - getattr(quad, name)[1:]) / se
        assert z.max() < 4, (name, z.max())


@pytest.mark.parametrize("target,P,alpha", [("staircase", 8, 3.0), ("z1z2z3-he3", 4, 5.0)])
def test_paper_multi_unit_settings_first_step_qmc(target, P, alpha):
    """P >= 3 with ReLU runs QMC; M_1 = eta alpha (a / 2) C_1^T within 4 SE (C_1 = (1, 0) for
    the staircase, 0 for z1 z2 z3 + He3(z4))."""
    prob = dmft.Problem(target=target, P=P, alpha=alpha, T=2)
    traj = solve_onepass(prob, qmc_log2=12, qmc_replicas=16, seed=4)
    assert "qmc" in traj.provenance["quadrature"]
    c1 = {"staircase": np.array([1.0, 0.0]), "z1z2z3-he3": np.zeros(4)}[target]
    expected = prob.eta * alpha * np.outer(prob.a * 0.5, c1)
    se = traj.M_se[1]
    assert np.all(se > 0)
    assert np.all(np.abs(traj.M[1] - expected) < 4 * se + 1e-12)


def test_joint_rule_loss_equals_gen_error():
    """Two independent computations of E[L]: the joint (P+K)-dim rule and gen_error."""
    prob = dmft.Problem(T=4, noise=0.3)
    traj = solve_onepass(prob)
    np.testing.assert_allclose(traj.diagnostics["loss_joint_rule"], traj.e_gen, atol=1e-9)


def test_expectations_vs_monte_carlo():
    """One step's expectations vs a plain Monte Carlo that uses batch_F directly."""
    from solvers.numerics.committee import batch_F

    prob = dmft.Problem()
    M = np.array([[0.28, -0.24], [-0.28, 0.24]])
    Q = np.array([[0.65, 0.21], [0.21, 0.65]])
    E = onepass_expectations(prob, M, Q)
    rng = np.random.default_rng(0)
    n = 2_000_000
    L = G.sqrt_psd(G.omega(M, Q))
    X = rng.standard_normal((n, L.shape[1])) @ L.T
    U, Z = np.ascontiguousarray(X[:, :2]), X[:, 2:]
    sig, dsig, _ = prob.activation.cfuncs()
    F, _ = batch_F(U, prob.target(Z.T), prob.a, sig, dsig, np.ones(n), prob.loss.kernel_args())
    for name, samples in (("EFz", F[:, :, None] * Z[:, None, :]),
                          ("EFh", F[:, :, None] * U[:, None, :]),
                          ("EFF", F[:, :, None] * F[:, None, :])):
        mean = samples.mean(0)
        se = samples.std(0) / math.sqrt(n)
        assert np.all(np.abs(mean - E[name]) < 4 * se), name
    # B Omega^+ B^T from the Monte Carlo B (second order in the MC error: loose check)
    B = np.concatenate([(F[:, :, None] * U[:, None, :]).mean(0),
                        (F[:, :, None] * Z[:, None, :]).mean(0)], axis=1)
    np.testing.assert_allclose(B @ np.linalg.pinv(G.omega(M, Q)) @ B.T, E["BOB"], atol=2e-4)


@pytest.mark.parametrize("rho", [0.0, 0.9, 0.98, 0.999])
def test_unit_order_invariance_nearly_parallel_units(rho):
    """Swapping the two units changes the inner rule's integration order (which unit is
    integrated exactly); results must agree, also when their orthogonal parts are nearly
    parallel (steep inner integrand, handled by graded panels)."""
    M = np.array([[0.2, -0.1], [-0.15, 0.25]])
    Q = M @ M.T + np.array([[0.8, rho * 0.72], [rho * 0.72, 0.9 * 0.9]])
    a = np.array([0.9, -0.5])
    prob = dmft.Problem(a=a)
    swap = [1, 0]
    E = onepass_expectations(prob, M, Q)
    Es = onepass_expectations(prob.replace(a=a[swap]), M[swap], Q[np.ix_(swap, swap)])
    for name in ("EFh", "EFF", "BOB"):
        np.testing.assert_allclose(Es[name], E[name][np.ix_(swap, swap)], atol=1e-9)
    np.testing.assert_allclose(Es["EFz"], E["EFz"][swap], atol=1e-9)


def test_first_step_matches_multipass_dmft():
    """Step 0 -> 1 of the one-pass theory is the first step of the multi-pass DMFT."""
    prob = dmft.Problem(T=2)
    one = solve_onepass(prob)
    dm = dmft.solve(prob, samples=200_000, seed=1, progress=False)
    for name in ("M", "Q"):
        z = np.abs(getattr(dm, name)[1] - getattr(one, name)[1]) / getattr(dm, name + "_se")[1]
        assert z.max() < 4, (name, z.max())


def test_divergence_raises_with_partial_trajectory():
    # linear case with |1 - eta alpha (1 + ...)| > 1: overlaps grow geometrically to inf
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=5.0, T=400)
    with pytest.raises(dmft.DivergenceError) as info:
        solve_onepass(prob)
    err = info.value
    assert 0 < err.step < 400
    assert err.partial is not None and err.partial.T == err.step
    assert np.all(np.isfinite(err.partial.M)) and np.all(np.isfinite(err.partial.Q))


def test_runaway_growth_past_the_bound_raises_naming_eta():
    """eta = 50 in the paper setting: finite overlaps that explode (e_gen ~ 1e19 by T = 7 before
    the check existed) stop at the bound max_j Q_jj > 1e6 x scale."""
    prob = dmft.Problem(eta=50.0, T=7)
    with pytest.raises(dmft.DivergenceError, match=r"eta = 50\b") as info:
        solve_onepass(prob)
    err = info.value
    assert 1 <= err.step <= 3 and "runaway growth" in str(err)
    assert err.partial is not None and err.partial.T == err.step
    assert np.all(np.isfinite(err.partial.M)) and np.all(np.isfinite(err.partial.Q))
    assert np.all(np.isfinite(err.partial.e_gen))
    np.testing.assert_array_equal(err.partial.M[0], prob.M0)


def test_geometric_growth_raises_before_the_bound():
    """eta = 2: e_gen grows by ~1.8x per step (7.5e7 at T = 30 before the check existed); the
    recursion stops once max_j Q_jj > 100 x scale grows geometrically."""
    prob = dmft.Problem(eta=2.0, T=30)
    with pytest.raises(dmft.DivergenceError, match="geometrically") as info:
        solve_onepass(prob)
    err = info.value
    assert "eta = 2" in str(err) and err.step < 12
    assert err.partial.T == err.step
    e = err.partial.e_gen
    assert np.all(e[-3:] / e[-4:-1] > 1.5)  # the partial trajectory shows the growth


def test_runaway_criterion():
    """The stated criterion on synthetic norm histories (scale 1)."""
    from solvers.onepass import _runaway

    def history(norms):
        return np.array([n * np.eye(2) for n in norms])

    assert _runaway(history([1, 2, 4, 8, 16]), 4, 1.0) == ""  # geometric but small
    assert _runaway(history([1, 50, 75, 113, 170]), 4, 1.0) != ""  # geometric and > 100
    assert _runaway(history([1, 50, 75, 113, 150]), 4, 1.0) == ""  # slowing down
    assert _runaway(history([1, 5e5, 5e5, 5e5, 2e6]), 4, 1.0) != ""  # past the bound
    assert _runaway(history([1, 5e5, 5e5, 5e5, 2e6]), 4, 10.0) == ""  # bound scales


def test_large_but_converging_norms_do_not_raise():
    """A student started with norm 200 (far above the target's) shrinks back: no divergence,
    because the bound scales with max_j Q0_jj."""
    traj = solve_onepass(dmft.Problem(Q0=200.0 * np.eye(2), eta=0.05, T=6))
    norms = np.diagonal(traj.Q, axis1=1, axis2=2).max(axis=1)
    assert np.all(np.diff(norms) < 0)


def test_non_finite_target_is_reported_as_the_target_s_fault():
    def bad(z):
        return np.where(z[0] > 3.0, np.nan, z[0])

    prob = dmft.Problem(target=dmft.Target(bad, K=1, name="nan-above-3"), P=1, T=3)
    with pytest.raises(ValueError, match=r"target 'nan-above-3' .*returned nan"):
        solve_onepass(prob)


def test_deterministic_dispatch_and_provenance():
    prob = dmft.Problem(target="staircase", T=3)
    a = dmft.solve(prob, method="one-pass")
    b = solve_onepass(prob.replace(schedule="one-pass"))
    np.testing.assert_array_equal(a.M, b.M)
    np.testing.assert_array_equal(a.Q, b.Q)
    assert a.problem.schedule.name == "one-pass"
    assert a.provenance["method"] == "one-pass"
    assert "structured" in a.provenance["quadrature"] and a.provenance["nodes"] > 0
    np.testing.assert_array_equal(a.e_train, a.e_gen)
    with pytest.raises(TypeError, match="unknown quadrature option"):
        solve_onepass(prob, samples=10)
    with pytest.raises(ValueError, match="seed"):
        solve_onepass(prob, seed=-1)


# ------------------------------------------------------------- vs finite-d simulations
SIM_CASES = {
    "tanh-he1-he3": dict(),
    "staircase": dict(target="staircase"),
    "he3": dict(target="he3", P=1, M0=[[0.3]]),
    "lam": dict(lam=0.5, eta=0.3),
}


def _compare_with_simulations(kw, sizes, T, seed):
    prob = dmft.Problem(schedule="one-pass", T=T, **kw)
    theory = solve_onepass(prob)
    sims = [dmft.simulate(prob, d=d, seeds=s, seed=seed + i) for i, (d, s) in enumerate(sizes)]
    ex = dmft.extrapolate(sims)
    worst = {}
    for name in ("M", "Q", "e_gen", "e_train"):
        diff = (getattr(ex, name) - getattr(theory, name))[1:]  # t = 0 is exact in both
        se = getattr(ex, name + "_se")[1:]
        assert np.all(se > 0)
        worst[name] = float(np.max(np.abs(diff) / se))
    return worst


@pytest.mark.parametrize("case", sorted(SIM_CASES))
def test_onepass_theory_vs_simulations_ci(case):
    """CI size: d = 250, 500, 1000 (seeds 64, 32, 16; the standard error scales as
    1 / sqrt(seeds d), so small d buys the most precision per second), T = 3, linear
    extrapolation in 1/d. 4 SE: ~60 comparisons in total."""
    worst = _compare_with_simulations(SIM_CASES[case], [(250, 64), (500, 32), (1000, 16)], 3,
                                      seed=100)
    assert max(worst.values()) < 4, worst


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SIM_CASES))
def test_onepass_theory_vs_simulations_slow(case):
    """d = 1000, 2000, 4000 (seeds 160, 80, 40), T = 5."""
    worst = _compare_with_simulations(SIM_CASES[case], [(1000, 160), (2000, 80), (4000, 40)], 5,
                                      seed=200)
    assert max(worst.values()) < 4, worst
