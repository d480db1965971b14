"""Statistics shared by the solvers, the comparison layer, the tests and the benchmarks."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_se"]


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
