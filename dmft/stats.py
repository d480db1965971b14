"""Statistics shared by the solvers, the comparison layer, the tests and the benchmarks.

Standard errors estimated from R independent runs (replicas of a DMFT solve, seeds of a
simulation) make ``(a - b) / SE`` Student-t with R - 1 degrees of freedom rather than normal;
a test over many entries must also be corrected for their number. The functions here do both
(docs/validation.md explains the rule). scipy is imported inside the functions that need it
(``scipy.special``, which loads in a third of the time of ``scipy.stats``), so importing this
module stays cheap.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

__all__ = ["mean_se", "z_scores", "family_tail", "critical_value", "tail_probability",
           "welch_dof", "normal_equivalent", "agree", "dof_from_provenance"]


def mean_se(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over independent runs (axis 0) and its standard error std(ddof=1) / sqrt(runs).

    Parameters
    ----------
    runs : ndarray, shape (R, ...)
        R independent estimates (replicas, seeds) of the same quantity.

    Returns
    -------
    mean, se : ndarray, shape (...)
        With a single run the standard error is NaN (there is no spread to estimate it from).
        The standard error has R - 1 degrees of freedom.

    Examples
    --------
    >>> mean, se = mean_se(np.array([1.0, 2.0, 3.0]))
    >>> float(mean), round(float(se), 6)
    (2.0, 0.57735)
    """
    runs = np.asarray(runs)
    mean = runs.mean(axis=0)
    if runs.shape[0] < 2:
        return mean, np.full(mean.shape, np.nan)
    return mean, runs.std(axis=0, ddof=1) / math.sqrt(runs.shape[0])


def z_scores(a, a_se, b, b_se, atol: float = 0.0) -> np.ndarray:
    """``(a - b) / sqrt(a_se^2 + b_se^2)`` with the cases of vanishing standard errors settled.

    Parameters
    ----------
    a, a_se, b, b_se : array_like, broadcastable
        Values and their standard errors (0 for exact values).
    atol : float
        Where both standard errors are <= ``atol`` and ``|a - b| <= atol`` the values are
        equal ("exact" entries): z = 0. Where the combined standard error is 0 but the values
        differ: z = +-inf.

    Returns
    -------
    ndarray
        The z-scores; NaN where a value or standard error is not finite.

    Examples
    --------
    >>> z_scores([1.0, 0.5, 0.7], [0.3, 0.0, 0.0], [0.6, 0.5, 0.6], [0.4, 0.0, 0.0])
    array([0.8, 0. , inf])
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        se = np.hypot(a_se, b_se)
        finite = np.isfinite(diff) & np.isfinite(se)
        exact = finite & (se <= atol) & (np.abs(diff) <= atol)
        # both SEs zero but the values differ: certainly different, infinite z
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.sign(diff) * np.inf)
    z = np.where(exact, 0.0, z)
    return np.where(finite, z, np.nan)


def family_tail(threshold: float, n_tests: int) -> float:
    """Two-sided tail probability per entry of a family-wise ``threshold``-sigma test.

    Bonferroni: with ``n_tests`` entries each tested at ``2 Phi(-threshold) / n_tests``, the
    probability that any of them is flagged when all hypotheses hold is at most
    ``2 Phi(-threshold)`` (0.27 % for 3 sigma), however the entries are correlated.

    Examples
    --------
    >>> round(family_tail(3.0, 1), 6), round(family_tail(3.0, 10), 7)
    (0.0027, 0.00027)
    """
    from scipy.special import ndtr

    _check_positive_finite("threshold", threshold)
    n_tests = max(int(n_tests), 1)
    return float(2.0 * ndtr(-float(threshold)) / n_tests)


def critical_value(threshold: float, n_tests: int, dof=math.inf):
    """Critical |t| of a family-wise ``threshold``-sigma test over ``n_tests`` entries.

    The quantile with two-sided tail :func:`family_tail` under Student's t with ``dof``
    degrees of freedom (the normal distribution for ``dof = inf``).

    Parameters
    ----------
    threshold : float
        Family-wise significance in standard deviations, > 0.
    n_tests : int
        Number of entries tested together (values < 1 count as 1).
    dof : float or array_like
        Degrees of freedom, > 0 or ``inf``; an array gives one critical value per entry.

    Returns
    -------
    float or ndarray (the shape of ``dof``)

    Examples
    --------
    >>> round(critical_value(3.0, 1), 4), round(critical_value(3.0, 20), 3)
    (3.0, 3.817)
    >>> round(critical_value(3.0, 20, dof=15), 3)
    5.083
    """
    from scipy.special import stdtrit

    dof = _dof_array(dof)
    crit = -stdtrit(dof, family_tail(threshold, n_tests) / 2.0)
    return float(crit) if crit.ndim == 0 else crit


def tail_probability(score, dof=math.inf):
    """Two-sided tail probability P(|T| >= |score|) of Student's t with ``dof`` degrees of freedom.

    Parameters
    ----------
    score : array_like
    dof : float or array_like
        > 0, or ``inf`` for the normal distribution; broadcast against ``score``.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> round(tail_probability(3.0), 6), round(tail_probability(1.0, dof=1), 6)
    (0.0027, 0.5)
    """
    from scipy.special import stdtr

    p = 2.0 * stdtr(_dof_array(dof), -np.abs(np.asarray(score, dtype=np.float64)))
    return float(p) if np.ndim(p) == 0 else p


def welch_dof(se_a, dof_a, se_b, dof_b) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom of the combined standard error sqrt(se_a^2 + se_b^2).

    ``nu = (se_a^2 + se_b^2)^2 / (se_a^4 / dof_a + se_b^4 / dof_b)``: between ``min(dof_a,
    dof_b)`` and ``dof_a + dof_b``; a side with zero standard error or infinite degrees of
    freedom (an exact value) contributes nothing to the denominator.

    Parameters
    ----------
    se_a, se_b : array_like, broadcastable
        Standard errors (>= 0).
    dof_a, dof_b : float or array_like
        Their degrees of freedom, > 0 or ``inf``.

    Returns
    -------
    ndarray
        ``inf`` where both sides are exact (or both standard errors vanish).

    Examples
    --------
    >>> welch_dof([1.0, 1.0, 1.0], 15, [1.0, 0.0, 1.0], [15, 15, np.inf])
    array([30., 15., 60.])
    """
    va = np.asarray(se_a, dtype=np.float64) ** 2
    vb = np.asarray(se_b, dtype=np.float64) ** 2
    dof_a, dof_b = _dof_array(dof_a), _dof_array(dof_b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        denom = np.where(va > 0, va**2 / dof_a, 0.0) + np.where(vb > 0, vb**2 / dof_b, 0.0)
        nu = np.where(denom == 0, np.inf, (va + vb) ** 2 / denom)
    return np.where(np.isnan(va + vb), np.nan, nu)


def normal_equivalent(score, dof=math.inf):
    """The normal |z| with the same two-sided tail probability as the Student-t ``score``.

    Maps t-scores of different degrees of freedom to one scale, on which a single normal
    critical value (e.g. the Bonferroni one of :func:`critical_value` with ``dof = inf``)
    decides for all of them. Computed through log tails, so far tails stay finite and ordered.

    Parameters
    ----------
    score : array_like
    dof : float or array_like
        > 0 or ``inf``; broadcast against ``score``. Where ``dof`` is infinite the result is
        ``|score|`` exactly.

    Returns
    -------
    float or ndarray
        >= 0, <= |score|; NaN where ``score`` is NaN.

    Examples
    --------
    >>> round(normal_equivalent(1.0, dof=1), 4)  # Cauchy: P(|T| > 1) = 1/2
    0.6745
    >>> normal_equivalent(-3.0)
    3.0
    """
    from scipy.special import ndtri_exp, stdtr

    absz = np.abs(np.asarray(score, dtype=np.float64))
    dof = _dof_array(dof)
    absz, dof = np.broadcast_arrays(absz, dof)
    student = ~np.isinf(dof)
    out = absz.copy()
    if np.any(student):
        with np.errstate(divide="ignore"):
            log_tail = np.log(stdtr(dof[student], -absz[student]))
        out[student] = -ndtri_exp(log_tail)
    return float(out) if out.ndim == 0 else out


def agree(a, a_se, dof_a, b, b_se, dof_b, n_tests: int, threshold: float = 3.0) -> np.ndarray:
    """Boolean array: a and b agree entry by entry under a family-wise ``threshold``-sigma test.

    ``|a - b| <= critical_value(threshold, n_tests, nu) * sqrt(a_se^2 + b_se^2)`` with ``nu``
    the Welch-Satterthwaite degrees of freedom (:func:`welch_dof`). Over ``n_tests`` entries
    the probability of any false alarm is at most ``2 Phi(-threshold)``. Exact values (both
    standard errors 0) must be equal.

    Parameters
    ----------
    a, a_se, b, b_se : array_like, broadcastable
    dof_a, dof_b : float
        Degrees of freedom of ``a_se`` and ``b_se`` (runs - 1; ``inf`` for exact values).
    n_tests : int
        Number of entries in the family (all the comparisons one test makes).
    threshold : float

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> agree([1.0, 1.0], [0.1, 0.1], 15, [1.3, 1.5], [0.0, 0.0], np.inf, n_tests=2)
    array([ True, False])
    """
    va, vb = np.asarray(a_se, dtype=np.float64) ** 2, np.asarray(b_se, dtype=np.float64) ** 2
    crit = critical_value(threshold, n_tests, welch_dof(a_se, dof_a, b_se, dof_b))
    return np.abs(np.asarray(a, dtype=np.float64) - b) <= crit * np.sqrt(va + vb)


def dof_from_provenance(provenance: Mapping) -> float:
    """Degrees of freedom of a trajectory's standard errors, read from its provenance.

    ``replicas - 1`` for a multi-pass DMFT solve (independent sub-solves), ``qmc_replicas - 1``
    for a one-pass solve by randomised quasi-Monte Carlo, ``seeds - 1`` for a simulation (mean
    over seeds); for a list of seed counts (an extrapolation in 1/d combines
    several simulations) the smallest minus 1, a lower bound of the Welch-Satterthwaite value;
    ``inf`` when neither is recorded (exact or quadrature results, whose standard errors are 0
    or known exactly); NaN for a single run (no standard error).

    Examples
    --------
    >>> dof_from_provenance({"method": "dmft", "replicas": 16})
    15.0
    >>> dof_from_provenance({"method": "extrapolated", "seeds": [400, 200, 80]})
    79.0
    >>> dof_from_provenance({"method": "one-pass"})
    inf
    """
    for key in ("replicas", "qmc_replicas", "seeds"):
        value = provenance.get(key)
        counts = value if isinstance(value, (list, tuple)) else [value]
        counts = [c for c in counts
                  if isinstance(c, numbers.Real) and not isinstance(c, bool) and c >= 1]
        if counts:
            dof = float(min(counts)) - 1.0
            return dof if dof >= 1 else math.nan
    return math.inf


def _dof_array(dof) -> np.ndarray:
    dof = np.asarray(dof, dtype=np.float64)
    if np.any(dof <= 0):  # NaN (unknown) passes and gives NaN results
        raise ValueError(f"degrees of freedom must be > 0 (or inf), got {dof[dof <= 0].min()}")
    return dof


def _check_positive_finite(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
