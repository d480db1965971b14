"""The one Gauss-Hermite rule of the package: nodes and weights for a standard normal."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gauss_hermite"]


@lru_cache(maxsize=64)
def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite rule for N(0, 1).

    Parameters
    ----------
    n : int
        Number of nodes, n >= 1.

    Returns
    -------
    nodes : ndarray, shape (n,)
    weights : ndarray, shape (n,)
        Positive, summing to 1, so that ``weights @ f(nodes)`` approximates E[f(x)],
        x ~ N(0, 1), exactly for polynomials of degree <= 2n - 1. Both arrays are read-only
        (they are cached).

    Examples
    --------
    >>> x, w = gauss_hermite(3)
    >>> round(float(w @ x**2), 12), round(float(w @ x**4), 12)  # E[x^2] = 1, E[x^4] = 3
    (1.0, 3.0)
    """
    x, w = hermegauss(n)
    w = w / w.sum()
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w
