"""The single source of truth for the committee loss, its gradient F and Hessian J.

L(u, y) = (y - a.sigma(u))^2 / 2,  F = dL/du = -(y - f) a * sigma'(u),
J = d^2L/du^2 = (a * sigma'(u)) (a * sigma'(u))^T - diag((y - f) a * sigma''(u)).

Every solver (DMFT kernels, the finite-d simulator, the one-pass theory) calls these numba
functions. ``sig``/``dsig``/``d2sig`` are either ``cfunc`` objects (``Activation.cfuncs()``: one
compiled kernel serves every activation) or the inlinable numba functions of a registry entry
(:func:`.table.activation_function`), which the multi-pass kernels use so that their
per-sample loops make no function-pointer call (measured 40x faster for ReLU).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["committee_output", "committee_F", "committee_J", "block_F", "batch_F"]


@numba.njit(cache=True, inline="always")
def committee_output(u, a, sig):
    """f = a . sigma(u) for one sample; u, a of shape (P,)."""
    f = 0.0
    for j in range(u.shape[0]):
        f += a[j] * sig(u[j])
    return f


@numba.njit(cache=True, inline="always")
def committee_F(u, y, a, sig, dsig, F_out):
    """Write F = -(y - f) a * sigma'(u) into F_out (P,); return the residual y - f."""
    resid = y - committee_output(u, a, sig)
    for j in range(u.shape[0]):
        F_out[j] = -resid * a[j] * dsig(u[j])
    return resid


@numba.njit(cache=True, inline="always", fastmath={"reassoc", "contract"})
def block_F(H, y, weight, a, sig, dsig, F_out, lo, resid_out):
    """committee_F for n samples at once, samples last: H (P, n), y (n,), weight (n,) (the
    schedule mask), F_out[:, lo:lo + n] = weight * F, resid_out (n,) = y - f.

    Same formula as committee_F, written as loops over samples per unit so that they
    vectorise (a per-sample loop over P = 2 units does not). Pass C-contiguous H, y, weight
    and F_out: rows of a 2-D slice like ``F[:, lo:lo + n]`` get numba's "any" layout, whose
    runtime strides defeat the vectoriser (measured 3x slower).
    """
    P, n = H.shape
    h0 = H[0]
    a0 = a[0]
    for i in range(n):  # resid = y - sum_j a_j sigma(h_j), unit 0 in the same pass as y
        resid_out[i] = y[i] - a0 * sig(h0[i])
    for j in range(1, P):
        hj = H[j]
        aj = a[j]
        for i in range(n):
            resid_out[i] -= aj * sig(hj[i])
    for j in range(P):
        hj = H[j]
        fj = F_out[j, lo:lo + n]
        aj = a[j]
        for i in range(n):
            fj[i] = weight[i] * (-resid_out[i] * aj * dsig(hj[i]))


@numba.njit(cache=True, inline="always")
def committee_J(u, resid, a, dsig, d2sig, J_out):
    """Write the absolutely continuous part of J (P, P) into J_out, given resid = y - f."""
    P = u.shape[0]
    for j in range(P):
        gj = a[j] * dsig(u[j])
        for k in range(P):
            J_out[j, k] = gj * a[k] * dsig(u[k])
        J_out[j, j] -= resid * a[j] * d2sig(u[j])


@numba.njit(cache=True, parallel=True)
def batch_F(U, y, a, sig, dsig, weight):
    """F for a batch: U (n, P) pre-activations, y (n,), weight (n,) schedule mask s_mu.

    Returns F (n, P) already multiplied by the weights, and the residuals y - f (n,).
    """
    n, P = U.shape
    F = np.empty((n, P))
    resid = np.empty(n)
    for mu in numba.prange(n):
        r = committee_F(U[mu], y[mu], a, sig, dsig, F[mu])
        resid[mu] = r
        for j in range(P):
            F[mu, j] *= weight[mu]
    return F, resid
