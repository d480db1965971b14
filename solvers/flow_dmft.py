"""Multi-pass DMFT of gradient flow and Langevin dynamics, second order in dt.

The discrete multi-pass DMFT at learning rate eta is, in the time t = eta * step, the explicit
Euler (Euler-Maruyama at temperature tau > 0) discretisation of the continuous-time DMFT
(docs/theory/flow.md): its averages have an error expansion c_1(t) eta + c_2(t) eta^2 + ...
Solving it at eta = dt and eta = dt / 2 and combining ``2 X(dt / 2) - X(dt)`` at the common
times cancels the first-order term (Richardson extrapolation): the result is second order in
dt, which the tests measure (errors at dt, dt/2, dt/4). The two solves are independent Monte
Carlo runs (seeds 2 seed and 2 seed + 1), so the standard errors combine as
``sqrt(4 se(dt/2)^2 + se(dt)^2)``.

Kernels: C and Lambda have the same meaning in both times; the discrete memory kernel is
eta times the continuous one (a sum over steps replaces an integral over time), so
R_flow(t, s) = R(t, s) / eta before the extrapolation.
"""

from __future__ import annotations

import time

import numpy as np

from dmft.problem import Problem, flow_steps
from dmft.trajectory import KERNELS, OBSERVABLES, Trajectory, base_provenance
from dmft.validation import integer

__all__ = ["solve_flow_dmft", "DEFAULT_DT", "richardson"]

# default time step: dt lambda_max <~ 0.4 for alpha <= 3 (lambda_max the top curvature,
# (1 + sqrt(alpha))^2 for a unit-scale loss), where the Richardson error of the exact linear
# case is 1.5e-3 at most and ~1e-4 after t = 0.5 (docs/theory/flow.md)
DEFAULT_DT = 0.05


def richardson(coarse: Trajectory, fine: Trajectory, problem: Problem) -> Trajectory:
    """``2 fine - coarse`` at the coarse grid's times, standard errors combined in quadrature.

    Parameters
    ----------
    coarse, fine : Trajectory
        Discrete solutions at eta = dt (T points) and eta = dt / 2 (2 T - 1 points), from
        independent random numbers.
    problem : Problem
        The flow problem of the result.

    Returns
    -------
    Trajectory
        On the times of ``coarse``; R rescaled by 1 / eta before the combination.

    Examples
    --------
    >>> import dmft
    >>> flow = dmft.Problem(target="linear", P=1, activation="linear", dynamics="flow",
    ...                     t_max=1.0)
    >>> from dmft.exact import linear_exact
    >>> a = linear_exact(flow.replace(dynamics="gd", eta=0.5, T=3))
    >>> b = linear_exact(flow.replace(dynamics="gd", eta=0.25, T=5))
    >>> ex = linear_exact(flow, dt=0.5)
    >>> bool(abs(richardson(a, b, flow).M[-1, 0, 0] - ex.M[-1, 0, 0])
    ...      < abs(b.M[-1, 0, 0] - ex.M[-1, 0, 0]))
    True
    """
    T = coarse.T
    every = slice(0, 2 * T - 1, 2)
    out = {}
    for name in OBSERVABLES:
        a, b = getattr(coarse, name), getattr(fine, name)[every]
        sa, sb = getattr(coarse, name + "_se"), getattr(fine, name + "_se")[every]
        out[name] = 2.0 * b - a
        out[name + "_se"] = np.sqrt(4.0 * sb**2 + sa**2)
    for name in KERNELS:
        a, b = getattr(coarse, name), getattr(fine, name)
        if a is None or b is None:
            continue
        sa, sb = getattr(coarse, name + "_se"), getattr(fine, name + "_se")
        b, sb = (b[every, every], sb[every, every]) if b.ndim == 4 else (b[every], sb[every])
        if name == "R":  # sum over steps -> integral over time
            a, sa = a / coarse.problem.eta, sa / coarse.problem.eta
            b, sb = b / fine.problem.eta, sb / fine.problem.eta
        out[name] = 2.0 * b - a
        out[name + "_se"] = np.sqrt(4.0 * sb**2 + sa**2)
    times = coarse.time
    dt = float(times[1] - times[0]) if T > 1 else float(coarse.problem.eta)
    prov = base_provenance(
        "dmft", dt=dt, integrator="Richardson extrapolation 2 X(dt/2) - X(dt) of the discrete "
        "DMFT at eta = dt and dt/2 (second order)",
        replicas=min(coarse.provenance.get("replicas", 2), fine.provenance.get("replicas", 2)),
        samples=[coarse.provenance.get("samples"), fine.provenance.get("samples")],
        seed=[coarse.provenance.get("seed"), fine.provenance.get("seed")],
        estimator=coarse.provenance.get("estimator"),
        wall_time=coarse.provenance.get("wall_time", 0.0) + fine.provenance.get("wall_time", 0.0),
    )
    return Trajectory(problem=problem, provenance=prov, time=times, **out)


def solve_flow_dmft(problem: Problem, samples: int = 10**6, seed: int = 0,
                    dt: float | None = None, **options) -> Trajectory:
    """Solve the multi-pass DMFT of gradient flow (or Langevin dynamics) to t_max.

    Parameters
    ----------
    problem : Problem
        ``dynamics="flow"``, full batch, any temperature.
    samples : int
        Effective samples of each of the two discrete solves.
    seed : int
        Master seed >= 0; the solves at dt and dt / 2 use seeds 2 seed and 2 seed + 1.
    dt : float, optional
        Time step of the reported grid t = k dt (t_max / dt an integer); default
        ``DEFAULT_DT`` = 0.05.
    **options
        Passed to :func:`solvers.multipass.solve_multipass` (estimator, replicas, storage,
        progress, ...).

    Returns
    -------
    Trajectory
        On t = k dt, k = 0..t_max/dt, with ``time``; M, Q, e_train, e_gen, C, R (continuous
        normalisation), Lam and standard errors; ``provenance["dt"]``.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="he3", P=1, activation="tanh", dynamics="flow", t_max=0.5)
    >>> traj = solve_flow_dmft(prob, samples=2**14, dt=0.25, progress=False)
    >>> traj.time, traj.M.shape
    (array([0.  , 0.25, 0.5 ]), (3, 1, 1))
    """
    from solvers.multipass import solve_multipass

    if not isinstance(problem, Problem) or not problem.is_flow:
        raise ValueError(f"solve_flow_dmft needs a dynamics='flow' problem, got {problem!r}")
    seed = integer("seed", seed, low=0)
    steps, dt = flow_steps(problem.t_max, DEFAULT_DT if dt is None else dt)
    start = time.perf_counter()
    coarse = solve_multipass(problem.replace(dynamics="gd", eta=dt, T=steps + 1),
                             samples=samples, seed=2 * seed, **options)
    fine = solve_multipass(problem.replace(dynamics="gd", eta=dt / 2, T=2 * steps + 1),
                           samples=samples, seed=2 * seed + 1, **options)
    traj = richardson(coarse, fine, problem)
    traj.provenance["wall_time"] = time.perf_counter() - start
    return traj
