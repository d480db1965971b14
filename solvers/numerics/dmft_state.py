"""The state the multi-pass DMFT kernels share, grouped into named tuples of arrays.

Kernels receive these tuples (numba types them as named tuples: ``smp.gw``, ``rep.M`` inside
the kernels) instead of dozens of loose arrays. Shapes use T steps, P student units, K teacher
directions, m samples of the chunk being processed and nb blocks of samples; time-major
matrices are indexed by (time, unit), so row ``t * P + j`` is unit j at time t.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

__all__ = ["Blocks", "Samples", "Sums", "Replica", "Diagnostics", "Params", "scratch_size",
           "OK", "DIVERGED", "NEEDS_PSEUDO_INVERSE"]

# status of a finished step (``step.finish_step``, ``passes``' stored_steps)
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
    """Kernels, order parameters and cavity coefficients of one replica, filled causally."""

    M: np.ndarray  # (T, P, K)
    Lam: np.ndarray  # (T, P, P)
    R: np.ndarray  # (T, T, P, P), R[t, s] for s < t
    C: np.ndarray  # (T, T, P, P), symmetric: C[s, t] = C[t, s]^T
    e_train: np.ndarray  # (T,)
    Wg: np.ndarray  # (T, P, T P): w(t) = Wg[t] g, g the flat white inputs
    Gf: np.ndarray  # (T, T, P, P): r(t) = w(t) - sum_{s<t} Gf[t, s] F(s)
    gram: np.ndarray  # (T P, T P): E[g g^T]
    cw: np.ndarray  # (T P, T P): E[w w^T] = Wg gram Wg^T
    lw: np.ndarray  # (T P, T P): Cholesky factor of cw, grown a block row per step
    cw_info: np.ndarray  # (2,): pivots of cw dropped so far, smallest pivot^2 / diagonal
    lmat: np.ndarray  # (T P, T P): Cholesky factor of C (the noise path)
    Lc: np.ndarray  # (T, T, P, P): its blocks, Lc[t, v] = lmat[tP:(t+1)P, vP:(v+1)P]


class Diagnostics(NamedTuple):
    """Shared by the replicas of a solve."""

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


@numba.njit(cache=True)
def scratch_size(P: int, n: int) -> int:
    """float64 scratch per block of n samples: h (P n), residuals, chi sums, h, F, J."""
    return (P + 2) * n + 2 * P + P * P
