"""Dask for sweeps: the local cluster, clients, and numba/BLAS threads per task.

How the thread counts are chosen: docs/guide/sweeps.md, "Threads".
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

from ..validation import integer

__all__ = ["local_cluster", "preserved_environ", "client_for", "threads_by_host",
           "set_task_threads", "usable_cores", "distributed"]

# environment variable of a worker process giving numba threads per task (see local_cluster)
THREADS_ENV = "DMFT_NUMBA_THREADS"
BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def distributed():
    """The ``distributed`` package, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "dmft sweeps run on Dask: pip install 'dask[distributed]' (or 'dmft[sweep]')"
        ) from None
    return distributed


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _host(address: str) -> str:
    from distributed.comm import get_address_host

    return get_address_host(address)


def threads_by_host(client) -> dict[str, int]:
    """numba threads per task on each host: cores // (worker threads of all workers there)."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        cores = client.run(usable_cores) if workers else {}
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


def _task_threads(by_host: dict[str, int] | None, numba_threads: int | None) -> int | None:
    """numba threads for a task on this worker: sweep(numba_threads=...), else the worker's
    DMFT_NUMBA_THREADS (local_cluster), else cores // task slots of its host, else None (not
    on a Dask worker)."""
    if numba_threads is not None:
        return int(numba_threads)
    if os.environ.get(THREADS_ENV, "").isdigit():
        return int(os.environ[THREADS_ENV])
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    n = (by_host or {}).get(_host(worker.address))
    if n is None:  # a worker that joined after the sweep started
        n = max(1, usable_cores() // max(1, int(worker.state.nthreads)))
    return n


def set_task_threads(by_host: dict[str, int] | None, numba_threads: int | None) -> None:
    """Inside a task: set numba's thread count, which is per calling thread in numba."""
    import numba

    n = _task_threads(by_host, numba_threads)
    if n is not None:
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


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

    Examples
    --------
    >>> import distributed  # doctest: +SKIP
    >>> with preserved_environ(), local_cluster(2) as cluster:  # doctest: +SKIP
    ...     with distributed.Client(cluster) as client:
    ...         result = dmft.sweep(base, grid, client=client, simulate_kwargs={"d": 500})
    """
    dist = distributed()
    import dask

    cores = usable_cores()
    n_workers = integer("n_workers", cores if n_workers is None else n_workers, low=1)
    threads = integer("numba_threads",
                      max(1, cores // n_workers) if numba_threads is None else numba_threads,
                      low=1)
    env = {THREADS_ENV: str(threads), **kwargs.pop("env", {})}
    blas = {name: str(threads) for name in BLAS_ENV}
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
            return dist.LocalCluster(n_workers=n_workers, threads_per_worker=1,
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

    Examples
    --------
    >>> import os
    >>> before = dict(os.environ)
    >>> with preserved_environ():
    ...     os.environ["OMP_NUM_THREADS"] = "1"
    >>> dict(os.environ) == before
    True
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


@contextlib.contextmanager
def client_for(client, n_workers: int | None, numba_threads: int | None):
    """Yield a Client: the given one, one connected to an address, or a new local cluster."""
    dist = distributed()
    if isinstance(client, dist.Client):
        yield client
        return
    if client is None:
        with preserved_environ(), local_cluster(n_workers, numba_threads) as cluster, \
                dist.Client(cluster) as own:
            yield own
        return
    if isinstance(client, str):
        with dist.Client(client) as own:
            yield own
        return
    raise TypeError(f"client must be None, a scheduler address or a distributed.Client, "
                    f"got {client!r}")

