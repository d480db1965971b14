"""Solving a figure's problem with every method: multi-pass DMFT, one-pass theory and
finite-d simulations of both algorithms."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence

from ..problem import Problem
from ..trajectory import Trajectory
from .data import _LABELS, METHODS, Sizes

__all__ = ["solve_all"]


def _say(progress: bool | None, message: str) -> None:
    if progress is not False:
        print(message, file=sys.stderr, flush=True)


def solve_all(problem: Problem, sizes: Sizes, *, one_pass_problem: Problem | None = None,
              methods: Sequence[str] = METHODS, options: Mapping[str, Mapping] | None = None,
              progress: bool | None = None, label: str = "") -> dict[str, Trajectory]:
    """Multi-pass DMFT, one-pass theory and simulations of both algorithms for one problem.

    Parameters
    ----------
    problem : Problem
        The multi-pass problem (schedule full, cyclic or Bernoulli).
    sizes : Sizes
    one_pass_problem : Problem, optional
        The fresh-batch problem of the one-pass curves (default: ``problem`` with schedule
        ``"one-pass"``; for minibatch schedules pass the batch size as alpha).
    methods : sequence of str
        Which of :data:`METHODS` to compute.
    options : mapping of method -> mapping, optional
        Extra keyword arguments of the solver of a method, e.g.
        ``{"one-pass": {"qmc_log2": 12}, "dmft": {"replicas": 8}}``.
    progress : bool, optional
        Progress bars and step messages (None: bars when stderr is a terminal).
    label : str
        Prefix of the progress messages.

    Returns
    -------
    dict of method -> Trajectory
        Keys ``methods`` (default ``"dmft"``, ``"one-pass"``, ``"sim"``, ``"sim-one-pass"``).

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="he3", P=1, activation="relu", alpha=3.0, eta=0.1, T=4)
    >>> runs = solve_all(prob, Sizes(samples=10**5, d=200, seeds=4),
    ...                  methods=("dmft", "one-pass"), progress=False)  # doctest: +SKIP
    >>> runs["dmft"].M[:, 0, 0], runs["one-pass"].M[:, 0, 0]  # doctest: +SKIP
    """
    from ..api import simulate, solve

    bad = [m for m in methods if m not in METHODS] + [m for m in (options or {})
                                                       if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods={tuple(methods)!r} / options keys must be among {METHODS}, "
                         f"got {bad or 'no method'}")
    opt = {m: dict((options or {}).get(m, {})) for m in METHODS}
    one = (problem.replace(schedule="one-pass") if one_pass_problem is None
           else one_pass_problem.replace(schedule="one-pass"))
    out = {}
    jobs: list[tuple[str, Callable[[], Trajectory]]] = [
        ("dmft", lambda: solve(problem, samples=sizes.samples, seed=sizes.seed,
                               progress=progress, **opt["dmft"])),
        ("one-pass", lambda: solve(one, method="one-pass", **opt["one-pass"])),
        ("sim", lambda: simulate(problem, d=sizes.d, seeds=sizes.seeds, seed=sizes.seed,
                                 progress=progress, **opt["sim"])),
        ("sim-one-pass", lambda: simulate(one, d=sizes.d, seeds=sizes.seeds,
                                          seed=sizes.seed + 1, progress=progress,
                                          **opt["sim-one-pass"])),
    ]
    for method, job in jobs:
        if method not in methods:
            continue
        start = time.perf_counter()
        out[method] = job()
        _say(progress, f"{label}{_LABELS[method]}: {time.perf_counter() - start:.1f} s")
    return out


def _params_line(problem: Problem, extra: str = "") -> str:
    text = (f"{problem.activation.name}, alpha = n/d = {problem.alpha:g}, eta = {problem.eta:g}, "
            f"lambda = {problem.lam:g}, a_j = ±1/sqrt(P), M_0 = 0, Q_0 = I")
    return text + (f"; {extra}" if extra else "")
