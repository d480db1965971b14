"""Gradient flow and Langevin dynamics in finite dimension: the simulator's integrators.

Gradient flow dW/dt = -lam W - sum_mu F_mu x_mu^T / sqrt(d) (full batch, loss summed) is
integrated with the classical fourth-order Runge-Kutta method at step dt. With temperature
tau > 0 (dW = drift dt + sqrt(2 tau) dB) the stochastic Heun method is used:

    W~ = W + dt f(W) + sqrt(2 tau dt) Xi,   W' = W + dt (f(W) + f(W~)) / 2 + sqrt(2 tau dt) Xi,

which for additive noise has weak order 2 (the same Xi, a P x d matrix of i.i.d. N(0, 1), in
both stages). Observables are recorded at t = k dt. The discretisation error is measured by
halving dt (tests/test_flow_simulator.py and docs/theory/flow.md).

Langevin noise of GD (``sqrt(2 eta tau) Xi`` after each step) and of flow comes from its own
stream of the run's SeedSequence, so the data, teacher and initialisation of a run are the same
at every temperature.
"""

from __future__ import annotations

import math

import numpy as np

from dmft.problem import Problem, flow_steps
from solvers.numerics.committee import batch_F, batch_loss

__all__ = ["langevin_rng", "run_flow", "DEFAULT_DT"]

# spawn key of the Langevin stream, far above the children the data chunks spawn
_LANGEVIN_KEY = 2**31 - 1
# default time step: RK4's error at dt = 0.05 is ~1e-6 relative on the paper's problem (halving
# dt, docs/theory/flow.md), the stochastic Heun's O(dt^2) weak error below the SE of 64 seeds
DEFAULT_DT = 0.05


def langevin_rng(run_ss: np.random.SeedSequence) -> np.random.Generator:
    """The Langevin noise stream of one run (independent of its data and initial streams).

    Examples
    --------
    >>> ss = np.random.SeedSequence(0)
    >>> float(langevin_rng(ss).standard_normal()) == float(langevin_rng(ss).standard_normal())
    True
    """
    key = np.random.SeedSequence(run_ss.entropy, spawn_key=(*run_ss.spawn_key, _LANGEVIN_KEY))
    return np.random.default_rng(key)


def _drift(problem: Problem, W, X, y, sqrt_d, ones, project):
    """-lam W - F^T X / sqrt(d) at W (P, d), and the residuals y - f (n,)."""
    sig, dsig, _ = problem.activation.cfuncs()
    F, resid = batch_F(project(X, W, sqrt_d), y, problem.a, sig, dsig, ones,
                       problem.loss.kernel_args())
    grad = (X.T @ F.astype(X.dtype, copy=False)).T.astype(np.float64, copy=False)
    return -problem.lam * W - grad / sqrt_d, resid


def run_flow(problem: Problem, dt: float, X, y, Wstar, W, run_ss, project, M, Q,
             e_train) -> int:
    """Integrate one run's gradient flow (RK4) or Langevin dynamics (stochastic Heun).

    Parameters
    ----------
    problem : Problem
        A ``dynamics="flow"`` problem (full batch).
    dt : float
        Time step; t_max / dt points after t = 0.
    X (n, d), y (n,), Wstar (K, d), W (P, d)
        Data, labels, teacher and initial student (not modified).
    run_ss : SeedSequence
        The run's seed sequence (Langevin noise stream, :func:`langevin_rng`).
    project : callable
        ``project(X, W, sqrt_d)`` = X W^T / sqrt(d) in float64.
    M (T, P, K), Q (T, P, P), e_train (T,)
        Filled in place at t = k dt, k = 0..T-1.

    Returns
    -------
    int
        T, or the first index k with non-finite overlaps.
    """
    n, d = X.shape
    steps, dt = flow_steps(problem.t_max, dt)
    sqrt_d = math.sqrt(d)
    ones = np.ones(n)
    tau = problem.temperature
    rng = langevin_rng(run_ss) if tau > 0 else None
    kick = math.sqrt(2.0 * tau * dt)
    for k in range(steps + 1):
        M[k], Q[k] = W @ Wstar.T / d, W @ W.T / d
        if not (np.all(np.isfinite(M[k])) and np.all(np.isfinite(Q[k]))):
            return k
        f1, resid = _drift(problem, W, X, y, sqrt_d, ones, project)
        e_train[k] = (0.5 * np.mean(resid**2) if problem.loss.half_square
                      else 0.5 * np.mean(batch_loss(resid, y, problem.loss.kernel_args())))
        if k == steps:
            break
        if rng is None:  # classical Runge-Kutta
            f2, _ = _drift(problem, W + 0.5 * dt * f1, X, y, sqrt_d, ones, project)
            f3, _ = _drift(problem, W + 0.5 * dt * f2, X, y, sqrt_d, ones, project)
            f4, _ = _drift(problem, W + dt * f3, X, y, sqrt_d, ones, project)
            W = W + (dt / 6.0) * (f1 + 2.0 * f2 + 2.0 * f3 + f4)
        else:  # stochastic Heun, additive noise
            noise = kick * rng.standard_normal(W.shape)
            f2, _ = _drift(problem, W + dt * f1 + noise, X, y, sqrt_d, ones, project)
            W = W + 0.5 * dt * (f1 + f2) + noise
    return steps + 1
