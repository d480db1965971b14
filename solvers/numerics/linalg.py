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
def cholesky_extend(A, L, Lt, start, rel_tol):
    """Fill rows ``start..n-1`` of the lower-triangular L (n, n) with L L^T = A (n, n, PSD), and
    the same entries of its transpose Lt (n, n).

    Row-by-row (Cholesky-Banachiewicz) without pivoting: row j depends only on A[j, :j+1] and the
    rows above, so when C grows by one time block the noise path keeps its past. A pivot whose
    conditional variance is below ``rel_tol * A[j, j]`` means the new component is (numerically)
    a linear function of the earlier ones: its column is set to 0 instead of failing (the
    component gets no fresh randomness, which is exact in the singular limit).

    Entry L[j, k] = (A[j, k] - sum_{l<k} L[j, l] L[k, l]) / L[k, k], the sum taken in the order
    l = 0, 1, ...: computed column by column (after L[j, l] is known, its products are
    subtracted from every later entry of the row at once, reading column l of L as row l of
    Lt: contiguous, vectorised), which subtracts the same products in the same order.

    Returns the number of clamped pivots among the new rows (reported in diagnostics).
    """
    n = A.shape[0]
    dropped = 0
    rest = np.empty(n)  # A[j, k] minus the products subtracted so far
    for j in range(start, n):
        for k in range(j + 1):
            rest[k] = A[j, k]
        for l in range(j):
            if L[l, l] == 0.0:
                v = 0.0
            else:
                v = rest[l] / L[l, l]
            L[j, l] = v
            Lt[l, j] = v
            if v != 0.0:  # (a zero adds nothing: skipping it leaves every entry unchanged)
                col = Lt[l]
                for k in range(l + 1, j):
                    rest[k] -= v * col[k]
                rest[j] -= v * v
        d = rest[j]
        if A[j, j] <= 0.0 or d <= rel_tol * A[j, j]:
            L[j, j] = 0.0
            dropped += 1
        else:
            L[j, j] = np.sqrt(d)
        Lt[j, j] = L[j, j]
        for k in range(j + 1, n):
            L[j, k] = 0.0
            Lt[k, j] = 0.0
    return dropped


@numba.njit
def stein_factor(cw, lw, lwt, start, cw_info, rcond):
    """Grow the Cholesky factor lw (n, n) of cw (n, n) and its transpose lwt from row ``start``
    (cw only ever grows by rows, earlier rows unchanged) and update ``cw_info`` (2,) = (pivots
    dropped so far, smallest pivot^2 / diagonal ratio so far). A pivot below ``rcond`` times its
    diagonal is dropped."""
    n = cw.shape[0]
    cw_info[0] += cholesky_extend(cw, lw, lwt, start, rcond)
    for j in range(start, n):
        if cw[j, j] > 0.0:
            cw_info[1] = min(cw_info[1], lw[j, j] * lw[j, j] / cw[j, j])


@numba.njit
def stein_by_cholesky(A, lw, lwt):
    """X = A cw^{-1} (P, n) for A (P, n), by forward and back substitution with the complete
    Cholesky factor lw (n, n) of cw (no dropped pivot) and its transpose lwt (n, n).

    Forward: y_j = (A_j - sum_{k<j} lw[j, k] y_k) / lw[j, j], the products subtracted in the
    order k = 0, 1, ... (column by column over rows of lwt: vectorised); back: X_j = (y_j -
    sum_{k>j} lw[k, j] X_k) / lw[j, j] in the order k = j + 1, ... (rows of lwt), two
    right-hand sides at a time (independent chains of additions).
    """
    P, n = A.shape
    X = np.empty((P, n))
    Y = np.empty((P, n))
    for r in range(P):
        y = Y[r]
        for j in range(n):
            y[j] = A[r, j]
        for k in range(n):
            y[k] = y[k] / lw[k, k]
            v = y[k]
            row = lwt[k]
            for j in range(k + 1, n):
                y[j] -= row[j] * v
    for r0 in range(0, P, 2):
        r1 = min(r0 + 1, P - 1)
        x0, x1 = X[r0], X[r1]
        y0, y1 = Y[r0], Y[r1]
        for j in range(n - 1, -1, -1):
            s0 = y0[j]
            s1 = y1[j]
            row = lwt[j]
            for k in range(j + 1, n):
                c = row[k]
                s0 -= c * x0[k]
                s1 -= c * x1[k]
            x0[j] = s0 / lw[j, j]
            x1[j] = s1 / lw[j, j]
    return X


@numba.njit
def stein_solve(A, cw, lw, lwt, start, cw_info, rcond):
    """X = A cw^{-1} (P, n) for A (P, n), cw (n, n) symmetric PSD; returns (X, conditioning
    indicator, solved).

    ``lw`` holds the Cholesky factor of cw's first ``start`` rows and ``lwt`` its transpose;
    both are extended here (:func:`stein_factor`, which also updates ``cw_info``). With no
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
    stein_factor(cw, lw, lwt, start, cw_info, rcond)
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
