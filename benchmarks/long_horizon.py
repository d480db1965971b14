"""Long horizons: wall time and peak memory of the multi-pass DMFT against T, fitted exponent.

The paper's problem (tanh-he1-he3, P = 2, ReLU, alpha 3, eta 0.2), S = 1e5 samples in 16
replicas (12 at T = 1000: :func:`replicas_for`), at T = 100, 200, 400, 1000 by default.
Each solve runs in a fresh child process (``python -m benchmarks.long_horizon --child JSON``)
that loads the compiled kernels with an untimed small solve, then times one solve (wall clock
and process CPU time) and reads its peak resident set (``VmHWM``). ``--repeats`` children per
T give medians. The exponent is the least-squares slope of log(wall) against log(T).

``--root DIR`` benchmarks the package of another checkout (e.g. the code before a change), so
that two versions are measured side by side on the same machine and load: the table then gives
the ratio of their medians (before / after). The machine's load (``uptime``) is printed with
the results, which go to ``benchmarks/results/long_horizon.json``.

Run from the repository root::

    python -m benchmarks.long_horizon                      # T = 100, 200, 400, 1000
    python -m benchmarks.long_horizon --T 100 200 --root ../main   # side by side with ../main
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["measure", "fit_exponent", "main"]

ROOT = Path(__file__).resolve().parents[1]
PAPER = dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2)
GIB = 2.0**30


def _peak_rss() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) * 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def _child(spec: dict) -> dict:
    import dmft

    dmft.solve(dmft.Problem(**PAPER, T=4), samples=2**13, seed=0, progress=False)  # load
    prob = dmft.Problem(**PAPER, T=spec["T"])
    wall0, cpu0 = time.perf_counter(), time.process_time()
    traj = dmft.solve(prob, samples=spec["S"], replicas=replicas_for(spec["T"], spec["S"]),
                      seed=0, progress=False)
    return {"wall": time.perf_counter() - wall0, "cpu": time.process_time() - cpu0,
            "peak_rss": _peak_rss(), "M01_last": float(traj.M[-1, 0, 1]),
            "provenance": {k: v for k, v in traj.provenance.items()
                           if isinstance(v, (int, float, str)) and k != "platform"}}


def replicas_for(T: int, S: int) -> int:
    """16 replicas, or fewer when the solver's rule of at least 4 T P samples per replica
    (the Stein regression's unknowns, with a margin) needs it (12 at T = 1000, S = 1e5).

    Examples
    --------
    >>> replicas_for(400, 10**5), replicas_for(1000, 10**5)
    (16, 12)
    """
    return max(2, min(16, S // (4 * T * PAPER["P"])))


def measure(T: int, S: int, root: Path = ROOT) -> dict:
    """One fresh-process solve at T with the package of checkout ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-m", "benchmarks.long_horizon", "--child",
                          json.dumps({"T": T, "S": S})], cwd=root if (
                              root / "benchmarks" / "long_horizon.py").exists() else ROOT,
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit_exponent(T: list[int], wall: list[float]) -> float:
    """Least-squares slope of log(wall) against log(T).

    Examples
    --------
    >>> round(fit_exponent([100, 200, 400], [1.0, 4.0, 16.0]), 6)
    2.0
    """
    return float(np.polyfit(np.log(T), np.log(wall), 1)[0])


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[100, 200, 400, 1000])
    ap.add_argument("--samples", type=float, default=1e5)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--root", type=Path, default=None,
                    help="another checkout to measure side by side (before / after)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" /
                    "long_horizon.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        # the child imports the package of its PYTHONPATH (this checkout or --root)
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0])
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    S = int(args.samples)
    versions = {"after": ROOT} if args.root is None else {"before": args.root.resolve(),
                                                           "after": ROOT}
    rows = []
    print(f"paper problem, S = {S:.0e}, 16 replicas (fewer if T P > S / 64); load: "
          f"{_uptime()}", flush=True)
    for T in args.T:
        row = {"T": T}
        for name, root in versions.items():
            runs = [measure(T, S, root) for _ in range(args.repeats)]
            row[name] = {"wall": statistics.median(r["wall"] for r in runs),
                         "cpu": statistics.median(r["cpu"] for r in runs),
                         "peak_rss_gib": max(r["peak_rss"] for r in runs) / GIB,
                         "M01_last": runs[0]["M01_last"], "runs": runs}
        text = f"T = {T:5d} ({replicas_for(T, S)} replicas): " + "; ".join(
            f"{n} {row[n]['wall']:7.1f} s wall ({row[n]['cpu']:7.1f} s CPU), "
            f"{row[n]['peak_rss_gib']:.2f} GiB" for n in versions)
        if "before" in row:
            row["ratio"] = row["before"]["wall"] / row["after"]["wall"]
            text += f"; before / after {row['ratio']:.2f}"
        print(text + f"  [{_uptime()}]", flush=True)
        rows.append(row)
    fits = {}
    if len(rows) >= 2:
        for name in versions:
            fits[name] = fit_exponent([r["T"] for r in rows], [r[name]["wall"] for r in rows])
            print(f"fitted exponent of wall time in T ({name}): {fits[name]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": S, "load": _uptime(), "rows": rows,
                                    "exponent": fits}, indent=1))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
