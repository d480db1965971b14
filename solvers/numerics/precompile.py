"""Compile kernels in a helper process while this one compiles others (first runs only).

numba compiles one function at a time per process, and first compilation is what makes a
first run slow. A function that a kernel calls is loaded from numba's disk cache when it is
there, so compiling it at the same time in a second process shortens the wait on a machine with
two or more cores. A task is ``"module:function:argument"``: the helper (one per process,
``python -m solvers.numerics.precompile``, tasks on its stdin) imports the module and calls
``function(argument)``, lowest priority number first, and reports each task when done;
:func:`wait` blocks until then. Helpers are started only on machines with at least two cores;
if one fails, its tasks are simply compiled where they are needed.
"""

from __future__ import annotations

import importlib
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import numba
import numpy as np

from .dmft_state import (
    make_params,
    new_samples,
    zero_diagnostics,
    zero_replica,
    zero_sums,
)

__all__ = ["start", "started", "wait", "compile_finish", "compile_sums", "compile_forward"]

_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the solvers package
_lock = threading.Condition()
_helper: dict = {}  # "proc": the helper process, "submitted", "done": sets of tasks


def _launch() -> subprocess.Popen | None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    try:
        proc = subprocess.Popen([sys.executable, "-m", __name__], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None
    _helper.update(proc=proc, submitted=set(), done=set())
    threading.Thread(target=_collect, args=(proc,), daemon=True).start()
    return proc


def _collect(proc: subprocess.Popen) -> None:
    """Record the tasks the helper reports done; when it ends, release every waiter."""
    for line in proc.stdout:
        with _lock:
            _helper["done"].add(line.strip())
            _lock.notify_all()
    with _lock:
        _helper["done"] |= _helper["submitted"]
        _lock.notify_all()


def start(tasks: list[str], priority: int = 0) -> None:
    """Queue ``tasks`` (those not queued before) on this process's helper, started on first
    use; lower ``priority`` numbers run first. No helper on a machine with one core."""
    if (os.cpu_count() or 1) < 2:
        return
    with _lock:
        proc = _helper.get("proc") or _launch()
        if proc is None:
            return
        for task in tasks:
            if task in _helper["submitted"]:
                continue
            _helper["submitted"].add(task)
            try:
                proc.stdin.write(f"{priority} {task}\n")
                proc.stdin.flush()
            except OSError:  # the helper ended: nothing to wait for
                _helper["done"].add(task)


def started(task: str) -> bool:
    """Whether ``task`` was queued on a helper in this process."""
    return task in _helper.get("submitted", ())


def wait(task: str, timeout: float = 300.0) -> None:
    """Block until the helper has done ``task`` (at most ``timeout`` seconds); return at once
    if it was never queued."""
    with _lock:
        if started(task):
            _lock.wait_for(lambda: task in _helper["done"], timeout)


def compile_finish(estimator: str) -> None:
    """Compile (and cache) the multi-pass DMFT's update for ``estimator`` ("stein" or
    "pathwise") with the argument types the solver passes it."""
    from .step import finish_step_pathwise, finish_step_stein

    T, P, K = 2, 1, 1
    pathwise = estimator == "pathwise"
    rep = zero_replica(T, P, K)
    args = (0, make_params(1, 1.0, 1.0, 0.0, np.zeros(P), True, 1e-12, 1e-12),
            zero_sums(1, T, P, K, pathwise), rep, zero_diagnostics(T, P))
    fn = finish_step_pathwise if pathwise else finish_step_stein
    fn.compile(tuple(numba.typeof(arg) for arg in args))


def _forward_types(estimator: str) -> tuple:
    """numba types of (Replica, Samples, Sums) as the multi-pass entry kernels pass them."""
    T, P, K = 2, 1, 1
    pathwise = estimator == "pathwise"
    rep = numba.typeof(zero_replica(T, P, K))
    smp = numba.typeof(new_samples(T, P, K, 8, pathwise))
    sums = numba.typeof(zero_sums(1, T, P, K, pathwise))
    return rep, smp, sums


def compile_sums(estimator: str) -> None:
    """Compile (and cache) the per-block sums of the multi-pass DMFT's forward pass with the
    argument types its entry kernels pass them."""
    from numba.core import types

    from .measure import measure_block, measure_block_pathwise

    _, smp, sums = _forward_types(estimator)
    i64 = types.int64
    measure_block.compile((i64, i64, i64, i64, types.UniTuple(types.float64[::1], 2), smp,
                           sums))
    if estimator == "pathwise":
        measure_block_pathwise.compile((i64, i64, i64, i64, smp, sums))


def compile_forward(estimator: str) -> None:
    """Compile (in memory, in this process) the field sums and normals of the multi-pass
    DMFT's forward pass with the argument types its entry kernels pass them, so that compiling
    an entry kernel finds them ready (and can wait for a helper compiling the rest)."""
    from numba.core import types

    from .fields import block_fields
    from .forward import chi_step
    from .streams import fill_block_normals

    rep, smp, _ = _forward_types(estimator)
    i64, row, rows = types.int64, types.float64[::1], types.float64[:, ::1]
    block_fields.compile((i64, i64, i64, rep, smp, rows))
    fill_block_normals.compile((types.uint64, rows, i64, i64, types.uint8[::1]))
    if estimator == "pathwise":
        chi_step.compile((i64, i64, i64, rep, types.float64, smp, row))


def _serve() -> None:
    """The helper: run the tasks arriving on stdin, lowest priority first; stop at its end."""
    pending: queue.PriorityQueue = queue.PriorityQueue()

    def read() -> None:
        for seq, line in enumerate(sys.stdin):
            priority, task = line.split(" ", 1)
            pending.put((int(priority), seq, task.strip()))
        pending.put((sys.maxsize, sys.maxsize, None))  # stdin closed: the parent is done

    threading.Thread(target=read, daemon=True).start()
    while True:
        _, _, task = pending.get()
        if task is None:
            return
        module, function, argument = task.split(":", 2)
        try:
            getattr(importlib.import_module(module), function)(argument)
        except Exception:  # noqa: BLE001 - the parent then compiles what it needs itself
            pass
        print(task, flush=True)


if __name__ == "__main__":
    _serve()
