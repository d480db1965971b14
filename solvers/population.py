"""Population values at overlaps (M, Q) for any loss: the test loss and misclassification.

e_gen is the population value of the training loss, E[L(a.sigma(u), y)] with
(u, z) ~ N(0, [[Q, M], [M^T, I_K]]) and y = g*(z); for the square loss the engines use
:func:`dmft.gaussian.gen_error` (a sum of one- and two-unit integrals), for the others the
sums of the one-pass step (:func:`solvers.onepass.onepass_expectations`) over randomized
quasi-Monte Carlo rules, which also give the misclassification rate P(y f < 0)
(+ P(f = 0) / 2) for +-1 labels. QMC rather than the structured quadrature: the indicator, the
sign targets and the kinks of the hinge loss are discontinuous where that rule assumes
smoothness (measured: misclassification off by 0.04, the loss by 1e-2 for a ReLU student),
while QMC's error is estimated from the spread of independent randomizations.
"""

from __future__ import annotations

import numpy as np

from dmft import gaussian as G
from dmft.problem import Problem
from dmft.stats import mean_se

__all__ = ["population_values", "gen_error_any", "QMC_LOG2", "QMC_REPLICAS"]

# randomized QMC: 2^16 points, 8 independent randomizations (the same for every call: errors
# at nearby overlaps are correlated, which keeps differences between solvers accurate)
QMC_LOG2, QMC_REPLICAS = 16, 8
_rules: dict[tuple, list] = {}


def population_values(problem: Problem, M: np.ndarray, Q: np.ndarray,
                      options: G.QuadratureOptions | None = None) -> dict:
    """Test loss and misclassification rate at each of T overlap pairs.

    Parameters
    ----------
    problem : Problem
    M : ndarray, shape (T, P, K)
    Q : ndarray, shape (T, P, P)
    options : dmft.gaussian.QuadratureOptions, optional

    Returns
    -------
    dict
        ``e_gen``, ``e_gen_se``, ``class_error``, ``class_error_se``, each (T,); standard
        errors 0 for quadrature, from the spread of randomized QMC rules otherwise.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="sign", P=1, activation="tanh", loss="logistic")
    >>> out = population_values(prob, np.zeros((1, 1, 1)), np.eye(1)[None])
    >>> round(float(out["class_error"][0]), 2)  # an untrained student guesses
    0.5
    """
    from solvers.onepass import onepass_expectations  # engine module: imported when used

    M = np.asarray(M, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    n_t = M.shape[0]
    opts = options or G.QuadratureOptions()
    key = (problem.K + problem.P, QMC_LOG2, QMC_REPLICAS, opts.seed)
    if key not in _rules:
        _rules[key] = G.qmc_rules(*key)
    values = np.full((n_t, 2), np.nan)
    spread = np.zeros((n_t, 2))
    for t in range(n_t):
        runs = np.array([[E["loss"], E["class_error"]] for E in
                         (onepass_expectations(problem, M[t], Q[t], opts, rule)
                          for rule in _rules[key])])
        values[t], spread[t] = mean_se(runs)
    return {"e_gen": values[:, 0], "e_gen_se": spread[:, 0], "class_error": values[:, 1],
            "class_error_se": spread[:, 1]}


def gen_error_any(problem: Problem, M: np.ndarray, Q: np.ndarray,
                  options: G.QuadratureOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """e_gen (T,) and its integration error (T,) for any loss: :func:`dmft.gaussian.gen_error`
    for the square loss, :func:`population_values` otherwise."""
    if problem.loss.half_square:
        return G.gen_error(problem, M, Q, options)
    out = population_values(problem, M, Q, options)
    return out["e_gen"], out["e_gen_se"]
