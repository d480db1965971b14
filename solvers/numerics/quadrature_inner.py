"""The conditional ("inner") rule over a student's own noise, numba kernels.

Given the teacher coordinates z, a student pre-activation is u_j = m_j + S_j . eps with
eps ~ N(0, I_r), r <= 2. :func:`inner_nodes` returns nodes and weights for eps that split at
the kinks u_j = 0: for ReLU 2-node Gauss rules of the truncated normal on every piece (exact
for the piecewise polynomials of degree <= 3 met here), composite Gauss-Legendre for other
kinked activations, a trapezoid grid for smooth ones. The model-side wrapper is
:mod:`dmft.gaussian.conditional`; the reasoning and the measured accuracy are in
``docs/quadrature.md``.

Arguments are grouped: ``rule = (edges, glx, glw, smx, smw)`` (the fixed arrays of
``dmft.gaussian.InnerRule``) and ``work`` = :func:`inner_workspace`'s buffers.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = [
    "INNER_SMOOTH", "INNER_PIECEWISE_LINEAR", "INNER_KINKED", "N_GRADED_BREAKS",
    "piecewise_exact_nodes", "inner_workspace", "inner_nodes",
]

# inner rule modes (dmft.gaussian.inner_mode picks one per activation)
INNER_SMOOTH, INNER_PIECEWISE_LINEAR, INNER_KINKED = 0, 1, 2
# size of the kink buffers of inner_nodes (kinks plus graded breaks; >= P + 2)
N_GRADED_BREAKS = 42

_ISQ2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)


@numba.njit(cache=True, inline="always")
def _kink_tails(c, tails, i):
    """Tail moments at a finite point c, both accurate (one exp, one erfc), k = 0..3:
    tails[i, 0, k] = int_c^inf x^k phi,  tails[i, 1, k] = int_-inf^c x^k phi."""
    p = math.exp(-0.5 * c * c) * _ISQ2PI
    e = 0.5 * math.erfc(abs(c) / _SQRT2)  # the smaller of the two tail masses
    q_up = e if c >= 0.0 else 1.0 - e
    q_low = 1.0 - e if c >= 0.0 else e
    # int_c^inf: x phi -> p, x^2 phi -> c p + Q, x^3 phi -> (c^2 + 2) p; lower tails by x -> -x
    p3 = (c * c + 2.0) * p
    tails[i, 0, 0] = q_up
    tails[i, 0, 1] = p
    tails[i, 0, 2] = c * p + q_up
    tails[i, 0, 3] = p3
    tails[i, 1, 0] = q_low
    tails[i, 1, 1] = -p
    tails[i, 1, 2] = q_low - c * p
    tails[i, 1, 3] = -p3


@numba.njit(cache=True, inline="always")
def _rule2_from_moments(t0, t1, t2, t3, x_out, w_out, k):
    """Append the 2-node Gauss rule of a piece with raw moments t0..t3 (t0 = mass) at k.

    Exact for polynomials of degree <= 3. Pieces with negligible mass are skipped; a piece too
    thin for two nodes gets one node at its mean. Returns the new count.
    """
    if not t0 > 1e-300:
        return k
    mu = t1 / t0
    m2 = t2 / t0
    m3 = t3 / t0
    v = m2 - mu * mu
    if not v > 1e-26 * max(1.0, mu * mu):
        x_out[k] = mu
        w_out[k] = t0
        return k + 1
    k3 = m3 - 3.0 * mu * m2 + 2.0 * mu * mu * mu
    g = k3 / v
    d = math.sqrt(g * g + 4.0 * v)
    y1 = 0.5 * (g - d)
    y2 = 0.5 * (g + d)
    x_out[k], w_out[k] = mu + y1, t0 * y2 / (y2 - y1)
    x_out[k + 1], w_out[k + 1] = mu + y2, -t0 * y1 / (y2 - y1)
    return k + 2


@numba.njit(cache=True, inline="always")
def piecewise_exact_nodes(kinks, nk, x_out, w_out, tails):
    """2-node truncated-normal Gauss rules on the pieces between sorted kinks.

    Parameters
    ----------
    kinks : (>= nk,) sorted kink positions;  nk : number of kinks;
    x_out, w_out : (>= 2 nk + 2,) output nodes and weights (weights include phi);
    tails : (>= nk, 2, 4) work array.

    Returns the number of nodes. Differences of tails are taken on the side where both are
    small (upper tails for pieces right of 0, lower tails left of 0), so thin or far pieces
    keep their relative accuracy.
    """
    if nk == 0:
        x_out[0], w_out[0] = -1.0, 0.5
        x_out[1], w_out[1] = 1.0, 0.5
        return 2
    for i in range(nk):
        _kink_tails(kinks[i], tails, i)
    k = 0
    for piece in range(nk + 1):  # one call site of the rule: less code to compile
        if piece == 0:  # below the first kink: its lower tail
            t0, t1, t2, t3 = tails[0, 1, 0], tails[0, 1, 1], tails[0, 1, 2], tails[0, 1, 3]
        elif piece == nk:  # above the last kink: its upper tail
            j = nk - 1
            t0, t1, t2, t3 = tails[j, 0, 0], tails[j, 0, 1], tails[j, 0, 2], tails[j, 0, 3]
        else:
            # between kinks i and i + 1: difference on the side where both tails are small
            i = piece - 1
            side, i_hi, i_lo = (0, i, i + 1) if kinks[i] >= 0.0 else (1, i + 1, i)
            t0 = tails[i_hi, side, 0] - tails[i_lo, side, 0]
            t1 = tails[i_hi, side, 1] - tails[i_lo, side, 1]
            t2 = tails[i_hi, side, 2] - tails[i_lo, side, 2]
            t3 = tails[i_hi, side, 3] - tails[i_lo, side, 3]
        k = _rule2_from_moments(t0, t1, t2, t3, x_out, w_out, k)
    return k


@numba.njit(cache=True, inline="always")
def _insertion_sort(a, n):
    """Sort a[:n] in place (n is a handful of kinks)."""
    for i in range(1, n):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


# compiled on its own: inner_nodes calls it from two places
@numba.njit(cache=True)
def _composite_nodes(kinks, nk, edges, glx, glw, x_out, w_out, br):
    """Composite Gauss-Legendre nodes for phi on [edges[0], edges[-1]], split at the kinks.

    Weights include phi(x); ``br`` is a work buffer of size >= len(edges) + nk. Returns the
    count.
    """
    ne = edges.shape[0]
    lo_all, hi_all = edges[0], edges[ne - 1]
    for i in range(ne):
        br[i] = edges[i]
    m = ne
    for i in range(nk):
        br[m] = min(max(kinks[i], lo_all), hi_all)
        m += 1
    _insertion_sort(br, m)
    k = 0
    for i in range(m - 1):
        a, b = br[i], br[i + 1]
        if b - a <= 1e-14:
            continue
        half, mid = 0.5 * (b - a), 0.5 * (a + b)
        for q in range(glx.shape[0]):
            x = mid + half * glx[q]
            x_out[k] = x
            w_out[k] = half * glw[q] * math.exp(-0.5 * x * x) * _ISQ2PI
            k += 1
    return k


@numba.njit(cache=True, inline="always")
def _line_nodes(mode, kinks, nk, rule, x_out, w_out, tmp, br):
    """Nodes for one standard normal coordinate with kinks at ``kinks[:nk]`` (sorted in place)."""
    edges, glx, glw, smx, smw = rule
    if mode == INNER_SMOOTH:
        for q in range(smx.shape[0]):
            x_out[q] = smx[q]
            w_out[q] = smw[q]
        return smx.shape[0]
    if mode == INNER_PIECEWISE_LINEAR:
        _insertion_sort(kinks, nk)
        return piecewise_exact_nodes(kinks, nk, x_out, w_out, tmp)
    return _composite_nodes(kinks, nk, edges, glx, glw, x_out, w_out, br)


@numba.njit(cache=True, inline="always")
def inner_workspace(capacity, P, n_edges):
    """Work buffers of :func:`inner_nodes` for P units and ``capacity`` nodes.

    Returns ``(buf_x, buf_w, lvl_x, lvl_w, tmp, kinks, br)``: four (capacity,) buffers,
    tmp (P + 2, 2, 4), kinks (N_GRADED_BREAKS,), br (n_edges + N_GRADED_BREAKS,).
    """
    return (np.empty(capacity), np.empty(capacity), np.empty(capacity), np.empty(capacity),
            np.empty((P + 2, 2, 4)), np.empty(N_GRADED_BREAKS),
            np.empty(n_edges + N_GRADED_BREAKS))


# Compiled once on its own (not inlined into the kernels that call it, once per outer node):
# inlining it into every caller multiplied the compile time; the small helpers above are inlined
# into it, and the line rule appears once (shared by r = 1 and the last coordinate of r = 2).
@numba.njit(cache=True)
def inner_nodes(m, S, mode, rule, work, eps_out, w_out):
    """Rule for eps ~ N(0, I_r) given z, for integrands kinked at u_j = m_j + S_j . eps = 0.

    Parameters
    ----------
    m : (P,) conditional mean M z
    S : (P, r) noise factor (``dmft.gaussian.student_noise_factor``), r <= 2, lower
        triangular when r = P = 2
    mode : int, INNER_SMOOTH, INNER_PIECEWISE_LINEAR or INNER_KINKED
    rule : (edges, glx, glw, smx, smw), the ``InnerRule`` arrays
    work : the buffers of :func:`inner_workspace`
    eps_out : (capacity, max(r, 1)), w_out : (capacity,) output nodes and weights

    Returns
    -------
    int, the number of nodes written (weights sum to 1 up to the truncation of the rule).
    """
    edges, glx, glw, smx, smw = rule
    buf_x, buf_w, lvl_x, lvl_w, tmp, kinks, br = work
    P, r = S.shape
    if r == 0:
        w_out[0] = 1.0
        return 1
    if r == 2 and mode == INNER_SMOOTH:
        n = 0
        for q0 in range(smx.shape[0]):
            for q1 in range(smx.shape[0]):
                eps_out[n, 0] = smx[q0]
                eps_out[n, 1] = smx[q1]
                w_out[n] = smw[q0] * smw[q1]
                n += 1
        return n
    if r == 1:
        # one coordinate: a single "first level" node, the line rule takes every unit's kink
        n0 = 1
        lvl_x[0] = 0.0
        lvl_w[0] = 1.0
    else:
        # r == 2 == P: S lower triangular, unit 0 sees eps_0 only, unit 1 both
        kinks[0] = -m[0] / S[0, 0]
        nk = 1
        # After the exact eps_1 integral, unit 1's kink becomes a smooth step in eps_0 centred
        # at -m_1 / S_10 of width |S_11 / S_10|, steep when the units' orthogonal parts are
        # nearly parallel: add panel breaks graded towards it (measured: error 5e-6 -> 1e-10 at
        # correlation 0.98)
        if S[1, 0] != 0.0:
            width = abs(S[1, 1] / S[1, 0])
            centre = -m[1] / S[1, 0]
            if width < 1.0:
                kinks[nk] = centre
                nk += 1
                width = max(width, 1e-6)
                while width < 1.0 and nk + 2 <= N_GRADED_BREAKS:
                    kinks[nk] = centre - width
                    kinks[nk + 1] = centre + width
                    nk += 2
                    width *= 2.0
        n0 = _composite_nodes(kinks, nk, edges, glx, glw, lvl_x, lvl_w, br)
    n = 0
    for q in range(n0):
        e0 = lvl_x[q]
        if r == 1:
            nk = 0
            for j in range(P):
                if S[j, 0] != 0.0:
                    kinks[nk] = -m[j] / S[j, 0]
                    nk += 1
        else:
            kinks[0] = -(m[1] + S[1, 0] * e0) / S[1, 1]
            nk = 1
        n1 = _line_nodes(mode, kinks, nk, rule, buf_x, buf_w, tmp, br)
        for q1 in range(n1):
            if r == 1:
                eps_out[n, 0] = buf_x[q1]
                w_out[n] = buf_w[q1]
            else:
                eps_out[n, 0] = e0
                eps_out[n, 1] = buf_x[q1]
                w_out[n] = lvl_w[q] * buf_w[q1]
            n += 1
    return n
