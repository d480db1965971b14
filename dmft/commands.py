"""Subcommands of the ``dmft`` command line that work on trajectories (see :mod:`dmft.cli`).

Each subcommand is a pair: ``_add_<name>(subparsers)`` registers its parser and sets
``func=_cmd_<name>``; ``_cmd_<name>(args) -> int`` runs it and returns the exit code.
:func:`add_subcommands` registers them all; add new ones to ``_REGISTRARS``.

Exit codes: 0 success (for ``compare``: the trajectories agree), 1 for ``compare`` (and ``run
--strict``): they disagree, 2 usage or input errors (unreadable file, bad option), as for
argparse errors.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .trajectory import OBSERVABLES

__all__ = ["add_subcommands"]

EXIT_OK, EXIT_DISAGREE, EXIT_ERROR = 0, 1, 2


def _error(message: str) -> int:
    print(f"dmft: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _load_all(paths: list[str]) -> list:
    """Load trajectories; raises OSError/ValueError/KeyError with the offending path."""
    from .io import load

    out = []
    for path in paths:
        try:
            out.append(load(path))
        except (OSError, ValueError, KeyError) as exc:
            raise type(exc)(f"cannot read {path!r}: {exc}") from exc
    return out


# ----------------------------------------------------------------------------- compare
def _add_compare(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two saved trajectories (z-scores, chi2, verdict)",
        description=(
            "Compare trajectory A with trajectory B entry by entry and print a per-t table of "
            "values, standard errors and z-scores with a verdict. Several B files are finite-d "
            "simulations at different d: they are extrapolated to d -> infinity (a + b/d) first. "
            "Exit code 0 if the two agree, 1 if not, 2 on errors."
        ),
    )
    p.add_argument("a", metavar="A.h5", help="first trajectory (e.g. a DMFT solution)")
    p.add_argument("b", metavar="B.h5", nargs="+",
                   help="second trajectory, or several simulations to extrapolate in 1/d")
    p.add_argument("--threshold", type=float, default=3.0,
                   help="family-wise significance in standard deviations (default 3; "
                        "Bonferroni-corrected over the compared entries)")
    p.add_argument("--observables", nargs="+", default=["M", "Q"], choices=OBSERVABLES,
                   help="observables to compare (default: M Q)")
    p.add_argument("--all-entries", action="store_true",
                   help="one table row per entry (default: the worst entry per t)")
    p.add_argument("--plot", metavar="FILE", help="also save the comparison figure to FILE")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, extrapolate

    try:
        a, *bs = _load_all([args.a, *args.b])
        b = bs[0] if len(bs) == 1 else extrapolate(bs)
        report = compare(a, b, threshold=args.threshold, observables=args.observables)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _error(str(exc))
    print(report.table("all" if args.all_entries else "worst"))
    if args.plot:
        import matplotlib.pyplot as plt

        fig = report.plot()
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"figure saved to {args.plot}")
    return EXIT_OK if report.passed else EXIT_DISAGREE


# ----------------------------------------------------------------------------- shared options
def _count(text: str) -> int:
    """An integer option that also accepts 1e6 or 10**6."""
    try:
        if "**" in text:
            base, exp = text.split("**")
            value = int(base) ** int(exp)
        else:
            value = float(text)
            if not value.is_integer():
                raise ValueError
            value = int(value)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected an integer (e.g. 1000, 1e6, 10**6), "
                                         f"got {text!r}") from None
    return value


def _add_quiet(p) -> None:
    # SUPPRESS: a subcommand's --quiet must not reset ``dmft --quiet COMMAND``
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or messages")


def _progress(args: argparse.Namespace) -> bool | None:
    """False with --quiet, else None: the solvers show tqdm bars when stderr is a terminal."""
    return False if getattr(args, "quiet", False) else None


def _say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _add_problem_options(p) -> None:
    from .activations import ACTIVATIONS
    from .targets import TARGETS

    g = p.add_argument_group("problem (SPEC section 1; defaults: the paper's Fig. 2 centre)")
    g.add_argument("--target", default="tanh-he1-he3",
                   help=f"teacher g* (registry name: {', '.join(TARGETS)})")
    g.add_argument("--P", type=int, default=2, help="hidden units (default 2)")
    g.add_argument("--activation", default="relu",
                   help=f"student activation ({', '.join(ACTIVATIONS)}; default relu)")
    g.add_argument("--alpha", type=float, default=3.0, help="n / d (default 3)")
    g.add_argument("--eta", type=float, default=0.2, help="learning rate (default 0.2)")
    g.add_argument("--lam", type=float, default=0.0, help="weight decay (default 0)")
    g.add_argument("--T", type=int, default=7, help="time points t = 0..T-1 (default 7)")
    g.add_argument("--schedule", default="full",
                   help="full | one-pass | cyclic(n_blocks) | bernoulli(b) (default full)")
    g.add_argument("--noise", type=float, default=0.0, help="label-noise variance (default 0)")


def _problem(args: argparse.Namespace):
    from .problem import Problem

    return Problem(target=args.target, P=args.P, activation=args.activation, alpha=args.alpha,
                   eta=args.eta, lam=args.lam, T=args.T, schedule=args.schedule,
                   noise=args.noise)


def _print_trajectory(traj) -> None:
    """One line per t: M (row-major) with its largest standard error, e_train, e_gen."""
    print(f"{traj.method}: {traj.problem!r}")
    for t in traj.t:
        m = np.array2string(traj.M[t], precision=4, separator=", ", suppress_small=True)
        m = " ".join(m.split())
        print(f"t={t:<3d} M = {m} ± {traj.M_se[t].max():.2g}   "
              f"e_train = {traj.e_train[t]:.4g}   e_gen = {traj.e_gen[t]:.4g}")


# ----------------------------------------------------------------------------- solve
def _add_solve(subparsers) -> None:
    p = subparsers.add_parser(
        "solve",
        help="solve the theory of one problem (multi-pass DMFT or one-pass) and save it",
        description="Solve the multi-pass DMFT (SPEC 3-5) or the one-pass theory (SPEC 6) of "
                    "the problem given by the options; print M, e_train, e_gen per t and save "
                    "the trajectory to --out.",
    )
    _add_problem_options(p)
    g = p.add_argument_group("solver")
    g.add_argument("--method", choices=("dmft", "one-pass"), default="dmft",
                   help="multi-pass DMFT (default) or one-pass theory")
    g.add_argument("--samples", type=_count, default=10**6,
                   help="DMFT effective samples (default 1e6)")
    g.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    g.add_argument("--estimator", choices=("stein", "pathwise"), default="stein",
                   help="DMFT estimator of Lambda and R (default stein)")
    g.add_argument("--replicas", type=int, default=16,
                   help="DMFT independent sub-solves for the error bars (default 16)")
    p.add_argument("--out", default="solve.h5", metavar="FILE.h5",
                   help="where to save the trajectory (default solve.h5)")
    _add_quiet(p)
    p.set_defaults(func=_cmd_solve)


def _cmd_solve(args: argparse.Namespace) -> int:
    from .api import solve

    try:
        prob = _problem(args)
        options = {}
        # a one-pass schedule is solved by the one-pass theory whatever --method says
        if args.method == "dmft" and prob.schedule.name != "one-pass":
            options = {"samples": args.samples, "seed": args.seed, "estimator": args.estimator,
                       "replicas": args.replicas, "progress": _progress(args)}
        traj = solve(prob, method=args.method, **options)
    except (ValueError, TypeError) as exc:
        return _error(str(exc))
    _print_trajectory(traj)
    traj.save(args.out)
    print(f"saved to {args.out}")
    return EXIT_OK


# ----------------------------------------------------------------------------- simulate
def _add_simulate(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run finite-d gradient descent over several seeds and save mean and SE",
        description="Finite-d GD on the problem given by the options (SPEC 1), repeated over "
                    "--seeds independent runs; print M, e_train, e_gen per t (mean and standard "
                    "error) and save the trajectory to --out.",
    )
    _add_problem_options(p)
    g = p.add_argument_group("simulation")
    g.add_argument("--d", type=_count, default=1000, help="input dimension (default 1000)")
    g.add_argument("--seeds", type=int, default=8, help="independent runs (default 8)")
    g.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--out", default="simulate.h5", metavar="FILE.h5",
                   help="where to save the trajectory (default simulate.h5)")
    _add_quiet(p)
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .api import simulate

    try:
        traj = simulate(_problem(args), d=args.d, seeds=args.seeds, seed=args.seed,
                        progress=_progress(args))
    except (ValueError, TypeError) as exc:
        return _error(str(exc))
    _print_trajectory(traj)
    traj.save(args.out)
    print(f"saved to {args.out}")
    return EXIT_OK


# ----------------------------------------------------------------------------- run
RUN_GROUPS = ("one-pass", "simulation")  # groups of run.h5 besides the DMFT at the root


def _add_run(subparsers) -> None:
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
    p.add_argument("--samples", type=_count, default=10**6,
                   help="DMFT effective samples (default 1e6)")
    p.add_argument("--d", type=_count, default=1000, help="simulation dimension (default 1000)")
    p.add_argument("--seeds", type=int, default=16, help="simulation runs (default 16)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--out", default="run.h5", metavar="FILE.h5",
                   help="trajectories (default run.h5); the figure goes to FILE.png")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 1 if DMFT and simulation disagree")
    _add_quiet(p)
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from .api import simulate, solve
    from .compare import compare
    from .figures import FigureData, Sizes, orthogonal_direction, overlap_panels, plot
    from .gaussian import first_hermite
    from .io import atomic_h5file, write_group
    from .problem import Problem

    try:
        sizes = Sizes(samples=args.samples, d=args.d, seeds=args.seeds, seed=args.seed)
    except (TypeError, ValueError) as exc:
        return _error(str(exc))
    prob = Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    progress = _progress(args)
    trajs, start = {}, time.perf_counter()
    jobs = (
        ("dmft", f"multi-pass DMFT, S = {sizes.samples:.0e}",
         lambda: solve(prob, samples=sizes.samples, seed=sizes.seed, progress=progress)),
        ("one-pass", "one-pass theory", lambda: solve(prob, method="one-pass")),
        ("sim", f"simulation, d = {sizes.d}, {sizes.seeds} seeds",
         lambda: simulate(prob, d=sizes.d, seeds=sizes.seeds, seed=sizes.seed,
                          progress=progress)),
    )
    try:
        for key, label, job in jobs:
            t0 = time.perf_counter()
            trajs[key] = job()
            _say(args, f"{label}: {time.perf_counter() - t0:.1f} s")
    except (ValueError, TypeError, MemoryError) as exc:
        return _error(str(exc))
    report = compare(trajs["dmft"], trajs["sim"])
    contrast = compare(trajs["one-pass"], trajs["sim"])
    print(f"{prob!r}: multi-pass DMFT (A) vs finite-d simulation (B)")
    print(report.table("worst"))
    worst_t = contrast.argmax[1] if contrast.argmax else "-"
    print("for contrast, one-pass theory vs the same simulation (multi-pass GD reuses its "
          f"batch; the one-pass theory describes fresh batches): {contrast.verdict.upper()} "
          f"(max|z| = {contrast.max_abs_z:.3g} at t = {worst_t})")

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
            f"(max|z| {report.max_abs_z:.2g}, critical {report.z_crit:.2g})")


# ----------------------------------------------------------------------------- registry
# one registrar per subcommand, in the order they appear in ``dmft --help``
_REGISTRARS = (_add_run, _add_solve, _add_simulate, _add_compare)


def add_subcommands(subparsers) -> None:
    """Register this module's subcommands on an ``argparse`` subparsers object."""
    for register in _REGISTRARS:
        register(subparsers)
