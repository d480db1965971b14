"""Command line interface: ``dmft run | solve | simulate | compare | figure | analyze | sweep``.

Each subcommand lives in the module that owns the idea; a module contributes a subcommand by
defining ``add_subcommands(subparsers)`` that registers parsers whose ``func`` takes the
parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# modules that contribute subcommands (missing ones are skipped so partial installs still work)
_COMMAND_MODULES = ("dmft.commands", "dmft.figures", "dmft.learnability", "dmft.sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmft",
        description="DMFT of gradient descent reusing batches in two-layer networks.",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
