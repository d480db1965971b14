"""Plain vectorized-numpy multi-pass DMFT: the speed baseline and an independent cross-check.

This module re-implements the multi-pass DMFT (docs/theory/dmft.md), both kernel estimators
(docs/theory/estimators.md) and the batch schedules directly from the equations, in
plain numpy (vectorized over the Monte Carlo samples, loops only over time), with no numba
kernels. It has two jobs:

1. it is the "plain vectorized-numpy implementation of the same equations" that the numba
   solver (``solvers.multipass``) is benchmarked against;
2. it is an *independent* implementation that the numba solver is checked against.

Because independence is the point, this file computes the committee loss, its gradient F and
its Hessian J itself from their definitions (docs/theory/model.md) instead of calling
``solvers.numerics.committee``. This is the one place in the package where F is deliberately
duplicated; everywhere else ``solvers.numerics.committee`` is the single source of truth.
sigma, sigma', sigma'' are evaluated with the elementwise ufuncs ``problem.activation(x)``,
``.d1(x)``, ``.d2(x)``.

Choices made where the equations leave room (see also the docstring of :func:`solve_numpy`):

* Noise. zeta is one Gaussian process: every sample keeps its white normals xi(0..t), and
  zeta(t) = (row block t of L) xi(0..t), L the lower-triangular Cholesky factor of the
  time-major matrix C[0..t, 0..t]. L is grown one block row per step by a pivot-free
  Cholesky that clamps non-positive (or relatively tiny, <= ``_PIVOT_RTOL`` times the
  diagonal entry) pivots to 0 and zeroes their column below the diagonal. This is a
  square root of a positive semi-definite C (exactly PSD up to rounding here, since the
  Monte Carlo C is a Gram matrix), it is causal (row block t uses C[0..t, 0..t] only), and
  earlier rows are never recomputed, so past noise values never change.
* Stein (4b). Gamma(t, 0..t) = alpha E[F(t) w(0..t)^T] Cw^+, with Cw the Monte Carlo second
  moment E[w w^T] of the same samples by default (``stein_cw="empirical"``: an ordinary
  least-squares regression of alpha F on w, lower variance than the exact Cw) or the
  deterministic Qperp recursion (``stein_cw="exact"``). ``^+`` is a pseudo-inverse
  (eigen-decomposition, eigenvalues below 1e-12 of the largest dropped): when C is rank
  deficient (e.g. a linear student with P > 1, where F is always parallel to a) the cavity
  field w lives on a subspace, Stein's lemma determines Gamma only on that subspace, and
  the minimum-norm solution is returned. Use the pathwise estimator in that case.
* Pathwise (4a) propagates chi per sample and needs sigma'' pointwise: it refuses activations
  with a Dirac part (ReLU).
* Schedules (5). ``Cyclic(n)``: each sample draws its block uniformly from 0..n-1 and is active
  at step t iff t mod n equals its block; ``Bernoulli(b)``: active independently with
  probability b at every step. F and J are multiplied by the activity s(t) everywhere
  (kernels, updates, M drift); e_train is the loss over all samples.
* Times: T time points t = 0..T-1. Kernels are returned at every t (those at T-1 are not used
  by any update but are well defined).
"""

from __future__ import annotations

import numbers
import resource
import time

import numpy as np

from dmft.problem import Problem
from dmft.schedules import Bernoulli, Cyclic, Full, OnePass

__all__ = ["solve_numpy", "solve_numpy_replicas", "psd_cholesky_extend"]

_PIVOT_RTOL = 1e-10  # pivots below this fraction of their diagonal entry are treated as 0
_PINV_RTOL = 1e-12  # eigenvalues of Cw below this fraction of the largest are dropped

_OUTPUT_KEYS = ("M", "Q", "e_train", "C", "R", "Lam")


# ------------------------------------------------------------------------------ linear algebra
def psd_cholesky_extend(L_prev: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Grow the lower-triangular factor of a PSD matrix by its trailing rows.

    Parameters
    ----------
    L_prev : array (m, m)
        Factor already computed for ``A[:m, :m]`` (m may be 0). It is copied unchanged into
        the result, so values sampled with it stay valid.
    A : array (n, n), n >= m
        Symmetric positive semi-definite matrix (only its lower triangle is read).

    Returns
    -------
    L : array (n, n)
        Lower triangular with ``L @ L.T == A`` up to rounding. Pivot-free: a pivot that is
        <= ``_PIVOT_RTOL * A[j, j]`` (this includes tiny negative ones from rounding and an
        exactly zero diagonal) is set to 0 together with the rest of its column.
    """
    n = A.shape[0]
    m = L_prev.shape[0]
    L = np.zeros((n, n))
    L[:m, :m] = L_prev
    for i in range(m, n):
        for j in range(i + 1):
            resid = A[i, j] - L[i, :j] @ L[j, :j]
            if j < i:
                # a zero pivot means coordinate j is a deterministic function of earlier ones;
                # for a PSD A the matching residual covariance is 0, so the entry is 0
                L[i, j] = resid / L[j, j] if L[j, j] > 0.0 else 0.0
            else:
                L[i, i] = np.sqrt(resid) if resid > _PIVOT_RTOL * A[i, i] else 0.0
    return L


def _pinv_psd(A: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Pseudo-inverse of a symmetric PSD matrix, its condition number on its range, its rank.

    Eigenvalues <= ``_PINV_RTOL`` times the largest are treated as 0; the condition number is
    the largest over the smallest kept eigenvalue.
    """
    vals, vecs = np.linalg.eigh(0.5 * (A + A.T))
    top = vals.max()
    keep = vals > _PINV_RTOL * top
    inv_vals = np.zeros_like(vals)
    inv_vals[keep] = 1.0 / vals[keep]
    return (vecs * inv_vals) @ vecs.T, float(top / vals[keep].min()), int(keep.sum())


def _psd_sqrt(A: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (negative rounding eigenvalues clamped to 0)."""
    vals, vecs = np.linalg.eigh(0.5 * (A + A.T))
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


# ------------------------------------------------------------------------------ loss, F, J
def _loss_F_J(problem: Problem, h: np.ndarray, y: np.ndarray, need_J: bool):
    """Committee loss, gradient and Hessian in u, from docs/theory/model.md (deliberate duplicate).

    Parameters
    ----------
    h : array (S, P)
        Pre-activations.
    y : array (S,)
        Labels.

    Returns
    -------
    loss : array (S,)
        (y - a.sigma(h))^2 / 2.
    F : array (S, P)
        -(y - f) a * sigma'(h).
    J : array (S, P, P) or None
        (a * sigma')(a * sigma')^T - diag((y - f) a * sigma''(h)).
    """
    act, a = problem.activation, problem.a
    resid = y - act(h) @ a
    a_d1 = a * act.d1(h)
    F = -resid[:, None] * a_d1
    J = None
    if need_J:
        J = a_d1[:, :, None] * a_d1[:, None, :]
        idx = np.arange(h.shape[1])
        J[:, idx, idx] -= resid[:, None] * a * act.d2(h)
    return 0.5 * resid * resid, F, J


# ------------------------------------------------------------------------------ schedules
class _Activity:
    """Per-sample activity s(t) in {0, 1} for the batch schedules (docs/theory/dmft.md)."""

    def __init__(self, schedule, S: int, rng: np.random.Generator) -> None:
        self.schedule = schedule
        self.rng = rng
        self.block = None
        if isinstance(schedule, Cyclic):
            self.block = rng.integers(0, schedule.n_blocks, size=S)
        self.S = S

    def at(self, t: int) -> np.ndarray | None:
        """Activity at step t as a float array (S,), or None when every sample is active."""
        sch = self.schedule
        if isinstance(sch, Full):
            return None
        if isinstance(sch, Cyclic):
            return (self.block == t % sch.n_blocks).astype(np.float64)
        # Bernoulli: a fresh draw per sample per step
        return (self.rng.random(self.S) < sch.b).astype(np.float64)


# ------------------------------------------------------------------------------ cavity recursion
def _cavity_covariance(Phi, G, C, Qperp0, t_max: int) -> np.ndarray:
    """Qperp(u, v) for u, v = 0..t_max as a time-major ((t_max+1)P, (t_max+1)P) matrix.

    Qperp(u, v) = Phi(u) Qperp0 Phi(v)^T + sum_{s<u, s'<v} G(u,s) C(s,s') G(v,s')^T
    (docs/theory/dmft.md). Phi: (T, P, P); G: (T, T, P, P) with G[u, s] = 0 for s >= u;
    C: (T, T, P, P) filled for all pairs up to t_max - 1.
    """
    P = Qperp0.shape[0]
    n = t_max + 1
    phi_big = Phi[:n].reshape(n * P, P)
    out = phi_big @ Qperp0 @ phi_big.T
    if t_max > 0:
        # block (u, s) of g_big is G(u, s); block (s, s') of c_big is C(s, s')
        g_big = G[:n, :t_max].transpose(0, 2, 1, 3).reshape(n * P, t_max * P)
        c_big = C[:t_max, :t_max].transpose(0, 2, 1, 3).reshape(t_max * P, t_max * P)
        out += g_big @ c_big @ g_big.T
    return out


def _block(mat: np.ndarray, P: int) -> np.ndarray:
    """Time-major (nP, nP) matrix -> (n, n, P, P) blocks."""
    n = mat.shape[0] // P
    return mat.reshape(n, P, n, P).transpose(0, 2, 1, 3)


# ------------------------------------------------------------------------------ the solver
def _check_inputs(problem, samples, estimator, stein_cw) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    if estimator not in ("stein", "pathwise"):
        raise ValueError(f"estimator={estimator!r} is not valid; allowed: 'stein', 'pathwise'")
    if stein_cw not in ("empirical", "exact"):
        raise ValueError(f"stein_cw={stein_cw!r} is not valid; allowed: 'empirical', 'exact'")
    if estimator == "pathwise" and not problem.activation.smooth:
        raise ValueError(
            f"estimator='pathwise' needs sigma'' pointwise, but activation "
            f"{problem.activation.name!r} has a Dirac mass "
            f"(d2_dirac_at_zero={problem.activation.d2_dirac_at_zero}); use estimator='stein'"
        )
    if isinstance(problem.schedule, OnePass):
        raise ValueError(
            "schedule='one-pass' has no multi-pass DMFT; allowed: 'full', Cyclic, Bernoulli"
        )
    if not isinstance(problem.schedule, (Full, Cyclic, Bernoulli)):
        raise TypeError(f"unknown schedule {problem.schedule!r}")


def solve_numpy(
    problem: Problem,
    samples: int,
    seed: int | np.random.SeedSequence,
    estimator: str = "stein",
    *,
    stein_cw: str = "empirical",
) -> dict[str, np.ndarray]:
    """Multi-pass DMFT (docs/theory/dmft.md) in plain numpy (one causal forward pass).

    Per sample: z ~ N(0, I_K), y = g*(z) (+ sqrt(noise) N(0,1)), r(0) ~ N(0, Q0 - M0 M0^T),
    h(t) = r(t) + M(t) z, white normals xi(t) ~ N(0, I_P), zeta(t) = sum_{s<=t} L_ts xi(s),
    r(t+1) = r(t) + eta[-Lam(t) r(t) - s(t)F(t) + sum_{u<t} R(t,u) r(u) + zeta(t)],
    M(t+1) = (1 - eta lam) M(t) - eta alpha E[s(t) F(t) z^T].

    Parameters
    ----------
    problem : Problem
        Any activation for ``estimator="stein"``; smooth ones only for ``"pathwise"``.
        Schedules: full, ``Cyclic``, ``Bernoulli`` (not one-pass).
    samples : int
        Number S of Monte Carlo samples (all held in memory: about 60 T P bytes each for
        Stein, plus 8 T^2 P^2 / 2 more for pathwise).
    seed : int or numpy.random.SeedSequence
        Master seed; spawned into independent streams for (z, labels, r(0)), the white noise
        xi, and the schedule, so e.g. ``Cyclic(1)`` reproduces ``"full"`` exactly.
    estimator : {"stein", "pathwise"}
        How Lambda and R are estimated (docs/theory/estimators.md): Stein's Gaussian
        integration by parts, or the pathwise response chi with
        R(t,s) = alpha E[s(t) J(t) chi(t,s)], J first).
    stein_cw : {"empirical", "exact"}
        Stein only: Cw from the Monte Carlo E[w w^T] of the same samples, or from the
        deterministic Qperp recursion.

    Returns
    -------
    dict of numpy arrays
        ``M`` (T, P, K), ``Q`` (T, P, P) (deterministic Qperp recursion + M M^T),
        ``e_train`` (T,), ``C`` (T, T, P, P) (all pairs, C[s, t] = C[t, s]^T),
        ``R`` (T, T, P, P) (zero for s >= t), ``Lam`` (T, P, P), and ``Qperp`` (T, T, P, P),
        the deterministic cavity covariance Qperp(t, s) (docs/theory/dmft.md). Stein adds
        ``Cw`` (T, T, P, P), the Monte Carlo E[w(t) w(s)^T], ``cond_Cw`` (T,) and ``rank_Cw``
        (T,), the condition number on its range and the numerical rank of the ((t+1)P,
        (t+1)P) matrix Cw[0..t, 0..t] pseudo-inverted at step t (rank < (t+1)P when C is rank
        deficient).
    """
    _check_inputs(problem, samples, estimator, stein_cw)
    S, T, P, K = int(samples), problem.T, problem.P, problem.K
    alpha, eta, lam = problem.alpha, problem.eta, problem.lam
    stein = estimator == "stein"
    eye = np.eye(P)

    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng_init, rng_noise, rng_sched = (np.random.default_rng(c) for c in ss.spawn(3))

    # --- per-sample state that is fixed in time
    z = rng_init.standard_normal((S, K))
    y = problem.target(np.ascontiguousarray(z.T))
    if problem.noise > 0:
        y = y + np.sqrt(problem.noise) * rng_init.standard_normal(S)
    activity = _Activity(problem.schedule, S, rng_sched)

    # --- histories (time-major, each (T, S, P)): needed for C, the memory sums and the noise
    r_hist = np.empty((T, S, P))
    F_hist = np.empty((T, S, P))
    xi_hist = np.empty((T, S, P))
    r_hist[0] = rng_init.standard_normal((S, P)) @ _psd_sqrt(problem.Qperp0)
    if stein:
        w_hist = np.empty((T, S, P))
        w_hist[0] = r_hist[0]
    else:
        chi = {}  # (t, s) -> (S, P, P), chi(t, s) for s < t; chi(t, t) = 0 is not stored

    # --- deterministic outputs
    M = np.zeros((T, P, K))
    M[0] = problem.M0
    e_train = np.zeros(T)
    C = np.zeros((T, T, P, P))
    R = np.zeros((T, T, P, P))
    Lam = np.zeros((T, P, P))
    Phi = np.zeros((T, P, P))
    Phi[0] = eye
    G = np.zeros((T, T, P, P))
    if stein:
        Cw = np.zeros((T, T, P, P))
        cond_Cw = np.zeros(T)
        rank_Cw = np.zeros(T)
    L_noise = np.zeros((0, 0))

    for t in range(T):
        # ---- fields, loss, F, J at time t
        h = r_hist[t] + z @ M[t].T
        loss, F, J = _loss_F_J(problem, h, y, need_J=not stein)
        e_train[t] = loss.mean()
        s_t = activity.at(t)
        if s_t is not None:
            F *= s_t[:, None]
            if J is not None:
                J *= s_t[:, None, None]
        F_hist[t] = F

        # ---- noise covariance C(t, s), s <= t
        for s in range(t + 1):
            C[t, s] = alpha * (F.T @ F_hist[s]) / S
            C[s, t] = C[t, s].T

        # ---- Lambda(t), R(t, s < t)
        if stein:
            for s in range(t + 1):
                Cw[t, s] = (w_hist[t].T @ w_hist[s]) / S
                Cw[s, t] = Cw[t, s].T
            n = t + 1
            if stein_cw == "empirical":
                cw_big = Cw[:n, :n].transpose(0, 2, 1, 3).reshape(n * P, n * P)
            else:
                cw_big = _cavity_covariance(Phi, G, C, problem.Qperp0, t)
            cw_inv, cond_Cw[t], rank_Cw[t] = _pinv_psd(cw_big)
            # alpha E[F(t) w(s)^T] for s = 0..t, side by side: (P, (t+1) P)
            fw = np.concatenate([F.T @ w_hist[s] for s in range(n)], axis=1) * (alpha / S)
            gamma = fw @ cw_inv
            Lam[t] = lam * eye + gamma[:, t * P:]
            for s in range(t):
                R[t, s] = -gamma[:, s * P:(s + 1) * P]
        else:
            Lam[t] = lam * eye + alpha * J.mean(axis=0)
            for s in range(t):
                # J first: R(t, s) = alpha E[J(t) chi(t, s)]
                R[t, s] = alpha * np.einsum("nij,njk->ik", J, chi[t, s], optimize=True) / S

        # ---- deterministic cavity propagators Phi(t+1), G(t+1, s) (for Q and stein_cw="exact")
        if t + 1 < T:
            A_t = eye - eta * Lam[t]
            Phi[t + 1] = A_t @ Phi[t] + eta * sum(
                (R[t, u] @ Phi[u] for u in range(t)), np.zeros((P, P))
            )
            G[t + 1, t] = eta * eye
            for s in range(t):
                G[t + 1, s] = A_t @ G[t, s] + eta * sum(
                    (R[t, u] @ G[u, s] for u in range(s + 1, t)), np.zeros((P, P))
                )

        if t + 1 == T:
            break

        # ---- the Gaussian process zeta(t): causal Cholesky row of C[0..t, 0..t]
        xi_hist[t] = rng_noise.standard_normal((S, P))
        c_big = C[: t + 1, : t + 1].transpose(0, 2, 1, 3).reshape((t + 1) * P, (t + 1) * P)
        L_noise = psd_cholesky_extend(L_noise, c_big)
        zeta = np.zeros((S, P))
        for s in range(t + 1):
            zeta += xi_hist[s] @ L_noise[t * P:(t + 1) * P, s * P:(s + 1) * P].T

        # ---- updates of r, w, chi, M
        mem_r = np.zeros((S, P))
        for u in range(t):
            mem_r += r_hist[u] @ R[t, u].T
        r_hist[t + 1] = r_hist[t] + eta * (-r_hist[t] @ Lam[t].T - F + mem_r + zeta)
        if stein:
            mem_w = np.zeros((S, P))
            for u in range(t):
                mem_w += w_hist[u] @ R[t, u].T
            w_hist[t + 1] = w_hist[t] + eta * (-w_hist[t] @ Lam[t].T + mem_w + zeta)
        else:
            for s in range(t + 1):
                chi_ts = chi[t, s] if s < t else np.zeros((S, P, P))
                kick = chi_ts - eye if s == t else chi_ts  # chi(t,s) - delta_ts I
                new = chi_ts - eta * (Lam[t] @ chi_ts) - eta * (J @ kick)
                for u in range(s + 1, t):  # u = s contributes R(t,s) chi(s,s) = 0
                    new += eta * (R[t, u] @ chi[u, s])
                # every chi(u, s) is kept: later memory sums need the whole history
                chi[t + 1, s] = new
        M[t + 1] = (1.0 - eta * lam) * M[t] - eta * alpha * (F.T @ z) / S

    # ---- Q_t from the deterministic cavity recursion
    qperp = _block(_cavity_covariance(Phi, G, C, problem.Qperp0, T - 1), P)
    Q = np.stack([qperp[t, t] + M[t] @ M[t].T for t in range(T)])

    out = {"M": M, "Q": Q, "e_train": e_train, "C": C, "R": R, "Lam": Lam, "Qperp": qperp}
    if stein:
        out["Cw"] = Cw
        out["cond_Cw"] = cond_Cw
        out["rank_Cw"] = rank_Cw
    return out


def solve_numpy_replicas(
    problem: Problem,
    samples: int,
    seed: int,
    replicas: int,
    estimator: str = "stein",
    **options,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mean and standard error over ``replicas`` fully independent sub-solves.

    Each sub-solve has ``samples // replicas`` samples and its own kernels (seed
    ``SeedSequence(seed).spawn(replicas)[i]``), so the error bars include the kernels' own
    Monte Carlo noise fed forward (docs/theory/estimators.md).

    Returns
    -------
    mean, se : dict
        Same keys and shapes as :func:`solve_numpy`; ``se`` = sample std (ddof 1) / sqrt(B).
    """
    if isinstance(replicas, bool) or not isinstance(replicas, numbers.Integral) or replicas < 2:
        raise ValueError(f"replicas must be an integer >= 2, got {replicas!r}")
    runs = [
        solve_numpy(problem, samples // replicas, child, estimator, **options)
        for child in np.random.SeedSequence(seed).spawn(replicas)
    ]
    mean, se = {}, {}
    for key in runs[0]:
        stack = np.stack([run[key] for run in runs])
        mean[key] = stack.mean(axis=0)
        se[key] = stack.std(axis=0, ddof=1) / np.sqrt(replicas)
    return mean, se


# ------------------------------------------------------------------------------ measurement
def _measure(samples: int, estimator: str, seed: int) -> dict:
    """Wall time and peak RSS of one solve of the paper's ReLU problem (fresh process)."""
    problem = Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    solve_numpy(problem, 1000, 0, estimator)  # compile the activation ufuncs outside the timing
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    solve_numpy(problem, samples, seed, estimator)
    wall = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall_s": wall, "peak_rss_gib": rss1 / 2**20, "rss_before_gib": rss0 / 2**20}


def main(repeats: int = 3) -> None:
    """Print wall time (median over fresh processes) and peak RSS at T = 7, P = 2, S = 10^6.

    Run as ``python -m benchmarks.numpy_dmft``. Each measurement is a fresh process, with the
    BLAS thread count left at its default and pinned to 1 (the products here have an inner
    dimension of P = 2, so BLAS threads do not help, and on a loaded machine spinning BLAS
    threads can make the default several times slower).
    """
    import json
    import os
    import subprocess
    import sys

    print("plain-numpy DMFT, paper ReLU setting (T=7, P=2, S=1e6, estimator='stein'):")
    for label, threads in (("default BLAS threads", None), ("1 BLAS thread", "1")):
        env = dict(os.environ)
        if threads is not None:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env[var] = threads
        results = []
        for rep in range(repeats):
            code = (
                "import json; from benchmarks.numpy_dmft import _measure; "
                f"print(json.dumps(_measure(10**6, 'stein', {rep})))"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            ).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
        walls = [r["wall_s"] for r in results]
        rss = max(r["peak_rss_gib"] for r in results)
        rss0 = max(r["rss_before_gib"] for r in results)
        print(
            f"  {label:22s} wall median {float(np.median(walls)):.2f} s "
            f"(runs: {', '.join(f'{w:.2f}' for w in walls)}), peak RSS {rss:.3f} GiB "
            f"(process before the solve: {rss0:.3f} GiB)"
        )


if __name__ == "__main__":
    main()
