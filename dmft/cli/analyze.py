"""``dmft analyze TARGET``: which directions one-pass and multi-pass GD learn, and when."""

from __future__ import annotations

import argparse

from .common import EXIT_OK


def register(subparsers) -> None:
    """Add ``analyze`` to an ``argparse`` subparsers object."""
    from ..targets import TARGETS

    p = subparsers.add_parser(
        "analyze",
        help="learnability analysis of a target (information/leap exponents, learned "
             "subspaces, hard directions)",
        description="Which directions one-pass and multi-pass GD learn, and when "
                    "(docs/theory/learnability.md). Prints a report for the paper's student by "
                    "default (ReLU, P = 2, alpha 3, eta 0.2: the activation's parities enter "
                    "the verdicts, all options enter the step-1 overlap M_1); --generic "
                    "analyses the target alone.",
    )
    p.add_argument("target", choices=sorted(TARGETS), help="registry name of the target")
    p.add_argument("--k-max", type=int, default=4, help="largest power of y (default 4)")
    p.add_argument("--cond-degree", type=int, default=2,
                   help="degree of the conditioning polynomials in learned coordinates")
    p.add_argument("--max-degree", type=int, default=6,
                   help="largest Hermite degree for information exponents (default 6)")
    p.add_argument("--leap-degree", type=int, default=4,
                   help="truncation degree for the leap exponent (default 4)")
    # the default is dmft.learnability.DEFAULT_NODES, not printed here: importing the
    # analysis (scipy) for the help text would make every `dmft` command slower to start
    p.add_argument("--nodes", type=int, default=None,
                   help="Gauss-Hermite nodes per axis (default: by the number K of teacher "
                        "directions, dmft.learnability.DEFAULT_NODES)")
    p.add_argument("--generic", action="store_true",
                   help="verdicts for a generic student (target properties only, no M_1)")
    p.add_argument("--P", type=int, default=2, help="hidden units, for M_1 (default 2)")
    p.add_argument("--activation", default="relu",
                   help="student activation (default relu): its parities enter the verdicts")
    p.add_argument("--alpha", type=float, default=3.0, help="n/d, for M_1 (default 3)")
    p.add_argument("--eta", type=float, default=0.2, help="learning rate, for M_1 (default 0.2)")
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..learnability import analyze
    from ..problem import Problem
    from ..targets import get_target

    problem = (get_target(args.target) if args.generic else
               Problem(target=args.target, P=args.P, activation=args.activation,
                       alpha=args.alpha, eta=args.eta))
    report = analyze(problem, k_max=args.k_max, cond_degree=args.cond_degree,
                     max_degree=args.max_degree, leap_degree=args.leap_degree, nodes=args.nodes)
    print(report)
    return EXIT_OK
