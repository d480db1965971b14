"""The sweep driver: plan the tasks, submit the missing ones to Dask, store results as they
arrive (the driver is the store's only writer)."""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence

from ..api import METHODS
from ..problem import Problem
from ..trajectory import Trajectory
from ..validation import integer
from .cluster import client_for, distributed, threads_by_host, usable_cores
from .grid import expand_grid
from .keys import canonical
from .options import check_methods, check_options, simulate_plan
from .result import SweepRecord, SweepResult, load_sweep
from .store import Store, write_manifest, write_result
from .tasks import Diverged, Task, combine_runs, execute, plan, with_checkpoints

__all__ = ["sweep"]


def sweep(base_problem: Problem, grid: Mapping[str, Sequence],
          methods: Sequence[str] = tuple(METHODS), solve_kwargs: Mapping | None = None,
          simulate_kwargs: Mapping | None = None, store="sweep.h5", client=None, *,
          onepass_kwargs: Mapping | None = None, seed: int = 0, seeds_per_task: int = 4,
          n_workers: int | None = None, numba_threads: int | None = None,
          progress: bool | None = None,
          callback: Callable[[SweepRecord], None] | None = None,
          checkpoint_dir=None) -> SweepResult:
    """Solve and simulate every point of a grid of Problems on Dask, into a resumable store.

    Seeds, the store and thread counts are described in docs/guide/sweeps.md.

    Parameters
    ----------
    base_problem : Problem
        Fields not in the grid.
    grid : dict of str to list
        Problem field -> non-empty list of distinct values; the sweep is their product
        (e.g. ``{"alpha": [1, 2, 3], "eta": [0.1, 0.2], "schedule": ["full", "cyclic(2)"]}``).
    methods : sequence of {"dmft", "one-pass", "simulate"}
        What to compute at every point (names of :data:`dmft.api.METHODS`; ``"dmft"`` on a
        one-pass schedule is the one-pass theory, as in :func:`dmft.solve`).
    solve_kwargs : dict, optional
        Options of the multi-pass DMFT (``samples``, ``estimator``, ``replicas``, ...; not
        ``seed``).
    simulate_kwargs : dict
        Options of :func:`dmft.simulate`; ``d`` is required, ``seeds`` (number of runs,
        default 8) is split into tasks of ``seeds_per_task`` runs.
    store : str or Path
        HDF5 store (plus ``<store>.journal/`` while results are pending). Results already in
        it are not recomputed.
    client : None, str or distributed.Client
        None: start a local cluster (:func:`dmft.sweeps.local_cluster`) for this call; a
        scheduler address (``"tcp://host:8786"``): connect to it; a ``Client``: use it as is.
    onepass_kwargs : dict, optional
        Options of the one-pass theory.
    seed : int
        Sweep seed; each point's seeds derive from it and the point's problem.
    seeds_per_task : int
        Simulation runs per Dask task (scheduling only: results do not depend on it).
    n_workers, numba_threads : int, optional
        For the local cluster (``client=None``); ``numba_threads`` also overrides the per-task
        thread count on any cluster.
    progress : bool, optional
        tqdm bar over tasks; default when stderr is a terminal.
    callback : callable, optional
        Called in the driver with each :class:`SweepRecord` right after it is stored.
    checkpoint_dir : str or Path, optional
        Directory (shared by the workers) where each multi-pass DMFT point checkpoints its
        solve (``checkpoint=`` of :func:`dmft.solve`, one subdirectory per point named by its
        result key): a long point interrupted with the sweep resumes where it was. Results do
        not depend on it.

    Returns
    -------
    SweepResult
        Read back from the store; ``computed`` counts the (point, method) results computed by
        this call.

    Raises
    ------
    TypeError, ValueError
        Invalid grid, method or options, before anything is submitted (messages name the
        field or option).
    RuntimeError
        A task failed (other than a divergence, which is stored as status "diverged"); the
        results finished before it are kept in the store.

    Examples
    --------
    >>> base = dmft.Problem(target="he3", P=1, T=3)  # doctest: +SKIP
    >>> result = dmft.sweep(base, {"alpha": [2.0, 4.0], "eta": [0.2, 0.4]},
    ...                     methods=("dmft", "simulate"), solve_kwargs={"samples": 10**5},
    ...                     simulate_kwargs={"d": 500, "seeds": 8})  # doctest: +SKIP
    >>> result.array("overlap").shape  # (alpha, eta, method, t, unit)  # doctest: +SKIP
    (2, 2, 2, 3, 1)
    """
    methods = check_methods(methods)
    seed = integer("seed", seed, low=0)
    seeds_per_task = integer("seeds_per_task", seeds_per_task, low=1)
    if numba_threads is not None:
        numba_threads = integer("numba_threads", numba_threads, low=1)
    if n_workers is not None and client is not None:
        raise ValueError(f"n_workers={n_workers!r} applies to the local cluster only "
                         f"(client=None), got client={client!r}")
    coords, points = expand_grid(base_problem, grid)
    solve_opts = check_options("dmft", solve_kwargs, "solve_kwargs") \
        if "dmft" in methods else dict(solve_kwargs or {})
    onepass_opts = check_options("one-pass", onepass_kwargs, "onepass_kwargs") \
        if "one-pass" in methods else dict(onepass_kwargs or {})
    sim_opts, n_runs = simulate_plan(simulate_kwargs) if "simulate" in methods else ({}, 0)
    tasks = plan(points, methods, solve_opts, onepass_opts, sim_opts, n_runs, seed,
                 seeds_per_task)
    if checkpoint_dir is not None:
        with_checkpoints(tasks, checkpoint_dir)
    spec = {
        # the spec is stored as sorted JSON: keep the grid's field order separately
        "base_problem": base_problem.to_dict(), "grid": coords, "grid_fields": list(coords),
        "methods": list(methods),
        "solve_kwargs": solve_opts, "onepass_kwargs": onepass_opts,
        "simulate_kwargs": dict(sim_opts, seeds=n_runs) if "simulate" in methods else {},
        "seed": seed,
    }
    nm = len(methods)
    keys = [[t.key for t in tasks[i:i + nm]] for i in range(0, len(tasks), nm)]
    sweep_id = hashlib.sha256(canonical([spec, keys]).encode()).hexdigest()[:16]

    st = Store(store)
    st.check()
    with st.locked():
        st.write("sweeps", sweep_id, lambda g: write_manifest(g, spec, keys))
        done = {key for (kind, key) in st.index() if kind == "results"}
        todo = [t for t in tasks if t.key not in done]
        try:
            if todo:
                _run(todo, st, client, n_workers, numba_threads, progress, callback)
        finally:
            st.compact()
            st.tidy()
    return load_sweep(st.path, sweep_id, computed=len(todo))


def _run(todo: list[Task], st: Store, client, n_workers, numba_threads, progress,
         callback) -> None:
    """Submit the missing tasks and store each result as it arrives."""
    dist = distributed()
    from tqdm.auto import tqdm

    if n_workers is None and client is None:
        n_workers = max(1, min(usable_cores(), sum(len(t.blocks) for t in todo)))
    show = sys.stderr.isatty() if progress is None else bool(progress)
    with client_for(client, n_workers, numba_threads) as cl:
        threads = threads_by_host(cl)
        token = uuid.uuid4().hex[:8]  # fresh keys: never collide with a cancelled earlier run
        owner: dict[str, tuple[Task, int]] = {}
        futures = []
        for task in todo:
            for b, block in enumerate(task.blocks):
                fut = cl.submit(execute, task.method, task.problem, task.run_options, block,
                                threads, numba_threads, key=f"dmft-sweep-{task.key}-{b}-{token}",
                                pure=False)
                owner[fut.key] = (task, b)
                futures.append(fut)
        pending: dict[str, dict[int, list]] = {}
        since_compaction, main_count = 0, st.main_count()
        bar = tqdm(total=len(futures), desc="sweep", unit="task", disable=not show)
        try:
            for fut in dist.as_completed(futures):
                task, b = owner[fut.key]
                try:
                    outcome = fut.result()
                except Exception as exc:
                    raise RuntimeError(
                        f"sweep task {task.method} at {task.coords} failed: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                fut.release()
                bar.update()
                got = pending.setdefault(task.key, {})
                got[b] = outcome
                if len(got) < len(task.blocks):
                    continue
                del pending[task.key]
                result = _finish(task, [r for i in range(len(task.blocks)) for r in got[i]])
                st.write("results", task.key, lambda g, t=task, r=result: write_result(g, t, r))
                since_compaction += 1
                if st.compaction_due(since_compaction, main_count):
                    st.compact()
                    main_count += since_compaction
                    since_compaction = 0
                if callback is not None:
                    callback(_record(task, result))
        finally:
            bar.close()
            cl.cancel([f for f in futures if not f.done()])


def _finish(task: Task, runs: list) -> Trajectory | Diverged:
    """A task's result from its runs: the earliest divergence, the combined simulation runs,
    or the one theory solution."""
    diverged = [r for r in runs if isinstance(r, Diverged)]
    if diverged:
        return min(diverged, key=lambda r: r.step)
    if task.method == "simulate":
        return combine_runs(task.problem, runs, task.seeds)
    return runs[0]


def _record(task: Task, result: Trajectory | Diverged) -> SweepRecord:
    if isinstance(result, Trajectory):
        return SweepRecord(task.coords, task.method, task.key, "ok", trajectory=result)
    return SweepRecord(task.coords, task.method, task.key, "diverged", step=result.step,
                       message=result.message)
