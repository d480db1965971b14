"""Per-sample buffers of the multi-pass solver: static draws, reuse between solves.

A thread keeps its last solve's buffers (when small) for its next solve of the same shapes.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from dmft.problem import Problem
from dmft.schedules import Bernoulli, Cyclic, Full
from dmft.targets import registry_code
from solvers.numerics.dmft_state import GW_DTYPE, Blocks, Samples, new_samples
from solvers.numerics.statics import SCHED_BERNOULLI, SCHED_CYCLIC, SCHED_FULL, draw_kernel
from solvers.numerics.table import USER

__all__ = ["bytes_per_sample", "draw_statics", "samples_for", "keep_samples",
           "release_buffers"]

_TARGET_PIECE = 16384  # samples per call of a user target (numpy)

def bytes_per_sample(problem: Problem, pathwise: bool) -> int:
    """Bytes of stored per-sample state (z, y, label noise, white inputs, F, pathwise chi, J)."""
    T, P, K = problem.T, problem.P, problem.K
    floats = K + 2 + T * P + ((T * T + 1) * P * P if pathwise else 0)
    return 8 * floats + np.dtype(GW_DTYPE).itemsize * T * P + T  # + white inputs, mask (uint8)


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


def samples_for(problem: Problem, sizes: set, pathwise: bool, worker: int = 0
                ) -> dict[int, Samples]:
    """Per-sample arrays of one worker for each sample count in ``sizes``: kept ones where
    shapes match."""
    kept = getattr(_kept, "chunks", {})
    dims = (problem.T, problem.P, problem.K, pathwise)
    return {m: kept.get(dims + (m, worker)) or new_samples(*dims[:3], m, pathwise)
            for m in sizes}


def keep_samples(problem: Problem, chunks: list[dict[int, Samples]], pathwise: bool) -> None:
    """Keep this solve's arrays (``chunks[w]`` those of worker w) for the thread's next solve
    if they total <= 64 MiB."""
    dims = (problem.T, problem.P, problem.K, pathwise)
    small = sum(arr.nbytes for ch in chunks for smp in ch.values() for arr in smp) <= _KEEP_BYTES
    _kept.chunks = ({dims + (m, w): smp for w, ch in enumerate(chunks) for m, smp in ch.items()}
                    if small else {})


def release_buffers() -> None:
    """Drop the per-sample buffers this thread keeps between solves (at most 64 MiB)."""
    _kept.chunks = {}
