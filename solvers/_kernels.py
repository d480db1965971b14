"""numba kernels of the multi-pass DMFT (SPEC sections 3-5): pure functions over arrays.

Layout conventions (all float64 unless said otherwise):

- per-sample state of a chunk of m samples: ``z (m, K)``, ``y (m,)``, ``r0 (m, P)``,
  white normals ``xi (m, T, P)`` (``xi[i, s]`` drives zeta(s)), schedule mask ``mask (m, T)``
  (uint8, s_mu(t)), histories ``r_h, w_h, F_h (m, T, P)`` and, for the pathwise estimator,
  ``chi_h (m, T, T, P, P)`` with ``chi_h[i, t, s] = chi(t, s)``;
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

from ._loss import committee_F, committee_J

__all__ = ["dmft_pass", "cholesky_extend"]


@numba.njit(cache=True, parallel=True)
def dmft_pass(t_from, t_to, measure, pathwise,
              z, y, r0, xi, mask, r_h, w_h, F_h, chi_h,
              M, Lam, R, Lc, a, eta,
              block_start, block_rep, sig, dsig, d2sig,
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
    """
    n_blocks = block_start.shape[0] - 1
    P = r0.shape[1]
    K = z.shape[1]
    for k in numba.prange(n_blocks):
        b = block_rep[k]
        h = np.empty(P)
        Fv = np.empty(P)
        zeta = np.empty(P)
        incr = np.empty(P)
        J = np.empty((P, P))
        dchi = np.empty((P, P))
        for i in range(block_start[k], block_start[k + 1]):
            for u in range(t_from, t_to + 1):
                if u == 0:
                    for j in range(P):
                        r_h[i, 0, j] = r0[i, j]
                        w_h[i, 0, j] = r0[i, j]
                else:
                    tp = u - 1
                    # zeta(tp) = sum_{s <= tp} Lc[tp, s] xi(s); memory sums over u < tp for r and w
                    for j in range(P):
                        zj = 0.0
                        for s in range(tp + 1):
                            for q in range(P):
                                zj += Lc[b, tp, s, j, q] * xi[i, s, q]
                        mem_r = 0.0
                        mem_w = 0.0
                        for s in range(tp):
                            for q in range(P):
                                mem_r += R[b, tp, s, j, q] * r_h[i, s, q]
                                mem_w += R[b, tp, s, j, q] * w_h[i, s, q]
                        lam_r = 0.0
                        lam_w = 0.0
                        for q in range(P):
                            lam_r += Lam[b, tp, j, q] * r_h[i, tp, q]
                            lam_w += Lam[b, tp, j, q] * w_h[i, tp, q]
                        incr[j] = zj + mem_r - lam_r - F_h[i, tp, j]
                        zeta[j] = zj + mem_w - lam_w
                    # r: -Lam r - F + memory + noise;  cavity w: the same operator without F
                    for j in range(P):
                        r_h[i, u, j] = r_h[i, tp, j] + eta * incr[j]
                        w_h[i, u, j] = w_h[i, tp, j] + eta * zeta[j]
                    if pathwise:
                        # J(tp) at h(tp), times the mask
                        for j in range(P):
                            h[j] = r_h[i, tp, j]
                            for q in range(K):
                                h[j] += M[b, tp, j, q] * z[i, q]
                        resid = committee_F(h, y[i], a, sig, dsig, Fv)
                        committee_J(h, resid, a, dsig, d2sig, J)
                        mtp = float(mask[i, tp])
                        for s in range(tp + 1):
                            # dchi = -Lam chi - J (chi - dI) + sum_{v=s}^{tp-1} R(tp,v) chi(v,s)
                            for j in range(P):
                                for q in range(P):
                                    acc = 0.0
                                    for l in range(P):
                                        c_lq = chi_h[i, tp, s, l, q]
                                        acc -= Lam[b, tp, j, l] * c_lq
                                        acc -= mtp * J[j, l] * c_lq
                                    if s == tp:
                                        acc += mtp * J[j, q]
                                    for v in range(s, tp):
                                        for l in range(P):
                                            acc += R[b, tp, v, j, l] * chi_h[i, v, s, l, q]
                                    dchi[j, q] = acc
                            for j in range(P):
                                for q in range(P):
                                    chi_h[i, u, s, j, q] = chi_h[i, tp, s, j, q] + eta * dchi[j, q]
                        for j in range(P):
                            for q in range(P):
                                chi_h[i, u, u, j, q] = 0.0
                # F(u) at h(u) = r(u) + M(u) z
                for j in range(P):
                    h[j] = r_h[i, u, j]
                    for q in range(K):
                        h[j] += M[b, u, j, q] * z[i, q]
                resid = committee_F(h, y[i], a, sig, dsig, Fv)
                mu_ = float(mask[i, u])
                for j in range(P):
                    F_h[i, u, j] = mu_ * Fv[j]
            if measure:
                t = t_to
                accLoss[k] += 0.5 * resid * resid
                for j in range(P):
                    Ft = F_h[i, t, j]
                    wt = w_h[i, t, j]
                    for q in range(K):
                        accFz[k, j, q] += Ft * z[i, q]
                    for s in range(t + 1):
                        for q in range(P):
                            accC[k, s, j, q] += Ft * F_h[i, s, q]
                            accA[k, s, j, q] += Ft * w_h[i, s, q]
                            accCw[k, s, j, q] += wt * w_h[i, s, q]
                if pathwise:
                    committee_J(h, resid, a, dsig, d2sig, J)
                    mt = float(mask[i, t])
                    for j in range(P):
                        for q in range(P):
                            accJ[k, j, q] += mt * J[j, q]
                    for s in range(t):
                        for j in range(P):
                            for q in range(P):
                                acc = 0.0
                                for l in range(P):
                                    acc += J[j, l] * chi_h[i, t, s, l, q]
                                accR[k, s, j, q] += mt * acc


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
