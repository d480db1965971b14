"""Speed and discretisation error of the gradient-flow DMFT (solvers/flow_dmft.py).

Run from the repository root::

    python -m benchmarks.bench_flow            # t_max = 1, 2, 4 (~5-15 minutes on 2 cores)
    python -m benchmarks.bench_flow --t-max 1 2 4 10

1. Wall time of ``dmft.solve`` on the paper's problem (tanh(z1 + He3(z2)), P = 2 ReLU,
   alpha = 3, gradient flow) at S = 1e5 and dt = 0.1 for several t_max (after a warm-up that
   compiles the kernels). The cost of the discrete solves grows like t_max^2 (memory sums over
   the past), so a fit a t_max^2 gives how far t_max reaches in 5 minutes.
2. Discretisation error against the Monte Carlo error: the solutions at dt = 0.1 and dt = 0.05
   (t_max = 2, independent seeds) differ by the discretisation error of dt = 0.1 (second order:
   3/4 of it) plus noise; the largest |difference| / combined SE over M and Q is printed.

The machine's load (``os.getloadavg``) is printed with the results: timings on a shared machine
are noisy.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import dmft

PAPER = dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0)


def timed_solve(t_max: float, dt: float, samples: int, seed: int) -> tuple[float, dmft.Trajectory]:
    prob = dmft.Problem(**PAPER, dynamics="flow", t_max=t_max)
    start = time.perf_counter()
    traj = dmft.solve(prob, samples=samples, seed=seed, dt=dt, progress=False)
    return time.perf_counter() - start, traj


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t-max", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--samples", type=int, default=10**5)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    timed_solve(0.2, 0.1, 2**12, 0)  # compile
    rows = []
    for t_max in args.t_max:
        wall, _ = timed_solve(t_max, 0.1, args.samples, 0)
        rows.append((t_max, wall))
        print(f"flow DMFT, paper's problem, S = {args.samples:.0e}, dt = 0.1, t_max = {t_max:g}: "
              f"{wall:.1f} s", flush=True)
    t = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    coef = float(np.sum(w * t**2) / np.sum(t**4))  # least squares w = coef t_max^2
    print(f"fit wall = {coef:.3g} t_max^2 s: t_max = 10 in {coef * 100:.0f} s; "
          f"5 minutes reach t_max = {np.sqrt(300 / coef):.1f}")
    _, coarse = timed_solve(2.0, 0.1, args.samples, 1)
    _, fine = timed_solve(2.0, 0.05, args.samples, 2)
    fine = fine.at_times(coarse.time)
    worst = 0.0
    for name in ("M", "Q"):
        diff = np.abs(getattr(coarse, name) - getattr(fine, name))
        se = np.hypot(getattr(coarse, name + "_se"), getattr(fine, name + "_se"))
        with np.errstate(invalid="ignore", divide="ignore"):
            worst = max(worst, float(np.nanmax(np.where(se > 0, diff / se, 0.0))))
    print(f"dt = 0.1 vs dt = 0.05 at t_max = 2, S = {args.samples:.0e}: largest |difference| / "
          f"combined SE over M and Q = {worst:.2f} (below ~3: the discretisation error of "
          "dt = 0.1 is below the Monte Carlo error)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
