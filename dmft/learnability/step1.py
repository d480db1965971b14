"""Closed-form overlap after the first GD step from M_0 = 0, and the quantities it needs."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ..activations import Activation, get_activation
from ..gaussian import first_hermite
from ..problem import Problem
from ..targets import Target, get_target
from ..validation import real
from .quadrature import _expect_pair

__all__ = ["mean_activation_derivative", "step1_overlap"]


def mean_activation_derivative(activation: str | Activation, variance: float) -> float:
    """E[sigma'(h)] for h ~ N(0, variance), by adaptive 1-D quadrature split at 0.

    Parameters
    ----------
    activation : str or Activation
    variance : float
        >= 0; for 0 the value sigma'(0) is returned.

    Returns
    -------
    float

    Examples
    --------
    >>> round(mean_activation_derivative("relu", 2.0), 12)
    0.5
    >>> round(mean_activation_derivative("tanh", 1.0), 6)  # E[1 - tanh(h)^2], h ~ N(0, 1)
    0.605706
    """
    act = get_activation(activation)
    var = real("variance", variance, 0.0)
    if var == 0.0:
        return float(act.dsigma(0.0))
    sd = math.sqrt(var)

    def integrand(x):
        return act.dsigma(sd * x) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    from scipy import integrate

    # splitting at 0 keeps the kink / jump of ReLU-like sigma' on an interval boundary
    lower = integrate.quad(integrand, -np.inf, 0.0, epsabs=1e-13, epsrel=1e-12)[0]
    upper = integrate.quad(integrand, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    return lower + upper


def _first_hermite(target: Target, nodes=None) -> tuple[np.ndarray, np.ndarray]:
    """C_1 = E[g*(z) z] (K,) and its quadrature error (K,) on this module's rules (the report
    shows these, with their error; :func:`step1_overlap` uses dmft.gaussian's C_1)."""
    return _expect_pair(target, nodes, lambda z, y: z * y)


def step1_overlap(target: str | Target | Problem, activation: str | Activation | None = None,
                  a: ArrayLike | None = None, alpha: float | None = None,
                  eta: float | None = None, Q0: ArrayLike | None = None) -> np.ndarray:
    """Closed-form overlap after one GD step from M_0 = 0 (docs/theory/learnability.md).

    M_1 = eta alpha (a * E[sigma'(h0)]) C_1^T with h0_j ~ N(0, Q0_jj) and C_1 = E[g*(z) z].
    (z is independent of h0 when M_0 = 0, so the f(h0) part of the residual and label noise
    drop out; weight decay multiplies M_0 = 0 and does not enter.) Identical for one-pass and
    multi-pass GD. C_1 comes from :func:`dmft.gaussian.first_hermite` (the package's shared
    quadrature), E[sigma'] from :func:`mean_activation_derivative`.

    Parameters
    ----------
    target : str, Target or Problem
        With a Problem, the remaining arguments must be omitted (they are read from it) and
        ``problem.M0`` must be 0.
    activation : str or Activation
    a : array of shape (P,)
        Second layer.
    alpha, eta : float
        Sample ratio n/d and learning rate (> 0).
    Q0 : array of shape (P, P), optional
        Initial student Gram matrix; default I_P (only its diagonal enters).

    Returns
    -------
    ndarray, shape (P, K)

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2)
    >>> np.linalg.norm(step1_overlap(prob), axis=1).round(4).tolist()  # the paper's setting
    [0.0988, 0.0988]
    >>> step1_overlap("tanh", "relu", a=[1.0], alpha=3.0, eta=0.1).round(5).tolist()
    [[0.09086]]
    """
    if isinstance(target, Problem):
        if any(x is not None for x in (activation, a, alpha, eta, Q0)):
            raise TypeError("step1_overlap(problem) takes no other model arguments")
        prob = target
        if np.any(prob.M0 != 0):
            raise ValueError("the closed form needs problem.M0 = 0, got M0 with "
                             f"max |entry| {np.abs(prob.M0).max():.3g}")
        tgt, act, a_vec = prob.target, prob.activation, prob.a
        alpha_v, eta_v, q0 = prob.alpha, prob.eta, prob.Q0
    else:
        if activation is None or a is None or alpha is None or eta is None:
            raise TypeError("step1_overlap(target, activation, a, alpha, eta) needs all four "
                            "model arguments (or pass a dmft.Problem)")
        tgt = get_target(target)
        act = get_activation(activation)
        a_vec = np.asarray(a, dtype=np.float64).reshape(-1)
        if a_vec.ndim != 1 or a_vec.size < 1 or not np.all(np.isfinite(a_vec)):
            raise ValueError(f"a must be a finite 1-D array of length P >= 1, got {a!r}")
        alpha_v = real("alpha", alpha, 0.0, low_open=True)
        eta_v = real("eta", eta, 0.0, low_open=True)
        P = a_vec.size
        q0 = np.eye(P) if Q0 is None else np.asarray(Q0, dtype=np.float64)
        if q0.shape != (P, P) or np.any(np.diag(q0) < 0) or not np.all(np.isfinite(q0)):
            raise ValueError(f"Q0 must be a finite ({P}, {P}) array with diagonal >= 0")
    dsig = np.array([mean_activation_derivative(act, q) for q in np.diag(q0)])
    C1 = np.asarray(first_hermite(tgt), dtype=np.float64)
    return eta_v * alpha_v * np.outer(a_vec * dsig, C1)
