"""The finite-d simulator's sequential kernel: cyclic GD with blocks of a few samples.

For such blocks the Python and BLAS call overhead per step would exceed the arithmetic
(2 * block * P * d flops), so the steps between two recorded training losses run here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .committee import committee_F

__all__ = ["small_block_steps"]


@numba.njit(cache=True)
def small_block_steps(data, W, a, sig, dsig, rates, starts, span, out, loss):
    """Cyclic GD steps t0 <= t < t1 with small blocks, sequentially, W updated in place.

    Parameters
    ----------
    data : (X, y, Z, Wstar)
        X (n, d) float64 or float32 data; y (n,) labels; Z (n, K) teacher fields
        W* x / sqrt(d); Wstar (K, d) teacher.
    W : (P, d) float64 student (modified in place); a : (P,) second layer
    sig, dsig : activation cfuncs
    rates : (eta, lam), learning rate and ridge
    starts : (n_blocks + 1,) int64 block boundaries
    span : (t0, t1)
    out : (M_out (T, P, K), Q_out (T, P, P))
    loss : (c, half_square, value, d1, d2), the loss's cfuncs (``Loss.kernel_args()``)

    Records M_t, Q_t (before update t) for every t in [t0, t1); no update after t = T - 1.
    M and Q are computed directly at t0 and then updated exactly in O(P (P + K) + b^2 d) per
    step (b = block size) from the block's fields u, z and F instead of O(P (P + K) d):

        M' = c M - (eta / d) sum_mu F_mu z_mu^T,
        Q' = c^2 Q - (c eta / d) sum_mu (F_mu u_mu^T + u_mu F_mu^T)
             + (eta^2 / d^2) sum_{mu, nu} (x_mu . x_nu) F_mu F_nu^T,   c = 1 - eta lam.

    Rounding then accumulates over one segment only (the caller starts a segment at every
    epoch start when n_blocks is large); a test compares with the direct BLAS path.

    Returns
    -------
    int
        t1 if all recorded overlaps are finite, else the first step t with a non-finite M_t/Q_t.
    """
    X, y, Z, Wstar = data
    eta, lam = rates
    t0, t1 = span
    M_out, Q_out = out
    d = X.shape[1]
    P = W.shape[0]
    K = Wstar.shape[0]
    T = M_out.shape[0]
    n_blocks = starts.shape[0] - 1
    inv_sqrt_d = 1.0 / math.sqrt(d)
    decay = 1.0 - eta * lam
    max_block = 0
    for b in range(n_blocks):
        max_block = max(max_block, starts[b + 1] - starts[b])
    F_block = np.empty((max_block, P))
    u_block = np.empty((max_block, P))
    M = np.empty((P, K))
    Q = np.empty((P, P))
    for j in range(P):
        for k in range(K):
            s = 0.0
            for i in range(d):
                s += W[j, i] * Wstar[k, i]
            M[j, k] = s / d
        for k in range(j + 1):
            s = 0.0
            for i in range(d):
                s += W[j, i] * W[k, i]
            Q[j, k] = s / d
            Q[k, j] = s / d
    for t in range(t0, t1):
        M_out[t] = M
        Q_out[t] = Q
        if not (np.all(np.isfinite(M)) and np.all(np.isfinite(Q))):
            return t
        if t == T - 1:
            break
        b = t % n_blocks
        lo = starts[b]
        hi = starts[b + 1]
        # all F of the block at the current W (a block is one GD step, not hi - lo SGD steps)
        for mu in range(lo, hi):
            for j in range(P):
                s = 0.0
                for i in range(d):
                    s += W[j, i] * X[mu, i]
                u_block[mu - lo, j] = s * inv_sqrt_d
            committee_F(u_block[mu - lo], y[mu], a, sig, dsig, loss, F_block[mu - lo])
        # overlaps after the update, from the pre-update fields
        for j in range(P):
            for k in range(K):
                s = 0.0
                for mu in range(lo, hi):
                    s += F_block[mu - lo, j] * Z[mu, k]
                M[j, k] = decay * M[j, k] - eta / d * s
        cross = np.zeros((P, P))
        for mu in range(lo, hi):
            for nu in range(lo, mu + 1):
                g = 0.0
                for i in range(d):
                    g += X[mu, i] * X[nu, i]
                g *= eta * eta / (d * d)
                for j in range(P):
                    for k in range(P):
                        cross[j, k] += g * F_block[mu - lo, j] * F_block[nu - lo, k]
                        if nu != mu:
                            cross[j, k] += g * F_block[nu - lo, j] * F_block[mu - lo, k]
            for j in range(P):
                for k in range(P):
                    cross[j, k] -= decay * eta / d * (
                        F_block[mu - lo, j] * u_block[mu - lo, k]
                        + u_block[mu - lo, j] * F_block[mu - lo, k]
                    )
        for j in range(P):
            for k in range(P):
                Q[j, k] = decay * decay * Q[j, k] + cross[j, k]
        for j in range(P):
            for i in range(d):
                W[j, i] *= decay
            for mu in range(lo, hi):
                coef = -eta * inv_sqrt_d * F_block[mu - lo, j]
                for i in range(d):
                    W[j, i] += coef * X[mu, i]
    return t1
