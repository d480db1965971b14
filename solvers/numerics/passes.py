"""The multi-pass DMFT's entry kernels, compiled per (activation code, estimator).

:func:`multipass_kernels` returns, for one activation code (``table.USER`` for a user
activation, whose cfuncs the kernels then receive) and one estimator, the kernels the driver
calls; each holds only that activation (inlined) and that estimator's code:

- ``stored_steps(steps, par, blocks, smp, sums, rep, diag, sig, dsig, d2sig, loss)``: steps
  ``steps[0] <= t < steps[1]`` of one replica whose per-sample histories are stored (static
  inputs already drawn): per step a parallel forward pass over the blocks, then the update
  (``step.finish_step_stein`` or ``step.finish_step_pathwise``). Returns (first step not
  completed, status): (steps[1], OK), or the step where the update diverged or needs the
  pseudo-inverse (``step.finish_step_pseudo_inverse`` from Python, then resume after it).
- ``replay_pass(t, par, blocks, smp, sums, rep, sig, dsig, d2sig, loss)``: advance a chunk's blocks
  from 0 to t, regenerating their noise, and add their sums of step t.
- ``finish_step(t, par, sums, rep, diag)``: the update of step t (replay mode; the estimator's
  function of :mod:`.step`); status as above.
- ``refill_noise(t, blocks, smp)``: the white noise inputs ``smp.gw[1:t]`` of the blocks from
  their streams (a stored history resumed from a checkpoint, which holds F but not them).

The kernels release the GIL: the driver solves replicas on several threads at once, each
calling them with one numba thread (``numba.set_num_threads`` is per thread).

Arguments are the named tuples of :mod:`.dmft_state`; sig, dsig, d2sig are None for registry
activations (their functions are compiled in) and the activation's cfuncs for USER; ``loss`` is
(c, half_square, value, d1, d2): the loss's parameter and form, and its cfuncs for a user loss
(None for registry losses, whose functions are compiled in).
"""

from __future__ import annotations

from types import SimpleNamespace

import numba
import numpy as np

from .dmft_state import OK
from .forward import advance_block, check_scratch, measure_step, zero_sums
from .statics import XI
from .step import finish_step_pathwise, finish_step_stein
from .streams import fill_block_normals, stream
from .table import (
    D2SIGMA,
    DSIGMA,
    LOSS_D1,
    LOSS_D2,
    LOSS_VALUE,
    SIGMA,
    activation_function,
    loss_function,
    loss_half_square,
)

__all__ = ["multipass_kernels"]

_kernels: dict[tuple[int, bool, int], SimpleNamespace] = {}


def multipass_kernels(act_code: int, pathwise: bool, loss_code: int = 0) -> SimpleNamespace:
    """The entry kernels (module docstring) for activation ``act_code``, the estimator
    (pathwise or Stein) and loss ``loss_code`` (0: square; ``table.USER`` for a user loss),
    built once per process; numba caches their machine code on disk."""
    key = (int(act_code), bool(pathwise), int(loss_code))
    if key not in _kernels:
        _kernels[key] = _build(*key)
    return _kernels[key]


@numba.njit(inline="always")
def _loss_functions(code, loss):
    """(c, half_square, value, d1, d2) of loss ``code`` (a constant): registry functions
    inlined, or the user's cfuncs from ``loss`` = (c, half_square, value, d1, d2)."""
    return (loss[0], loss_half_square(code), loss_function(code, LOSS_VALUE, loss[2]),
            loss_function(code, LOSS_D1, loss[3]), loss_function(code, LOSS_D2, loss[4]))


def _build(act_code: int, pathwise: bool, loss_code: int) -> SimpleNamespace:
    # closure constants: numba prunes the branches of other codes and of the other estimator
    # before compiling, and keys each kernel's disk cache on their values
    ACT, PATHWISE, LOSS = act_code, pathwise, loss_code

    @numba.njit(cache=True, parallel=True, nogil=True)
    def stored_steps(steps, par, blocks, smp, sums, rep, diag, sig, dsig, d2sig, loss):
        """Steps steps[0] <= t < steps[1] on stored histories (module docstring)."""
        check_scratch(blocks, smp)
        for t in range(steps[0], steps[1]):
            zero_sums(sums)
            for k in numba.prange(blocks.start.shape[0] - 1):
                kk = np.int64(k)  # unsigned inside the parallel region: one type for callees
                # registry functions resolved inside the parallel region: passed into it as
                # values, they would keep numba from caching the kernel ("dynamic globals")
                losses = advance_block(kk, (t, t), par, blocks, smp, rep,
                                       activation_function(ACT, SIGMA, sig),
                                       activation_function(ACT, DSIGMA, dsig),
                                       activation_function(ACT, D2SIGMA, d2sig), PATHWISE,
                                       _loss_functions(LOSS, loss))
                measure_step(kk, t, blocks, losses, smp, sums, PATHWISE)
            if PATHWISE:
                status = finish_step_pathwise(t, par, sums, rep, diag)
            else:
                status = finish_step_stein(t, par, sums, rep, diag)
            if status != OK:
                return t, status
        return steps[1], OK

    @numba.njit(cache=True, parallel=True, nogil=True)
    def replay_pass(t, par, blocks, smp, sums, rep, sig, dsig, d2sig, loss):
        """A chunk's blocks replayed from 0 to t, and their sums of step t."""
        check_scratch(blocks, smp)
        for k in numba.prange(blocks.start.shape[0] - 1):
            kk = np.int64(k)
            losses = advance_block(kk, (0, t), par, blocks, smp, rep,
                                   activation_function(ACT, SIGMA, sig),
                                   activation_function(ACT, DSIGMA, dsig),
                                   activation_function(ACT, D2SIGMA, d2sig), PATHWISE,
                                   _loss_functions(LOSS, loss))
            measure_step(kk, t, blocks, losses, smp, sums, PATHWISE)

    return SimpleNamespace(stored_steps=stored_steps, replay_pass=replay_pass,
                           finish_step=finish_step_pathwise if PATHWISE else finish_step_stein,
                           refill_noise=refill_noise)


@numba.njit(cache=True, nogil=True)
def refill_noise(t, blocks, smp):
    """smp.gw[u] = xi(u - 1) for 1 <= u < t from every block's streams (as the forward pass
    draws them)."""
    for k in range(blocks.start.shape[0] - 1):
        lo = blocks.start[k]
        n = blocks.start[k + 1] - lo
        for u in range(1, t):
            fill_block_normals(stream(blocks.key, blocks.gid[k], u - 1, XI), smp.gw[u], lo, n,
                               smp.flags[k])
