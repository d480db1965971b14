"""Exact closed forms of the linear case: gradient descent on linear regression at d -> infinity.

With a linear student and target (f = a.W x / sqrt(d), g*(z) = z), lambda = 0, M_0 = 0 and
Q_0 = I, full-batch GD is a linear recursion whose averages are moments of the Marchenko-Pastur
law of X^T X / d (n = alpha d). The formulas are in docs/validation.md (the exact linear case);
sums of alternating binomial terms are done in exact rationals, as they cancel catastrophically
in floating point beyond t ~ 15.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .problem import Problem
from .trajectory import Trajectory, base_provenance

__all__ = ["marchenko_pastur_moment", "linear_overlaps", "linear_gd"]


def marchenko_pastur_moment(k: int, alpha: float | Fraction) -> Fraction:
    """Moment m_k = E[lambda^k] of the Marchenko-Pastur law of X^T X / d with n = alpha d.

    ``m_0 = 1``, ``m_k = sum_{r=1}^k N(k, r) alpha^r`` with the Narayana numbers
    ``N(k, r) = binom(k, r) binom(k, r - 1) / k``; exact for a rational ``alpha`` (a float is
    read through its shortest decimal representation, so ``3.0`` is exactly 3).

    Examples
    --------
    >>> [int(marchenko_pastur_moment(k, 3)) for k in range(4)]
    [1, 3, 12, 57]
    """
    alpha = _rational(alpha)
    if k == 0:
        return Fraction(1)
    return sum(Fraction(math.comb(k, r) * math.comb(k, r - 1), k) * alpha**r
               for r in range(1, k + 1))


def linear_overlaps(alpha: float, eta: float, T: int) -> dict[str, np.ndarray]:
    """M_t, Q_t, e_train(t) of one linear unit (P = K = 1, a = 1) trained by GD, t < T.

    With w_t - w* = (I - eta X^T X / d)^t (w_0 - w*), w_0 orthogonal to w* and
    |w_0|^2 = |w*|^2 = d, writing u = 1 - eta lambda and E over the Marchenko-Pastur law:
    ``M_t = 1 - E[u^t]``, ``Q_t = 1 - 2 E[u^t] + 2 E[u^2t]``,
    ``e_train(t) = E[lambda u^2t] / alpha`` (half the train MSE ``(1/n)|y - f|^2``).

    Parameters
    ----------
    alpha, eta : float
        Samples per dimension and learning rate.
    T : int
        Number of time points.

    Returns
    -------
    dict of str -> ndarray, each of shape (T,)
        ``"M"``, ``"Q"``, ``"e_train"``.

    Examples
    --------
    >>> ex = linear_overlaps(3.0, 0.2, 3)
    >>> [round(float(2 * e), 4) for e in ex["e_train"]]  # the train MSE
    [2.0, 0.32, 0.1184]
    """
    alpha, eta = _rational(alpha), _rational(eta)
    moments = [marchenko_pastur_moment(k, alpha) for k in range(2 * T + 2)]

    def poly_moment(power: int, shift: int) -> Fraction:  # E[lambda^shift (1 - eta lambda)^power]
        return sum(math.comb(power, k) * (-eta) ** k * moments[k + shift] for k in range(power + 1))

    M = np.array([float(1 - poly_moment(t, 0)) for t in range(T)])
    Q = np.array([float(1 - 2 * poly_moment(t, 0) + 2 * poly_moment(2 * t, 0)) for t in range(T)])
    e_train = np.array([float(poly_moment(2 * t, 1) / alpha) for t in range(T)])
    return {"M": M, "Q": Q, "e_train": e_train}


def linear_gd(problem: Problem) -> Trajectory:
    """The exact d -> infinity trajectory of a linear problem, standard errors 0.

    A linear student with P units and |a| = 1 is one linear unit in the direction a: its
    output weights v = a.W follow the P = 1 recursion, so with the single-unit ``M_1, Q_1``
    of :func:`linear_overlaps`: ``M_t = a M_1(t)``, ``Q_t = I + a a^T (Q_1(t) - 1)``,
    ``e_train`` the same, and ``e_gen = (1 - 2 M_1 + Q_1) / 2``.

    Parameters
    ----------
    problem : Problem
        Target ``"linear"``, activation ``"linear"``, |a| = 1, lam = 0, M0 = 0, Q0 = I, no
        label noise, full batch.

    Returns
    -------
    Trajectory
        ``provenance["method"] = "exact"``; all standard errors 0.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=0.2, T=3)
    >>> linear_gd(prob).M[:, 0, 0]
    array([0.  , 0.6 , 0.72])
    """
    _check_linear(problem)
    one = linear_overlaps(problem.alpha, problem.eta, problem.T)
    a = problem.a
    M = one["M"][:, None, None] * a[None, :, None] + 0.0  # + 0.0: no -0.0 where a_j < 0
    Q = np.eye(problem.P) + (one["Q"] - 1.0)[:, None, None] * np.outer(a, a)
    e_gen = (1.0 - 2.0 * one["M"] + one["Q"]) / 2.0
    provenance = base_provenance(
        "exact", closed_form="GD on linear regression, Marchenko-Pastur moments (d -> inf)")
    return Trajectory(problem=problem, M=M, Q=Q, e_train=one["e_train"], e_gen=e_gen,
                      provenance=provenance)


def _check_linear(problem: Problem) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")
    needs = {
        "target 'linear'": problem.target.name == "linear",
        "activation 'linear'": problem.activation.name == "linear",
        "|a| = 1": abs(float(problem.a @ problem.a) - 1.0) < 1e-12,
        "lam = 0": problem.lam == 0,
        "M0 = 0": not np.any(problem.M0),
        "Q0 = I": np.array_equal(problem.Q0, np.eye(problem.P)),
        "noise = 0": problem.noise == 0,
        "the full-batch schedule": problem.schedule.name == "full",
    }
    missing = [what for what, ok in needs.items() if not ok]
    if missing:
        raise ValueError("the exact linear case needs " + ", ".join(missing)
                         + f"; got {problem!r}")


def _rational(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(str(x))
