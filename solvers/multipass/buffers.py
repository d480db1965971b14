"""Per-sample buffers of the multi-pass solver: aligned allocation, static draws, reuse.

Arrays are samples last, with rows padded to whole cache lines; a thread keeps its last
solve's buffers (when small) for its next solve of the same shapes.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from dmft.problem import Problem
from dmft.schedules import Bernoulli, Cyclic, Full
from dmft.targets import registry_code
from solvers.numerics.dmft_state import Blocks, Samples, scratch_size
from solvers.numerics.statics import SCHED_BERNOULLI, SCHED_CYCLIC, SCHED_FULL, draw_kernel
from solvers.numerics.table import USER

__all__ = ["BLOCK", "aligned_empty", "new_samples", "draw_statics", "samples_for",
           "keep_samples", "release_buffers"]

BLOCK = 1024  # samples per accumulation block: L2-sized, fixed (thread-count independent)
_ALIGN = 64  # bytes: one cache line, one AVX-512 vector
_TARGET_PIECE = 16384  # samples per call of a user target (numpy)
# White inputs (r0 and noise normals) are stored in float64 like everything else (no silent
# downcasts). The kernels accept float32 too: that measured 108 -> 87 ns/sample per replica at
# T = 7, P = 2, at the price of float32 rounding in the Gram of the white inputs.
GW_DTYPE = np.float64


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


def bytes_per_sample(problem: Problem, pathwise: bool) -> int:
    """Bytes of stored per-sample state (z, y, label noise, white inputs, F, pathwise chi, J)."""
    T, P, K = problem.T, problem.P, problem.K
    floats = K + 2 + T * P + ((T * T + 1) * P * P if pathwise else 0)
    return 8 * floats + np.dtype(GW_DTYPE).itemsize * T * P + T  # + white inputs, mask (uint8)


def new_samples(problem: Problem, m: int, pathwise: bool) -> Samples:
    """Uninitialised per-sample arrays for m samples (every entry is written before it is
    read; a test poisons kept buffers to check this)."""
    T, P, K = problem.T, problem.P, problem.K
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


def _schedule_code(schedule) -> tuple[int, float]:
    if isinstance(schedule, Full):
        return SCHED_FULL, 0.0
    if isinstance(schedule, Cyclic):
        return SCHED_CYCLIC, float(schedule.n_blocks)
    if isinstance(schedule, Bernoulli):
        return SCHED_BERNOULLI, float(schedule.b)
    raise ValueError(f"schedule {schedule} has no multi-pass DMFT")


def draw_statics(problem: Problem, smp: Samples, blocks: Blocks) -> None:
    """Fill z, labels, white r0 inputs gw[0] and the mask of the blocks from their streams."""
    code = registry_code(problem.target)
    noise_sd = math.sqrt(problem.noise)
    draw_kernel(code if code >= 0 else USER)(blocks, _schedule_code(problem.schedule),
                                             noise_sd, smp)
    if code >= 0:
        return  # registry target: labels computed in the kernel
    m = int(blocks.start[-1])
    # in pieces: numpy's temporaries then stay in cache and are recycled by malloc instead
    # of being fresh pages (measured 1.16 -> 0.28 ms per 62500 samples for the paper target)
    for lo in range(0, m, _TARGET_PIECE):
        hi = min(lo + _TARGET_PIECE, m)
        smp.y[lo:hi] = problem.target(smp.z[:, lo:hi])
    if noise_sd > 0.0:
        smp.y[:m] += smp.y_noise[:m]


# Per-sample buffers of a thread's last solve are kept when they total at most _KEEP_BYTES, and
# reused by its next solve of the same shapes: first-touching fresh memory (page faults,
# huge-page compaction) cost 5-15 ms of a ~70 ms solve at S = 1e6, for every solve.
_KEEP_BYTES = 64 * 2**20
_kept = threading.local()


def samples_for(problem: Problem, sizes: set, pathwise: bool) -> dict[int, Samples]:
    """Per-sample arrays for each sample count in ``sizes``: kept ones where shapes match."""
    kept = getattr(_kept, "chunks", {})
    dims = (problem.T, problem.P, problem.K, pathwise)
    return {m: kept.get(dims + (m,)) or new_samples(problem, m, pathwise) for m in sizes}


def keep_samples(problem: Problem, chunks: dict[int, Samples], pathwise: bool) -> None:
    """Keep this solve's arrays for the thread's next solve if they total <= 64 MiB."""
    dims = (problem.T, problem.P, problem.K, pathwise)
    small = sum(arr.nbytes for smp in chunks.values() for arr in smp) <= _KEEP_BYTES
    _kept.chunks = {dims + (m,): smp for m, smp in chunks.items()} if small else {}


def release_buffers() -> None:
    """Drop the per-sample buffers this thread keeps between solves (at most 64 MiB)."""
    _kept.chunks = {}
