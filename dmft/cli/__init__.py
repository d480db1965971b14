"""The ``dmft`` command: ``dmft run | solve | simulate | compare | figure | analyze | sweep``.

One module per subcommand (or pair); each defines ``register(subparsers)``, whose parsers set
``func``, a function of the parsed arguments returning the exit code. The library is imported
inside those functions, so ``dmft --help`` starts fast.
"""

from __future__ import annotations

import argparse

from . import analyze, compare, figure, run, solve, sweep

__all__ = ["build_parser", "main"]

# in the order of ``dmft --help`` (``solve`` registers solve and simulate)
_SUBCOMMANDS = (run, solve, compare, figure, analyze, sweep)


def build_parser() -> argparse.ArgumentParser:
    """The ``dmft`` argument parser with every subcommand."""
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="dmft",
        description="DMFT of gradient descent reusing batches in two-layer networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``dmft`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Examples
    --------
    >>> main(["solve", "--target", "he3", "--P", "1", "--out", "he3.h5"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)

