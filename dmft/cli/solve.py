"""``dmft solve`` and ``dmft simulate``: one problem from the options, one saved trajectory."""

from __future__ import annotations

import argparse

from .common import (
    EXIT_OK,
    add_problem_options,
    add_quiet,
    count,
    error,
    print_trajectory,
    problem_from,
    progress,
    time_options,
)


def register(subparsers) -> None:
    """Add ``solve`` and ``simulate`` to an ``argparse`` subparsers object."""
    _register_solve(subparsers)
    _register_simulate(subparsers)


def _register_solve(subparsers) -> None:
    from ..api import THEORIES

    p = subparsers.add_parser(
        "solve",
        help="solve the theory of one problem (multi-pass DMFT or one-pass) and save it",
        description="Solve the multi-pass DMFT (docs/theory/dmft.md) or the one-pass theory "
                    "(docs/theory/one-pass.md) of the problem given by the options; print M, "
                    "e_train, e_gen per t and save the trajectory to --out.",
    )
    add_problem_options(p)
    g = p.add_argument_group("solver")
    g.add_argument("--method", choices=THEORIES, default="dmft",
                   help="multi-pass DMFT (default) or one-pass theory; a one-pass schedule is "
                        "always solved by the one-pass theory")
    g.add_argument("--samples", type=count, default=10**6,
                   help="DMFT effective samples (default 1e6)")
    g.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    g.add_argument("--estimator", choices=("stein", "pathwise"), default="stein",
                   help="DMFT estimator of Lambda and R (default stein)")
    g.add_argument("--replicas", type=int, default=16,
                   help="DMFT independent sub-solves for the error bars (default 16)")
    g.add_argument("--checkpoint", metavar="DIR", default=None,
                   help="DMFT: save the solve's state in DIR every few seconds; the same "
                        "command run again after an interruption resumes from it (bit-identical "
                        "result); DIR is deleted when the solve completes")
    p.add_argument("--out", default="solve.h5", metavar="FILE.h5",
                   help="where to save the trajectory (default solve.h5)")
    add_quiet(p)
    p.set_defaults(func=_cmd_solve)


def _cmd_solve(args: argparse.Namespace) -> int:
    from ..api import method_for, solve

    try:
        prob = problem_from(args)
        options = time_options(args)
        name = method_for(prob, args.method).name
        if name in ("dmft", "dmft-flow"):  # DMFT options apply
            options.update(samples=args.samples, seed=args.seed, estimator=args.estimator,
                           replicas=args.replicas, progress=progress(args))
        if args.checkpoint is not None:
            if name != "dmft":
                raise ValueError(f"--checkpoint applies to the multi-pass DMFT of discrete GD, "
                                 f"not to method {name!r}")
            options["checkpoint"] = args.checkpoint
        traj = solve(prob, method=args.method, **options)
    except (ValueError, TypeError) as exc:
        return error(str(exc))
    return _print_and_save(traj, args.out)


def _register_simulate(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="run finite-d gradient descent over several seeds and save mean and SE",
        description="Finite-d GD on the problem given by the options (docs/theory/model.md), "
                    "repeated over --seeds independent runs; print M, e_train, e_gen per t "
                    "(mean and standard error) and save the trajectory to --out.",
    )
    add_problem_options(p)
    g = p.add_argument_group("simulation")
    g.add_argument("--d", type=count, default=1000, help="input dimension (default 1000)")
    g.add_argument("--seeds", type=int, default=8, help="independent runs (default 8)")
    g.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--out", default="simulate.h5", metavar="FILE.h5",
                   help="where to save the trajectory (default simulate.h5)")
    add_quiet(p)
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ..api import simulate

    try:
        traj = simulate(problem_from(args), d=args.d, seeds=args.seeds, seed=args.seed,
                        progress=progress(args), **time_options(args))
    except (ValueError, TypeError) as exc:
        return error(str(exc))
    return _print_and_save(traj, args.out)


def _print_and_save(traj, out: str) -> int:
    print_trajectory(traj)
    traj.save(out)
    print(f"saved to {out}")
    return EXIT_OK
