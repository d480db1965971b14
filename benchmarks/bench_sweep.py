"""Wall time of an 8-point sweep on Dask with 1 vs 2 workers (dmft.sweep).

Run from the repository root::

    python -m benchmarks.bench_sweep              # ~2-4 minutes on 2 cores
    python -m benchmarks.bench_sweep --quick      # smaller problems, fewer repeats

The sweep: He3 teacher, P = 1 ReLU, T = 5, alpha in {1, 2, 4, 8} x eta in {0.1, 0.2} (8 points),
methods "dmft" (``--samples`` effective samples) and "simulate" (d = ``--d``, ``--seeds`` runs,
``seeds_per_task`` = 2), i.e. 8 DMFT tasks and 8 x seeds/2 simulation tasks. Three local
clusters, all started (and warmed up with one sweep, so numba caches are loaded in every worker)
before timing:

- ``1w x 1t``: 1 worker process, 1 numba/BLAS thread (serial baseline);
- ``1w x 2t``: 1 worker process, 2 numba/BLAS threads (threads inside each task);
- ``2w x 1t``: 2 worker processes, 1 thread each (the default of ``dmft.sweep`` on 2 cores).

Each repeat runs the same sweep into a fresh store on each cluster in turn (interleaved, so slow
drifts in machine load hit all three alike); the table shows medians and the ratios to the
serial baseline. Cluster start-up is timed separately. DMFT results are bitwise identical on the
three clusters (checked here); simulations are bitwise identical when the BLAS thread count is
the same (1w x 1t and 2w x 1t) and differ in the last bits otherwise (OpenBLAS's summation order
depends on its thread count; the largest difference is printed).

Measured here (2 cores shared with other jobs, load average 10-13 during the run; medians of 5):
1w x 1t 16.5 s, 2w x 1t 12.6 s (ratio 1.31), 1w x 2t 29.6 s (0.56: numba's OpenMP threads
wait at every parallel region when the cores are oversubscribed, ~20 ms per region measured,
which is why the default cluster uses processes, one thread each). Start-up: 8 s (1 worker),
16 s (2 workers). ``--quick`` (tasks of ~0.1 s, overhead-dominated): ratio 1.18.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import dmft
from dmft.sweeps import local_cluster

CONFIGS = {"1w x 1t": (1, 1), "1w x 2t": (1, 2), "2w x 1t": (2, 1)}


def run_sweep(client, store: Path, samples: int, d: int, seeds: int) -> tuple[float, object]:
    base = dmft.Problem(target="he3", P=1, activation="relu", T=5)
    grid = {"alpha": [1.0, 2.0, 4.0, 8.0], "eta": [0.1, 0.2]}
    start = time.perf_counter()
    res = dmft.sweep(base, grid, methods=("dmft", "simulate"), solve_kwargs={"samples": samples},
                     simulate_kwargs={"d": d, "seeds": seeds}, seeds_per_task=2, store=store,
                     client=client, progress=False)
    return time.perf_counter() - start, res


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problems, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None, help="DMFT samples per point")
    parser.add_argument("--d", type=int, default=None, help="simulation dimension")
    parser.add_argument("--seeds", type=int, default=8, help="simulation runs per point")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    samples = args.samples or (50_000 if args.quick else 400_000)
    d = args.d or (300 if args.quick else 1000)
    from distributed import Client

    cores = len(os.sched_getaffinity(0))
    print(f"8-point sweep: {repeats} interleaved repeats, DMFT samples={samples}, "
          f"simulate d={d} x {args.seeds} runs; {cores} usable cores; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    clusters, clients, startup = {}, {}, {}
    try:
        for name, (workers, threads) in CONFIGS.items():
            t0 = time.perf_counter()
            clusters[name] = local_cluster(workers, numba_threads=threads)
            clients[name] = Client(clusters[name])
            clients[name].wait_for_workers(workers)
            startup[name] = time.perf_counter() - t0
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in CONFIGS:  # warm-up: numba caches, imports, first_hermite
                run_sweep(clients[name], Path(tmp) / f"warm-{name}.h5", samples, d, args.seeds)
            for r in range(repeats):
                for name in CONFIGS:
                    wall, res = run_sweep(clients[name], Path(tmp) / f"{name}-{r}.h5", samples,
                                          d, args.seeds)
                    times[name].append(wall)
                    results[name] = res
        ref = results["1w x 1t"]
        sim_diff = {}
        for name, res in results.items():
            diffs = [0.0]
            for a, b in zip(ref.records, res.records, strict=True):
                same_blas = CONFIGS[name][1] == 1
                if a.method == "dmft" or same_blas:  # DMFT never depends on threads
                    assert np.array_equal(a.trajectory.M, b.trajectory.M), (name, a.coords)
                diffs.append(float(np.max(np.abs(a.trajectory.M - b.trajectory.M))))
            sim_diff[name] = max(diffs)
        base = statistics.median(times["1w x 1t"])
        print(f"{'cluster':<10}{'start-up s':>12}{'median s':>10}{'min s':>8}{'max s':>8}"
              f"{'speed-up':>10}")
        for name in CONFIGS:
            med = statistics.median(times[name])
            print(f"{name:<10}{startup[name]:>12.2f}{med:>10.2f}{min(times[name]):>8.2f}"
                  f"{max(times[name]):>8.2f}{base / med:>10.2f}")
        ratio = statistics.median(times["1w x 1t"]) / statistics.median(times["2w x 1t"])
        print(f"ratio wall(1 worker) / wall(2 workers), 1 thread each: {ratio:.2f}")
        print(f"load average at end {os.getloadavg()[0]:.1f}")
        print("DMFT results bitwise identical on all clusters; simulations bitwise identical "
              "for equal BLAS threads; max |Delta M| vs 1w x 1t: "
              + ", ".join(f"{k}: {v:.1e}" for k, v in sim_diff.items()))
    finally:
        for name in list(clients):
            clients[name].close()
            clusters[name].close()


if __name__ == "__main__":
    main()
