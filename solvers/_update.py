"""numba kernels of the multi-pass DMFT's per-step update (SPEC 3-4): pure functions over arrays.

After the forward pass of step t has filled the per-block partial sums, :func:`finish_step`
turns them into the kernels of one replica, C(t, .), Lambda(t), R(t, .), the noise factor row,
M(t + 1) and the cavity coefficients Wg(t + 1), Gf(t + 1, .) (module docstring of
``_kernels``), and reports whether everything it wrote is finite. :func:`stored_steps` runs
the whole causal loop of one replica whose histories are stored, so a replica costs one call
from Python instead of a dozen per step (the per-step work is microseconds of small algebra;
the Python version spent more time in interpreter overhead than the forward pass does at
S = 1e5).

Arrays of one replica (``kern``), time-major matrices indexed by (time, unit):
``M (T, P, K)``, ``Lam (T, P, P)``, ``R (T, T, P, P)``, ``C (T, T, P, P)``, ``gram (TP, TP)``
(E[g g^T] of the white inputs), ``cw (TP, TP)`` (E[w w^T] = Wg gram Wg^T), ``lw (TP, TP)``
(its Cholesky factor, grown a block row per step), ``lmat (TP, TP)`` (factor of C, the noise
path), ``Lc (T, T, P, P)`` (its blocks), ``Wg (T, P, TP)``, ``Gf (T, T, P, P)``,
``e_train (T,)``, ``cw_info (2,)`` = (pivots of cw dropped so far, smallest pivot^2 / diagonal
ratio so far). Shared by replicas: ``cond_cw (T,)`` (largest over replicas), ``chol_dropped
(T,)`` (summed), ``scratch (TP, TP)``.

Partial sums (``acc``), one row per block of samples, summed in block order (deterministic):
``accC, accFg, accGram (nb, T, P, P)``, ``accFz (nb, P, K)``, ``accLoss (nb,)``, pathwise
``accJ (nb, P, P)``, ``accR (nb, T, P, P)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._kernels import cholesky_extend, dmft_pass

__all__ = ["finish_step", "stored_steps", "stein_gamma"]


@numba.njit(cache=True)
def _all_finite(x):
    for v in x.ravel():
        if not math.isfinite(v):
            return False
    return True


@numba.njit(cache=True)
def _matmul(A, B):
    """A @ B by loops: BLAS on matrices this small costs more than it computes (and
    multi-threaded BLAS stalls on a loaded machine)."""
    m, k = A.shape
    out = np.zeros((m, B.shape[1]))
    for i in range(m):
        for l in range(k):
            a = A[i, l]
            for j in range(B.shape[1]):
                out[i, j] += a * B[l, j]
    return out


@numba.njit(cache=True)
def _matmul_nt(A, B):
    """A @ B.T by loops."""
    out = np.empty((A.shape[0], B.shape[0]))
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            acc = 0.0
            for l in range(A.shape[1]):
                acc += A[i, l] * B[j, l]
            out[i, j] = acc
    return out


@numba.njit(cache=True)
def stein_gamma(A, cw, lw, start, cw_info, rcond):
    """X = A cw^{-1}, A (P, n), cw (n, n) symmetric PSD; returns (X, conditioning indicator).

    ``lw`` holds the Cholesky factor of cw's first ``start`` rows (cw only ever grows by rows,
    earlier rows unchanged) and is extended here; ``cw_info`` carries (pivots dropped so far,
    smallest pivot^2 / diagonal ratio so far) across calls. With no pivot below ``rcond``
    times its diagonal: forward and back substitution, indicator 1 / smallest ratio. Otherwise
    (a cavity component that is a linear function of earlier ones) the pseudo-inverse on cw's
    range, indicator the condition number there. A non-finite cw or A (an overflow) gives NaN,
    so that it surfaces as divergence rather than as Gamma = 0.
    """
    P, n = A.shape
    X = np.empty((P, n))
    if not (_all_finite(cw) and _all_finite(A)):
        X[:] = np.nan
        return X, np.inf
    cw_info[0] += cholesky_extend(cw, lw, start, rcond)
    for j in range(start, n):
        if cw[j, j] > 0.0:
            cw_info[1] = min(cw_info[1], lw[j, j] * lw[j, j] / cw[j, j])
    if cw_info[0] == 0:
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
                    s -= lw[k, j] * X[r, k]
                X[r, j] = s / lw[j, j]
        return X, (1.0 / cw_info[1] if cw_info[1] > 0.0 else np.inf)
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
    X[:] = _matmul(A, inv)
    return X, (vals[n - 1] / smallest if smallest < np.inf else np.inf)


@numba.njit(cache=True)
def finish_step(t, Sb, alpha, eta, lam, pathwise, noise_memory, chol_tol, cw_rcond,
                accC, accFg, accGram, accFz, accLoss, accJ, accR,
                M, Lam, R, C, gram, cw, lw, lmat, Lc, Wg, Gf, e_train, cw_info,
                cond_cw, chol_dropped, scratch):
    """Replica update from its step-t partial sums (module docstring); True if all finite."""
    T, P, K = M.shape
    n = (t + 1) * P
    nb = accC.shape[0]
    inv_S = 1.0 / Sb
    # ---- kernels measured at step t: C(t, s), E[g(t) g(s)^T], training loss
    for s in range(t + 1):
        for j in range(P):
            for q in range(P):
                c = 0.0
                g = 0.0
                for k in range(nb):
                    c += accC[k, s, j, q]
                    g += accGram[k, s, j, q]
                C[t, s, j, q] = alpha * c * inv_S
                C[s, t, q, j] = C[t, s, j, q]
                gram[t * P + j, s * P + q] = g * inv_S
                gram[s * P + q, t * P + j] = g * inv_S
    loss = 0.0
    for k in range(nb):
        loss += accLoss[k]
    e_train[t] = loss * inv_S
    # ---- Lambda(t) and R(t, s < t)
    cond = 0.0
    if pathwise:
        for j in range(P):
            for q in range(P):
                acc = 0.0
                for k in range(nb):
                    acc += accJ[k, j, q]
                Lam[t, j, q] = (lam if j == q else 0.0) + alpha * acc * inv_S
                for s in range(t):
                    acc = 0.0
                    for k in range(nb):
                        acc += accR[k, s, j, q]
                    R[t, s, j, q] = alpha * acc * inv_S
    else:
        # rows (s, j) of W: w(s)_j = W[(s, j)] . g; E[w w^T] = W gram W^T grows by its row t
        W = np.empty((n, n))
        for s in range(t + 1):
            for j in range(P):
                for c in range(n):
                    W[s * P + j, c] = Wg[s, j, c]
        cw_row = _matmul_nt(_matmul(W[t * P:n], gram[:n, :n]), W)
        for j in range(P):
            for c in range(n):
                cw[t * P + j, c] = cw_row[j, c]
                cw[c, t * P + j] = cw_row[j, c]
        Fg = np.empty((P, n))  # alpha E[F(t) g^T]
        for s in range(t + 1):
            for j in range(P):
                for q in range(P):
                    acc = 0.0
                    for k in range(nb):
                        acc += accFg[k, s, j, q]
                    Fg[j, s * P + q] = alpha * acc * inv_S
        gamma, cond = stein_gamma(_matmul_nt(Fg, W), cw[:n, :n], lw[:n, :n], t * P, cw_info,
                                  cw_rcond)
        for j in range(P):
            for q in range(P):
                Lam[t, j, q] = (lam if j == q else 0.0) + gamma[j, t * P + q]
                for s in range(t):
                    R[t, s, j, q] = -gamma[j, s * P + q]
        cond_cw[t] = max(cond_cw[t], cond)
    # ---- the noise path: factor of C grown by its block row t (row t of C only is read)
    for j in range(P):
        for s in range(t + 1):
            keep = noise_memory or s == t  # SPEC 8 error (1) forgets the cross-time covariance
            for q in range(P):
                scratch[t * P + j, s * P + q] = C[t, s, j, q] if keep else 0.0
    chol_dropped[t] += cholesky_extend(scratch[:n, :n], lmat[:n, :n], t * P, chol_tol)
    for v in range(t + 1):
        for j in range(P):
            for q in range(P):
                Lc[t, v, j, q] = lmat[t * P + j, v * P + q]
    # ---- M(t + 1), and the cavity coefficients of step t + 1:
    # x(t+1) = (1 - eta Lam) x(t) + eta sum_{u<t} R(t, u) x(u) + ..., driven by
    # eta zeta(t) = eta sum_{v<=t} Lc(t, v) g(v+1) for w and by -eta F(t) for r
    if t + 1 < T:
        for j in range(P):
            for q in range(K):
                acc = 0.0
                for k in range(nb):
                    acc += accFz[k, j, q]
                M[t + 1, j, q] = (1.0 - eta * lam) * M[t, j, q] - eta * alpha * acc * inv_S
        prop = np.eye(P) - eta * Lam[t]
        width = Wg.shape[2]
        for j in range(P):
            for c in range(width):
                acc = 0.0
                for l in range(P):
                    acc += prop[j, l] * Wg[t, l, c]
                mem = 0.0
                for u in range(t):
                    for l in range(P):
                        mem += R[t, u, j, l] * Wg[u, l, c]
                Wg[t + 1, j, c] = acc + eta * mem
            for c in range(n):
                Wg[t + 1, j, P + c] += eta * lmat[t * P + j, c]
        for s in range(t):
            for j in range(P):
                for q in range(P):
                    acc = 0.0
                    for l in range(P):
                        acc += prop[j, l] * Gf[t, s, l, q]
                    mem = 0.0
                    for u in range(s + 1, t):  # Gf[u, s] = 0 for u <= s
                        for l in range(P):
                            mem += R[t, u, j, l] * Gf[u, s, l, q]
                    Gf[t + 1, s, j, q] = acc + eta * mem
        for j in range(P):
            for q in range(P):
                Gf[t + 1, t, j, q] = eta if j == q else 0.0
    # ---- divergence: everything written must be finite
    ok = (_all_finite(C[t]) and _all_finite(Lam[t]) and _all_finite(R[t])
          and math.isfinite(e_train[t]) and _all_finite(Wg[t]))
    if ok and t + 1 < T:
        ok = _all_finite(M[t + 1]) and _all_finite(Wg[t + 1]) and _all_finite(Gf[t + 1])
    return ok


@numba.njit(cache=True)
def stored_steps(T, Sb, alpha, eta, lam, pathwise, noise_memory, chol_tol, cw_rcond,
                 key, block_start, block_gid, z, y, mask, gw, F_h, chi_h, J_h, work, flags,
                 a, sig, dsig, d2sig, code,
                 accC, accFg, accGram, accFz, accLoss, accJ, accR,
                 M, Lam, R, C, gram, cw, lw, lmat, Lc, Wg, Gf, e_train, cw_info,
                 cond_cw, chol_dropped, scratch):
    """Steps 0..T-1 of one replica on stored histories (static inputs already drawn): the
    forward pass of step t (``_kernels.dmft_pass``), then :func:`finish_step`. Returns the
    number of steps whose values are all finite (T unless the run diverged)."""
    for t in range(T):
        accC[:] = 0.0
        accFg[:] = 0.0
        accGram[:] = 0.0
        accFz[:] = 0.0
        accLoss[:] = 0.0
        accJ[:] = 0.0
        accR[:] = 0.0
        dmft_pass(t, t, True, pathwise, key, block_start, block_gid, z, y, mask, gw, F_h,
                  chi_h, J_h, work, flags, M, Lam, R, Wg, Gf, a, eta, sig, dsig, d2sig, code,
                  accC, accFg, accGram, accFz, accLoss, accJ, accR)
        if not finish_step(t, Sb, alpha, eta, lam, pathwise, noise_memory, chol_tol, cw_rcond,
                           accC, accFg, accGram, accFz, accLoss, accJ, accR,
                           M, Lam, R, C, gram, cw, lw, lmat, Lc, Wg, Gf, e_train, cw_info,
                           cond_cw, chol_dropped, scratch):
            return t
    return T
