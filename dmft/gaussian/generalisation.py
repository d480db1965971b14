"""The generalisation error e_gen at overlaps (M, Q), from the target, pair and cross moments."""

from __future__ import annotations

import numpy as np

from .moments import cross_moments, pair_moments
from .options import QuadratureOptions
from .teacher import target_moments

__all__ = ["gen_error"]


def gen_error(problem, M: np.ndarray, Q: np.ndarray,
              options: QuadratureOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Generalisation (test) error at overlaps (M, Q) (docs/theory/model.md).

    e_gen = E[(y - a.sigma(u))^2] / 2 with (u, z) ~ N(0, [[Q, M], [M^T, I_K]]) and
    y = g*(z) + sqrt(noise) xi, i.e. the test error against *noisy* labels: with label noise
    it includes the floor noise / 2, consistently with the training loss. Computed as
    (E[g*^2] - 2 sum_j a_j E[g* sigma(u_j)] + sum_jk a_j a_k E[sigma(u_j) sigma(u_k)]) / 2
    + noise / 2 (each piece involves one unit and the teacher, or two units).

    Parameters
    ----------
    problem : Problem
    M : ndarray, shape (T, P, K)
    Q : ndarray, shape (T, P, P)
    options : QuadratureOptions, optional

    Returns
    -------
    e_gen, e_gen_se : ndarray, shape (T,)
        The standard error is 0 (quadrature; error < 1e-10 in the paper setting, see
        docs/quadrature.md) unless a kinked user activation (not ReLU) with K >= 4 made the
        cross terms fall back to QMC.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem()  # the paper's setting: e_gen at initialisation, M = 0, Q = I
    >>> e, se = gen_error(prob, np.zeros((1, 2, 2)), np.eye(2)[None])
    >>> round(float(e[0]), 6), float(se[0])
    (0.491592, 0.0)
    """
    if not problem.loss.half_square:
        raise ValueError(
            f"gen_error computes the square loss's e_gen; problem.loss is {problem.loss.name!r}: "
            "use solvers.population.population_values (what the solvers report as e_gen)")
    M = np.asarray(M, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    P, K = problem.P, problem.K
    if M.ndim != 3 or M.shape[1:] != (P, K):
        raise ValueError(f"M must have shape (T, {P}, {K}), got {M.shape}")
    if Q.shape != (M.shape[0], P, P):
        raise ValueError(f"Q must have shape ({M.shape[0]}, {P}, {P}), got {Q.shape}")
    if not (np.all(np.isfinite(M)) and np.all(np.isfinite(Q))):
        raise ValueError("M and Q must be finite")
    opts = options or QuadratureOptions()
    a = problem.a
    second = target_moments(problem.target, opts)["second"]
    pairs = pair_moments(problem.activation, Q, opts)
    cross, cross_se = cross_moments(problem, M, Q, opts)
    e = 0.5 * (second - 2.0 * cross @ a + np.einsum("j,tjk,k->t", a, pairs, a))
    e = e + 0.5 * problem.noise
    se = np.sqrt((cross_se**2) @ (a**2))
    return e, se
