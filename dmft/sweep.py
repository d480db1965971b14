"""Parameter sweeps on Dask: DMFT, one-pass theory and simulations over a grid of Problems.

A sweep expands a grid (the product of lists of values of any :class:`dmft.Problem` fields) around
a base problem, submits one Dask task per (point, method) -- simulations one task per block of
seeds -- and writes every finished result into an HDF5 store as it arrives. The driver process is
the only writer; workers return results. The table the sweep returns (:class:`SweepResult`) is
rebuilt from the store alone by :func:`load_sweep`.

Seeds
-----
Everything random is keyed by *content*, never by position or arrival order:
``derive_seed(seed, problem.to_dict(), method[, run])`` hashes (SHA-256) the sweep seed, the
point's full problem description and the method (and, for simulations, the run index) into an
integer seed. The multi-pass DMFT gets ``solve(problem, seed=derive_seed(seed, pd, "dmft"))``;
simulation run i is ``simulate(problem, seeds=1, seed=derive_seed(seed, pd, "simulate", i))`` and
a point's simulation is the mean and standard error over its runs (runs are grouped into tasks of
``seeds_per_task``, which only affects scheduling, not results). So a point's result does not
depend on the grid it is part of, the order of the grid, the cluster, the number of workers, the
numba thread count or the block size; a sweep over the same point in two grids gives bitwise
the same numbers. One caveat, for simulations only: they multiply matrices with BLAS, whose
summation order can depend on its own thread count (OpenBLAS does), so their last bits (a few
1e-17 in M, measured) are reproducible for a fixed number of BLAS threads per worker, e.g. 1 in
the default local cluster on 2 cores, whatever the number of workers.

Store: a journal of one file per result, compacted into one HDF5 file
--------------------------------------------------------------------
``store="sweep.h5"`` means the file ``sweep.h5`` plus, while results are pending, a directory
``sweep.h5.journal/``. Each finished (point, method) result is written as its own small HDF5
file ``sweep.h5.journal/r-<key>.h5`` with :func:`dmft.io.atomic_h5file` (an unnamed temporary file,
fsync, then a rename), so a result appears complete or not at all, whatever kills the driver, and
writing it costs O(size of that result). The journal is merged into ``sweep.h5`` ("compaction")
by writing a new file with the old content plus the journal through ``atomic_h5file`` and
renaming it onto ``sweep.h5``; only then are the merged journal files deleted (a kill in
between leaves duplicates, which are identical and ignored). Compaction runs when the journal
holds at least a quarter as many results as the main file (and at least ``_COMPACT_MIN``) and
when the sweep ends, fails or is interrupted, so the total copying is O(number of results)
(geometric growth), whereas rewriting the whole file for every result would be quadratic. At
every instant the store = main file + journal is a valid set of complete results, and when a
sweep ends cleanly the store is one self-contained HDF5 file. The alternative "one file per
result plus an index" is what the journal is; compaction removes its drawback (thousands of
loose files to move around). One driver per store at a time: the journal directory is locked
(``flock``) during a sweep.

Layout (main file and journal files alike)::

    /                       attrs format="dmft.Sweep", format_version
    /results/<key>          one (point, method) result: a Trajectory written by
                            dmft.io.write_group (problem, provenance, M, Q, ...) plus attrs
                            key, method, status ("ok" | "diverged"), coords (JSON), options
                            (JSON), seeds (JSON); a diverged result stores problem, step and message
    /sweeps/<id>            one sweep's manifest: attrs spec (JSON: grid, methods, options,
                            seed, base problem), keys (JSON, grid shape x methods), created

``key`` is a hash of (method, problem, options, sweep seed): rerunning a sweep computes only the
keys that are missing; a grown grid adds keys and never touches finished ones; changed options
(e.g. more samples) are new keys. User-defined targets and activations enter the key (and the
stored problem) by name only: give different functions different names. :func:`load_sweep` may
run while a sweep writes the store (it reads the journal before the main file and retries if a
compaction moved a file under it).

Threads
-------
numba threads are set per task: every task calls ``numba.set_num_threads(n)`` (per calling
thread in numba, so per task; the DMFT kernels, the Gaussian-integration thread pools and the
simulator's data generation all follow ``numba.get_num_threads()``) with n = ``numba_threads=``
if given, else the worker's ``DMFT_NUMBA_THREADS`` (set by :func:`local_cluster`), else the cores
of the worker's host divided by the task slots on that host (worker threads of all workers
there, from the scheduler) -- so workers x threads <= cores on every host. The default local
cluster has one single-threaded worker process per core (at most one per task), hence n = 1 on
2 cores; its BLAS/OpenMP threads are set to n before the worker processes start. DMFT and
one-pass results do not depend on any of these counts (simulations: see the BLAS caveat above).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .io import atomic_h5file, read_group, write_group
from .problem import Problem
from .schedules import OnePass
from .trajectory import DivergenceError, Trajectory

__all__ = [
    "sweep",
    "load_sweep",
    "list_sweeps",
    "SweepResult",
    "SweepRecord",
    "derive_seed",
    "expand_grid",
    "local_cluster",
    "preserved_environ",
    "load_config",
    "format_report",
    "add_subcommands",
    "METHODS",
]

METHODS = ("dmft", "one-pass", "simulate")
STORE_FORMAT = "dmft.Sweep"
STORE_FORMAT_VERSION = 1
_KEY_VERSION = 1  # bump when the meaning of a result key changes
_KINDS = ("results", "sweeps")
# journal size (results) below which no compaction happens before the end of the sweep
_COMPACT_MIN = 32
# |C_1| below this is zero (quadrature error of dmft.first_hermite is < 1e-10), e.g. He3
_C1_ZERO = 1e-8
# environment variable of a worker process giving numba threads per task (see local_cluster)
_THREADS_ENV = "DMFT_NUMBA_THREADS"
_BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# sweep options that the sweep itself controls (per method)
_RESERVED = {"dmft": ("seed", "progress"), "one-pass": ("seed", "progress"),
             "simulate": ("seed", "seeds", "progress")}


# =============================================================================== seeds and keys
def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {obj!r} ({type(obj).__name__}) in a sweep key")


def _canonical(obj) -> str:
    """Deterministic JSON (sorted keys, exact float repr) used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def derive_seed(seed: int, *parts: Any) -> int:
    """Integer seed in [0, 2^63) from a sweep seed and JSON-encodable parts (SHA-256).

    Parameters
    ----------
    seed : int
        The sweep seed (>= 0).
    *parts
        E.g. ``problem.to_dict(), "simulate", run_index``.

    Returns
    -------
    int
        The same for the same inputs on every machine and Python version.
    """
    digest = hashlib.sha256(_canonical([int(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _result_key(method: str, problem_dict: dict, options: dict, seed: int) -> str:
    payload = _canonical([_KEY_VERSION, method, problem_dict, options, int(seed)])
    return method.replace("-", "") + "-" + hashlib.sha256(payload.encode()).hexdigest()[:24]


# =============================================================================== grid
_FIELDS = tuple(f.name for f in dataclasses.fields(Problem) if f.init)


def _coordinate(problem: Problem, name: str):
    """The normalised, JSON-able value of field ``name`` (target by name, schedule as text)."""
    return problem.to_dict()[name]


def _label(value) -> Any:
    """A hashable, printable coordinate label (lists become JSON text)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def expand_grid(base_problem: Problem, grid: Mapping[str, Sequence]) -> tuple[
        dict[str, list], list[tuple[tuple[int, ...], dict, Problem]]]:
    """Validate a grid and expand it into Problems (C order: the last field varies fastest).

    Parameters
    ----------
    base_problem : Problem
        Fields not in the grid are taken from it.
    grid : mapping of str to sequence
        Problem field name -> non-empty list of distinct values, e.g.
        ``{"alpha": [1.0, 2.0], "eta": [0.1, 0.2]}``. Allowed fields: those of ``Problem``.

    Returns
    -------
    coords : dict of str to list
        Normalised coordinate values per field (``Problem.to_dict`` form), in grid order.
    points : list of (index, coords, Problem)
        ``index`` is a tuple of positions, one per grid field.

    Raises
    ------
    TypeError, ValueError
        Naming the field: unknown field, not a list, empty list, duplicate or invalid value,
        or a combination of values that makes an invalid Problem.
    """
    if not isinstance(base_problem, Problem):
        raise TypeError(f"base_problem must be a dmft.Problem, got {type(base_problem).__name__}")
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of Problem field -> list of values, got {grid!r}")
    coords: dict[str, list] = {}
    for name, values in grid.items():
        if name not in _FIELDS:
            raise ValueError(f"grid field {name!r} is not a Problem field; allowed: {_FIELDS}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(
                values, (Sequence, np.ndarray)):
            raise TypeError(
                f"grid[{name!r}] must be a list of values, got {values!r} "
                f"({type(values).__name__}); write [{values!r}] for a single value"
            )
        if len(values) == 0:
            raise ValueError(f"grid[{name!r}] is empty; give at least one value")
        normalised = []
        for value in values:
            try:
                prob = base_problem.replace(**{name: value})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"grid[{name!r}] has an invalid value {value!r}: {exc}") from None
            coord = _coordinate(prob, name)
            if coord in normalised:
                raise ValueError(f"grid[{name!r}] has the value {value!r} twice")
            normalised.append(coord)
        coords[name] = normalised
    names = list(coords)
    raw = [list(grid[n]) for n in names]
    points = []
    for index in itertools.product(*(range(len(v)) for v in raw)):
        changes = {n: raw[i][j] for i, (n, j) in enumerate(zip(names, index, strict=True))}
        try:
            prob = base_problem.replace(**changes)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"grid point {changes} is not a valid Problem: {exc}") from None
        points.append((index, {n: coords[n][j] for n, j in zip(names, index, strict=True)}, prob))
    return coords, points


# =============================================================================== options
def _solver_function(method: str) -> Callable:
    if method == "dmft":
        from solvers.multipass import solve_multipass

        return solve_multipass
    if method == "one-pass":
        from solvers.onepass import solve_onepass

        return solve_onepass
    from solvers.finite_d import simulate_finite_d

    return simulate_finite_d


def _accepts(fn: Callable, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_options(method: str, options: Mapping | None, argname: str) -> dict:
    """Validate solver keyword names against the solver's signature (values are its business)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{argname} must be a dict of keyword arguments, got {options!r}")
    options = dict(options)
    for key in _RESERVED[method]:
        if key in options:
            what = "the sweep seed (seed=...)" if key == "seed" else "the sweep"
            if key == "seeds":
                what = "the sweep (simulate_kwargs['seeds'] is read, then runs are split)"
            raise ValueError(f"{argname} must not contain {key!r}: it is set by {what}")
    fn = _solver_function(method)
    params = inspect.signature(fn).parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key in options:
        if key == "problem" or (key not in params and not var_kw):
            allowed = sorted(set(params) - {"problem", *_RESERVED[method]})
            raise ValueError(f"{argname} has an unknown option {key!r}; allowed: {allowed}")
    return options


def _simulate_plan(simulate_kwargs: Mapping | None) -> tuple[dict, int]:
    """Split simulate_kwargs into per-run options (with d) and the number of runs."""
    opts = dict(simulate_kwargs or {})
    if "d" not in opts:
        raise ValueError("simulate_kwargs must give the input dimension 'd' for method 'simulate'")
    seeds = opts.pop("seeds", 8)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"simulate_kwargs['seeds'] must be an integer >= 1, got {seeds!r}")
    d = opts["d"]
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"simulate_kwargs['d'] must be an integer >= 1, got {d!r}")
    return _check_options("simulate", opts, "simulate_kwargs"), int(seeds)


# =============================================================================== tasks
@dataclass
class _Task:
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


def _plan(points, methods, solve_kwargs, onepass_kwargs, sim_opts, n_runs, seed,
          seeds_per_task) -> list[_Task]:
    tasks = []
    for index, coords, prob in points:
        pd = prob.to_dict()
        for method in methods:
            if method == "simulate":
                options = dict(sim_opts, seeds=n_runs)
                seeds = [derive_seed(seed, pd, method, i) for i in range(n_runs)]
                blocks = [seeds[i:i + seeds_per_task] for i in range(0, n_runs, seeds_per_task)]
            else:
                # dmft.solve answers a one-pass schedule with the one-pass theory (SPEC 6)
                onepass = method == "one-pass" or isinstance(prob.schedule, OnePass)
                options = dict(onepass_kwargs if onepass else solve_kwargs)
                seeds = [derive_seed(seed, pd, method)]
                blocks = [seeds]
            run_options = dict(sim_opts) if method == "simulate" else options
            key = _result_key(method, pd, options, seed)
            tasks.append(_Task(key, method, index, coords, prob, options, seeds, blocks,
                               run_options))
    return tasks


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _host(address: str) -> str:
    from distributed.comm import get_address_host

    return get_address_host(address)


def _threads_by_host(client) -> dict[str, int]:
    """numba threads per task on each host: cores // (worker threads of all workers there)."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        cores = client.run(_usable_cores) if workers else {}
    except Exception as exc:  # e.g. a worker died meanwhile: tasks fall back to their own count
        warnings.warn(f"could not survey the workers' cores ({exc}); each task uses "
                      "cores // worker threads of its own worker", stacklevel=2)
        return {}
    slots: dict[str, int] = {}
    host_cores: dict[str, int] = {}
    for addr, info in workers.items():
        host = info.get("host") or _host(addr)
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        if addr in cores:
            host_cores[host] = max(host_cores.get(host, 1), int(cores[addr]))
    return {h: max(1, host_cores.get(h, 1) // max(1, s)) for h, s in slots.items()}


def _task_threads(threads_by_host: dict[str, int] | None, numba_threads: int | None
                  ) -> int | None:
    """numba threads for a task on this worker: sweep(numba_threads=...), else the worker's
    DMFT_NUMBA_THREADS (local_cluster), else cores // task slots of its host, else None (not
    on a Dask worker)."""
    if numba_threads is not None:
        return int(numba_threads)
    if os.environ.get(_THREADS_ENV, "").isdigit():
        return int(os.environ[_THREADS_ENV])
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    n = (threads_by_host or {}).get(_host(worker.address))
    if n is None:  # a worker that joined after the sweep started
        n = max(1, _usable_cores() // max(1, int(worker.state.nthreads)))
    return n


def _set_task_threads(threads_by_host: dict[str, int] | None, numba_threads: int | None) -> None:
    """Inside a task: set numba's thread count, which is per calling thread in numba."""
    import numba

    n = _task_threads(threads_by_host, numba_threads)
    if n is not None:
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


@dataclass
class _Diverged:
    """A deterministic failure of one solve or run (stored; not retried on resume)."""

    step: int
    message: str


def _execute(method: str, problem: Problem, options: dict, seeds: list[int],
             threads_by_host: dict[str, int] | None, numba_threads: int | None) -> list:
    """Dask task: solve/simulate one point; returns a list of Trajectory or _Diverged.

    For "dmft" and "one-pass" one element; for "simulate" one element per seed (one run each).
    """
    _set_task_threads(threads_by_host, numba_threads)
    from . import api

    out = []
    for s in seeds:
        try:
            if method == "simulate":
                out.append(api.simulate(problem, seeds=1, seed=s, progress=False, **options))
            else:
                onepass = method == "one-pass" or isinstance(problem.schedule, OnePass)
                fn = _solver_function("one-pass" if onepass else "dmft")
                extra = {k: v for k, v in (("seed", s), ("progress", False)) if _accepts(fn, k)}
                out.append(api.solve(problem, method=method, **extra, **options))
        except DivergenceError as exc:
            out.append(_Diverged(int(exc.step), str(exc)))
    return out


def _combine_runs(problem: Problem, runs: list[Trajectory], seeds: list[int]) -> Trajectory:
    """Mean and standard error over single-run simulations (as dmft.simulate over seeds)."""
    stacks = {name: np.concatenate([r.diagnostics[name] for r in runs], axis=0)
              for name in ("M_runs", "Q_runs", "e_train_runs", "e_gen_runs",
                           "e_gen_integration_se")}
    n = len(runs)

    def mean_se(x):
        mean = x.mean(axis=0)
        if n < 2:
            return mean, np.full(mean.shape, np.nan)
        return mean, x.std(axis=0, ddof=1) / math.sqrt(n)

    M, M_se = mean_se(stacks["M_runs"])
    Q, Q_se = mean_se(stacks["Q_runs"])
    e_train, e_train_se = mean_se(stacks["e_train_runs"])
    e_gen, e_gen_se = mean_se(stacks["e_gen_runs"])
    # as in solvers.finite_d: the integration error may be common to the runs, add it
    e_gen_se = np.sqrt(e_gen_se**2 + np.mean(stacks["e_gen_integration_se"] ** 2, axis=0))
    prov = dict(runs[0].provenance)
    prov.update(seeds=n, seed=None, run_seeds=[int(s) for s in seeds],
                wall_time=float(sum(r.provenance.get("wall_time", 0.0) for r in runs)),
                combined_by="dmft.sweep: mean and std(ddof=1)/sqrt(runs) over single-seed runs")
    diagnostics = dict(stacks, run_seeds=np.array(seeds, dtype=np.int64))
    return Trajectory(problem=problem, M=M, Q=Q, e_train=e_train, e_gen=e_gen, M_se=M_se,
                      Q_se=Q_se, e_train_se=e_train_se, e_gen_se=e_gen_se, provenance=prov,
                      diagnostics=diagnostics)


# =============================================================================== store
class _Store:
    """The main HDF5 file plus its journal directory (see the module docstring)."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self.journal = self.path.with_name(self.path.name + ".journal")

    # ---------------------------------------------------------------- reading
    def check(self) -> None:
        """Raise if the main file exists but is not a sweep store (never overwrite it)."""
        if not self.path.exists():
            return
        try:
            with h5py.File(self.path, "r") as f:
                fmt = f.attrs.get("format")
        except OSError as exc:
            raise ValueError(f"store {str(self.path)!r} exists and is not an HDF5 file: {exc}") \
                from None
        if fmt != STORE_FORMAT:
            raise ValueError(
                f"store {str(self.path)!r} exists and is not a dmft sweep store "
                f"(format {fmt!r}); choose another path"
            )

    def journal_files(self) -> list[Path]:
        if not self.journal.is_dir():
            return []
        # names starting with '.' are temporary files of an unfinished write
        return sorted(p for p in self.journal.glob("*.h5") if not p.name.startswith("."))

    def index(self) -> dict[tuple[str, str], Path]:
        """(kind, key) -> file holding it; journal manifests override the main file's.

        The journal is read before the main file: a compaction running meanwhile (another
        process) only moves journal entries into a newer main file, so nothing is missed.
        """
        out: dict[tuple[str, str], Path] = {}
        for part in self.journal_files():
            try:
                with h5py.File(part, "r") as f:
                    for kind in _KINDS:
                        for key in f.get(kind, {}):
                            out[(kind, key)] = part
            except FileNotFoundError:  # merged into the main file meanwhile
                continue
            except OSError as exc:  # cannot happen with atomic writes; never fatal
                warnings.warn(f"ignoring unreadable journal file {part}: {exc}", stacklevel=2)
        if self.path.exists():
            with h5py.File(self.path, "r") as f:
                for kind in _KINDS:
                    for key in f.get(kind, {}):
                        out.setdefault((kind, key), self.path)
        return out

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the journal directory (one driver per store)."""
        self.journal.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.journal, os.O_RDONLY)
        acquired = False
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # not POSIX: no lock
                pass
            except BlockingIOError:
                raise RuntimeError(
                    f"store {str(self.path)!r} is being written by another sweep (its journal "
                    f"{str(self.journal)!r} is locked)"
                ) from None
            acquired = True
            yield
        finally:
            if acquired:  # empty after a final compaction: tidy up (fails if not empty)
                with contextlib.suppress(OSError):
                    self.journal.rmdir()
            os.close(fd)

    def write(self, kind: str, key: str, fill: Callable[[h5py.Group], None]) -> None:
        """Write one entry atomically as its own journal file."""
        with atomic_h5file(self.journal / f"{kind[0]}-{key}.h5") as f:
            _stamp(f)
            fill(f.create_group(f"{kind}/{key}"))

    def compact(self) -> None:
        """Merge the journal into the main file (new file + rename), then drop the journal."""
        parts = self.journal_files()
        if not parts:
            return
        merged = []
        with atomic_h5file(self.path) as new:
            _stamp(new)
            groups = {kind: new.create_group(kind) for kind in _KINDS}
            # journal first: its manifests are newer than the main file's
            for part in parts:
                try:
                    src = h5py.File(part, "r")
                except OSError as exc:
                    warnings.warn(f"ignoring unreadable journal file {part}: {exc}", stacklevel=2)
                    continue
                with src:
                    for kind in _KINDS:
                        for key in src.get(kind, {}):
                            if key not in groups[kind]:
                                src.copy(src[kind][key], groups[kind], name=key)
                merged.append(part)
            if self.path.exists():
                with h5py.File(self.path, "r") as old:
                    for kind in _KINDS:
                        for key in old.get(kind, {}):
                            if key not in groups[kind]:
                                old.copy(old[kind][key], groups[kind], name=key)
        for part in merged:
            part.unlink(missing_ok=True)

    def tidy(self) -> None:
        """Remove stale temporary files of killed writes (only under the lock, journal empty)."""
        if self.journal.is_dir() and not self.journal_files():
            for leftover in self.journal.iterdir():
                if leftover.name.startswith("."):
                    with contextlib.suppress(OSError):
                        leftover.unlink()

    def main_count(self) -> int:
        if not self.path.exists():
            return 0
        with h5py.File(self.path, "r") as f:
            return len(f.get("results", {}))


def _stamp(f: h5py.File) -> None:
    f.attrs["format"] = STORE_FORMAT
    f.attrs["format_version"] = STORE_FORMAT_VERSION


def _write_result(group: h5py.Group, task: _Task, outcome: Trajectory | _Diverged) -> None:
    if isinstance(outcome, Trajectory):
        write_group(group, outcome)
        group.attrs["status"] = "ok"
    else:
        group.attrs["problem"] = json.dumps(task.problem.to_dict())
        group.attrs["provenance"] = json.dumps({"method": task.method})
        group.attrs["status"] = "diverged"
        group.attrs["step"] = outcome.step
        group.attrs["message"] = outcome.message
    group.attrs["key"] = task.key
    group.attrs["method"] = task.method
    group.attrs["coords"] = json.dumps(task.coords)
    group.attrs["options"] = _canonical(task.options)
    group.attrs["seeds"] = json.dumps(task.seeds)


# =============================================================================== results
@dataclass
class SweepRecord:
    """One (point, method) cell of a sweep.

    Attributes
    ----------
    coords : dict
        Grid field -> normalised value at this point.
    method : str
    key : str
        Result key in the store.
    status : {"ok", "diverged", "missing"}
    trajectory : Trajectory or None
        The result when ``status == "ok"``.
    step : int or None
        Step at which the solver diverged (``status == "diverged"``).
    message : str
    """

    coords: dict
    method: str
    key: str
    status: str
    trajectory: Trajectory | None = None
    step: int | None = None
    message: str = ""


def _read_record(group: h5py.Group, coords: dict, method: str, key: str, target,
                 activation) -> SweepRecord:
    status = str(group.attrs.get("status", "ok"))
    if status == "ok":
        traj = read_group(group, target=target, activation=activation)
        return SweepRecord(coords, method, key, "ok", trajectory=traj)
    return SweepRecord(coords, method, key, status, step=int(group.attrs.get("step", -1)),
                       message=str(group.attrs.get("message", "")))


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _overlap_direction(problem: Problem) -> np.ndarray | None:
    """C_1 / |C_1| (SPEC 2); e_1 when C_1 = 0 and K = 1; None when C_1 = 0 and K > 1."""
    from . import gaussian

    c1 = np.asarray(gaussian.first_hermite(problem.target), dtype=np.float64)
    norm = float(np.linalg.norm(c1))
    if norm > _C1_ZERO:
        return c1 / norm
    return np.ones(1) if problem.K == 1 else None


# observables of a SweepResult -> number of axes per cell (time first)
_OBSERVABLE_NDIM = {"overlap": 2, "orthogonal_overlap": 2, "e_gen": 1, "e_train": 1, "M": 3,
                    "Q": 3}


class SweepResult:
    """The table of a sweep: grid coordinates x methods, with each cell's trajectory.

    Attributes
    ----------
    coords : dict of str to list
        Grid field -> normalised coordinate values (``Problem.to_dict`` form), in grid order.
    methods : tuple of str
    shape : tuple of int
        Grid shape, one entry per field.
    records : list of SweepRecord
        All cells, C order over the grid, methods fastest.
    status : ndarray of str, shape (*shape, n_methods)
        "ok", "diverged" or "missing".
    store : Path
    sweep_id : str
    computed : int
        Results computed by the :func:`sweep` call that returned this (0 when loaded).
    spec : dict
        The sweep's description as stored (grid, methods, options, seed, base problem).

    Observables (:meth:`array`, :meth:`to_xarray`, :meth:`to_records`): ``overlap`` (M along
    C_1/|C_1|, per hidden unit; along e_1 for K = 1 targets with C_1 = 0 such as He3; NaN for
    K > 1 targets with C_1 = 0), ``orthogonal_overlap`` (norm of M in the orthogonal complement
    of C_1; the norm of M when C_1 = 0), ``e_gen``, ``e_train``, ``M``, each with ``_se``.
    Arrays are padded with NaN when T, P or K vary over the grid; missing and diverged cells are
    NaN.
    """

    def __init__(self, coords, methods, records, store, sweep_id, spec, computed=0) -> None:
        self.coords = {k: list(v) for k, v in coords.items()}
        self.methods = tuple(methods)
        self.records = list(records)
        self.store = Path(store)
        self.sweep_id = sweep_id
        self.spec = spec
        self.computed = int(computed)
        self.shape = tuple(len(v) for v in self.coords.values())
        self._directions: dict[str, np.ndarray | None] = {}

    # ------------------------------------------------------------------ cells
    @classmethod
    def from_store(cls, store, sweep: str | None = None, **kw) -> SweepResult:
        """Same as :func:`load_sweep`."""
        return load_sweep(store, sweep, **kw)

    def _cells(self) -> Iterator[tuple[tuple[int, ...], SweepRecord]]:
        nm = len(self.methods)
        for i, rec in enumerate(self.records):
            yield (*np.unravel_index(i // nm, self.shape), i % nm), rec

    @property
    def status(self) -> np.ndarray:
        out = np.array([r.status for r in self.records], dtype=object)
        return out.reshape(*self.shape, len(self.methods)).astype(str)

    def count(self, status: str = "ok") -> int:
        """Number of cells with the given status."""
        return sum(r.status == status for r in self.records)

    def record(self, method: str, **coords) -> SweepRecord:
        """The cell at the given coordinates (every grid field) for ``method``."""
        if method not in self.methods:
            raise ValueError(f"method={method!r} is not in this sweep; it has {self.methods}")
        if set(coords) != set(self.coords):
            raise ValueError(f"give every grid field {list(self.coords)}, got {sorted(coords)}")
        flat = 0
        for name, values in self.coords.items():
            want = coords[name]
            forms = [want, str(want)] + ([np.asarray(want).tolist()]
                                         if isinstance(want, np.ndarray) else [])
            matches = [i for i, v in enumerate(values)
                       if any(_same(v, w) or _same(_label(v), w) for w in forms)]
            if not matches:
                raise ValueError(f"{name}={want!r} is not in the grid; values: {values}")
            flat = flat * len(values) + matches[0]
        return self.records[flat * len(self.methods) + self.methods.index(method)]

    def trajectory(self, method: str, **coords) -> Trajectory | None:
        """The trajectory at the given coordinates, or None if missing or diverged."""
        return self.record(method, **coords).trajectory

    # ------------------------------------------------------------------ observables
    def _direction(self, problem: Problem) -> np.ndarray | None:
        name = problem.target.name
        if name not in self._directions:
            self._directions[name] = _overlap_direction(problem)
        return self._directions[name]

    def _values(self, traj: Trajectory, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name in ("overlap", "orthogonal_overlap"):
            u = self._direction(traj.problem)
            if u is None:
                if name == "overlap":
                    nan = np.full((traj.T, traj.problem.P), np.nan)
                    return nan, nan
                norm = np.linalg.norm(traj.M, axis=-1)
                safe = np.where(norm > 0, norm, 1.0)
                se = np.sqrt(np.sum((traj.M / safe[..., None]) ** 2 * traj.M_se**2, axis=-1))
                return norm, se
            fn = traj.overlap_along if name == "overlap" else traj.orthogonal_overlap
            return fn(u, return_se=True)
        if name in ("M", "Q", "e_gen", "e_train"):
            return getattr(traj, name), getattr(traj, name + "_se")
        raise ValueError(f"observable {name!r} is not known; allowed: {list(_OBSERVABLE_NDIM)}")

    def array(self, name: str, return_se: bool = False):
        """One observable over the whole sweep, NaN-padded.

        Parameters
        ----------
        name : {"overlap", "orthogonal_overlap", "e_gen", "e_train", "M", "Q"}
        return_se : bool
            Also return the standard errors (same shape).

        Returns
        -------
        ndarray
            Shape (*shape, n_methods, T) for e_gen/e_train, (*shape, n_methods, T, P) for the
            overlaps, (*shape, n_methods, T, P, K) for M, (*shape, n_methods, T, P, P) for Q,
            with T, P, K the largest over the grid.
        """
        ndim = _OBSERVABLE_NDIM.get(name)
        if ndim is None:
            raise ValueError(f"observable {name!r} is not known; allowed: "
                             f"{list(_OBSERVABLE_NDIM)}")
        ok = [(idx, r.trajectory) for idx, r in self._cells() if r.status == "ok"]
        shapes = [self._values(t, name)[0].shape for _, t in ok] or [(0,) * ndim]
        tail = tuple(max(s[i] for s in shapes) for i in range(len(shapes[0])))
        val = np.full((*self.shape, len(self.methods), *tail), np.nan)
        err = np.full_like(val, np.nan)
        for idx, traj in ok:
            v, e = self._values(traj, name)
            sl = idx + tuple(slice(0, n) for n in v.shape)
            val[sl], err[sl] = v, e
        return (val, err) if return_se else val

    def to_xarray(self, observables: Sequence[str] = ("overlap", "orthogonal_overlap",
                                                      "e_gen", "e_train", "M")):
        """An ``xarray.Dataset`` with dims (*grid fields, "solver", "t", "unit", "k").

        The method axis is called ``"solver"`` (values "dmft", "one-pass", "simulate") because
        ``Dataset.sel`` has a ``method=`` keyword of its own. Each observable comes with
        ``<name>_se``; ``status`` (*grid, solver) says which cells are "ok", "diverged" or
        "missing". Coordinates that are lists (e.g. ``a``) are JSON text.
        """
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install xarray") from None
        dims_of = {"e_gen": ("t",), "e_train": ("t",), "overlap": ("t", "unit"),
                   "orthogonal_overlap": ("t", "unit"), "M": ("t", "unit", "k"),
                   "Q": ("t", "unit", "unit_b")}
        grid_dims = tuple(self.coords)
        data = {}
        for name in observables:
            if name not in dims_of:
                raise ValueError(f"observable {name!r} is not known; allowed: {list(dims_of)}")
            val, err = self.array(name, return_se=True)
            dims = (*grid_dims, "solver", *dims_of[name])
            data[name] = (dims, val)
            data[name + "_se"] = (dims, err)
        data["status"] = ((*grid_dims, "solver"), self.status)
        coords = {n: [_label(v) for v in vals] for n, vals in self.coords.items()}
        coords["solver"] = list(self.methods)
        ds = xr.Dataset(data, coords=coords)
        if "t" in ds.dims:
            ds = ds.assign_coords(t=np.arange(ds.sizes["t"]))
        ds.attrs.update(store=str(self.store), sweep_id=self.sweep_id,
                        spec=json.dumps(self.spec))
        return ds

    def to_records(self, observables: Sequence[str] = ("overlap", "orthogonal_overlap",
                                                       "e_gen", "e_train")) -> list[dict]:
        """A flat table: one dict per (point, method, t, unit) with values and ``_se``.

        Missing and diverged cells give one row each, with ``status`` and no values. Suitable
        for ``pandas.DataFrame(result.to_records())``.
        """
        rows = []
        for _, rec in self._cells():
            base = {**{k: _label(v) for k, v in rec.coords.items()}, "method": rec.method,
                    "status": rec.status}
            if rec.status != "ok":
                rows.append(base)
                continue
            traj = rec.trajectory
            vals = {name: self._values(traj, name) for name in observables}
            for t in range(traj.T):
                for j in range(traj.problem.P):
                    row = dict(base, t=t, unit=j)
                    for name, (v, e) in vals.items():
                        row[name] = float(v[t] if v.ndim == 1 else v[t, j])
                        row[name + "_se"] = float(e[t] if e.ndim == 1 else e[t, j])
                    rows.append(row)
        return rows

    def __repr__(self) -> str:
        grid = ", ".join(f"{k}[{len(v)}]" for k, v in self.coords.items())
        counts = {s: self.count(s) for s in ("ok", "diverged", "missing")}
        return (f"SweepResult({grid}; methods={self.methods}; ok={counts['ok']}, "
                f"diverged={counts['diverged']}, missing={counts['missing']}; "
                f"store={str(self.store)!r})")


def list_sweeps(store) -> list[dict]:
    """The sweeps recorded in a store, oldest first: id, created (Unix time), grid, methods."""
    st = _Store(store)
    st.check()
    out = []
    for (kind, key), path in st.index().items():
        if kind != "sweeps":
            continue
        with h5py.File(path, "r") as f:
            attrs = f["sweeps"][key].attrs
            spec = json.loads(attrs["spec"])
            grid = {name: spec["grid"][name] for name in spec["grid_fields"]}
            out.append({"id": key, "created": float(attrs["created"]), "grid": grid,
                        "methods": spec["methods"]})
    return sorted(out, key=lambda s: s["created"])


def load_sweep(store, sweep: str | None = None, *, target=None, activation=None,
               computed: int = 0) -> SweepResult:
    """Rebuild a sweep's table from its store alone (main file and journal).

    Parameters
    ----------
    store : str or Path
        The ``store=`` of :func:`sweep`.
    sweep : str, optional
        Sweep id (or a unique prefix) from :func:`list_sweeps`; default the latest.
    target, activation : optional
        Needed only for user-defined targets or activations (stored by name).
    computed : int
        Stored on the result as ``computed`` (used by :func:`sweep`).

    Returns
    -------
    SweepResult
        Cells not (yet) in the store have status "missing".
    """
    for attempt in range(3):
        try:
            return _load_sweep(store, sweep, target, activation, computed)
        except (FileNotFoundError, KeyError):
            # a sweep writing this store compacted its journal while we read it: read again
            if attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _load_sweep(store, sweep, target, activation, computed) -> SweepResult:
    st = _Store(store)
    st.check()
    index = st.index()
    sweeps = list_sweeps(store)
    if not sweeps:
        raise ValueError(f"store {str(st.path)!r} holds no sweep (nothing was written yet)")
    if sweep is None:
        sweep_id = sweeps[-1]["id"]
    else:
        found = [s["id"] for s in sweeps if s["id"].startswith(str(sweep))]
        if len(found) != 1:
            raise ValueError(
                f"sweep={sweep!r} matches {len(found)} sweeps in {str(st.path)!r}; "
                f"ids: {[s['id'] for s in sweeps]}"
            )
        sweep_id = found[0]
    with h5py.File(index[("sweeps", sweep_id)], "r") as f:
        attrs = f["sweeps"][sweep_id].attrs
        spec = json.loads(attrs["spec"])
        keys = json.loads(attrs["keys"])
    coords = {name: spec["grid"][name] for name in spec["grid_fields"]}
    methods = spec["methods"]
    names = list(coords)
    records = []
    open_files: dict[Path, h5py.File] = {}
    try:
        for flat, cell_keys in enumerate(keys):
            idx = np.unravel_index(flat, tuple(len(v) for v in coords.values())) if names else ()
            point = {n: coords[n][i] for n, i in zip(names, idx, strict=True)}
            for method, key in zip(methods, cell_keys, strict=True):
                path = index.get(("results", key))
                if path is None:
                    records.append(SweepRecord(point, method, key, "missing"))
                    continue
                if path not in open_files:
                    open_files[path] = h5py.File(path, "r")
                group = open_files[path]["results"][key]
                records.append(_read_record(group, point, method, key, target, activation))
    finally:
        for f in open_files.values():
            f.close()
    return SweepResult(coords, methods, records, st.path, sweep_id, spec, computed=computed)


# =============================================================================== cluster
def local_cluster(n_workers: int | None = None, numba_threads: int | None = None, **kwargs):
    """A ``distributed.LocalCluster`` of single-threaded worker processes sized for this machine.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default one per usable core.
    numba_threads : int, optional
        numba and BLAS threads per worker; default ``max(1, cores // n_workers)``, so that
        workers x threads <= cores. BLAS/OpenMP: ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``
        and ``MKL_NUM_THREADS`` in dask's ``distributed.nanny.pre-spawn-environ`` (set before
        the worker process starts; dask sets them to 1 by default). numba: every sweep task
        calls ``numba.set_num_threads`` with the count in the worker's ``DMFT_NUMBA_THREADS``.
        ``NUMBA_NUM_THREADS`` is deliberately not set: dask can only set variables after the
        worker started (``env=``) or in this process too (pre-spawn), and numba raises at the
        next compilation when that variable changes after its threads were launched.
    **kwargs
        Passed to ``LocalCluster`` (e.g. ``memory_limit``, ``dashboard_address``).

    Returns
    -------
    distributed.LocalCluster
    """
    distributed = _distributed()
    import dask

    cores = _usable_cores()
    n_workers = cores if n_workers is None else n_workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) \
            or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    threads = max(1, cores // int(n_workers)) if numba_threads is None else numba_threads
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"numba_threads must be an integer >= 1, got {numba_threads!r}")
    env = {_THREADS_ENV: str(int(threads)), **kwargs.pop("env", {})}
    blas = {name: str(int(threads)) for name in _BLAS_ENV}
    pre_spawn = {**(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}), **blas}
    # a free port: the scheduler's HTTP server would otherwise fight over 8787 with any other
    # cluster on the machine
    kwargs.setdefault("dashboard_address", ":0")
    # The nannies capture the pre-spawn environment when they are created (in here); variables
    # already in os.environ take precedence over dask's config there, so set both, for now.
    saved = {name: os.environ.get(name) for name in blas}
    os.environ.update(blas)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
            return distributed.LocalCluster(n_workers=int(n_workers), threads_per_worker=1,
                                            processes=True, env=env, **kwargs)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def preserved_environ() -> Iterator[None]:
    """Restore this process's environment variables on exit.

    Dask's nannies write their pre-spawn variables (``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``...)
    into the *parent* process's ``os.environ`` whenever they (re)start a worker; wrap the life of
    a local cluster in this to keep them out of processes started later.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            os.environ.pop(name, None)
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "dmft sweeps run on Dask: pip install 'dask[distributed]' (or 'dmft[sweep]')"
        ) from None
    return distributed


# =============================================================================== sweep
def sweep(base_problem: Problem, grid: Mapping[str, Sequence],
          methods: Sequence[str] = METHODS, solve_kwargs: Mapping | None = None,
          simulate_kwargs: Mapping | None = None, store="sweep.h5", client=None, *,
          onepass_kwargs: Mapping | None = None, seed: int = 0, seeds_per_task: int = 4,
          n_workers: int | None = None, numba_threads: int | None = None,
          progress: bool | None = None,
          callback: Callable[[SweepRecord], None] | None = None) -> SweepResult:
    """Solve and simulate every point of a grid of Problems on Dask, into a resumable store.

    Parameters
    ----------
    base_problem : Problem
        Fields not in the grid.
    grid : dict of str to list
        Problem field -> non-empty list of distinct values; the sweep is their product
        (e.g. ``{"alpha": [1, 2, 3], "eta": [0.1, 0.2], "schedule": ["full", "cyclic(2)"]}``).
    methods : sequence of {"dmft", "one-pass", "simulate"}
        What to compute at every point.
    solve_kwargs : dict, optional
        Options of the multi-pass DMFT (``samples``, ``estimator``, ``replicas``, ...; not
        ``seed``).
    simulate_kwargs : dict
        Options of :func:`dmft.simulate`; ``d`` is required, ``seeds`` (number of runs,
        default 8) is split into tasks of ``seeds_per_task`` runs.
    store : str or Path
        HDF5 store (plus ``<store>.journal/`` while results are pending); see the module
        docstring. Results already in it are not recomputed.
    client : None, str or distributed.Client
        None: start a local cluster (:func:`local_cluster`) for this call; a scheduler address
        (``"tcp://host:8786"``): connect to it; a ``Client``: use it as is.
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
    """
    methods = _check_methods(methods)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(seeds_per_task, bool) or not isinstance(seeds_per_task, (int, np.integer)) \
            or seeds_per_task < 1:
        raise ValueError(f"seeds_per_task must be an integer >= 1, got {seeds_per_task!r}")
    if numba_threads is not None and (isinstance(numba_threads, bool) or not isinstance(
            numba_threads, (int, np.integer)) or numba_threads < 1):
        raise ValueError(f"numba_threads must be an integer >= 1, got {numba_threads!r}")
    if n_workers is not None and client is not None:
        raise ValueError(f"n_workers={n_workers!r} applies to the local cluster only "
                         f"(client=None), got client={client!r}")
    coords, points = expand_grid(base_problem, grid)
    solve_opts = _check_options("dmft", solve_kwargs, "solve_kwargs") \
        if "dmft" in methods else dict(solve_kwargs or {})
    onepass_opts = _check_options("one-pass", onepass_kwargs, "onepass_kwargs") \
        if "one-pass" in methods else dict(onepass_kwargs or {})
    sim_opts, n_runs = _simulate_plan(simulate_kwargs) if "simulate" in methods else ({}, 0)
    tasks = _plan(points, methods, solve_opts, onepass_opts, sim_opts, n_runs, int(seed),
                  int(seeds_per_task))
    spec = {
        # the spec is stored as sorted JSON: keep the grid's field order separately
        "base_problem": base_problem.to_dict(), "grid": coords, "grid_fields": list(coords),
        "methods": list(methods),
        "solve_kwargs": solve_opts, "onepass_kwargs": onepass_opts,
        "simulate_kwargs": dict(sim_opts, seeds=n_runs) if "simulate" in methods else {},
        "seed": int(seed),
    }
    nm = len(methods)
    keys = [[t.key for t in tasks[i:i + nm]] for i in range(0, len(tasks), nm)]
    sweep_id = hashlib.sha256(_canonical([spec, keys]).encode()).hexdigest()[:16]

    st = _Store(store)
    st.check()
    with st.locked():
        st.write("sweeps", sweep_id, lambda g: _write_manifest(g, spec, keys))
        done = {key for (kind, key) in st.index() if kind == "results"}
        todo = [t for t in tasks if t.key not in done]
        try:
            if todo:
                _run(todo, st, client, n_workers, numba_threads, progress, callback)
        finally:
            st.compact()
            st.tidy()
    return load_sweep(st.path, sweep_id, computed=len(todo))


def _check_methods(methods) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"methods is empty; choose from {METHODS}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"method {m!r} is not valid; allowed: {METHODS}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods has duplicates: {methods}")
    if "one-pass" in methods and importlib.util.find_spec("solvers.onepass") is None:
        raise ValueError("method 'one-pass' needs solvers.onepass, which is not installed")
    return methods


def _write_manifest(group: h5py.Group, spec: dict, keys: list) -> None:
    group.attrs["spec"] = _canonical(spec)
    group.attrs["keys"] = json.dumps(keys)
    group.attrs["created"] = time.time()


@contextlib.contextmanager
def _client_for(client, n_workers, numba_threads):
    """Yield a Client: the given one, one connected to an address, or a new local cluster."""
    distributed = _distributed()
    if isinstance(client, distributed.Client):
        yield client
        return
    if client is None:
        with preserved_environ(), local_cluster(n_workers, numba_threads) as cluster, \
                distributed.Client(cluster) as own:
            yield own
        return
    if isinstance(client, str):
        with distributed.Client(client) as own:
            yield own
        return
    raise TypeError(f"client must be None, a scheduler address or a distributed.Client, "
                    f"got {client!r}")


def _run(todo: list[_Task], st: _Store, client, n_workers, numba_threads, progress,
         callback) -> None:
    """Submit the missing tasks and store each result as it arrives."""
    distributed = _distributed()
    from tqdm.auto import tqdm

    if n_workers is None and client is None:
        n_workers = max(1, min(_usable_cores(), sum(len(t.blocks) for t in todo)))
    show = sys.stderr.isatty() if progress is None else bool(progress)
    with _client_for(client, n_workers, numba_threads) as cl:
        threads = _threads_by_host(cl)
        token = uuid.uuid4().hex[:8]  # fresh keys: never collide with a cancelled earlier run
        owner: dict[str, tuple[_Task, int]] = {}
        futures = []
        for task in todo:
            for b, block in enumerate(task.blocks):
                fut = cl.submit(_execute, task.method, task.problem, task.run_options, block,
                                threads, numba_threads, key=f"dmft-sweep-{task.key}-{b}-{token}",
                                pure=False)
                owner[fut.key] = (task, b)
                futures.append(fut)
        pending: dict[str, dict[int, list]] = {}
        since_compaction, main_count = 0, st.main_count()
        bar = tqdm(total=len(futures), desc="sweep", unit="task", disable=not show)
        try:
            for fut in distributed.as_completed(futures):
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
                runs = [r for i in range(len(task.blocks)) for r in got[i]]
                diverged = [r for r in runs if isinstance(r, _Diverged)]
                if diverged:
                    result = min(diverged, key=lambda r: r.step)
                elif task.method == "simulate":
                    result = _combine_runs(task.problem, runs, task.seeds)
                else:
                    result = runs[0]
                st.write("results", task.key, lambda g, t=task, r=result: _write_result(g, t, r))
                since_compaction += 1
                if since_compaction >= max(_COMPACT_MIN, main_count // 4):
                    st.compact()
                    main_count += since_compaction
                    since_compaction = 0
                if callback is not None:
                    status = "ok" if isinstance(result, Trajectory) else "diverged"
                    callback(SweepRecord(
                        task.coords, task.method, task.key, status,
                        trajectory=result if status == "ok" else None,
                        step=None if status == "ok" else result.step,
                        message="" if status == "ok" else result.message))
        finally:
            bar.close()
            cl.cancel([f for f in futures if not f.done()])


# =============================================================================== config / CLI
_CONFIG_KEYS = {"store", "methods", "seed", "seeds_per_task", "problem", "grid", "dmft",
                "one-pass", "simulate", "report"}


def load_config(path) -> dict:
    """Read a sweep description from TOML (see ``examples/sweep_he3.toml``).

    Top level: ``store``, ``methods``, ``seed``, ``seeds_per_task``; tables ``[problem]``
    (Problem fields of the base problem), ``[grid]`` (field -> list), ``[dmft]``,
    ``[one-pass]``, ``[simulate]`` (solver options), ``[report]`` (``observable``, ``t``).

    Returns
    -------
    dict
        Keyword arguments of :func:`sweep` (``base_problem``, ``grid``, ...) plus ``report``.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as fh:
        cfg = tomllib.load(fh)
    unknown = set(cfg) - _CONFIG_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: "
                         f"{sorted(_CONFIG_KEYS)}")
    if "grid" not in cfg:
        raise ValueError(f"{path}: a [grid] table is required")
    prob_cfg = dict(cfg.get("problem", {}))
    bad = set(prob_cfg) - set(_FIELDS)
    if bad:
        raise ValueError(f"{path}: [problem] has unknown field(s) {sorted(bad)}; allowed: "
                         f"{_FIELDS}")
    try:
        base = Problem(**prob_cfg)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: [problem] is invalid: {exc}") from None
    report = dict(cfg.get("report", {}))
    bad = set(report) - {"observable", "t"}
    if bad:
        raise ValueError(f"{path}: [report] has unknown key(s) {sorted(bad)}; allowed: "
                         "observable, t")
    return {
        "base_problem": base,
        "grid": dict(cfg["grid"]),
        "methods": tuple(cfg.get("methods", METHODS)),
        "solve_kwargs": dict(cfg.get("dmft", {})),
        "onepass_kwargs": dict(cfg.get("one-pass", {})),
        "simulate_kwargs": dict(cfg.get("simulate", {})),
        "store": cfg.get("store", Path(path).with_suffix(".h5").name),
        "seed": cfg.get("seed", 0),
        "seeds_per_task": cfg.get("seeds_per_task", 4),
        "report": report,
    }


def format_report(result: SweepResult, observable: str = "overlap", t: int | None = None) -> str:
    """Text tables of an observable at time t (mean over hidden units), one per method.

    With two grid fields each table is a matrix (rows: first field, columns: second); otherwise
    one line per point. ``observable`` is one of overlap, orthogonal_overlap, e_gen, e_train.
    """
    if observable not in ("overlap", "orthogonal_overlap", "e_gen", "e_train"):
        raise ValueError(f"report observable {observable!r} is not valid; allowed: overlap, "
                         "orthogonal_overlap, e_gen, e_train")
    g = len(result.shape)
    val, err = result.array(observable, return_se=True)  # (*shape, methods, T[, P])
    T = val.shape[g + 1]
    t = T - 1 if t is None else t
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < T:
        raise ValueError(f"report t={t!r} must be an integer in [0, {T - 1}]")
    v, e = val[..., t, :], err[..., t, :]
    if observable in ("e_gen", "e_train"):
        v, e = val[..., t], err[..., t]
    else:  # mean over hidden units, ignoring the padding of smaller P
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            units = np.sum(np.isfinite(v), axis=-1)
            e = np.sqrt(np.nansum(e**2, axis=-1)) / np.maximum(units, 1)
            v = np.nanmean(v, axis=-1)
    names = list(result.coords)
    lines = []
    for m, method in enumerate(result.methods):
        lines.append(f"{observable} at t = {t} (mean over hidden units), method {method}:")
        vm, em = v[..., m], e[..., m]
        if g == 2:
            rows, cols = (result.coords[n] for n in names)
            head = f"{names[0]} \\ {names[1]}"
            width = max(16, len(head) + 2)
            lines.append(head.ljust(width) + "".join(f"{_label(c)!s:>18}" for c in cols))
            for i, r in enumerate(rows):
                cells = "".join(f"{_cell(vm[i, j], em[i, j]):>18}" for j in range(len(cols)))
                lines.append(f"{_label(r)!s:<{width}}" + cells)
        else:
            for idx in np.ndindex(*result.shape):
                where = ", ".join(f"{n}={_label(result.coords[n][i])}"
                                  for n, i in zip(names, idx, strict=True))
                lines.append(f"  {where}: {_cell(vm[idx], em[idx])}")
        lines.append("")
    return "\n".join(lines)


def _cell(v: float, e: float) -> str:
    if not np.isfinite(v):
        return "--"
    return f"{v:.4f}" if not np.isfinite(e) or e == 0 else f"{v:.4f}+-{e:.4f}"


def add_subcommands(subparsers) -> None:
    """Register ``dmft sweep`` on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "sweep",
        help="run a parameter sweep described by a TOML file on Dask",
        description=(
            "Expand the grid of CONFIG.toml, compute the methods it lists at every point on a "
            "Dask cluster (a local one by default), store every result in the HDF5 store as it "
            "arrives (rerunning computes only what is missing) and print the observable of "
            "[report] at time t. Exit code 0 on success, 2 on errors."
        ),
    )
    p.add_argument("config", metavar="CONFIG.toml", help="sweep description")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (default: start a local cluster)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="numba threads per task (default: cores // task slots per host)")
    p.add_argument("--store", help="HDF5 store (default: the config's 'store')")
    # own dest: a subparser default would overwrite the global ``dmft --quiet``
    p.add_argument("--quiet", dest="sweep_quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args) -> int:
    try:
        cfg = load_config(args.config)
    except (OSError, ValueError) as exc:
        print(f"dmft: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # tomllib.TOMLDecodeError and friends
        print(f"dmft: error: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    report = cfg.pop("report")
    if args.store:
        cfg["store"] = args.store
    quiet = getattr(args, "quiet", False) or getattr(args, "sweep_quiet", False)
    try:
        result = sweep(**cfg, client=args.scheduler, n_workers=args.workers,
                       numba_threads=args.threads, progress=False if quiet else None)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"dmft: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dmft: interrupted; the finished results are in {cfg['store']}, run the same "
              "command again to compute the rest", file=sys.stderr)
        return 130
    print(f"{result!r}\ncomputed {result.computed} result(s) now, stored in {result.store}\n")
    print(format_report(result, report.get("observable", "overlap"), report.get("t")))
    return 0
