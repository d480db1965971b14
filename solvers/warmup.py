"""Compile other solvers' kernels in a helper process while this one computes (first runs).

A job that runs several solvers in a row (``dmft run``: multi-pass DMFT, one-pass theory,
simulation) waits for each one's first compilation in turn. :func:`warm_on_first_compile`
starts, as soon as numba compiles anything of this package inside its ``with`` block (so only
on a cold cache), a helper process that solves a two-step version of the problem with the
other solvers; :meth:`Warmup.wait` before using one then finds its kernels in numba's disk
cache. Problems that do not pickle are not warmed.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile

from dmft.problem import Problem
from dmft.progress import compile_notice
from solvers.numerics import precompile

__all__ = ["METHODS", "Warmup", "warm_on_first_compile"]

METHODS = ("one-pass", "simulate")


class Warmup:
    """Handle of :func:`warm_on_first_compile`: :meth:`wait` for a method's kernels."""

    def __init__(self):
        self.tasks: dict[str, str] = {}

    def wait(self, method: str, timeout: float = 300.0) -> None:
        """Block until the helper has compiled ``method``'s kernels (at once if it was not
        asked to: warm caches, one core, or a problem that does not pickle)."""
        if method in self.tasks:
            precompile.wait(self.tasks[method], timeout)


@contextlib.contextmanager
def warm_on_first_compile(problem: Problem, methods=METHODS):
    """Within the block, the first numba compilation starts warming ``methods`` for
    ``problem`` in a helper process (see the module docstring); yields a :class:`Warmup`.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="he3", P=1, activation="relu", T=3)
    >>> with warm_on_first_compile(prob, ["simulate"]) as warm:
    ...     warm.wait("simulate")  # nothing compiled here: nothing started, no wait
    """
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"method {method!r} cannot be warmed; allowed: {METHODS}")
    handle = Warmup()

    def start() -> None:
        for rank, method in enumerate(methods, start=1):  # after the running solve's tasks
            try:
                fd, path = tempfile.mkstemp(suffix=".pkl", prefix="dmft-warm-")
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(problem, fh)
            except (pickle.PicklingError, AttributeError, TypeError, OSError):
                return
            task = f"{__name__}:warm:{method}@{path}"
            precompile.start([task], priority=rank)
            if not precompile.started(task):  # no helper (one core): nobody reads the file
                with contextlib.suppress(OSError):
                    os.unlink(path)
                return
            handle.tasks[method] = task

    with compile_notice("", 0.0, enabled=False, on_start=start):
        yield handle


def warm(spec: str) -> None:
    """Helper task ``"method@path"``: solve the pickled problem at ``path`` (then deleted)
    with ``method``."""
    method, path = spec.split("@", 1)
    try:
        with open(path, "rb") as fh:
            # rebuilt: unpickled arrays are writeable, and numba compiles other code for
            # read-only ones (those of a Problem) than for writeable ones
            problem = pickle.load(fh).replace(T=2)
    finally:
        os.unlink(path)
    if method == "one-pass":
        from solvers.onepass import solve_onepass

        solve_onepass(problem)
    elif method == "simulate":
        from solvers.finite_d import simulate_finite_d

        simulate_finite_d(problem, d=problem.P + problem.K + 8, seeds=2, seed=0,
                          progress=False)
