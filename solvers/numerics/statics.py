"""Per-sample randomness of the multi-pass DMFT that is fixed in time: z, r(0), mask, labels.

Every block of samples draws from its own counter streams (:mod:`.streams`), named by (key,
block id, step, purpose), so results depend neither on the thread count nor on how blocks are
grouped into chunks (stored and replayed histories agree to the last bit).
"""

from __future__ import annotations

import numba
import numpy as np

from .streams import COUNTER_ROW, counter_uniform, fill_block_normals, stream
from .table import USER, teacher_function

__all__ = ["XI", "SCHED_FULL", "SCHED_CYCLIC", "SCHED_BERNOULLI", "draw_kernel"]

# purposes of a block's counter streams (the last index of ``streams.stream``)
XI, _Z, _G0, _YNOISE, _MASK = 0, 1, 2, 3, 4
# schedule kinds: every sample at every step; cyclic blocks (param = number of blocks: each
# sample draws its block uniformly, active at t iff t mod n_blocks equals it); Bernoulli
# (param = b: active independently with probability b at every step)
SCHED_FULL, SCHED_CYCLIC, SCHED_BERNOULLI = 0, 1, 2


@numba.njit(inline="always")
def _draw_mask(base, kind, param, lo, n, mask):
    """mask[t, lo:lo + n] (uint8) for every t from the stream with state ``base``."""
    for t in range(mask.shape[0]):
        row = mask[t, lo:lo + n]
        if kind == SCHED_FULL:
            for i in range(n):  # a loop: array expressions in parallel regions become parfors
                row[i] = 1
        elif kind == SCHED_CYCLIC:
            # each sample's block from uniform i of the stream (the same at every t)
            nb = int(param)
            for i in range(n):
                mine = min(int(counter_uniform(base, i) * nb), nb - 1)
                row[i] = 1 if t % nb == mine else 0
        else:
            for i in range(n):
                u = counter_uniform(base, (t + 1) * COUNTER_ROW + i)
                row[i] = 1 if u < param else 0


@numba.njit(inline="always")
def _draw_block(k, blocks, schedule, noise_sd, smp, target_code):
    """Block k's z (K, n), white r0 inputs gw[0] (P, n), label noise (noise_sd times a
    normal; not written when noise_sd == 0), mask (T, n), and for a registry target
    (``target_code``, a constant, not USER) the labels y = g*(z) + noise."""
    lo = blocks.start[k]
    n = blocks.start[k + 1] - lo
    gid = blocks.gid[k]
    bad = smp.flags[k]
    fill_block_normals(stream(blocks.key, gid, 0, _Z), smp.z, lo, n, bad)
    fill_block_normals(stream(blocks.key, gid, 0, _G0), smp.gw[0], lo, n, bad)
    y, y_noise = smp.y, smp.y_noise
    if noise_sd > 0.0:
        yn = y_noise.reshape(1, y_noise.shape[0])
        fill_block_normals(stream(blocks.key, gid, 0, _YNOISE), yn, lo, n, bad)
        for i in range(n):
            y_noise[lo + i] *= noise_sd
    if target_code != USER:
        # labels while this block's z is in L1 (one pass instead of a serial numpy one)
        rows = teacher_function(target_code)
        rows(smp.z, lo, n, y)
        if noise_sd > 0.0:
            for i in range(n):
                y[lo + i] += y_noise[lo + i]
    _draw_mask(stream(blocks.key, gid, 0, _MASK), schedule[0], schedule[1], lo, n, smp.mask)


_kernels: dict[int, object] = {}


def draw_kernel(target_code: int):
    """The parallel draw of every block's static inputs for registry teacher ``target_code``
    (USER: labels left to the caller), compiled once per code.

    The kernel is ``draw(blocks, schedule, noise_sd, smp)``: ``blocks`` a ``Blocks``,
    ``schedule`` = (kind, param) (SCHED_*), ``noise_sd`` the label noise's standard deviation,
    ``smp`` a ``Samples`` whose z, y, y_noise, mask and gw[0] it fills.
    """
    if target_code not in _kernels:
        TARGET = target_code

        @numba.njit(cache=True, parallel=True, nogil=True)
        def draw(blocks, schedule, noise_sd, smp):
            """Every block's static inputs into ``smp`` (see draw_kernel), in parallel."""
            for k in numba.prange(blocks.start.shape[0] - 1):
                _draw_block(np.int64(k), blocks, schedule, noise_sd, smp, TARGET)

        _kernels[target_code] = draw
    return _kernels[target_code]
