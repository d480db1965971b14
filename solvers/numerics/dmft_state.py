"""The state the multi-pass DMFT kernels share, grouped into named tuples of arrays.

Kernels receive these tuples (numba types them as named tuples: ``smp.gw``, ``rep.M`` inside
the kernels) instead of dozens of loose arrays. Shapes use T steps, P student units, K teacher
directions, m samples of the chunk being processed and nb blocks of samples; time-major
matrices are indexed by (time, unit), so row ``t * P + j`` is unit j at time t.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

__all__ = ["Blocks", "Samples", "Sums", "Replica", "Results", "Workspace", "Diagnostics",
           "Params", "scratch_size", "BLOCK", "GW_DTYPE", "aligned_empty", "new_samples",
           "make_params", "zero_results", "new_workspace", "reset_workspace", "replica",
           "zero_replica", "zero_sums", "zero_diagnostics", "OK", "DIVERGED",
           "NEEDS_PSEUDO_INVERSE"]

BLOCK = 1024  # samples per accumulation block: L2-sized, fixed (thread-count independent)
_ALIGN = 64  # bytes: one cache line, one AVX-512 vector
# White inputs (r0 and noise normals) are stored in float64 like everything else (no silent
# downcasts). The kernels accept float32 too: that measured 108 -> 87 ns/sample per replica at
# T = 7, P = 2, at the price of float32 rounding in the Gram of the white inputs.
GW_DTYPE = np.float64
# status of a finished step (``step.finish_step_*``, ``passes``' stored_steps)
OK, DIVERGED, NEEDS_PSEUDO_INVERSE = 0, 1, 2


class Blocks(NamedTuple):
    """Fixed blocks of samples: block k holds samples ``start[k] <= i < start[k + 1]`` of the
    chunk and draws its random numbers from the counter streams named by (key, ``gid[k]``)."""

    key: np.uint64
    start: np.ndarray  # (nb + 1,) int64
    gid: np.ndarray  # (nb,) int64


class Samples(NamedTuple):
    """Per-sample arrays of a chunk, samples last (contiguous, so that loops vectorise)."""

    z: np.ndarray  # (K, m) teacher fields
    y: np.ndarray  # (m,) labels
    y_noise: np.ndarray  # (m,) label noise (written only when the noise is > 0)
    mask: np.ndarray  # (T, m) uint8 schedule mask s(t)
    gw: np.ndarray  # (T, P, m) white inputs: gw[0] of r(0), gw[s + 1] = xi(s) of zeta(s)
    F_h: np.ndarray  # (T, P, m) s(t) F(t)
    chi_h: np.ndarray  # pathwise (T, T, P, P, m): chi(t, s); else (1, 1, 1, 1, 1), unused
    J_h: np.ndarray  # pathwise (P, P, m): s J at the last step reached; else (1, 1, 1)
    work: np.ndarray  # (nb, >= scratch_size(P, n)) float64 scratch, a row per block
    flags: np.ndarray  # (nb, >= n rounded up to 8) uint8 scratch, a row per block


class Sums(NamedTuple):
    """Per-block partial sums of one step (a row per block, summed in block order)."""

    C: np.ndarray  # (nb, T, P, P): sum of F(t) F(s)^T
    Fg: np.ndarray  # (nb, T, P, P): sum of F(t) g(s)^T
    gram: np.ndarray  # (nb, T, P, P): sum of g(t) g(s)^T
    Fz: np.ndarray  # (nb, P, K): sum of F(t) z^T
    loss: np.ndarray  # (nb,): sum of L(h(t), y)
    J: np.ndarray  # pathwise (nb, P, P): sum of J(t); else (1, P, P)
    R: np.ndarray  # pathwise (nb, T, P, P): sum of J(t) chi(t, s); else (1, T, P, P)


class Replica(NamedTuple):
    """Kernels, order parameters and cavity coefficients of one replica, filled causally.

    The first five fields are the replica's results (views into arrays stacked over the
    replicas, :class:`Results`); the others its working state (:class:`Workspace`, reused by
    the next replica solved on the same worker)."""

    M: np.ndarray  # (T, P, K)
    Lam: np.ndarray  # (T, P, P)
    R: np.ndarray  # (T, T, P, P), R[t, s] for s < t
    C: np.ndarray  # (T, T, P, P), symmetric: C[s, t] = C[t, s]^T
    e_train: np.ndarray  # (T,)
    Wg: np.ndarray  # (T, P, T P): w(t) = Wg[t] g, g the flat white inputs
    WgT: np.ndarray  # (T P, T P): its transpose, WgT[c, s P + j] = Wg[s, j, c]
    Gf: np.ndarray  # (T, P, T P): r(t) = w(t) - Gf[t] f, f the flat F(s), s < t
    gram: np.ndarray  # (T P, T P): E[g g^T]
    cw: np.ndarray  # (T P, T P): E[w w^T] = Wg gram Wg^T
    lw: np.ndarray  # (T P, T P): Cholesky factor of cw, grown a block row per step
    lwt: np.ndarray  # (T P, T P): its transpose (rows: contiguous columns of lw)
    cw_info: np.ndarray  # (2,): pivots of cw dropped so far, smallest pivot^2 / diagonal
    lmat: np.ndarray  # (T P, T P): Cholesky factor of C (the noise path)
    lmatt: np.ndarray  # (T P, T P): its transpose


class Results(NamedTuple):
    """The results of B replicas, stacked (leading axis B)."""

    M: np.ndarray  # (B, T, P, K)
    Lam: np.ndarray  # (B, T, P, P)
    R: np.ndarray  # (B, T, T, P, P)
    C: np.ndarray  # (B, T, T, P, P)
    e_train: np.ndarray  # (B, T)


class Workspace(NamedTuple):
    """The working state of the replica being solved (the last fields of :class:`Replica`)."""

    Wg: np.ndarray
    WgT: np.ndarray
    Gf: np.ndarray
    gram: np.ndarray
    cw: np.ndarray
    lw: np.ndarray
    lwt: np.ndarray
    cw_info: np.ndarray
    lmat: np.ndarray
    lmatt: np.ndarray


class Diagnostics(NamedTuple):
    """Of the replicas solved on one worker (the driver combines the workers')."""

    cond_cw: np.ndarray  # (T,): largest over replicas of cw's conditioning indicator
    chol_dropped: np.ndarray  # (T,) int64: noise components found degenerate, summed
    scratch: np.ndarray  # (T P, T P) float64


class Params(NamedTuple):
    """Scalars of the problem and the numerical tolerances."""

    samples: int  # S per replica (the divisor of every expectation)
    alpha: float
    eta: float
    lam: float
    a: np.ndarray  # (P,) second layer
    noise_memory: bool  # False: noise drawn afresh each step (the authors' script's error)
    chol_tol: float  # relative pivot below which a noise component is degenerate
    cw_rcond: float  # relative eigenvalue cutoff when pseudo-inverting cw
    langevin: float  # 2 tau / eta: Langevin noise variance added to C's equal-time blocks


def make_params(samples: int, alpha: float, eta: float, lam: float, a, noise_memory: bool,
                chol_tol: float, cw_rcond: float, langevin: float = 0.0) -> Params:
    """Params with the argument types the compiled kernels expect (a read-only float64 copy of
    ``a``, Python scalars): the same types give the same compiled, cached kernels."""
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return Params(int(samples), float(alpha), float(eta), float(lam), a, bool(noise_memory),
                  float(chol_tol), float(cw_rcond), float(langevin))


def zero_results(B: int, T: int, P: int, K: int) -> Results:
    """Zeroed results of B replicas."""
    return Results(M=np.zeros((B, T, P, K)), Lam=np.zeros((B, T, P, P)),
                   R=np.zeros((B, T, T, P, P)), C=np.zeros((B, T, T, P, P)),
                   e_train=np.zeros((B, T)))


def new_workspace(T: int, P: int) -> Workspace:
    """A zeroed workspace (as :func:`reset_workspace` leaves it)."""
    n = T * P
    ws = Workspace(Wg=np.zeros((T, P, n)), WgT=np.zeros((n, n)), Gf=np.zeros((T, P, n)),
                   gram=np.zeros((n, n)), cw=np.zeros((n, n)), lw=np.zeros((n, n)),
                   lwt=np.zeros((n, n)), cw_info=np.zeros(2), lmat=np.zeros((n, n)),
                   lmatt=np.zeros((n, n)))
    ws.cw_info[1] = 1.0  # smallest pivot ratio so far
    return ws


def reset_workspace(ws: Workspace) -> None:
    """Zero a workspace for a new replica (``cw_info`` = (0, 1))."""
    for arr in ws:
        arr[...] = 0.0
    ws.cw_info[1] = 1.0


def replica(results: Results, b: int, ws: Workspace) -> Replica:
    """Replica b: its rows of ``results`` and the workspace."""
    return Replica(*(arr[b] for arr in results), *ws)


def zero_replica(T: int, P: int, K: int) -> Replica:
    """One zeroed replica (its own results and workspace), e.g. to type the kernels."""
    return replica(zero_results(1, T, P, K), 0, new_workspace(T, P))


def zero_sums(n_blocks: int, T: int, P: int, K: int, pathwise: bool) -> Sums:
    """Zeroed partial sums for n_blocks blocks (the pathwise ones a single row when unused)."""
    nb_p = n_blocks if pathwise else 1
    return Sums(C=np.zeros((n_blocks, T, P, P)), Fg=np.zeros((n_blocks, T, P, P)),
                gram=np.zeros((n_blocks, T, P, P)), Fz=np.zeros((n_blocks, P, K)),
                loss=np.zeros(n_blocks), J=np.zeros((nb_p, P, P)), R=np.zeros((nb_p, T, P, P)))


def zero_diagnostics(T: int, P: int) -> Diagnostics:
    return Diagnostics(cond_cw=np.zeros(T), chol_dropped=np.zeros(T, dtype=np.int64),
                       scratch=np.zeros((T * P, T * P)))


@numba.njit(cache=True)
def scratch_size(P: int, n: int) -> int:
    """float64 scratch per block of n samples: h (P n), residuals, chi sums, h, F, J."""
    return (P + 2) * n + 2 * P + P * P


def aligned_empty(shape: tuple, dtype=np.float64) -> np.ndarray:
    """Uninitialised C-contiguous array whose rows (last axis) all start on a cache line.

    The last axis is padded to whole cache lines (callers index only its first ``shape[-1]``
    entries; the kernels never read the padding). Vector loads that straddle two lines cost
    up to twice as much: unaligned rows made the field sums 1.5-2x slower (numpy puts large
    arrays 16 bytes past a page start, and 62500-sample rows are 64-byte multiples only every
    other row).
    """
    itemsize = np.dtype(dtype).itemsize
    per_line = _ALIGN // itemsize
    padded = shape[:-1] + (-(-shape[-1] // per_line) * per_line,)
    count = math.prod(padded)
    raw = np.empty(count * itemsize + _ALIGN, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGN
    return raw[offset:offset + count * itemsize].view(dtype).reshape(padded)


def new_samples(T: int, P: int, K: int, m: int, pathwise: bool) -> Samples:
    """Uninitialised per-sample arrays for m samples, rows aligned (every entry is written
    before it is read; a test poisons kept buffers to check this)."""
    n_blocks = -(-m // BLOCK)
    return Samples(
        z=aligned_empty((K, m)),
        y=aligned_empty((m,)),
        y_noise=aligned_empty((m,)),
        mask=aligned_empty((T, m), dtype=np.uint8),
        gw=aligned_empty((T, P, m), dtype=GW_DTYPE),
        F_h=aligned_empty((T, P, m)),
        chi_h=aligned_empty((T, T, P, P, m) if pathwise else (1, 1, 1, 1, 1)),
        J_h=aligned_empty((P, P, m) if pathwise else (1, 1, 1)),
        work=aligned_empty((n_blocks, scratch_size(P, BLOCK))),
        flags=np.empty((n_blocks, BLOCK), dtype=np.uint8),
    )
