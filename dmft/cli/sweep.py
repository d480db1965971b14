"""``dmft sweep CONFIG.toml``: a parameter sweep on Dask, described by a TOML file."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, error


def register(subparsers) -> None:
    """Add ``sweep`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "sweep",
        help="run a parameter sweep described by a TOML file on Dask",
        description=(
            "Expand the grid of CONFIG.toml, compute the methods it lists at every point on a "
            "Dask cluster (a local one by default), store every result in the HDF5 store as it "
            "arrives (rerunning computes only what is missing) and print the observable of "
            "[report] at time t. Exit code 0 on success, 2 on errors. See "
            "examples/sweep_he3.toml and docs/guide/sweeps.md."
        ),
    )
    p.add_argument("config", metavar="CONFIG.toml", help="sweep description")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (default: start a local cluster)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="numba threads per task (default: cores // task slots per host)")
    p.add_argument("--store", help="HDF5 store (default: the config's 'store')")
    # own dest: a subparser default would overwrite the global ``dmft --quiet``
    p.add_argument("--quiet", dest="sweep_quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    import sys

    from ..sweeps import format_report, load_config, sweep

    try:
        cfg = load_config(args.config)
    except (OSError, ValueError) as exc:
        return error(str(exc))
    except Exception as exc:  # tomllib.TOMLDecodeError and friends
        return error(f"cannot read {args.config}: {exc}")
    report = cfg.pop("report")
    if args.store:
        cfg["store"] = args.store
    quiet = getattr(args, "quiet", False) or getattr(args, "sweep_quiet", False)
    try:
        result = sweep(**cfg, client=args.scheduler, n_workers=args.workers,
                       numba_threads=args.threads, progress=False if quiet else None)
    except (ValueError, TypeError, RuntimeError) as exc:
        return error(str(exc))
    except KeyboardInterrupt:
        print(f"dmft: interrupted; the finished results are in {cfg['store']}, run the same "
              "command again to compute the rest", file=sys.stderr)
        return 130
    print(f"{result!r}\ncomputed {result.computed} result(s) now, stored in {result.store}\n")
    try:
        print(format_report(result, report.get("observable", "overlap"), report.get("t")))
    except (ValueError, TypeError) as exc:
        return error(f"[report] of {args.config}: {exc} (the results are stored; fix [report] "
                     "and run again to print them)")
    return EXIT_OK
