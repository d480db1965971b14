"""Speed and memory of the finite-d simulator (solvers/finite_d.py).

Run from the repository root::

    python -m benchmarks.bench_simulator            # everything (~3-6 minutes on 2 cores)
    python -m benchmarks.bench_simulator --quick    # skip the d = 10^4 runs

1. Per-seed time at d = 5000, alpha = 3, P = 2, T = 7 (paper multi-index setting) of
   ``dmft.simulate(seeds=1)`` against a direct plain-numpy implementation of the same GD written
   below, interleaved in one process, medians of ``--repeats`` runs, and their ratio. The
   simulator's time includes e_gen (Gaussian integration), which the plain version does not
   compute; that part is also timed on its own.
2. float32 data vs float64 on the same Gaussian numbers (paired): largest |Delta M|, |Delta Q|.
3. Minibatch size 1 (Cyclic(n)): one epoch at d = 1000, alpha = 3, P = 2 with the sequential
   numba loop against the per-step BLAS path of the same simulator (both record M, Q at every
   step; e_train at the epoch start).
4. Peak resident memory and wall time of one seed at d = 10^4, alpha = 5, P = 4, T = 7 (the
   Fig. 3 setting), each in a fresh subprocess so that the peak belongs to that run alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import dmft
from solvers import finite_d


def plain_numpy_relu_gd(prob: dmft.Problem, d: int, seed: int) -> dict:
    """The same algorithm in straightforward numpy (ReLU committee, full batch, float64).

    Returns M (T, P, K), Q (T, P, P), e_train (T,).
    """
    rng = np.random.default_rng(seed)
    n, P, K = round(prob.alpha * d), prob.P, prob.K
    basis, _ = np.linalg.qr(rng.standard_normal((d, K + P)))
    frame = math.sqrt(d) * basis.T
    Wstar, W = frame[:K], frame[K:].copy()  # M0 = 0, Q0 = I
    X = rng.standard_normal((n, d))
    y = prob.target((X @ Wstar.T / math.sqrt(d)).T)
    a, eta = prob.a, prob.eta
    M, Q, e_train = [], [], []
    for t in range(prob.T):
        M.append(W @ Wstar.T / d)
        Q.append(W @ W.T / d)
        U = X @ W.T / math.sqrt(d)
        resid = y - np.maximum(U, 0.0) @ a
        e_train.append(0.5 * np.mean(resid**2))
        if t < prob.T - 1:
            F = -resid[:, None] * a * (U > 0)
            W = (1 - eta * prob.lam) * W - eta * (F.T @ X) / math.sqrt(d)
    return {"M": np.array(M), "Q": np.array(Q), "e_train": np.array(e_train)}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_vs_plain(repeats: int) -> None:
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    d = 5000
    dmft.simulate(prob, d=200, seeds=1, seed=0)  # compile / load numba caches outside the timing
    ours, plain, gen = [], [], []
    for r in range(repeats):
        ours.append(_timed(lambda r=r: dmft.simulate(prob, d=d, seeds=1, seed=r)))
        plain.append(_timed(lambda r=r: plain_numpy_relu_gd(prob, d, seed=r)))
        traj = dmft.simulate(prob, d=200, seeds=1, seed=r)
        M_runs, Q_runs = traj.diagnostics["M_runs"], traj.diagnostics["Q_runs"]
        gen.append(_timed(lambda M=M_runs, Q=Q_runs: finite_d._gen_error_runs(prob, M, Q)))
    t_ours, t_plain, t_gen = (statistics.median(x) for x in (ours, plain, gen))
    print(f"[1] per seed, d={d}, alpha=3, P=2, T=7, {repeats} interleaved repeats (medians)")
    for label, med, runs in (("dmft.simulate", t_ours, ours), ("plain numpy", t_plain, plain)):
        print(f"    {label:22s} {med:7.2f} s   (all: {', '.join(f'{x:.2f}' for x in runs)})")
    print(f"    ratio plain / simulate {t_plain / t_ours:7.2f}")
    print(f"    of which e_gen (dmft.gaussian.gen_error, 7 time points): {t_gen:.2f} s")


def bench_float32(seeds: int) -> None:
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    f64 = dmft.simulate(prob, d=5000, seeds=seeds, seed=0)
    f32 = dmft.simulate(prob, d=5000, seeds=seeds, seed=0, dtype="float32")
    dM = np.abs(f64.diagnostics["M_runs"] - f32.diagnostics["M_runs"]).max()
    dQ = np.abs(f64.diagnostics["Q_runs"] - f32.diagnostics["Q_runs"]).max()
    print(f"[2] float32 vs float64 data, same numbers, d=5000, {seeds} seeds, T=7 (paired)")
    print(f"    max |dM| = {dM:.2e}, max |dQ| = {dQ:.2e}; seed-to-seed SE of M at t=6: "
          f"{f64.M_se[-1].max():.1e}")


def bench_minibatch_one(repeats: int) -> None:
    d, alpha = 1000, 3.0
    n = round(alpha * d)
    prob = dmft.Problem(target="he3", P=2, activation="relu", alpha=alpha, eta=0.2,
                        schedule=dmft.Cyclic(n), T=n + 1)
    times = {"numba": [], "blas": []}
    for kernel in times:
        dmft.simulate(prob.replace(T=5), d=d, seeds=1, cyclic_kernel=kernel)  # compile
    for r in range(repeats):
        for kernel in times:
            times[kernel].append(_timed(
                lambda k=kernel, r=r: dmft.simulate(prob, d=d, seeds=1, seed=r, cyclic_kernel=k)
            ))
    t_numba, t_blas = (statistics.median(times[k]) for k in ("numba", "blas"))
    print(f"[3] minibatch size 1, one epoch = {n} steps, d={d}, P=2 (medians of {repeats})")
    print(f"    numba loop {t_numba:.2f} s, per-step BLAS {t_blas:.2f} s, "
          f"ratio {t_blas / t_numba:.1f}")


def _big_child(dtype: str) -> None:
    prob = dmft.Problem(target="z1z2z3-he3", P=4, activation="relu", alpha=5.0, eta=0.2, T=7)
    dmft.simulate(prob, d=100, seeds=1, seed=0)  # compilation outside the timing
    start = time.perf_counter()
    traj = dmft.simulate(prob, d=10_000, seeds=1, seed=0, dtype=dtype)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"wall": wall, "peak_gib": peak_kib / 2**20,
                      "M_last_row3": traj.M[-1, 3].tolist()}))


def bench_big(dtype: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_simulator", "--big-child", dtype],
        check=True, capture_output=True, text=True,
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    data_gib = 5 * 10_000 * 10_000 * np.dtype(dtype).itemsize / 2**30
    print(f"[4] one seed, d=10^4, alpha=5 (n=5e4), P=4, K=4, T=7, {dtype} "
          f"(data matrix alone {data_gib:.2f} GiB)")
    print(f"    wall {res['wall']:.1f} s, peak RSS {res['peak_gib']:.2f} GiB; "
          f"M_6 of unit 3 = {np.round(res['M_last_row3'], 3).tolist()}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the d = 10^4 runs")
    parser.add_argument("--big-child", choices=["float64", "float32"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.big_child:
        _big_child(args.big_child)
        return
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench_vs_plain(max(3, args.repeats))
    bench_float32(seeds=2)
    bench_minibatch_one(max(3, args.repeats))
    if not args.quick:
        bench_big("float64")
        bench_big("float32")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
