"""Reproducible parallel sums: a fixed partition of the work into blocks, run on threads.

The quadrature kernels (``quadrature_cross.cross_kernel``, ``onepass_moments``) release the
GIL and sum over a range of outer nodes or rows; :func:`run_blocks` splits the range the same
way whatever the number of threads, so the caller's sum over the blocks, taken in block order,
is bit-identical on any machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numba

__all__ = ["n_workers", "run_blocks"]

_Result = TypeVar("_Result")


def n_workers() -> int:
    """Threads available to the kernels: ``numba.get_num_threads()`` (at least 1)."""
    return max(1, int(numba.get_num_threads()))


def run_blocks(fn: Callable[[int, int], _Result], n_items: int, n_blocks: int,
               min_items_per_block: int = 1) -> list[_Result]:
    """Run ``fn(start, stop)`` over a fixed partition of range(n_items) into <= n_blocks blocks.

    Parameters
    ----------
    fn : callable
        ``fn(start, stop)``; runs on a worker thread, so it should spend its time in a nogil
        numba kernel.
    n_items : int
        Length of the range to split.
    n_blocks : int
        Largest number of blocks.
    min_items_per_block : int
        Fewer, larger blocks when the range is short (threads cost more than they save on
        small blocks).

    Returns
    -------
    list
        ``fn``'s results in block order. The partition depends only on n_items, n_blocks and
        min_items_per_block (never on the thread count), so sums over the list are
        reproducible. Blocks run on a thread pool of :func:`n_workers` threads (inline when
        that is 1 or there is a single block).

    Examples
    --------
    >>> run_blocks(lambda a, b: (a, b), 10, 3)
    [(0, 3), (3, 6), (6, 10)]
    """
    nb = max(1, min(n_blocks, n_items // max(1, min_items_per_block)))
    bounds = [(n_items * b) // nb for b in range(nb + 1)]
    jobs = [(bounds[b], bounds[b + 1]) for b in range(nb)]
    workers = min(n_workers(), nb)
    if workers == 1:
        return [fn(a, b) for a, b in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda ab: fn(*ab), jobs))
