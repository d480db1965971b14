"""Subcommands of the ``dmft`` command line that work on trajectories (see :mod:`dmft.cli`).

Each subcommand is a pair: ``_add_<name>(subparsers)`` registers its parser and sets
``func=_cmd_<name>``; ``_cmd_<name>(args) -> int`` runs it and returns the exit code.
:func:`add_subcommands` registers them all; add new ones to ``_REGISTRARS``.

Exit codes: 0 success (for ``compare``: the trajectories agree), 1 for ``compare``: they
disagree, 2 usage or input errors (unreadable file, bad option), as for argparse errors.
"""

from __future__ import annotations

import argparse
import sys

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


# ----------------------------------------------------------------------------- registry
# one registrar per subcommand, in the order they appear in ``dmft --help``
_REGISTRARS = (_add_compare,)


def add_subcommands(subparsers) -> None:
    """Register this module's subcommands on an ``argparse`` subparsers object."""
    for register in _REGISTRARS:
        register(subparsers)
