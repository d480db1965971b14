"""``python -m benchmarks``: accuracy and speed regression benchmarks of the dmft package.

Runs the accuracy suite (``benchmarks.accuracy``) and the speed/memory suite
(``benchmarks.speed``), writes ``<out>/latest_<mode>.json``, ``.md`` and ``.png``, prints the
markdown table and compares with ``benchmarks/baseline.json``. Exit status 1 on a regression
(an accuracy case failing where the baseline passed, a side-by-side speed ratio worse than the
baseline's by more than ``--speed-factor``, a gated floor missed), 0 otherwise.

``<out>`` is ``benchmarks/results/local/`` by default, which git ignores: a run changes no
tracked file. The results committed in ``benchmarks/results/`` are snapshots written on purpose
(``--out benchmarks/results``), like the baseline (``--update-baseline``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .report import SPEED_FACTOR, compare_with_baseline, markdown, merge_baseline, plot, to_json
from .variants import VARIANTS, SolveFn, get_variant

__all__ = ["main", "run", "BASELINE"]

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"
LOCAL_RESULTS = HERE / "results" / "local"  # ignored by git (.gitignore)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run(mode: str = "quick", parts: tuple[str, ...] = ("accuracy", "speed"),
        variant: str = "correct", solve: SolveFn | None = None, repeats: int = 3,
        cases: tuple[str, ...] | None = None, baseline: dict | None = None,
        speed_factor: float = SPEED_FACTOR, log=print) -> dict:
    """Run the benchmarks and compare with ``baseline``; returns the result dictionary.

    Parameters
    ----------
    mode : {"quick", "full"}
    parts : tuple of {"accuracy", "speed"}
    variant : str
        Name of the solver hook (``benchmarks.variants.VARIANTS``), recorded in the output.
    solve : callable, optional
        Solver hook overriding ``variant`` (``solve(problem, samples, seed, estimator)``).
    repeats : int
        Interleaved repeats per speed configuration.
    cases : tuple of str, optional
        Subset of the accuracy cases (default all).
    baseline : dict, optional
        Parsed ``baseline.json``; None compares with nothing (every failing accuracy case is
        then a regression).
    speed_factor : float
        Allowed worsening factor of side-by-side speed ratios.

    Returns
    -------
    dict
        ``meta``, ``cases`` (notes), ``accuracy`` and ``speed`` records, ``floors``,
        ``regressions``, ``baseline_notes``.
    """
    import numba
    import numpy as np

    from .accuracy import run_accuracy
    from .cases import get_cases
    from .speed import evaluate_floors, run_speed

    hook = solve if solve is not None else get_variant(variant)
    start = time.perf_counter()
    meta = {"mode": mode, "variant": variant,
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _commit(), "cpu_count": os.cpu_count(), "load_start": os.getloadavg()[0],
            "numba_threads": numba.get_num_threads(), "numpy": np.__version__,
            "numba": numba.__version__, "python": sys.version.split()[0]}
    result: dict = {"meta": meta, "cases": {}, "accuracy": [], "speed": [], "floors": []}
    if "accuracy" in parts:
        built = get_cases(cases)
        result["cases"] = {c.name: f"{c.title}. {c.note}" for c in built}
        if log:
            log(f"accuracy ({mode}, solver variant {variant}):")
        result["accuracy"] = run_accuracy(mode, hook, built, log=log)
    if "speed" in parts:
        if log:
            log(f"speed and memory ({mode}, {repeats} repeats, fresh process per configuration):")
        result["speed"] = run_speed(mode, repeats=repeats, log=log)
        result["floors"] = evaluate_floors(result["speed"])
    meta["load_end"] = os.getloadavg()[0]
    meta["total_wall_s"] = time.perf_counter() - start
    result["regressions"], result["baseline_notes"] = compare_with_baseline(
        result, baseline, speed_factor)
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="one sample size per case, small speed checks (< 3 min; the default)")
    size.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="S grids 1e4..1e7 and the S/T/P/d speed sweeps (~15 min)")
    p.set_defaults(mode="quick")
    p.add_argument("--only", choices=["accuracy", "speed"], help="run one part only")
    p.add_argument("--variant", choices=list(VARIANTS), default="correct",
                   help="solver hook: the shipped solver or a deliberately broken one")
    p.add_argument("--cases", help="comma-separated subset of accuracy cases")
    p.add_argument("--repeats", type=int, default=3,
                   help="speed repeats per configuration (medians; default 3)")
    p.add_argument("--baseline", type=Path, default=BASELINE, help="baseline JSON to compare")
    p.add_argument("--no-baseline", action="store_true", help="compare with nothing")
    p.add_argument("--update-baseline", action="store_true",
                   help="merge this run's results into the baseline file")
    p.add_argument("--speed-factor", type=float, default=SPEED_FACTOR,
                   help=f"allowed worsening of speed ratios (default {SPEED_FACTOR:g})")
    p.add_argument("--out", type=Path, default=LOCAL_RESULTS,
                   help="directory for latest_<mode>.json/.md/.png (default: "
                        "benchmarks/results/local/, ignored by git; benchmarks/results/ holds "
                        "the committed snapshot)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 on a regression)."""
    args = _parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    if not args.speed_factor >= 1:
        raise SystemExit(f"--speed-factor must be >= 1, got {args.speed_factor}")
    parts = (args.only,) if args.only else ("accuracy", "speed")
    cases = tuple(c.strip() for c in args.cases.split(",")) if args.cases else None
    baseline = None
    if not args.no_baseline and args.baseline.exists():
        baseline = json.loads(args.baseline.read_text())
    result = run(args.mode, parts, args.variant, repeats=args.repeats, cases=cases,
                 baseline=baseline, speed_factor=args.speed_factor)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"latest_{args.mode}" + ("" if args.variant == "correct" else f"_{args.variant}")
    to_json(result, args.out / f"{stem}.json")
    text = markdown(result)
    (args.out / f"{stem}.md").write_text(text)
    if not args.no_plot:
        plot(result, args.out / f"{stem}.png")
    print()
    print(text)
    print(f"written: {args.out / stem}.json, .md" + ("" if args.no_plot else ", .png"))
    if args.update_baseline:
        if args.variant != "correct":
            raise SystemExit("refusing to write a baseline from a broken solver variant")
        old = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
        args.baseline.write_text(json.dumps(merge_baseline(old, result), indent=1,
                                            sort_keys=True) + "\n")
        print(f"baseline updated: {args.baseline}")
    return 1 if result["regressions"] else 0
