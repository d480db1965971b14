"""The work of a sweep: one task per (point, method), what a Dask worker runs, and how
single-seed simulation runs combine into one result."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import api
from ..problem import Problem
from ..trajectory import DivergenceError, Trajectory
from .cluster import set_task_threads
from .keys import derive_seed, result_key

__all__ = ["Task", "Diverged", "plan", "execute", "combine_runs"]


@dataclass
class Task:
    """One (point, method) result to compute: one Dask task, or several seed blocks."""

    key: str
    method: str
    index: tuple[int, ...]
    coords: dict
    problem: Problem
    options: dict  # what the result depends on (part of the key; for simulate with 'seeds')
    seeds: list[int]  # the solver seed, or one seed per simulation run
    blocks: list[list[int]] = field(default_factory=list)  # run seeds per Dask task
    run_options: dict = field(default_factory=dict)  # keyword arguments of each solver call


@dataclass
class Diverged:
    """A deterministic failure of one solve or run (stored; not retried on resume)."""

    step: int
    message: str


def plan(points, methods, solve_kwargs: dict, onepass_kwargs: dict, sim_opts: dict,
         n_runs: int, seed: int, seeds_per_task: int) -> list[Task]:
    """One Task per (point, method), in grid order with methods fastest.

    Seeds derive from the sweep seed and the point's problem (docs/guide/sweeps.md, "Seeds");
    a point's theory options are those of the solver :func:`dmft.api.method_for` picks.
    """
    tasks = []
    for index, coords, prob in points:
        pd = prob.to_dict()
        for method in methods:
            if method == "simulate":
                options = dict(sim_opts, seeds=n_runs)
                seeds = [derive_seed(seed, pd, method, i) for i in range(n_runs)]
                blocks = [seeds[i:i + seeds_per_task] for i in range(0, n_runs, seeds_per_task)]
            else:
                onepass = api.method_for(prob, method).name == "one-pass"
                options = dict(onepass_kwargs if onepass else solve_kwargs)
                seeds = [derive_seed(seed, pd, method)]
                blocks = [seeds]
            run_options = dict(sim_opts) if method == "simulate" else options
            key = result_key(method, pd, options, seed)
            tasks.append(Task(key, method, index, coords, prob, options, seeds, blocks,
                              run_options))
    return tasks


def with_checkpoints(tasks: list[Task], directory) -> None:
    """Give each task of the multi-pass DMFT its own checkpoint directory,
    ``directory/<result key>`` (in its call's options only: not part of the result key)."""
    from pathlib import Path

    for task in tasks:
        if task.method != "simulate" and api.method_for(task.problem, task.method).name == "dmft":
            task.run_options = dict(task.run_options,
                                    checkpoint=str(Path(directory).resolve() / task.key))


def execute(method: str, problem: Problem, options: dict, seeds: list[int],
            by_host: dict[str, int] | None, numba_threads: int | None) -> list:
    """Dask task: solve/simulate one point; returns a list of Trajectory or Diverged.

    For the theories one element; for "simulate" one element per seed (one run each).
    """
    set_task_threads(by_host, numba_threads)
    entry = api.method_for(problem, method)
    runs = {"seeds": 1} if method == "simulate" else {}
    out = []
    for s in seeds:
        extra = {k: v for k, v in (("seed", s), ("progress", False)) if entry.accepts(k)}
        try:
            out.append(entry.solver(problem, **runs, **extra, **options))
        except DivergenceError as exc:
            out.append(Diverged(int(exc.step), str(exc)))
    return out


def combine_runs(problem: Problem, runs: list[Trajectory], seeds: list[int]) -> Trajectory:
    """Mean and standard error over single-run simulations (as dmft.simulate over seeds)."""
    stacks = {name: np.concatenate([r.diagnostics[name] for r in runs], axis=0)
              for name in ("M_runs", "Q_runs", "e_train_runs", "e_gen_runs",
                           "e_gen_integration_se")}
    prov = dict(runs[0].provenance)
    prov.update(seeds=len(runs), seed=None, run_seeds=[int(s) for s in seeds],
                wall_time=float(sum(r.provenance.get("wall_time", 0.0) for r in runs)),
                combined_by="dmft.sweep: mean and std(ddof=1)/sqrt(runs) over single-seed runs")
    diagnostics = dict(stacks, run_seeds=np.array(seeds, dtype=np.int64))
    # as in solvers.finite_d: the integration error may be common to the runs, add it
    return Trajectory.from_runs(
        problem, {name: stacks[name + "_runs"] for name in ("M", "Q", "e_train", "e_gen")},
        prov, count="seeds",
        added_variance={"e_gen": np.mean(stacks["e_gen_integration_se"] ** 2, axis=0)},
        diagnostics=diagnostics)
