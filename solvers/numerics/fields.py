"""Pre-activations h(u) of a block of samples from the linear identity of the cavity fields.

The forward pass never stores the cavity fields. Both are linear in the per-sample Gaussian
inputs with coefficients that are deterministic functions of the kernels
(docs/theory/dmft.md), so

    w(t) = sum_{s<=t} Wg[t, :, s] g(s),      g(0) = white r0 inputs, g(s+1) = xi(s),
    r(t) = w(t) - sum_{s<t} G(t, s) F(s),    h(t) = r(t) + M(t) z,

where xi(s) are the white normals of the noise zeta(s) = sum_{v<=s} L(s, v) xi(v) (L the
Cholesky factor of C), Wg the cavity propagator applied to (sqrt(Qperp0), L) and
G(t, s)[j, q] = Gf[t, j, s P + q] the cavity response (``step.cavity_coefficients``). Per
sample only the white inputs g and F are kept: half the memory traffic of carrying r and w
histories, which is what bounds the speed.

The sums are load-bound (L1): they read four input rows per pass (two for a remainder) into
one or two output rows (measured 4-8% faster at P = 2 and 15-25% at P = 1, 3 than two rows);
odd counts pair the last row with itself at weight 0.
"""

from __future__ import annotations

import numba

__all__ = ["block_fields"]

_FAST = {"reassoc", "contract"}  # reassociation only: no finite-math assumption
# where a row's coefficients come from (``_coef``)
_WHITE, _TEACHER, _RESPONSE = 0, 1, 2


@numba.njit(fastmath=_FAST, inline="always")
def _axpy_2x2(h0, h1, x0, x1, c00, c01, c10, c11, n):
    """h0 += c00 x0 + c01 x1, h1 += c10 x0 + c11 x1 over the first n entries (rows (n,))."""
    for i in range(n):
        a = x0[i]
        b = x1[i]
        h0[i] += c00 * a + c01 * b
        h1[i] += c10 * a + c11 * b


@numba.njit(fastmath=_FAST, inline="always")
def _axpy_1x2(h0, x0, x1, c00, c01, n):
    """h0 += c00 x0 + c01 x1 over the first n entries (rows (n,))."""
    for i in range(n):
        h0[i] += c00 * x0[i] + c01 * x1[i]


@numba.njit(fastmath=_FAST, inline="always")
def _axpy_2x4(h0, h1, x0, x1, x2, x3, c0, c1, n):
    """h0 += sum_r c0[r] x_r, h1 += sum_r c1[r] x_r over four rows x_r (n,)."""
    a0, a1, a2, a3 = c0
    b0, b1, b2, b3 = c1
    for i in range(n):
        p = x0[i]
        q = x1[i]
        r = x2[i]
        s = x3[i]
        h0[i] += (a0 * p + a1 * q) + (a2 * r + a3 * s)
        h1[i] += (b0 * p + b1 * q) + (b2 * r + b3 * s)


@numba.njit(fastmath=_FAST, inline="always")
def _axpy_1x4(h0, x0, x1, x2, x3, c0, n):
    """h0 += sum_r c0[r] x_r over four rows x_r (n,)."""
    a0, a1, a2, a3 = c0
    for i in range(n):
        h0[i] += (a0 * x0[i] + a1 * x1[i]) + (a2 * x2[i] + a3 * x3[i])


@numba.njit(inline="always")
def _coef(kind, u, j, r, P, rep):
    """Coefficient of flat input row r in h_j(u): white input row r = s P + q (Wg), teacher
    coordinate r (M), or F row r = s P + q (minus Gf)."""
    if kind == _WHITE:
        return rep.Wg[u, j, r]
    if kind == _TEACHER:
        return rep.M[u, j, r]
    return -rep.Gf[u, j, r]


# Inlined at its three call sites although that makes the field sums take ~6 s to compile
# instead of ~2: compiled on its own, LLVM associates the sums differently (results then
# differ in the last bits).
@numba.njit(fastmath=_FAST, inline="always")
def _add_rows(h, two, rows, lo, n, count, kind, u, units, rep):
    """h_j += sum_{r < count} coef(j, r) rows[r] (n,) for j = j0 and, if two, j = j1, with
    h = (h_j0, h_j1) and units = (j0, j1)."""
    h0, h1 = h
    j0, j1 = units
    P = rep.M.shape[1]
    r = 0
    while r + 4 <= count:
        x0 = rows[r, lo:lo + n]
        x1 = rows[r + 1, lo:lo + n]
        x2 = rows[r + 2, lo:lo + n]
        x3 = rows[r + 3, lo:lo + n]
        c0 = (_coef(kind, u, j0, r, P, rep), _coef(kind, u, j0, r + 1, P, rep),
              _coef(kind, u, j0, r + 2, P, rep), _coef(kind, u, j0, r + 3, P, rep))
        if two:
            c1 = (_coef(kind, u, j1, r, P, rep), _coef(kind, u, j1, r + 1, P, rep),
                  _coef(kind, u, j1, r + 2, P, rep), _coef(kind, u, j1, r + 3, P, rep))
            _axpy_2x4(h0, h1, x0, x1, x2, x3, c0, c1, n)
        else:
            _axpy_1x4(h0, x0, x1, x2, x3, c0, n)
        r += 4
    while r < count:  # the last one to three rows, two at a time
        r1 = min(r + 1, count - 1)
        w = 1.0 if r1 > r else 0.0
        x0 = rows[r, lo:lo + n]
        x1 = rows[r1, lo:lo + n]
        c00 = _coef(kind, u, j0, r, P, rep)
        c01 = w * _coef(kind, u, j0, r1, P, rep)
        if two:
            _axpy_2x2(h0, h1, x0, x1, c00, c01, _coef(kind, u, j1, r, P, rep),
                      w * _coef(kind, u, j1, r1, P, rep), n)
        else:
            _axpy_1x2(h0, x0, x1, c00, c01, n)
        r += 2


# Inner loops run over 1-D views of one block (``x = arr[..., lo:lo + n]``, then ``x[i]``):
# indexing ``arr[s, q, lo + i]`` directly makes numba guard every index against wraparound,
# which defeats LLVM's vectorizer (measured 3.8x slower for the field sums).
@numba.njit(fastmath=_FAST)
def block_fields(u, lo, n, rep, smp, hblk):
    """hblk[:, :n] = h(u) (P, n) for the n samples from lo (module docstring).

    Reads the white inputs ``smp.gw`` (T, P, m) up to u, the teacher fields ``smp.z`` (K, m),
    ``smp.F_h`` (T, P, m) before u, and the coefficients ``rep.Wg``, ``rep.M``, ``rep.Gf``.
    """
    gw, z, F_h = smp.gw, smp.z, smp.F_h
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
        h = (h0, h1)
        units = (j0, j1)
        _add_rows(h, two, g_rows, lo, n, (u + 1) * P, _WHITE, u, units, rep)
        _add_rows(h, two, z, lo, n, K, _TEACHER, u, units, rep)
        _add_rows(h, two, f_rows, lo, n, u * P, _RESPONSE, u, units, rep)
