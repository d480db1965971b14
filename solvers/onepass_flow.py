"""Population gradient flow: the eta -> 0 limit of the one-pass recursion, an ODE for (M, Q).

With a fresh batch of n = alpha d samples per step of size eta, the one-pass recursion
(docs/theory/one-pass.md) at time t = eta * step tends, as eta -> 0, to

    dM/dt = -lam M - alpha E[F z^T],
    dQ/dt = -2 lam Q - alpha (E[F h^T] + E[h F^T]) + 2 tau I,

(the eta^2 terms of the recursion vanish; tau the temperature). The expectations are those of
the one-pass step (:func:`solvers.onepass.onepass_expectations`, the same quadrature or QMC
rules); the ODE is integrated by the classical fourth-order Runge-Kutta method with
``substeps`` steps per reported interval dt. Where the student's part orthogonal to the teacher
dies out (Q - M M^T -> 0), an RK4 stage can leave the PSD cone by a rounding-sized amount; such
negative eigenvalues of Q - M M^T are set to 0 (:func:`feasible`).
"""

from __future__ import annotations

import numpy as np

from dmft import gaussian as G
from dmft.problem import Problem, flow_steps

__all__ = ["flow_rhs", "population_flow", "DEFAULT_DT"]

# reporting step; RK4 at this step is accurate to ~1e-7 on the paper's problem (halving, tests)
DEFAULT_DT = 0.1


def flow_rhs(problem: Problem, E: dict, M: np.ndarray, Q: np.ndarray):
    """(dM/dt, dQ/dt) of population gradient flow from the one-pass expectations ``E`` at (M, Q).

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="linear", P=1, activation="linear", dynamics="flow", t_max=1)
    >>> E = {"EFz": np.array([[-1.0]]), "EFh": np.array([[0.0]])}  # at M = 0, Q = 1
    >>> flow_rhs(prob, E, np.zeros((1, 1)), np.eye(1))
    (array([[3.]]), array([[-0.]]))
    """
    alpha, lam = problem.alpha, problem.lam
    dM = -lam * M - alpha * E["EFz"]
    dQ = -2.0 * lam * Q - alpha * (E["EFh"] + E["EFh"].T)
    if problem.temperature:
        dQ = dQ + 2.0 * problem.temperature * np.eye(Q.shape[0])
    return dM, 0.5 * (dQ + dQ.T)


def feasible(M: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Q with the negative eigenvalues of Q - M M^T (rounding or integration error where the
    student's part orthogonal to the teacher dies out) set to 0; Q itself if there are none.

    Examples
    --------
    >>> feasible(np.array([[1.0]]), np.array([[1.0 - 1e-9]]))
    array([[1.]])
    """
    perp = Q - M @ M.T
    w, V = np.linalg.eigh(0.5 * (perp + perp.T))
    if w.min() >= 0:
        return Q
    return M @ M.T + (V * np.clip(w, 0.0, None)) @ V.T


def population_flow(problem: Problem, dt: float, substeps: int, opts: G.QuadratureOptions,
                    qmc_rule, expectations, progress=None):
    """Integrate population gradient flow; same outputs as the one-pass recursion.

    Parameters
    ----------
    problem : Problem
        ``dynamics="flow"``.
    dt : float
        Reporting step (t_max / dt an integer); RK4 runs at dt / substeps.
    substeps : int
    opts, qmc_rule
        Passed to ``expectations(problem, M, Q, opts, qmc_rule)``.
    expectations : callable
        :func:`solvers.onepass.onepass_expectations`.
    progress : tqdm or None

    Returns
    -------
    M (T, P, K), Q (T, P, P), (loss, misclassification) (T, 2), rule description, nodes,
    failing index or None,
    message.
    """
    steps, dt = flow_steps(problem.t_max, dt)
    T, P, K = steps + 1, problem.P, problem.K
    M = np.zeros((T, P, K))
    Q = np.zeros((T, P, P))
    loss = np.full((T, 2), np.nan)
    M[0], Q[0] = problem.M0, problem.Q0
    h = dt / substeps
    desc, nodes = "", 0

    def rhs(m, q):
        q = feasible(m, q) if np.all(np.isfinite(q)) and np.all(np.isfinite(m)) else q
        return flow_rhs(problem, expectations(problem, m, q, opts, qmc_rule), m, q)

    for k in range(T):
        try:
            E = expectations(problem, M[k], Q[k], opts, qmc_rule)
        except (ValueError, np.linalg.LinAlgError) as exc:
            if k == 0:
                raise
            return M, Q, loss, desc, nodes, k, f"the expectations failed ({exc})"
        desc, nodes, loss[k] = E["rule"], E["nodes"], (E["loss"], E["class_error"])
        if progress is not None:
            progress.update(1)
        if k == T - 1:
            break
        m, q = M[k], Q[k]
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for sub in range(substeps):
                    k1 = flow_rhs(problem, E, m, q) if sub == 0 else rhs(m, q)
                    k2 = rhs(m + 0.5 * h * k1[0], q + 0.5 * h * k1[1])
                    k3 = rhs(m + 0.5 * h * k2[0], q + 0.5 * h * k2[1])
                    k4 = rhs(m + h * k3[0], q + h * k3[1])
                    m = m + h / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0])
                    q = q + h / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1])
        except (ValueError, np.linalg.LinAlgError) as exc:
            return M, Q, loss, desc, nodes, k + 1, f"the expectations failed ({exc})"
        M[k + 1], Q[k + 1] = m, 0.5 * (q + q.T)
        if not (np.all(np.isfinite(M[k + 1])) and np.all(np.isfinite(Q[k + 1]))):
            return M, Q, loss, desc, nodes, k + 1, "the overlaps are no longer finite"
        Q[k + 1] = feasible(M[k + 1], Q[k + 1])
    return M, Q, loss, desc, nodes, None, ""
