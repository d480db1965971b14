"""``python -m benchmarks.import_time``: how long ``import dmft`` takes warm, and how much is numba.

Each statement is timed inside a fresh interpreter (``time.perf_counter`` around the import, so
interpreter start-up is excluded), ``--repeats`` times in alternation, after one untimed run of
each (the bytecode and numba caches are then warm). Medians are printed with the 1-minute load
average: on a shared machine the absolute times scale with the load, the differences less so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = {
    "numpy": "import numpy",
    "numba": "import numba",
    "dmft": "import dmft",
    "dmft + solve": "import dmft, dmft.api, solvers.multipass.driver",
}
_PROBE = "import time\nt0 = time.perf_counter()\n{}\nprint(time.perf_counter() - t0)"


def time_import(statement: str) -> float:
    """Seconds ``statement`` takes in a fresh interpreter started in the repository root."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _PROBE.format(statement)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def measure(repeats: int = 10) -> dict[str, list[float]]:
    """Times of every statement of ``STATEMENTS``, ``repeats`` each, interleaved."""
    for statement in STATEMENTS.values():
        time_import(statement)  # warm the caches
    times: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(repeats):
        for name, statement in STATEMENTS.items():
            times[name].append(time_import(statement))
    return times


def main(argv: list[str] | None = None) -> None:
    """Print the medians (and the spread) of each import."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.import_time",
                                description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10, help="fresh processes per import")
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    times = measure(args.repeats)
    print(f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"medians of {args.repeats} fresh processes")
    for name, values in times.items():
        print(f"  {name:14s} {statistics.median(values):6.3f} s  "
              f"(min {min(values):.3f}, max {max(values):.3f})")
    own = statistics.median(a - b for a, b in zip(times["dmft"], times["numba"], strict=True))
    print(f"  import dmft beyond numba: {own:.3f} s (median of paired differences)")


if __name__ == "__main__":
    main()
