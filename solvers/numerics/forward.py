"""The multi-pass DMFT's forward pass over one block of samples, with the kernels fixed.

For u = t_from..t_to a block draws its white noise xi(u - 1), propagates the pathwise response
chi(u, .) if needed, computes h(u) (:func:`.fields.block_fields`) and F(u) (and J(u)), and
then adds its sums of step t_to (:mod:`.measure`). With t_from = t_to = t this is one causal
step on stored histories; with t_from = 0 it replays a chunk from its counter streams.
"""

from __future__ import annotations

import numba

from .committee import block_F, committee_J
from .dmft_state import scratch_size
from .fields import block_fields
from .measure import measure_block, measure_block_pathwise
from .statics import XI
from .streams import fill_block_normals, stream

__all__ = ["chi_step", "chi_start", "block_J", "advance_block", "measure_step", "zero_sums",
           "check_scratch"]

_FAST = {"reassoc", "contract"}  # reassociation only: no finite-math assumption


@numba.njit(fastmath=_FAST)
def chi_step(u, lo, n, rep, eta, smp, acc):
    """chi(u, s) (P, P, n), s <= u, from chi(u-1, .) and J(u-1) (pathwise response):
    chi(u, s) = chi(u-1, s) + eta [-Lam chi - J (chi - delta I) + sum_{v=s}^{u-2} R(u-1, v)
    chi(v, s)], chi(u, u) = 0. Reads ``rep.Lam``, ``rep.R``, ``smp.J_h`` (P, P, m); writes
    ``smp.chi_h`` (T, T, P, P, m) for the n samples from lo; ``acc`` (>= n,) scratch."""
    Lam, R, J_h, chi_h = rep.Lam, rep.R, smp.J_h, smp.chi_h
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


@numba.njit(inline="always")
def chi_start(lo, n, smp):
    """chi(0, 0) = 0 for the n samples from lo (buffers are reused: write, do not assume).
    Plain loops: as an array expression inside a parallel loop it was not executed."""
    chi0 = smp.chi_h[0, 0]
    for j in range(chi0.shape[0]):
        for q in range(chi0.shape[1]):
            row = chi0[j, q, lo:lo + n]
            for i in range(n):
                row[i] = 0.0


@numba.njit(inline="always")  # receives registry functions: see table.activation_function
def block_J(u, lo, n, hblk, resid, smp, a, dsig, d2sig, scratch, loss):
    """J_h[:, :, lo + i] = s(u) J(h_i) (P, P) for the n samples from lo, given h = hblk (P, n)
    and the residuals ``resid`` (n,); ``scratch`` = (hv (P,), Jv (P, P)); ``loss`` as in
    :func:`advance_block`."""
    hv, Jv = scratch
    P = hv.shape[0]
    mask, J_h = smp.mask, smp.J_h
    for i in range(n):
        for j in range(P):
            hv[j] = hblk[j, i]
        r, yi = resid[i], smp.y[lo + i]
        committee_J(hv, loss[3](r, yi, loss[0]), loss[4](r, yi, loss[0]), a, dsig, d2sig, Jv)
        mu_ = float(mask[u, lo + i])
        for j in range(P):
            for q in range(P):
                J_h[j, q, lo + i] = mu_ * Jv[j, q]


@numba.njit(inline="always")
def advance_block(k, steps, par, blocks, smp, rep, sig, dsig, d2sig, pathwise, loss):
    """Advance block k through u = steps[0]..steps[1] (module docstring); returns the
    sample losses at the last step as (q1, q2) (n,) with 2 L = q1 * q2, views of the block's
    scratch: the residuals twice for the square loss (whose sums stay sums of r * r), else 2 L
    and ones.

    ``pathwise`` is a compile-time constant of the calling kernel; sig, dsig, d2sig the
    activation's functions (inlinable registry functions or cfuncs); ``loss`` = (c,
    half_square, value, d1, d2) the loss's parameter, form and functions (likewise).
    """
    P = smp.gw.shape[1]
    lo = blocks.start[k]
    n = blocks.start[k + 1] - lo
    # per-block scratch carved from the caller's arrays (allocating it here cost ~50 us per
    # call: 5 ms of a 1e6-sample solve)
    buf = smp.work[k]
    hblk = buf[:P * n].reshape((P, n))
    resid = buf[P * n:(P + 1) * n]
    acc = buf[(P + 1) * n:(P + 2) * n]
    rest = (P + 2) * n
    hv = buf[rest:rest + P]
    Jv = buf[rest + 2 * P:rest + 2 * P + P * P].reshape((P, P))
    bad = smp.flags[k]
    for u in range(steps[0], steps[1] + 1):
        if u == 0 and pathwise:
            chi_start(lo, n, smp)
        if u > 0:
            fill_block_normals(stream(blocks.key, blocks.gid[k], u - 1, XI), smp.gw[u], lo, n,
                               bad)
            if pathwise:
                chi_step(u, lo, n, rep, par.eta, smp, acc)
        block_fields(u, lo, n, rep, smp, hblk)
        block_F(hblk, smp.y[lo:lo + n], smp.mask[u, lo:lo + n], par.a, sig, dsig, smp.F_h[u],
                lo, resid, loss, acc)
        if pathwise:
            block_J(u, lo, n, hblk, resid, smp, par.a, dsig, d2sig, (hv, Jv), loss)
    if loss[1]:
        return resid, resid  # the square loss: 2 L = resid^2
    for i in range(n):
        resid[i] = 1.0  # not needed any more: 2 L = acc * 1
    return acc, resid


@numba.njit(inline="always")
def measure_step(k, t, blocks, losses, smp, sums, pathwise):
    """Block k's sums of step t (:mod:`.measure`), given its sample losses (q1, q2)."""
    lo = blocks.start[k]
    n = blocks.start[k + 1] - lo
    measure_block(k, t, lo, n, losses, smp, sums)
    if pathwise:
        measure_block_pathwise(k, t, lo, n, smp, sums)


@numba.njit(inline="always")
def zero_sums(sums):
    """Set every partial sum to 0, by plain loops (an array expression in a parallel kernel
    would become a parallel loop of its own)."""
    for arr in (sums.C, sums.Fg, sums.gram, sums.R):
        flat = arr.reshape(arr.size)
        for i in range(flat.size):
            flat[i] = 0.0
    for arr in (sums.Fz, sums.J):
        flat = arr.reshape(arr.size)
        for i in range(flat.size):
            flat[i] = 0.0
    for i in range(sums.loss.size):
        sums.loss[i] = 0.0


@numba.njit(inline="always")
def check_scratch(blocks, smp):
    """Raise if a block's scratch rows (``smp.work``, ``smp.flags``) are too short."""
    P = smp.gw.shape[1]
    for k in range(blocks.start.shape[0] - 1):
        n = blocks.start[k + 1] - blocks.start[k]
        if smp.work.shape[1] < scratch_size(P, n) or smp.flags.shape[1] < 8 * ((n + 7) // 8):
            raise ValueError("forward pass: scratch arrays too small for the blocks")
