"""``dmft run``: the default job, the paper's Fig. 2 centre problem, theory against simulation."""

from __future__ import annotations

import argparse

from .common import EXIT_DISAGREE, EXIT_OK, add_quiet, count, error, progress, say

RUN_GROUPS = ("one-pass", "simulation")  # groups of run.h5 besides the DMFT at the root


def register(subparsers) -> None:
    """Add ``run`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "run",
        help="the default job: the paper's Fig. 2 centre problem, theory vs simulation",
        description=(
            "Solve g* = tanh(z1 + He3(z2)), P = 2 ReLU units, alpha = 3, eta = 0.2, T = 7 "
            "(the paper's Fig. 2 centre) by the multi-pass DMFT and by the one-pass theory, "
            "simulate finite-d GD, print the comparison of DMFT and simulation (z-scores per t, "
            "verdict), and save the trajectories (DMFT at the root of the HDF5 file, so "
            "`dmft.load` and `dmft compare` read it; groups 'one-pass' and 'simulation', read "
            "with dmft.io.read_group) and a figure next to it (.png). Exit code 0 when done "
            "(whatever the verdict; with --strict 1 if DMFT and simulation disagree), 2 on "
            "errors."
        ),
    )
    p.add_argument("--samples", type=count, default=10**6,
                   help="DMFT effective samples (default 1e6)")
    p.add_argument("--d", type=count, default=1000, help="simulation dimension (default 1000)")
    p.add_argument("--seeds", type=int, default=16, help="simulation runs (default 16)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--out", default="run.h5", metavar="FILE.h5",
                   help="trajectories (default run.h5); the figure goes to FILE.png")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 1 if DMFT and simulation disagree")
    add_quiet(p)
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ..api import simulate, solve
    from ..compare import compare
    from ..figures import FigureData, Sizes, orthogonal_direction, overlap_panels, plot
    from ..gaussian import first_hermite
    from ..io import atomic_h5file, write_group
    from ..problem import Problem

    try:
        sizes = Sizes(samples=args.samples, d=args.d, seeds=args.seeds, seed=args.seed)
    except (TypeError, ValueError) as exc:
        return error(str(exc))
    prob = Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    show = progress(args)
    trajs, start = {}, time.perf_counter()
    jobs = (
        ("dmft", f"multi-pass DMFT, S = {sizes.samples:.0e}",
         lambda: solve(prob, samples=sizes.samples, seed=sizes.seed, progress=show)),
        ("one-pass", "one-pass theory", lambda: solve(prob, method="one-pass")),
        ("sim", f"simulation, d = {sizes.d}, {sizes.seeds} seeds",
         lambda: simulate(prob, d=sizes.d, seeds=sizes.seeds, seed=sizes.seed,
                          progress=show)),
    )
    from solvers.warmup import warm_on_first_compile

    try:
        # first run: the one-pass and simulator kernels compile in a helper process meanwhile
        with warm_on_first_compile(prob, ("one-pass", "simulate")) as warm:
            for key, label, job in jobs:
                t0 = time.perf_counter()
                warm.wait({"one-pass": "one-pass", "sim": "simulate"}.get(key, ""))
                trajs[key] = job()
                say(args, f"{label}: {time.perf_counter() - t0:.1f} s")
    except (ValueError, TypeError, MemoryError) as exc:
        return error(str(exc))
    report = compare(trajs["dmft"], trajs["sim"])
    contrast = compare(trajs["one-pass"], trajs["sim"])
    print(f"{prob!r}: multi-pass DMFT (A) vs finite-d simulation (B)")
    print(report.table("worst"))
    worst_t = contrast.argmax[1] if contrast.argmax else "-"
    print("for contrast, one-pass theory vs the same simulation (multi-pass GD reuses its "
          f"batch; the one-pass theory describes fresh batches): {contrast.verdict.upper()} "
          f"(normal-equivalent max|z| = {contrast.max_abs_z_equiv:.3g} at t = {worst_t}, "
          f"{contrast.tails} tails)")

    out = Path(args.out)
    png = out.with_suffix(".png")
    with atomic_h5file(out) as f:
        write_group(f, trajs["dmft"])
        write_group(f.create_group("one-pass"), trajs["one-pass"])
        write_group(f.create_group("simulation"), trajs["sim"])
    c1 = first_hermite(prob.target)
    panels = overlap_panels(trajs, [
        ("overlap along C1", "overlap along C1/|C1|", c1),
        ("orthogonal overlap", "overlap orthogonal to C1", orthogonal_direction(c1)),
    ])
    data = FigureData("run", "dmft run", _run_params(prob, sizes, report), [panels], {})
    fig = plot(data)
    fig.savefig(png, dpi=130)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"saved {out} (DMFT; groups {', '.join(RUN_GROUPS)}) and {png} "
          f"[{time.perf_counter() - start:.0f} s]")
    return EXIT_DISAGREE if args.strict and not report.passed else EXIT_OK


def _run_params(prob, sizes, report) -> str:
    return (f"g* = tanh(z1 + He3(z2)), P = {prob.P}, {prob.activation.name}, alpha = "
            f"{prob.alpha:g}, eta = {prob.eta:g}, a = (1, -1)/sqrt(2), M_0 = 0, Q_0 = I; "
            f"{sizes.describe()}; DMFT vs simulation: {report.verdict} "
            f"(normal-equivalent max|z| {report.max_abs_z_equiv:.2g}, critical "
            f"{report.z_crit:.2g}, {report.tails} tails)")
