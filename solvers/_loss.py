"""The single source of truth for the committee loss, its gradient F and Hessian J.

L(u, y) = (y - a.sigma(u))^2 / 2,  F = dL/du = -(y - f) a * sigma'(u),
J = d^2L/du^2 = (a * sigma'(u)) (a * sigma'(u))^T - diag((y - f) a * sigma''(u)).

Every solver (DMFT kernels, the finite-d simulator, the one-pass theory) calls these
numba functions; activations come in as ``cfunc`` objects (``Activation.cfuncs()``) so one
cached compilation serves all of them. Hot loops may also pass the activation's registry
``code``: registry activations are then called directly (inlined, no function-pointer call),
compiled from the very same definitions in ``dmft.activations``; code -1 uses the cfuncs.
"""

from __future__ import annotations

import numba
import numpy as np

from dmft.activations import ACTIVATIONS

__all__ = ["committee_output", "committee_F", "committee_J", "batch_F", "batch_loss"]



def _jit_registry():
    by_code = sorted(ACTIVATIONS.values(), key=lambda act: act.code)
    assert [act.code for act in by_code] == list(range(6)), "registry codes must be 0..5"
    return [tuple(numba.njit(inline="always")(f) for f in (act.sigma, act.dsigma, act.d2sigma))
            for act in by_code]


(_r0, _r1, _r2), (_t0, _t1, _t2), (_e0, _e1, _e2), (_l0, _l1, _l2), (_s0, _s1, _s2), \
    (_q0, _q1, _q2) = _jit_registry()


@numba.njit(cache=True, inline="always")
def _sigma(code, fn, x):
    if code == 0:
        return _r0(x)
    if code == 1:
        return _t0(x)
    if code == 2:
        return _e0(x)
    if code == 3:
        return _l0(x)
    if code == 4:
        return _s0(x)
    if code == 5:
        return _q0(x)
    return fn(x)


@numba.njit(cache=True, inline="always")
def _dsigma(code, fn, x):
    if code == 0:
        return _r1(x)
    if code == 1:
        return _t1(x)
    if code == 2:
        return _e1(x)
    if code == 3:
        return _l1(x)
    if code == 4:
        return _s1(x)
    if code == 5:
        return _q1(x)
    return fn(x)


@numba.njit(cache=True, inline="always")
def _d2sigma(code, fn, x):
    if code == 0:
        return _r2(x)
    if code == 1:
        return _t2(x)
    if code == 2:
        return _e2(x)
    if code == 3:
        return _l2(x)
    if code == 4:
        return _s2(x)
    if code == 5:
        return _q2(x)
    return fn(x)


@numba.njit(cache=True, inline="always")
def committee_output(u, a, sig, code=-1):
    """f = a . sigma(u) for one sample; u, a of shape (P,)."""
    f = 0.0
    for j in range(u.shape[0]):
        f += a[j] * _sigma(code, sig, u[j])
    return f


@numba.njit(cache=True, inline="always")
def committee_F(u, y, a, sig, dsig, F_out, code=-1):
    """Write F = -(y - f) a * sigma'(u) into F_out (P,); return the residual y - f."""
    resid = y - committee_output(u, a, sig, code)
    for j in range(u.shape[0]):
        F_out[j] = -resid * a[j] * _dsigma(code, dsig, u[j])
    return resid


@numba.njit(cache=True, inline="always")
def committee_J(u, resid, a, dsig, d2sig, J_out, code=-1):
    """Write the absolutely continuous part of J (P, P) into J_out, given resid = y - f."""
    P = u.shape[0]
    for j in range(P):
        gj = a[j] * _dsigma(code, dsig, u[j])
        for k in range(P):
            J_out[j, k] = gj * a[k] * _dsigma(code, dsig, u[k])
        J_out[j, j] -= resid * a[j] * _d2sigma(code, d2sig, u[j])


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


@numba.njit(cache=True, parallel=True)
def batch_loss(U, y, a, sig):
    """Per-sample loss (y - a.sigma(u))^2 / 2 for U (n, P), y (n,)."""
    n = U.shape[0]
    out = np.empty(n)
    for mu in numba.prange(n):
        r = y[mu] - committee_output(U[mu], a, sig)
        out[mu] = 0.5 * r * r
    return out
