"""The single source of truth for the committee loss, its gradient F and Hessian J.

L(u, y) = ell(f, y) with f = a.sigma(u), ell the loss (:mod:`.loss_functions`; the square loss
ell = (y - f)^2 / 2 by default), and with ell' = d ell/df, ell'' = d^2 ell/df^2:
F = dL/du = ell' a * sigma'(u),
J = d^2L/du^2 = ell'' (a * sigma'(u)) (a * sigma'(u))^T + diag(ell' a * sigma''(u)).
For the square loss ell' = -(y - f), ell'' = 1.

Every solver (DMFT kernels, the finite-d simulator, the one-pass theory) calls these numba
functions. ``sig``/``dsig``/``d2sig`` are either ``cfunc`` objects (``Activation.cfuncs()``: one
compiled kernel serves every activation) or the inlinable numba functions of a registry entry
(:func:`.table.activation_function`), which the multi-pass kernels use so that their
per-sample loops make no function-pointer call (measured 40x faster for ReLU). Loss functions
are passed the same way: ``loss`` = (c, half_square, value, d1, d2) (``Loss.kernel_args()``:
cfuncs of ``(r, y, c)``), or the registry entry's inlinable functions.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["committee_output", "committee_F", "committee_J", "loss_terms", "block_F",
           "batch_F", "batch_loss"]


@numba.njit(cache=True, inline="always")
def committee_output(u, a, sig):
    """f = a . sigma(u) for one sample; u, a of shape (P,)."""
    f = 0.0
    for j in range(u.shape[0]):
        f += a[j] * sig(u[j])
    return f


@numba.njit(cache=True, inline="always")
def loss_terms(r, y, c, value, half_square):
    """(q1, q2) with 2 L = q1 q2 for residual r = y - f: (r, r) for the square loss, so that
    sums of q1 q2 are the sums of r * r they have always been; (2 L, 1) otherwise."""
    if half_square:
        return r, r
    return 2.0 * value(r, y, c), 1.0


@numba.njit(cache=True, inline="always")
def committee_F(u, y, a, sig, dsig, loss, F_out):
    """Write F = ell'(f, y) a * sigma'(u) into F_out (P,); return the residual y - f.
    ``loss`` = (c, half_square, value, d1, d2) (module docstring)."""
    resid = y - committee_output(u, a, sig)
    g = loss[3](resid, y, loss[0])
    for j in range(u.shape[0]):
        F_out[j] = g * a[j] * dsig(u[j])
    return resid


@numba.njit(cache=True, inline="always", fastmath={"reassoc", "contract"})
def block_F(H, y, weight, a, sig, dsig, F_out, lo, resid_out, loss, loss_out):
    """committee_F for n samples at once, samples last: H (P, n), y (n,), weight (n,) (the
    schedule mask), F_out[:, lo:lo + n] = weight * F, resid_out (n,) = y - f; ``loss`` =
    (c, half_square, value, d1, d2) the loss's parameter, form and functions; ``loss_out``
    (n,) = 2 L unless the loss is the square one (then not written: 2 L = resid^2).

    Same formula as committee_F, written as loops over samples per unit so that they
    vectorise (a per-sample loop over P = 2 units does not). Pass C-contiguous H, y, weight
    and F_out: rows of a 2-D slice like ``F[:, lo:lo + n]`` get numba's "any" layout, whose
    runtime strides defeat the vectoriser (measured 3x slower).
    """
    P, n = H.shape
    c, ld1 = loss[0], loss[3]
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
            fj[i] = weight[i] * (ld1(resid_out[i], y[i], c) * aj * dsig(hj[i]))
    if not loss[1]:
        value = loss[2]
        for i in range(n):
            loss_out[i] = 2.0 * value(resid_out[i], y[i], c)


@numba.njit(cache=True, inline="always")
def committee_J(u, g1, g2, a, dsig, d2sig, J_out):
    """Write the absolutely continuous part of J (P, P) into J_out, given g1 = ell'(f, y)
    and g2 = ell''(f, y) (-(y - f) and 1 for the square loss)."""
    P = u.shape[0]
    for j in range(P):
        gj = a[j] * dsig(u[j])
        for k in range(P):
            J_out[j, k] = gj * a[k] * dsig(u[k]) * g2
        J_out[j, j] += g1 * a[j] * d2sig(u[j])


@numba.njit(cache=True, parallel=True)
def batch_F(U, y, a, sig, dsig, weight, loss):
    """F for a batch: U (n, P) pre-activations, y (n,), weight (n,) schedule mask s_mu,
    ``loss`` the loss's (c, half_square, value, d1, d2) cfuncs.

    Returns F (n, P) already multiplied by the weights, and the residuals y - f (n,).
    """
    n, P = U.shape
    F = np.empty((n, P))
    resid = np.empty(n)
    for mu in numba.prange(n):
        r = committee_F(U[mu], y[mu], a, sig, dsig, loss, F[mu])
        resid[mu] = r
        for j in range(P):
            F[mu, j] *= weight[mu]
    return F, resid


@numba.njit(cache=True)
def batch_loss(resid, y, loss):
    """2 L per sample (n,) from the residuals (n,) and labels (n,) (not for the square loss,
    whose callers sum resid**2 directly)."""
    out = np.empty(resid.shape[0])
    for mu in range(resid.shape[0]):
        out[mu] = 2.0 * loss[2](resid[mu], y[mu], loss[0])
    return out
