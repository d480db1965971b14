"""numba kernels of the multi-pass DMFT (SPEC sections 3-5): pure functions over arrays.

Layout conventions (all float64 unless said otherwise):

- per-sample state of m samples, samples LAST (contiguous) so that the linear parts vectorise:
  ``z (K, m)``, ``y (m,)``, ``r0 (P, m)``, white normals ``xi (T, P, m)`` (``xi[s]`` drives
  zeta(s)), schedule mask ``mask (T, m)`` (uint8, s_mu(t)), histories ``r_h, w_h, F_h (T, P, m)``
  and, for the pathwise estimator, ``chi_h (T, T, P, P, m)`` with ``chi_h[t, s] = chi(t, s)``;
- kernels per independent replica b: ``M (B, T, P, K)``, ``Lam (B, T, P, P)``,
  ``R (B, T, T, P, P)`` (``R[b, t, s]``, s < t) and the noise Cholesky factor
  ``Lc (B, T, T, P, P)`` (block lower-triangular, ``Lc[b, t, s]`` for s <= t);
- samples are split into fixed blocks ``[block_start[k], block_start[k+1])`` belonging to replica
  ``block_rep[k]``; each block accumulates serially into its own row of the partial sums, so the
  result does not depend on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

from . import _loss as _L
from ._loss import committee_F, committee_J

__all__ = ["dmft_pass", "cholesky_extend", "spd_solve_right"]


@numba.njit(cache=True)
def _block_F(u, b, lo, n, r_h, z, y, M, mask, a, sig, dsig, F_h, resid, hv, Fv):
    """F_h[u, :, lo:lo+n] = s(u) F(h(u), y) with h(u) = r(u) + M(u) z; resid = y - f."""
    P = hv.shape[0]
    K = z.shape[0]
    for i in range(n):
        for j in range(P):
            acc = r_h[u, j, lo + i]
            for q in range(K):
                acc += M[b, u, j, q] * z[q, lo + i]
            hv[j] = acc
        resid[i] = committee_F(hv, y[lo + i], a, sig, dsig, Fv)
        mu_ = float(mask[u, lo + i])
        for j in range(P):
            F_h[u, j, lo + i] = mu_ * Fv[j]


@numba.njit(cache=True)
def _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, sig, dsig, d2sig, hv, Fv, Jv, J_blk):
    """J_blk[:, :, i] = s_i(tt) J(h_i(tt), y_i) for the n samples of a block starting at lo."""
    P = hv.shape[0]
    K = z.shape[0]
    for i in range(n):
        for j in range(P):
            acc = r_h[tt, j, lo + i]
            for q in range(K):
                acc += M[b, tt, j, q] * z[q, lo + i]
            hv[j] = acc
        res = committee_F(hv, y[lo + i], a, sig, dsig, Fv)
        committee_J(hv, res, a, dsig, d2sig, Jv)
        mu_ = float(mask[tt, lo + i])
        for j in range(P):
            for q in range(P):
                J_blk[j, q, i] = mu_ * Jv[j, q]


# The activation code is dispatched once per block, so that registry activations run inlined
# in the per-sample loop; user activations (code -1) go through their cfuncs. (Arguments are
# spelled out: star-args would box the dispatchers and defeat caching.)
@numba.njit(cache=True)
def _block_F_act(code, sig, dsig, u, b, lo, n, r_h, z, y, M, mask, a, F_h, resid, hv, Fv):
    if code == 0:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, _L._r0, _L._r1, F_h, resid, hv, Fv)
    elif code == 1:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, _L._t0, _L._t1, F_h, resid, hv, Fv)
    elif code == 2:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, _L._e0, _L._e1, F_h, resid, hv, Fv)
    elif code == 3:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, _L._l0, _L._l1, F_h, resid, hv, Fv)
    elif code == 4:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, _L._s0, _L._s1, F_h, resid, hv, Fv)
    elif code == 5:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, _L._q0, _L._q1, F_h, resid, hv, Fv)
    else:
        _block_F(u, b, lo, n, r_h, z, y, M, mask, a, sig, dsig, F_h, resid, hv, Fv)


@numba.njit(cache=True)
def _block_J_act(code, sig, dsig, d2sig, tt, b, lo, n, r_h, z, y, M, mask, a, hv, Fv, Jv,
                 J_blk):
    if code == 0:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, _L._r0, _L._r1, _L._r2, hv, Fv, Jv,
                 J_blk)
    elif code == 1:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, _L._t0, _L._t1, _L._t2, hv, Fv, Jv,
                 J_blk)
    elif code == 2:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, _L._e0, _L._e1, _L._e2, hv, Fv, Jv,
                 J_blk)
    elif code == 3:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, _L._l0, _L._l1, _L._l2, hv, Fv, Jv,
                 J_blk)
    elif code == 4:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, _L._s0, _L._s1, _L._s2, hv, Fv, Jv,
                 J_blk)
    elif code == 5:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, _L._q0, _L._q1, _L._q2, hv, Fv, Jv,
                 J_blk)
    else:
        _block_J(tt, b, lo, n, r_h, z, y, M, mask, a, sig, dsig, d2sig, hv, Fv, Jv,
                 J_blk)


@numba.njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def dmft_pass(t_from, t_to, measure, pathwise,
              z, y, r0, xi, mask, r_h, w_h, F_h, chi_h,
              M, Lam, R, Lc, a, eta,
              block_start, block_rep, sig, dsig, d2sig, code,
              accC, accA, accCw, accFz, accLoss, accJ, accR):
    """Advance every sample from time ``t_from`` to ``t_to`` with fixed kernels, then measure.

    For u = t_from..t_to: u = 0 initialises r(0) = w(0) = r0; u > 0 applies the SPEC 3 update
    from u-1 (needs F(u-1), the histories up to u-1, the kernels at u-1); then F(u) is computed
    and stored. With ``t_from = t_to = t`` this is one causal step on stored histories; with
    ``t_from = 0`` it replays a chunk whose randomness was regenerated.

    If ``measure``, block k adds into row k of the accumulators, at time t = t_to:
    ``accC[k, s] += F(t) F(s)^T``, ``accA[k, s] += F(t) w(s)^T``, ``accCw[k, s] += w(t) w(s)^T``
    (s <= t), ``accFz[k] += F(t) z^T``, ``accLoss[k] += L(h(t), y)``, and for the pathwise
    estimator ``accJ[k] += J(t)``, ``accR[k, s] += J(t) chi(t, s)`` (s < t). F and J carry the
    schedule mask s(t).

    Samples are the innermost (contiguous) axis, so the O(t P^2) memory sums, noise and
    accumulations are vector loops over a block; only F and J are evaluated sample by sample.
    ``fastmath`` allows reassociation only (no finite-math assumption: divergence stays visible).
    """
    n_blocks = block_start.shape[0] - 1
    P = r0.shape[0]
    K = z.shape[0]
    for k in numba.prange(n_blocks):
        b = block_rep[k]
        lo = block_start[k]
        n = block_start[k + 1] - lo
        hv = np.empty(P)
        Fv = np.empty(P)
        Jv = np.empty((P, P))
        acc_r = np.empty(n)
        acc_w = np.empty(n)
        resid = np.empty(n)
        J_blk = np.empty((P, P, n)) if pathwise else np.empty((1, 1, 1))
        for u in range(t_from, t_to + 1):
            if u == 0:
                for j in range(P):
                    for i in range(n):
                        r_h[0, j, lo + i] = r0[j, lo + i]
                        w_h[0, j, lo + i] = r0[j, lo + i]
            else:
                tp = u - 1
                for j in range(P):
                    # noise zeta(tp) = sum_{s <= tp} Lc[tp, s] xi(s), shared by r and w
                    acc_r[:] = 0.0
                    for s in range(tp + 1):
                        for q in range(P):
                            c = Lc[b, tp, s, j, q]
                            for i in range(n):
                                acc_r[i] += c * xi[s, q, lo + i]
                    acc_w[:] = acc_r
                    # memory sum_{s < tp} R(tp, s) x(s) and -Lam(tp) x(tp), for x = r and w
                    for s in range(tp):
                        for q in range(P):
                            c = R[b, tp, s, j, q]
                            for i in range(n):
                                acc_r[i] += c * r_h[s, q, lo + i]
                                acc_w[i] += c * w_h[s, q, lo + i]
                    for q in range(P):
                        c = Lam[b, tp, j, q]
                        for i in range(n):
                            acc_r[i] -= c * r_h[tp, q, lo + i]
                            acc_w[i] -= c * w_h[tp, q, lo + i]
                    for i in range(n):
                        r_h[u, j, lo + i] = r_h[tp, j, lo + i] + eta * (
                            acc_r[i] - F_h[tp, j, lo + i])
                        w_h[u, j, lo + i] = w_h[tp, j, lo + i] + eta * acc_w[i]
                if pathwise:
                    # chi(u, s) = chi(tp, s) + eta [-Lam chi - J (chi - delta_{tp s} I)
                    #                                + sum_{v=s}^{tp-1} R(tp, v) chi(v, s)]
                    _block_J_act(code, sig, dsig, d2sig, tp, b, lo, n, r_h, z, y, M, mask, a, hv,
                                 Fv, Jv, J_blk)
                    for s in range(tp + 1):
                        for j in range(P):
                            for q in range(P):
                                for i in range(n):
                                    acc_r[i] = 0.0
                                for l in range(P):
                                    c = Lam[b, tp, j, l]
                                    for i in range(n):
                                        acc_r[i] -= (c + J_blk[j, l, i]) * chi_h[tp, s, l, q,
                                                                                 lo + i]
                                    for v in range(s, tp):
                                        c = R[b, tp, v, j, l]
                                        for i in range(n):
                                            acc_r[i] += c * chi_h[v, s, l, q, lo + i]
                                if s == tp:
                                    for i in range(n):
                                        acc_r[i] += J_blk[j, q, i]
                                for i in range(n):
                                    chi_h[u, s, j, q, lo + i] = (chi_h[tp, s, j, q, lo + i]
                                                                 + eta * acc_r[i])
                    for j in range(P):
                        for q in range(P):
                            for i in range(n):
                                chi_h[u, u, j, q, lo + i] = 0.0
            # F(u) at h(u) = r(u) + M(u) z, sample by sample
            _block_F_act(code, sig, dsig, u, b, lo, n, r_h, z, y, M, mask, a, F_h, resid, hv, Fv)
        if measure:
            t = t_to
            loss = 0.0
            for i in range(n):
                loss += resid[i] * resid[i]
            accLoss[k] += 0.5 * loss
            for j in range(P):
                for q in range(K):
                    acc = 0.0
                    for i in range(n):
                        acc += F_h[t, j, lo + i] * z[q, lo + i]
                    accFz[k, j, q] += acc
                for s in range(t + 1):
                    for q in range(P):
                        acc_c = 0.0
                        acc_a = 0.0
                        acc_cw = 0.0
                        for i in range(n):
                            acc_c += F_h[t, j, lo + i] * F_h[s, q, lo + i]
                            acc_a += F_h[t, j, lo + i] * w_h[s, q, lo + i]
                            acc_cw += w_h[t, j, lo + i] * w_h[s, q, lo + i]
                        accC[k, s, j, q] += acc_c
                        accA[k, s, j, q] += acc_a
                        accCw[k, s, j, q] += acc_cw
            if pathwise:
                _block_J_act(code, sig, dsig, d2sig, t, b, lo, n, r_h, z, y, M, mask, a, hv, Fv,
                             Jv, J_blk)
                for j in range(P):
                    for q in range(P):
                        acc = 0.0
                        for i in range(n):
                            acc += J_blk[j, q, i]
                        accJ[k, j, q] += acc
                for s in range(t):
                    for j in range(P):
                        for q in range(P):
                            acc = 0.0
                            for l in range(P):
                                for i in range(n):
                                    acc += J_blk[j, l, i] * chi_h[t, s, l, q, lo + i]
                            accR[k, s, j, q] += acc


@numba.njit(cache=True)
def cholesky_extend(A, L, start, rel_tol):
    """Fill rows ``start..n-1`` of the lower-triangular L with L L^T = A (A symmetric PSD).

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


@numba.njit(cache=True)
def spd_solve_right(A, C, rel_tol):
    """X = A C^{-1} for a symmetric positive definite C (n, n) and A (m, n), by Cholesky.

    Small dense algebra in numba rather than LAPACK: multi-threaded BLAS on such small
    matrices stalls badly on a loaded machine. Returns (X, ok, pivot_ratio) where ``ok`` is
    False when a pivot falls below ``rel_tol`` times its diagonal entry (C numerically
    singular: the caller then uses a pseudo-inverse) and ``pivot_ratio`` is the smallest
    pivot^2 / diagonal ratio (a cheap conditioning indicator).
    """
    n = C.shape[0]
    m = A.shape[0]
    L = np.zeros((n, n))
    dropped = cholesky_extend(C, L, 0, rel_tol)
    X = np.zeros((m, n))
    ratio = 1.0
    for j in range(n):
        if C[j, j] > 0.0:
            ratio = min(ratio, L[j, j] * L[j, j] / C[j, j])
    if dropped > 0:
        return X, False, 0.0
    # C X^T = A^T: forward (L y = a) then backward (L^T x = y), one right-hand side per row of A
    y = np.empty(n)
    for r in range(m):
        for j in range(n):
            acc = A[r, j]
            for l in range(j):
                acc -= L[j, l] * y[l]
            y[j] = acc / L[j, j]
        for j in range(n - 1, -1, -1):
            acc = y[j]
            for l in range(j + 1, n):
                acc -= L[l, j] * X[r, l]
            X[r, j] = acc / L[j, j]
    return X, True, ratio
