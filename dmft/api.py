"""The verbs: solve and simulate dispatch a Problem to a solver in ``solvers``."""

from __future__ import annotations

from .problem import Problem
from .schedules import OnePass
from .trajectory import Trajectory

__all__ = ["solve", "simulate", "METHODS"]

METHODS = ("dmft", "one-pass")


def solve(problem: Problem, method: str = "dmft", **options) -> Trajectory:
    """Solve the high-dimensional theory of ``problem``.

    Parameters
    ----------
    problem : Problem
    method : {"dmft", "one-pass"}
        ``"dmft"``: the multi-pass DMFT of SPEC sections 3-5 (Monte Carlo over ``samples``
        effective samples). ``"one-pass"``: the deterministic fresh-batch recursion of SPEC 6
        (also used for ``method="dmft"`` when ``problem.schedule`` is one-pass, where the two
        theories coincide).
    **options
        Passed to the solver: for ``"dmft"`` ``samples``, ``seed``, ``estimator``
        (``"stein"`` | ``"pathwise"``), ``replicas``, ``progress``...; see
        :func:`solvers.multipass.solve_multipass` and :func:`solvers.onepass.solve_onepass`.

    Returns
    -------
    Trajectory
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not valid; allowed: {METHODS}")
    if method == "one-pass" or isinstance(problem.schedule, OnePass):
        from solvers.onepass import solve_onepass

        return solve_onepass(problem, **options)
    from solvers.multipass import solve_multipass

    return solve_multipass(problem, **options)


def simulate(problem: Problem, d: int, seeds: int = 8, seed: int = 0, **options) -> Trajectory:
    """Run finite-dimensional GD ``seeds`` times and return the mean and its standard error.

    Parameters
    ----------
    problem : Problem
    d : int
        Input dimension (n = round(alpha d) samples).
    seeds : int
        Number of independent runs (data, teacher and initialisation redrawn).
    seed : int
        Master seed; run i uses ``SeedSequence(seed).spawn(seeds)[i]``.
    **options
        See :func:`solvers.finite_d.simulate_finite_d`.

    Returns
    -------
    Trajectory
        Means over runs, standard errors = sample std / sqrt(seeds).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")
    from solvers.finite_d import simulate_finite_d

    return simulate_finite_d(problem, d=d, seeds=seeds, seed=seed, **options)
