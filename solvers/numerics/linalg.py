"""Small dense algebra of the multi-pass DMFT update: Cholesky grown by rows, Stein solves.

Matrices here are at most (T P) x (T P): loops beat BLAS calls on them (and multi-threaded
BLAS stalls on a loaded machine). The pseudo-inverse (an eigendecomposition, whose numba
implementation takes seconds to compile) sits in its own function, compiled only when a
degenerate cavity covariance needs it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["all_finite", "matmul", "matmul_nt", "cholesky_extend", "stein_factor",
           "stein_by_cholesky", "stein_solve", "stein_by_pseudo_inverse"]


@numba.njit
def all_finite(x):
    """True if every entry of the array x (any layout) is finite."""
    for v in x.flat:  # no copy of a non-contiguous view (ravel would make one)
        if not math.isfinite(v):
            return False
    return True


@numba.njit
def matmul(A, B):
    """A @ B by loops, A (m, k), B (k, p) -> (m, p)."""
    m, k = A.shape
    out = np.zeros((m, B.shape[1]))
    for i in range(m):
        for l in range(k):
            a = A[i, l]
            for j in range(B.shape[1]):
                out[i, j] += a * B[l, j]
    return out


@numba.njit
def matmul_nt(A, B):
    """A @ B.T by loops, A (m, k), B (p, k) -> (m, p)."""
    out = np.empty((A.shape[0], B.shape[0]))
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            acc = 0.0
            for l in range(A.shape[1]):
                acc += A[i, l] * B[j, l]
            out[i, j] = acc
    return out


@numba.njit
def cholesky_extend(A, L, start, rel_tol):
    """Fill rows ``start..n-1`` of the lower-triangular L (n, n) with L L^T = A (n, n, PSD).

    Row-by-row (Cholesky-Banachiewicz) without pivoting: row j depends only on A[j, :j+1] and the
    rows above, so when C grows by one time block the noise path keeps its past. A pivot whose
    conditional variance is below ``rel_tol * A[j, j]`` means the new component is (numerically)
    a linear function of the earlier ones: its column is set to 0 instead of failing (the
    component gets no fresh randomness, which is exact in the singular limit).

    Returns the number of clamped pivots among the new rows (reported in diagnostics).
    """
    n = A.shape[0]
    dropped = 0
    for j in range(start, n):
        for k in range(j):
            if L[k, k] == 0.0:
                L[j, k] = 0.0
                continue
            acc = A[j, k]
            for l in range(k):
                acc -= L[j, l] * L[k, l]
            L[j, k] = acc / L[k, k]
        d = A[j, j]
        for l in range(j):
            d -= L[j, l] * L[j, l]
        if A[j, j] <= 0.0 or d <= rel_tol * A[j, j]:
            L[j, j] = 0.0
            dropped += 1
        else:
            L[j, j] = np.sqrt(d)
        for k in range(j + 1, n):
            L[j, k] = 0.0
    return dropped


@numba.njit
def stein_factor(cw, lw, start, cw_info, rcond):
    """Grow the Cholesky factor lw (n, n) of cw (n, n) from row ``start`` (cw only ever grows by
    rows, earlier rows unchanged) and update ``cw_info`` (2,) = (pivots dropped so far, smallest
    pivot^2 / diagonal ratio so far). A pivot below ``rcond`` times its diagonal is dropped."""
    n = cw.shape[0]
    cw_info[0] += cholesky_extend(cw, lw, start, rcond)
    for j in range(start, n):
        if cw[j, j] > 0.0:
            cw_info[1] = min(cw_info[1], lw[j, j] * lw[j, j] / cw[j, j])


@numba.njit
def stein_by_cholesky(A, lw, lwt):
    """X = A cw^{-1} (P, n) for A (P, n), by forward and back substitution with the complete
    Cholesky factor lw (n, n) of cw (no dropped pivot) and its transpose lwt (n, n) (the back
    substitution reads lw by columns: rows of lwt, contiguous)."""
    P, n = A.shape
    X = np.empty((P, n))
    y = np.empty(n)
    for r in range(P):
        for j in range(n):
            s = A[r, j]
            for k in range(j):
                s -= lw[j, k] * y[k]
            y[j] = s / lw[j, j]
        for j in range(n - 1, -1, -1):
            s = y[j]
            for k in range(j + 1, n):
                s -= lwt[j, k] * X[r, k]
            X[r, j] = s / lw[j, j]
    return X


@numba.njit
def stein_solve(A, cw, lw, lwt, start, cw_info, rcond):
    """X = A cw^{-1} (P, n) for A (P, n), cw (n, n) symmetric PSD; returns (X, conditioning
    indicator, solved).

    ``lw`` holds the Cholesky factor of cw's first ``start`` rows and is extended here
    (:func:`stein_factor`, which also updates ``cw_info``), ``lwt`` its transpose. With no
    pivot below ``rcond`` times its diagonal so far: forward and back substitution, indicator
    1 / smallest pivot ratio, solved True. Otherwise solved is False and X is not computed:
    use :func:`stein_by_pseudo_inverse` (kept apart, see the module docstring). A non-finite
    cw or A (an overflow) gives X = NaN and an infinite indicator, so that it surfaces as
    divergence rather than as Gamma = 0. Only cw's rows from ``start`` are checked: earlier
    rows were checked when they were added (a non-finite one ends the solve).
    """
    P, n = A.shape
    if not (all_finite(cw[start:]) and all_finite(A)):
        X = np.empty((P, n))
        X[:] = np.nan
        return X, np.inf, True
    stein_factor(cw, lw, start, cw_info, rcond)
    for j in range(start, n):
        for k in range(j + 1):
            lwt[k, j] = lw[j, k]
    if cw_info[0] != 0:
        return np.empty((P, n)), np.inf, False
    cond = 1.0 / cw_info[1] if cw_info[1] > 0.0 else np.inf
    return stein_by_cholesky(A, lw, lwt), cond, True


@numba.njit(cache=True)
def stein_by_pseudo_inverse(A, cw, rcond):
    """X = A cw^+ (P, n) on cw's range (eigenvalues above ``rcond`` times the largest), for a
    cavity component that is a linear function of earlier ones; also cw's condition number on
    its range."""
    P, n = A.shape
    vals, vecs = np.linalg.eigh(np.ascontiguousarray(cw))
    top = max(vals[n - 1], 1e-300)
    inv = np.zeros((n, n))
    smallest = np.inf
    for k in range(n):
        if vals[k] > rcond * top:
            smallest = min(smallest, vals[k])
            for i in range(n):
                for j in range(n):
                    inv[i, j] += vecs[i, k] * vecs[j, k] / vals[k]
    X = np.empty((P, n))
    X[:] = matmul(A, inv)
    return X, (vals[n - 1] / smallest if smallest < np.inf else np.inf)
