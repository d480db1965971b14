"""The verbs: :func:`solve` and :func:`simulate` dispatch a Problem through :data:`METHODS`.

Everything that solves (these verbs, the sweeps) looks the solver up in :data:`METHODS` and
applies the one dispatch rule of :func:`method_for`; the engines in ``solvers`` are imported on
first use, so ``import dmft`` stays light.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from .problem import Problem
from .schedules import OnePass
from .trajectory import Trajectory

__all__ = ["solve", "simulate", "METHODS", "THEORIES", "Method", "method_for"]


@dataclass(frozen=True)
class Method:
    """One way of computing a :class:`Trajectory` from a :class:`Problem`.

    Attributes
    ----------
    name : str
        The registry name (``method=`` of :func:`solve`, ``methods=`` of a sweep).
    load : callable
        Returns the solver function ``fn(problem, **options) -> Trajectory``; imports the
        engine, so it is called only when the method is used.
    summary : str
        One line for help texts.
    """

    name: str
    load: Callable[[], Callable[..., Trajectory]]
    summary: str

    @property
    def solver(self) -> Callable[..., Trajectory]:
        """The solver function (imports its engine on first use)."""
        return self.load()

    def accepts(self, option: str) -> bool:
        """Whether the solver takes the keyword ``option`` (by name or through ``**kwargs``).

        Examples
        --------
        >>> METHODS["dmft"].accepts("samples"), METHODS["simulate"].accepts("samples")
        (True, False)
        """
        params = inspect.signature(self.solver).parameters
        return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _multipass() -> Callable[..., Trajectory]:
    from solvers.multipass import solve_multipass

    return solve_multipass


def _onepass() -> Callable[..., Trajectory]:
    from solvers.onepass import solve_onepass

    return solve_onepass


def _flow_dmft() -> Callable[..., Trajectory]:
    from solvers.flow_dmft import solve_flow_dmft

    return solve_flow_dmft


def _finite_d() -> Callable[..., Trajectory]:
    from solvers.finite_d import simulate_finite_d

    return simulate_finite_d


METHODS: dict[str, Method] = {
    "dmft": Method("dmft", _multipass,
                   "multi-pass DMFT by causal Monte Carlo (docs/theory/dmft.md)"),
    "one-pass": Method("one-pass", _onepass,
                       "deterministic fresh-batch theory (docs/theory/one-pass.md)"),
    "simulate": Method("simulate", _finite_d,
                       "finite-d gradient descent, mean and standard error over seeds"),
    "dmft-flow": Method("dmft-flow", _flow_dmft,
                        "multi-pass DMFT of gradient flow, second order in dt "
                        "(docs/theory/flow.md)"),
}
# the methods of the high-dimensional theory, i.e. the ``method=`` values of :func:`solve`
THEORIES = ("dmft", "one-pass")


def method_for(problem: Problem, method: str) -> Method:
    """The registry entry that computes ``method`` for ``problem``: the one dispatch rule.

    ``"simulate"`` is the finite-d simulator whatever the schedule. Of the theories,
    ``"one-pass"``, and ``"dmft"`` on a one-pass schedule (where the multi-pass DMFT and the
    one-pass theory coincide), are the one-pass theory (population gradient flow for
    ``dynamics="flow"``); ``"dmft"`` otherwise is the multi-pass DMFT (``"dmft-flow"`` for
    ``dynamics="flow"``).

    Parameters
    ----------
    problem : Problem
    method : {"dmft", "one-pass", "simulate", "dmft-flow"}

    Returns
    -------
    Method

    Examples
    --------
    >>> method_for(Problem(target="he3", P=1, schedule="one-pass"), "dmft").name
    'one-pass'
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not valid; allowed: {tuple(METHODS)}")
    if method == "simulate":
        return METHODS["simulate"]
    if method == "one-pass" or isinstance(problem.schedule, OnePass):
        return METHODS["one-pass"]
    return METHODS["dmft-flow" if problem.is_flow or method == "dmft-flow" else "dmft"]


def _check_problem(problem) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")


def solve(problem: Problem, method: str = "dmft", **options) -> Trajectory:
    """Solve the high-dimensional theory of ``problem``.

    Parameters
    ----------
    problem : Problem
    method : {"dmft", "one-pass"}
        ``"dmft"``: the multi-pass DMFT (docs/theory/dmft.md), a Monte Carlo over ``samples``
        effective samples. ``"one-pass"``: the deterministic fresh-batch recursion
        (docs/theory/one-pass.md), also used for ``method="dmft"`` when ``problem.schedule`` is
        one-pass, where the two theories coincide (see :func:`method_for`).
    **options
        Passed to the solver: for ``"dmft"`` ``samples``, ``seed``, ``estimator``
        (``"stein"`` | ``"pathwise"``), ``replicas``, ``progress``...; see
        :func:`solvers.multipass.solve_multipass` and :func:`solvers.onepass.solve_onepass`.
        For ``dynamics="flow"`` problems also ``dt``, the time step of the grid t = k dt
        (:func:`solvers.flow_dmft.solve_flow_dmft`; population flow for ``"one-pass"``).

    Returns
    -------
    Trajectory
        ``M (T, P, K)``, ``Q (T, P, P)``, ``e_train (T,)``, ``e_gen (T,)`` with their standard
        errors, and for the DMFT the kernels ``C, R, Lam``.

    Examples
    --------
    >>> prob = Problem(target="he3", P=1, T=3)
    >>> traj = solve(prob, samples=10**4, seed=0, progress=False)
    >>> traj.M.shape, traj.method
    ((3, 1, 1), 'dmft')
    >>> solve(prob, method="one-pass").method
    'one-pass'
    """
    _check_problem(problem)
    if method not in THEORIES:
        raise ValueError(f"method={method!r} is not valid; allowed: {THEORIES}")
    return method_for(problem, method).solver(problem, **options)


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

    Examples
    --------
    >>> sims = simulate(Problem(target="he3", P=1, T=3), d=100, seeds=2, progress=False)
    >>> sims.M.shape, sims.provenance["seeds"]
    ((3, 1, 1), 2)
    """
    _check_problem(problem)
    return METHODS["simulate"].solver(problem, d=d, seeds=seeds, seed=seed, **options)
