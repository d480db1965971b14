"""``dmft compare A.h5 B.h5 [B2.h5 ...]``: z-scores, chi2 and a verdict for two trajectories."""

from __future__ import annotations

import argparse

from .common import EXIT_DISAGREE, EXIT_OK, error


def register(subparsers) -> None:
    """Add ``compare`` to an ``argparse`` subparsers object."""
    from ..trajectory import OBSERVABLES

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


def _load_all(paths: list[str]) -> list:
    """Load trajectories; raises OSError/ValueError/KeyError with the offending path."""
    from ..io import load

    out = []
    for path in paths:
        try:
            out.append(load(path))
        except (OSError, ValueError, KeyError) as exc:
            raise type(exc)(f"cannot read {path!r}: {exc}") from exc
    return out


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare, extrapolate

    try:
        a, *bs = _load_all([args.a, *args.b])
        b = bs[0] if len(bs) == 1 else extrapolate(bs)
        report = compare(a, b, threshold=args.threshold, observables=args.observables)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return error(str(exc))
    print(report.table("all" if args.all_entries else "worst"))
    if args.plot:
        import matplotlib.pyplot as plt

        fig = report.plot()
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"figure saved to {args.plot}")
    return EXIT_OK if report.passed else EXIT_DISAGREE
