"""numba kernels of the one-pass theory: sums of w * (F z^T, F h^T, F F^T, F xi^T, loss,
misclassification).

Each kernel sums over a range [start, stop) of outer nodes so that ``solvers.numerics.blocks``
can run fixed blocks on threads (they release the GIL). F is the committee gradient of
``solvers.numerics.committee.committee_F``; label noise y + sqrt(noise) xi_n is integrated by the
exact 2-point rule xi_n = +-1 (F is linear in y for the square loss, the only one that allows
label noise). ``loss`` is the loss's (c, half_square, value, d1, d2) (``Loss.kernel_args()``).
Used by ``solvers.onepass``; the mathematics is in docs/theory/one-pass.md, the quadrature in
docs/quadrature.md.
"""

from __future__ import annotations

import numba
import numpy as np

from .committee import committee_F, loss_terms
from .quadrature_inner import inner_nodes, inner_workspace

__all__ = ["structured_moments", "explicit_moments"]


@numba.njit(cache=True, inline="always")
def _misclassified(resid, y):
    """1 if the output f = y - resid has the wrong sign for label y, 1/2 if f = 0."""
    f = y - resid
    if f == 0.0:
        return 0.5
    return 1.0 if y * f < 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def structured_moments(start, stop, outer, student, noise_sd, mode, rule, capacity, sig, dsig,
                       loss):
    """Sums over outer z-nodes n in [start, stop), inner eps-nodes and noise nodes.

    Parameters
    ----------
    start, stop : int, range of outer nodes
    outer : (Z (N, K), wz (N,), y (N,)), the outer rule and the clean labels
    student : (M (P, K), S (P, r), a (P,)); S the noise factor, r <= 2, lower triangular if
        r = P = 2
    noise_sd : float, sqrt(label noise variance) (0 for clean labels)
    mode, rule, capacity : the ``InnerRule`` (mode, arrays, buffer size)
    sig, dsig : activation cfuncs float64(float64)
    loss : the loss's (c, half_square, value, d1, d2) cfuncs

    Returns
    -------
    Fz (P, K), Fh (P, P), FF (P, P), Fe (P, max(r, 1)), loss (1,), err (1,): weighted sums of
    F z^T, F h^T, F F^T, F eps^T, the loss and the misclassification indicator (meaningful
    for +-1 labels).
    """
    Z, wz, y = outer
    M, S, a = student
    K = Z.shape[1]
    P, r = S.shape
    re = max(r, 1)
    Fz = np.zeros((P, K))
    Fh = np.zeros((P, P))
    FF = np.zeros((P, P))
    Fe = np.zeros((P, re))
    total = np.zeros(1)
    err = np.zeros(1)
    n_noise = 2 if noise_sd > 0.0 else 1
    eps = np.zeros((capacity, re))
    w = np.empty(capacity)
    work = inner_workspace(capacity, P, rule[0].shape[0])
    m = np.empty(P)
    u = np.empty(P)
    F = np.empty(P)
    sF = np.empty(P)  # per z-node sums over the inner rule: w F, w F eps^T, w F F^T
    sFe = np.empty((P, re))
    for n in range(start, stop):
        for j in range(P):
            acc = 0.0
            for k in range(K):
                acc += M[j, k] * Z[n, k]
            m[j] = acc
            sF[j] = 0.0
            for k in range(re):
                sFe[j, k] = 0.0
        cnt = inner_nodes(m, S, mode, rule, work, eps, w)
        wn = wz[n]
        for q in range(cnt):
            for j in range(P):
                acc = m[j]
                for k in range(r):
                    acc += S[j, k] * eps[q, k]
                u[j] = acc
            for s in range(n_noise):
                yy = y[n]
                wt = w[q]
                if n_noise == 2:
                    yy += noise_sd if s == 0 else -noise_sd
                    wt *= 0.5
                resid = committee_F(u, yy, a, sig, dsig, loss, F)
                q1, q2 = loss_terms(resid, yy, loss[0], loss[2], loss[1])
                total[0] += wn * wt * 0.5 * q1 * q2
                err[0] += wn * wt * _misclassified(resid, yy)
                for j in range(P):
                    fj = wt * F[j]
                    sF[j] += fj
                    for k in range(r):
                        sFe[j, k] += fj * eps[q, k]
                    fj *= wn
                    for k in range(P):
                        FF[j, k] += fj * F[k]
        # F z^T, F eps^T, and F h^T = F (m + S eps)^T from the inner sums
        for j in range(P):
            for k in range(K):
                Fz[j, k] += wn * sF[j] * Z[n, k]
            for k in range(r):
                Fe[j, k] += wn * sFe[j, k]
            for k in range(P):
                acc = sF[j] * m[k]
                for l in range(r):
                    acc += sFe[j, l] * S[k, l]
                Fh[j, k] += wn * acc
    return Fz, Fh, FF, Fe, total, err


@numba.njit(cache=True, nogil=True)
def explicit_moments(start, stop, nodes, P, a, noise_sd, sig, dsig, loss):
    """The same sums over explicit nodes n in [start, stop) of a (P+K)-dimensional rule.

    Parameters
    ----------
    start, stop : int
    nodes : (X (N, P+K) = (h, z), Xi (N, D) whitened coordinates, y (N,) labels, w (N,)
        weights)
    P : int;  a : (P,);  noise_sd : float;  sig, dsig : activation cfuncs; loss : the loss's
    cfuncs

    Returns
    -------
    Fz (P, K), Fh (P, P), FF (P, P), Fxi (P, D), loss (1,), err (1,).
    """
    X, Xi, y, w = nodes
    K = X.shape[1] - P
    D = Xi.shape[1]
    Fz = np.zeros((P, K))
    Fh = np.zeros((P, P))
    FF = np.zeros((P, P))
    Fx = np.zeros((P, D))
    total = np.zeros(1)
    err = np.zeros(1)
    n_noise = 2 if noise_sd > 0.0 else 1
    u = np.empty(P)
    F = np.empty(P)
    for n in range(start, stop):
        for j in range(P):
            u[j] = X[n, j]
        for s in range(n_noise):
            yy = y[n]
            wt = w[n]
            if n_noise == 2:
                yy += noise_sd if s == 0 else -noise_sd
                wt *= 0.5
            resid = committee_F(u, yy, a, sig, dsig, loss, F)
            q1, q2 = loss_terms(resid, yy, loss[0], loss[2], loss[1])
            total[0] += wt * 0.5 * q1 * q2
            err[0] += wt * _misclassified(resid, yy)
            for j in range(P):
                fj = wt * F[j]
                for k in range(K):
                    Fz[j, k] += fj * X[n, P + k]
                for k in range(P):
                    Fh[j, k] += fj * u[k]
                    FF[j, k] += fj * F[k]
                for k in range(D):
                    Fx[j, k] += fj * Xi[n, k]
    return Fz, Fh, FF, Fx, total, err
