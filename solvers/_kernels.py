"""numba kernels of the multi-pass DMFT (SPEC sections 3-5): pure functions over arrays.

The forward pass never stores the cavity fields. Both are linear in the per-sample Gaussian
inputs with coefficients that are deterministic functions of the kernels (SPEC 3), so

    w(t) = sum_{s<=t} Wg[t, :, s] g(s),      g(0) = white r0 inputs, g(s+1) = xi(s),
    r(t) = w(t) - sum_{s<t} Gf[t, s] F(s),   h(t) = r(t) + M(t) z,

where xi(s) are the white normals of the noise zeta(s) = sum_{v<=s} Lc[s, v] xi(v), Wg the
cavity propagator applied to (sqrt(Qperp0), Lc) and Gf the cavity response G(t, s) (the
driver builds both from Lambda, R and Lc). Per sample only the white inputs g and F are kept:
half the memory traffic of carrying r and w histories, which is what bounds the speed.
Stein's sums follow from the same identity: E[F(t) w(s)^T] = E[F(t) g^T] Wg[s]^T and
E[w(t) w(s)^T] = Wg[t] E[g g^T] Wg[s]^T, with the same samples (the same estimator as
averaging w directly, up to rounding).

Layout conventions (float64 unless said otherwise), for the m samples of one call, samples
LAST (contiguous) so that the linear parts vectorise: ``z (K, m)``, ``y (m,)``, white inputs
``gw (T, P, m)`` (``gw[0]`` = white r0 inputs, ``gw[s + 1] = xi(s)``), schedule mask
``(T, m)`` (uint8), ``F_h (T, P, m)`` (F already times the mask); pathwise only:
``chi_h (T, T, P, P, m)`` (``chi_h[t, s] = chi(t, s)``) and ``J_h (P, P, m)`` (J at the last
step reached). Kernels of the replica being solved: ``M (T, P, K)``, ``Lam (T, P, P)``,
``R (T, T, P, P)`` (s < t), ``Wg (T, P, T P)``, ``Gf (T, T, P, P)``.

Samples are split into fixed blocks ``[block_start[k], block_start[k+1])``; block k draws its
random numbers from its own counter streams named by ``block_gid[k]`` (``_random``) and
accumulates serially into its own row of the partial sums, so results depend neither on the
number of threads nor on how blocks are grouped into calls (stored and replayed histories
agree to the last bit).
"""

from __future__ import annotations

import numba
import numpy as np

from . import _loss as _L
from ._loss import block_F, committee_J
from ._random import COUNTER_ROW, counter_uniform, fill_block_normals, stream
from ._targets import target_rows

__all__ = ["dmft_pass", "scratch_size", "draw_static", "cholesky_extend"]

# purposes of the counter streams of a block (the last index of ``_random.stream``)
_XI, _Z, _G0, _YNOISE, _MASK = 0, 1, 2, 3, 4
# schedule kinds understood by draw_static
SCHED_FULL, SCHED_CYCLIC, SCHED_BERNOULLI = 0, 1, 2


@numba.njit(cache=True, parallel=True)
def draw_static(key, block_start, block_gid, sched_kind, sched_param, noise_sd, T,
                target_code, z, g0, mask, y_noise, y):
    """Per-sample randomness fixed in time: z (K, m), white r0 inputs g0 (P, m), mask (T, m),
    label noise y_noise (m,) (noise_sd times a normal; not written when noise_sd == 0), and for
    a registry target (``target_code >= 0``, see ``_targets``) the labels y = g*(z) + noise
    (m,); with ``target_code = -1`` the caller computes y.

    sched_kind: SCHED_FULL; SCHED_CYCLIC (sched_param = n_blocks: each sample draws its block
    uniformly, active at t iff t mod n_blocks equals it); SCHED_BERNOULLI (sched_param = b:
    active independently with probability b at every step).
    """
    n_blocks = block_start.shape[0] - 1
    for k in numba.prange(n_blocks):
        lo = block_start[k]
        n = block_start[k + 1] - lo
        gid = block_gid[k]
        bad = np.empty(8 * ((n + 7) // 8), dtype=np.uint8)
        fill_block_normals(stream(key, gid, 0, _Z), z, lo, n, bad)
        fill_block_normals(stream(key, gid, 0, _G0), g0, lo, n, bad)
        if noise_sd > 0.0:
            yn = y_noise.reshape(1, y_noise.shape[0])
            fill_block_normals(stream(key, gid, 0, _YNOISE), yn, lo, n, bad)
            for i in range(n):
                y_noise[lo + i] *= noise_sd
        if target_code >= 0:
            # labels while this block's z is in L1 (one pass instead of a serial numpy one)
            target_rows(target_code, z, lo, n, y)
            if noise_sd > 0.0:
                for i in range(n):
                    y[lo + i] += y_noise[lo + i]
        mask_base = stream(key, gid, 0, _MASK)
        for t in range(T):
            row = mask[t, lo:lo + n]
            if sched_kind == SCHED_FULL:
                row[:] = 1
            elif sched_kind == SCHED_CYCLIC:
                # each sample's block from uniform i of the stream (the same at every t)
                nb = int(sched_param)
                for i in range(n):
                    mine = min(int(counter_uniform(mask_base, i) * nb), nb - 1)
                    row[i] = 1 if t % nb == mine else 0
            else:
                for i in range(n):
                    u = counter_uniform(mask_base, (t + 1) * COUNTER_ROW + i)
                    row[i] = 1 if u < sched_param else 0


@numba.njit(cache=True)
def _block_FJ(u, lo, n, hblk, y, mask, a, sig, dsig, d2sig, want_J, F_h, J_h, resid, hv, Fv,
              Jv):
    """F_h[u] (and J_h if want_J) = s(u) F, s(u) J at h = hblk (P, n) for the n samples from
    lo."""
    P = hv.shape[0]
    H = hblk  # (P, n), C-contiguous
    block_F(H, y[lo:lo + n], mask[u, lo:lo + n], a, sig, dsig, F_h[u], lo, resid)
    if want_J:
        for i in range(n):
            for j in range(P):
                hv[j] = H[j, i]
            committee_J(hv, resid[i], a, dsig, d2sig, Jv)
            mu_ = float(mask[u, lo + i])
            for j in range(P):
                for q in range(P):
                    J_h[j, q, lo + i] = mu_ * Jv[j, q]


# The activation code is dispatched once per block, so that registry activations run inlined
# in the per-sample loop; user activations (code -1) go through their cfuncs. Callers pass
# None for sig/dsig/d2sig with registry codes: typing three cfunc arguments costs ~45 us per
# kernel call, ~15 ms per solve. (Arguments are spelled out: star-args would box the
# dispatchers and defeat caching.)
@numba.njit(cache=True)
def _block_FJ_act(code, sig, dsig, d2sig, u, lo, n, hblk, y, mask, a, want_J, F_h, J_h, resid,
                  hv, Fv, Jv):
    if code == 0:
        _block_FJ(u, lo, n, hblk, y, mask, a, _L._r0, _L._r1, _L._r2, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)
    elif code == 1:
        _block_FJ(u, lo, n, hblk, y, mask, a, _L._t0, _L._t1, _L._t2, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)
    elif code == 2:
        _block_FJ(u, lo, n, hblk, y, mask, a, _L._e0, _L._e1, _L._e2, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)
    elif code == 3:
        _block_FJ(u, lo, n, hblk, y, mask, a, _L._l0, _L._l1, _L._l2, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)
    elif code == 4:
        _block_FJ(u, lo, n, hblk, y, mask, a, _L._s0, _L._s1, _L._s2, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)
    elif code == 5:
        _block_FJ(u, lo, n, hblk, y, mask, a, _L._q0, _L._q1, _L._q2, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)
    elif sig is not None:  # pruned at compile time when None is passed (registry codes)
        _block_FJ(u, lo, n, hblk, y, mask, a, sig, dsig, d2sig, want_J, F_h, J_h, resid,
                  hv, Fv, Jv)


_FAST = {"reassoc", "contract"}  # reassociation only: no finite-math assumption


# Inner loops run over 1-D views of one block (``x = arr[..., lo:lo + n]``, then ``x[i]``):
# indexing ``arr[s, q, lo + i]`` directly makes numba guard every index against wraparound,
# which defeats LLVM's vectorizer (measured 3.8x slower for the field sums).


@numba.njit(cache=True, fastmath=_FAST)
def _chi_step(u, lo, n, Lam, R, eta, J_h, chi_h, acc):
    """chi(u, s), s < u, from chi(u-1, .) and J(u-1) (pathwise response propagation)."""
    P = J_h.shape[0]
    tp = u - 1
    acc = acc[:n]
    for s in range(tp + 1):
        for j in range(P):
            for q in range(P):
                acc[:] = 0.0
                for l in range(P):
                    c = Lam[tp, j, l]
                    jl = J_h[j, l, lo:lo + n]
                    x = chi_h[tp, s, l, q, lo:lo + n]
                    for i in range(n):
                        acc[i] -= (c + jl[i]) * x[i]
                    for v in range(s, tp):
                        c = R[tp, v, j, l]
                        x = chi_h[v, s, l, q, lo:lo + n]
                        for i in range(n):
                            acc[i] += c * x[i]
                if s == tp:
                    jq = J_h[j, q, lo:lo + n]
                    for i in range(n):
                        acc[i] += jq[i]
                old = chi_h[tp, s, j, q, lo:lo + n]
                new = chi_h[u, s, j, q, lo:lo + n]
                for i in range(n):
                    new[i] = old[i] + eta * acc[i]
    for j in range(P):
        for q in range(P):
            chi_h[u, u, j, q, lo:lo + n] = 0.0


# The field sums and measurements are load-bound (L1). Field sums read four input rows per pass
# (two for a remainder) into one or two output rows, measurements two input rows per 2 x 2
# tile of outputs (units j, j + 1 against inputs q, q + 1): fewer loads and stores per
# multiply-add than one row at a time (measured 20 -> 12 ms per 1e6-sample solve for the
# measurements; field sums 4-8% faster at P = 2 and 15-25% at P = 1, 3 with four rows than
# two). Odd counts pair the last row with itself at weight 0, or drop the duplicate outputs.


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _axpy_2x2(h0, h1, x0, x1, c00, c01, c10, c11, n):
    for i in range(n):
        a = x0[i]
        b = x1[i]
        h0[i] += c00 * a + c01 * b
        h1[i] += c10 * a + c11 * b


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _axpy_1x2(h0, x0, x1, c00, c01, n):
    for i in range(n):
        h0[i] += c00 * x0[i] + c01 * x1[i]


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _axpy_2x4(h0, h1, x0, x1, x2, x3, c0, c1, n):
    a0, a1, a2, a3 = c0
    b0, b1, b2, b3 = c1
    for i in range(n):
        p = x0[i]
        q = x1[i]
        r = x2[i]
        s = x3[i]
        h0[i] += (a0 * p + a1 * q) + (a2 * r + a3 * s)
        h1[i] += (b0 * p + b1 * q) + (b2 * r + b3 * s)


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _axpy_1x4(h0, x0, x1, x2, x3, c0, n):
    a0, a1, a2, a3 = c0
    for i in range(n):
        h0[i] += (a0 * x0[i] + a1 * x1[i]) + (a2 * x2[i] + a3 * x3[i])


_COEF_WG, _COEF_M, _COEF_GF = 0, 1, 2


@numba.njit(cache=True, inline="always")
def _coef(kind, u, j, r, P, Wg, M, Gf):
    """Coefficient of flat input row r in h_j(u): white input row r = s P + q (Wg), teacher
    coordinate r (M), or F row r = s P + q (minus Gf)."""
    if kind == _COEF_WG:
        return Wg[u, j, r]
    if kind == _COEF_M:
        return M[u, j, r]
    return -Gf[u, r // P, j, r % P]


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _add_rows(h0, h1, two, rows, lo, n, count, kind, u, j0, j1, P, Wg, M, Gf):
    """h_j += sum_{r < count} coef(j, r) rows[r] for j = j0 and, if two, j = j1."""
    r = 0
    while r + 4 <= count:
        x0 = rows[r, lo:lo + n]
        x1 = rows[r + 1, lo:lo + n]
        x2 = rows[r + 2, lo:lo + n]
        x3 = rows[r + 3, lo:lo + n]
        c0 = (_coef(kind, u, j0, r, P, Wg, M, Gf), _coef(kind, u, j0, r + 1, P, Wg, M, Gf),
              _coef(kind, u, j0, r + 2, P, Wg, M, Gf), _coef(kind, u, j0, r + 3, P, Wg, M, Gf))
        if two:
            c1 = (_coef(kind, u, j1, r, P, Wg, M, Gf), _coef(kind, u, j1, r + 1, P, Wg, M, Gf),
                  _coef(kind, u, j1, r + 2, P, Wg, M, Gf),
                  _coef(kind, u, j1, r + 3, P, Wg, M, Gf))
            _axpy_2x4(h0, h1, x0, x1, x2, x3, c0, c1, n)
        else:
            _axpy_1x4(h0, x0, x1, x2, x3, c0, n)
        r += 4
    while r < count:  # the last one to three rows, two at a time
        r1 = min(r + 1, count - 1)
        w = 1.0 if r1 > r else 0.0
        x0 = rows[r, lo:lo + n]
        x1 = rows[r1, lo:lo + n]
        c00 = _coef(kind, u, j0, r, P, Wg, M, Gf)
        c01 = w * _coef(kind, u, j0, r1, P, Wg, M, Gf)
        if two:
            _axpy_2x2(h0, h1, x0, x1, c00, c01, _coef(kind, u, j1, r, P, Wg, M, Gf),
                      w * _coef(kind, u, j1, r1, P, Wg, M, Gf), n)
        else:
            _axpy_1x2(h0, x0, x1, c00, c01, n)
        r += 2


@numba.njit(cache=True, fastmath=_FAST)
def _fields(u, lo, n, Wg, M, Gf, gw, z, F_h, hblk):
    """hblk = h(u) = sum_{s<=u} Wg[u, :, s] g(s) + M(u) z - sum_{s<u} Gf[u, s] F(s)."""
    T, P, m = gw.shape
    K = z.shape[0]
    g_rows = gw.reshape((T * P, m))  # row s P + q = g_q(s)
    f_rows = F_h.reshape((T * P, m))
    for j0 in range(0, P, 2):
        j1 = min(j0 + 1, P - 1)
        two = j1 > j0
        h0 = hblk[j0, :n]
        h1 = hblk[j1, :n]
        h0[:] = 0.0
        h1[:] = 0.0
        _add_rows(h0, h1, two, g_rows, lo, n, (u + 1) * P, _COEF_WG, u, j0, j1, P, Wg, M, Gf)
        _add_rows(h0, h1, two, z, lo, n, K, _COEF_M, u, j0, j1, P, Wg, M, Gf)
        _add_rows(h0, h1, two, f_rows, lo, n, u * P, _COEF_GF, u, j0, j1, P, Wg, M, Gf)


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _dots_2x2(f0, f1, g0, g1, a0, a1, b0, b1, n):
    """The 12 sums f_j . a_q, f_j . b_q, g_j . b_q over j, q in {0, 1}, in one pass."""
    c00 = c01 = c10 = c11 = 0.0
    d00 = d01 = d10 = d11 = 0.0
    e00 = e01 = e10 = e11 = 0.0
    for i in range(n):
        c00 += f0[i] * a0[i]
        c01 += f0[i] * a1[i]
        c10 += f1[i] * a0[i]
        c11 += f1[i] * a1[i]
        d00 += f0[i] * b0[i]
        d01 += f0[i] * b1[i]
        d10 += f1[i] * b0[i]
        d11 += f1[i] * b1[i]
        e00 += g0[i] * b0[i]
        e01 += g0[i] * b1[i]
        e10 += g1[i] * b0[i]
        e11 += g1[i] * b1[i]
    return (c00, c01, c10, c11), (d00, d01, d10, d11), (e00, e01, e10, e11)


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _dots_2x2_f(f0, f1, a0, a1, n):
    """The 4 sums f_j . a_q over j, q in {0, 1}, in one pass."""
    c00 = c01 = c10 = c11 = 0.0
    for i in range(n):
        c00 += f0[i] * a0[i]
        c01 += f0[i] * a1[i]
        c10 += f1[i] * a0[i]
        c11 += f1[i] * a1[i]
    return c00, c01, c10, c11


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _add_tile(acc, k, s, j0, j1, q0, q1, sums):
    """acc[k, s, j, q] += the 2 x 2 tile sums, skipping duplicated (lone) rows."""
    acc[k, s, j0, q0] += sums[0]
    if q1 > q0:
        acc[k, s, j0, q1] += sums[1]
    if j1 > j0:
        acc[k, s, j1, q0] += sums[2]
        if q1 > q0:
            acc[k, s, j1, q1] += sums[3]


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _dots_2x2x2(f0, f1, g0, g1, a0, a1, b0, b1, A0, A1, B0, B1, n):
    """_dots_2x2 for two input row sets (a, b) and (A, B) in one pass: the target rows f, g
    are loaded once for 24 products (measured 25% faster than two passes)."""
    c00 = c01 = c10 = c11 = d00 = d01 = d10 = d11 = e00 = e01 = e10 = e11 = 0.0
    C00 = C01 = C10 = C11 = D00 = D01 = D10 = D11 = E00 = E01 = E10 = E11 = 0.0
    for i in range(n):
        x0 = f0[i]
        x1 = f1[i]
        y0 = g0[i]
        y1 = g1[i]
        c00 += x0 * a0[i]
        c01 += x0 * a1[i]
        c10 += x1 * a0[i]
        c11 += x1 * a1[i]
        d00 += x0 * b0[i]
        d01 += x0 * b1[i]
        d10 += x1 * b0[i]
        d11 += x1 * b1[i]
        e00 += y0 * b0[i]
        e01 += y0 * b1[i]
        e10 += y1 * b0[i]
        e11 += y1 * b1[i]
        C00 += x0 * A0[i]
        C01 += x0 * A1[i]
        C10 += x1 * A0[i]
        C11 += x1 * A1[i]
        D00 += x0 * B0[i]
        D01 += x0 * B1[i]
        D10 += x1 * B0[i]
        D11 += x1 * B1[i]
        E00 += y0 * B0[i]
        E01 += y0 * B1[i]
        E10 += y1 * B0[i]
        E11 += y1 * B1[i]
    return ((c00, c01, c10, c11), (d00, d01, d10, d11), (e00, e01, e10, e11),
            (C00, C01, C10, C11), (D00, D01, D10, D11), (E00, E01, E10, E11))


@numba.njit(cache=True, fastmath=_FAST)
def _measure(k, t, lo, n, resid, z, gw, F_h, accC, accFg, accGram, accFz, accLoss):
    """Block k's step-t sums (see ``dmft_pass``)."""
    P = gw.shape[1]
    K = z.shape[0]
    loss = 0.0
    for i in range(n):
        loss += resid[i] * resid[i]
    accLoss[k] += 0.5 * loss
    for j0 in range(0, P, 2):
        j1 = min(j0 + 1, P - 1)
        f0 = F_h[t, j0, lo:lo + n]
        f1 = F_h[t, j1, lo:lo + n]
        g0 = gw[t, j0, lo:lo + n]
        g1 = gw[t, j1, lo:lo + n]
        for q0 in range(0, K, 2):
            q1 = min(q0 + 1, K - 1)
            c = _dots_2x2_f(f0, f1, z[q0, lo:lo + n], z[q1, lo:lo + n], n)
            accFz[k, j0, q0] += c[0]
            if q1 > q0:
                accFz[k, j0, q1] += c[1]
            if j1 > j0:
                accFz[k, j1, q0] += c[2]
                if q1 > q0:
                    accFz[k, j1, q1] += c[3]
        for q0 in range(0, P, 2):
            q1 = min(q0 + 1, P - 1)
            s = 0
            while s + 1 <= t:  # times s and s + 1 together
                c, d, e, c2, d2, e2 = _dots_2x2x2(
                    f0, f1, g0, g1,
                    F_h[s, q0, lo:lo + n], F_h[s, q1, lo:lo + n],
                    gw[s, q0, lo:lo + n], gw[s, q1, lo:lo + n],
                    F_h[s + 1, q0, lo:lo + n], F_h[s + 1, q1, lo:lo + n],
                    gw[s + 1, q0, lo:lo + n], gw[s + 1, q1, lo:lo + n], n)
                _add_tile(accC, k, s, j0, j1, q0, q1, c)
                _add_tile(accFg, k, s, j0, j1, q0, q1, d)
                _add_tile(accGram, k, s, j0, j1, q0, q1, e)
                _add_tile(accC, k, s + 1, j0, j1, q0, q1, c2)
                _add_tile(accFg, k, s + 1, j0, j1, q0, q1, d2)
                _add_tile(accGram, k, s + 1, j0, j1, q0, q1, e2)
                s += 2
            if s == t:
                c, d, e = _dots_2x2(f0, f1, g0, g1, F_h[s, q0, lo:lo + n],
                                    F_h[s, q1, lo:lo + n], gw[s, q0, lo:lo + n],
                                    gw[s, q1, lo:lo + n], n)
                _add_tile(accC, k, s, j0, j1, q0, q1, c)
                _add_tile(accFg, k, s, j0, j1, q0, q1, d)
                _add_tile(accGram, k, s, j0, j1, q0, q1, e)


@numba.njit(cache=True, fastmath=_FAST)
def _measure_pathwise(k, t, lo, n, J_h, chi_h, accJ, accR):
    P = J_h.shape[0]
    for j in range(P):
        for q in range(P):
            x = J_h[j, q, lo:lo + n]
            sm = 0.0
            for i in range(n):
                sm += x[i]
            accJ[k, j, q] += sm
    for s in range(t):
        for j in range(P):
            for q in range(P):
                sm = 0.0
                for l in range(P):
                    jl = J_h[j, l, lo:lo + n]
                    x = chi_h[t, s, l, q, lo:lo + n]
                    for i in range(n):
                        sm += jl[i] * x[i]
                accR[k, s, j, q] += sm


@numba.njit(cache=True)
def scratch_size(P, n):
    """float64 scratch per block of n samples in dmft_pass: h, residuals, chi sums, h, F, J."""
    return (P + 2) * n + 2 * P + P * P


@numba.njit(cache=True, parallel=True)
def dmft_pass(t_from, t_to, measure, pathwise, key, block_start, block_gid,
              z, y, mask, gw, F_h, chi_h, J_h, work, flags,
              M, Lam, R, Wg, Gf, a, eta, sig, dsig, d2sig, code,
              accC, accFg, accGram, accFz, accLoss, accJ, accR):
    """Advance every sample from time ``t_from`` to ``t_to`` with fixed kernels, then measure.

    For u = t_from..t_to: if u > 0, draw the block's white noise xi(u - 1) into ``gw[u]`` and
    (pathwise) propagate chi(u, s) = chi(u-1, s) + eta [-Lam chi - J (chi - delta I)
    + sum_{v=s}^{u-2} R(u-1, v) chi(v, s)] with J = J(u-1); then h(u) from the identity of the
    module docstring and F(u) (and J(u)) are computed and stored. ``gw[0]``, z, y and mask must
    be filled (``draw_static``). With ``t_from = t_to = t`` this is one causal step on stored
    histories; with ``t_from = 0`` it replays a chunk from its counter streams.

    If ``measure``, block k adds into row k of the accumulators, at time t = t_to, for s <= t:
    ``accC[k, s] += F(t) F(s)^T``, ``accFg[k, s] += F(t) g(s)^T``, ``accGram[k, s] +=
    g(t) g(s)^T``, and ``accFz[k] += F(t) z^T``, ``accLoss[k] += L(h(t), y)``; pathwise also
    ``accJ[k] += J(t)`` and ``accR[k, s] += J(t) chi(t, s)`` (s < t). F and J carry the mask.

    Scratch, one row per block: ``work (n_blocks, >= scratch_size(P, n))`` float64 and
    ``flags (n_blocks, >= n rounded up to 8)`` uint8.
    """
    n_blocks = block_start.shape[0] - 1
    P = gw.shape[1]
    for k in range(n_blocks):
        n = block_start[k + 1] - block_start[k]
        if work.shape[1] < scratch_size(P, n) or flags.shape[1] < 8 * ((n + 7) // 8):
            raise ValueError("dmft_pass: scratch arrays too small for the blocks")
    for k in numba.prange(n_blocks):
        lo = block_start[k]
        n = block_start[k + 1] - lo
        # per-block scratch carved from the caller's arrays (allocating it here cost ~50 us
        # per call: 5 ms of a 1e6-sample solve)
        buf = work[k]
        hblk = buf[:P * n].reshape((P, n))
        resid = buf[P * n:(P + 1) * n]
        acc = buf[(P + 1) * n:(P + 2) * n]
        rest = (P + 2) * n
        hv = buf[rest:rest + P]
        Fv = buf[rest + P:rest + 2 * P]
        Jv = buf[rest + 2 * P:rest + 2 * P + P * P].reshape((P, P))
        bad = flags[k]
        for u in range(t_from, t_to + 1):
            if u == 0 and pathwise:
                chi_h[0, 0, :, :, lo:lo + n] = 0.0  # chi(0, 0); buffers may be reused
            if u > 0:
                fill_block_normals(stream(key, block_gid[k], u - 1, _XI), gw[u], lo, n, bad)
                if pathwise:
                    _chi_step(u, lo, n, Lam, R, eta, J_h, chi_h, acc)
            _fields(u, lo, n, Wg, M, Gf, gw, z, F_h, hblk)
            _block_FJ_act(code, sig, dsig, d2sig, u, lo, n, hblk, y, mask, a, pathwise, F_h,
                          J_h, resid, hv, Fv, Jv)
        if measure:
            _measure(k, t_to, lo, n, resid, z, gw, F_h, accC, accFg, accGram, accFz, accLoss)
            if pathwise:
                _measure_pathwise(k, t_to, lo, n, J_h, chi_h, accJ, accR)


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
