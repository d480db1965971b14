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

__all__ = ["marchenko_pastur_moment", "marchenko_pastur_expect", "linear_overlaps",
           "linear_flow_overlaps", "linear_gd", "linear_exact"]


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


def marchenko_pastur_expect(fn, alpha: float, nodes: int = 400) -> np.ndarray:
    """E[fn(lambda)] over the Marchenko-Pastur law of X^T X / d (n = alpha d), by quadrature.

    The law has the density sqrt((l+ - x)(x - l-)) / (2 pi x) on [l-, l+],
    l+- = (sqrt(alpha) +- 1)^2, and an atom of mass 1 - alpha at 0 when alpha < 1. With
    x = m + h cos(theta) the integral is a Gauss-Chebyshev rule of the second kind (exponential
    convergence for fn smooth on the support; alpha = 1, where l- = 0, converges slowly).

    Parameters
    ----------
    fn : callable
        Vectorised, ``fn(x)`` for an array x of shape (nodes,) returns shape (nodes, ...);
        also called at x = [0.0] for the atom when alpha < 1.
    alpha : float
        Samples per dimension, > 0.
    nodes : int
        Quadrature nodes.

    Returns
    -------
    ndarray of shape (...)

    Examples
    --------
    >>> round(float(marchenko_pastur_expect(lambda x: x**2, 3.0)), 10)  # m_2 = alpha + alpha^2
    12.0
    """
    lo, hi = (math.sqrt(alpha) - 1.0) ** 2, (math.sqrt(alpha) + 1.0) ** 2
    mid, half = (hi + lo) / 2.0, (hi - lo) / 2.0
    k = np.arange(1, nodes + 1)
    theta = k * np.pi / (nodes + 1)
    x = mid + half * np.cos(theta)
    # Gauss-Chebyshev U: int_0^pi g(theta) sin^2(theta) dtheta = sum w_k g(theta_k)
    w = np.pi / (nodes + 1) * np.sin(theta) ** 2
    vals = np.asarray(fn(x), dtype=np.float64)
    weights = (half**2 / (2.0 * np.pi)) * w / x
    out = np.tensordot(weights, vals, axes=(0, 0))
    if alpha < 1:
        out = out + (1.0 - alpha) * np.asarray(fn(np.zeros(1)), dtype=np.float64)[0]
    return out


def linear_flow_overlaps(alpha: float, times, temperature: float = 0.0) -> dict[str, np.ndarray]:
    """M, Q, e_train of one linear unit (P = K = 1, a = 1) under gradient flow or Langevin.

    dw = -A (w - w*) dt + sqrt(2 tau) dB with A = X^T X / d, w_0 orthogonal to w*,
    |w_0|^2 = |w*|^2 = d; with E over the Marchenko-Pastur law of A and
    ``g(x) = (1 - exp(-2 x t)) / (2 x)`` (= t at x = 0):
    ``M = 1 - E[exp(-x t)]``, ``Q = 1 - 2 E[exp(-x t)] + 2 E[exp(-2 x t)] + 2 tau E[g]``,
    ``e_train = (E[x exp(-2 x t)] + tau E[x g]) / alpha`` (derivation in docs/theory/flow.md).

    Parameters
    ----------
    alpha : float
    times : array of float, shape (T,)
    temperature : float
        tau >= 0.

    Returns
    -------
    dict of str -> ndarray, each of shape (T,)
        ``"M"``, ``"Q"``, ``"e_train"``.

    Examples
    --------
    >>> ex = linear_flow_overlaps(3.0, [0.0, 1.0])
    >>> [round(float(m), 4) for m in ex["M"]], round(float(2 * ex["e_train"][0]), 6)
    ([0.0, 0.8716], 2.0)
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    tau = float(temperature)

    def terms(x):
        xt = x[:, None] * t[None, :]
        one, two = np.exp(-xt), np.exp(-2.0 * xt)
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.where(xt > 0, -np.expm1(-2.0 * xt) / (2.0 * np.where(x > 0, x, 1.0)[:, None]),
                         t[None, :])
        return np.stack([one, two, x[:, None] * two, g, x[:, None] * g], axis=-1)

    e1, e2, xe2, g, xg = np.moveaxis(marchenko_pastur_expect(terms, alpha), -1, 0)
    return {"M": 1.0 - e1, "Q": 1.0 - 2.0 * e1 + 2.0 * e2 + 2.0 * tau * g,
            "e_train": (xe2 + tau * xg) / alpha}


def linear_overlaps(alpha: float, eta: float, T: int,
                    temperature: float = 0.0) -> dict[str, np.ndarray]:
    """M_t, Q_t, e_train(t) of one linear unit (P = K = 1, a = 1) trained by GD, t < T.

    With w_t - w* = (I - eta X^T X / d)^t (w_0 - w*), w_0 orthogonal to w* and
    |w_0|^2 = |w*|^2 = d, writing u = 1 - eta lambda and E over the Marchenko-Pastur law:
    ``M_t = 1 - E[u^t]``, ``Q_t = 1 - 2 E[u^t] + 2 E[u^2t]``,
    ``e_train(t) = E[lambda u^2t] / alpha`` (half the train MSE ``(1/n)|y - f|^2``).
    With Langevin noise sqrt(2 eta tau) Xi after each step, Q_t gains
    ``2 eta tau sum_{j<t} E[u^2j]`` and e_train(t) gains
    ``eta tau sum_{j<t} E[lambda u^2j] / alpha``.

    Parameters
    ----------
    alpha, eta : float
        Samples per dimension and learning rate.
    T : int
        Number of time points.
    temperature : float
        Langevin temperature tau >= 0.

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
    if temperature:
        tau = _rational(temperature)
        q_noise = np.cumsum([0.0] + [float(2 * eta * tau * poly_moment(2 * j, 0))
                                     for j in range(T - 1)])
        e_noise = np.cumsum([0.0] + [float(eta * tau * poly_moment(2 * j, 1) / alpha)
                                     for j in range(T - 1)])
        Q, e_train = Q + q_noise, e_train + e_noise
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
    if isinstance(problem, Problem) and problem.is_flow:
        raise ValueError("linear_gd is for dynamics='gd'; use linear_exact(problem, dt=...)")
    return linear_exact(problem)


def linear_exact(problem: Problem, dt: float | None = None) -> Trajectory:
    """The exact d -> infinity trajectory of a linear problem under GD or gradient flow,
    at any temperature; standard errors 0.

    The output direction v = a.W follows the single-unit recursion (:func:`linear_overlaps`
    for GD, :func:`linear_flow_overlaps` for flow); the P - 1 directions orthogonal to a feel
    no gradient, only the Langevin noise: ``Q_t = a a^T Q_1(t) + (I - a a^T)(1 + 2 tau t)``
    (t the time, eta * step for GD).

    Parameters
    ----------
    problem : Problem
        As for :func:`linear_gd`, with ``dynamics`` "gd" or "flow" and any temperature.
    dt : float, optional
        Time step of the grid of a flow problem (required for flow, not for GD).

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="linear", P=1, activation="linear", dynamics="flow",
    ...                     t_max=1.0, temperature=0.1)
    >>> traj = linear_exact(prob, dt=0.5)
    >>> traj.time, traj.M[:, 0, 0].round(4)
    (array([0. , 0.5, 1. ]), array([0.    , 0.7101, 0.8716]))
    """
    _check_linear(problem)
    times = problem.times(dt)
    tau = problem.temperature
    if problem.is_flow:
        one = linear_flow_overlaps(problem.alpha, times, tau)
        what = "gradient flow"
    else:
        one = linear_overlaps(problem.alpha, problem.eta, problem.T, tau)
        what = "GD"
    a = problem.a
    M = one["M"][:, None, None] * a[None, :, None] + 0.0  # + 0.0: no -0.0 where a_j < 0
    perp = np.eye(problem.P) - np.outer(a, a)
    Q = np.outer(a, a) + (one["Q"] - 1.0)[:, None, None] * np.outer(a, a) + perp
    if tau:
        Q = Q + (2.0 * tau * times)[:, None, None] * perp
    e_gen = (1.0 - 2.0 * one["M"] + one["Q"]) / 2.0
    provenance = base_provenance(
        "exact", closed_form=f"{what} on linear regression, Marchenko-Pastur law (d -> inf)",
        **({"dt": float(times[1] - times[0])} if problem.is_flow and len(times) > 1 else {}))
    return Trajectory(problem=problem, M=M, Q=Q, e_train=one["e_train"], e_gen=e_gen,
                      provenance=provenance, time=times)


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
