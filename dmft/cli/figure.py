"""``dmft figure fig1|...|fig5 --out FILE``: one of the paper's figures."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, add_quiet, error, progress


def register(subparsers) -> None:
    """Add ``figure`` to an ``argparse`` subparsers object."""
    from ..figures import FIGURES

    p = subparsers.add_parser(
        "figure",
        help="reproduce one of the paper's figures",
        description=(
            "Solve the multi-pass DMFT and the one-pass theory, simulate both algorithms at "
            "finite d and draw the figure as published: each hidden unit's signed overlap, "
            "theory lines, simulation dots with error bars, the paper's own curves drawn "
            "faintly (labelled 'published'), the settings printed on it and a note where they "
            "differ from the caption. fig5 (minibatches of size 1) is simulations, with a "
            "theory line only where one holds. Default sizes take minutes; --full uses the "
            "paper's d and seeds. See docs/reproducing-the-paper.md. 'flow' (not in the "
            "paper) draws multi-pass gradient flow (DMFT, simulations) against population "
            "gradient flow to t = 10 (docs/theory/flow.md)."
        ),
    )
    p.add_argument("name", choices=tuple(FIGURES), help="which figure")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="output image (format from the extension, e.g. .png or .pdf)")
    p.add_argument("--full", action="store_true", help="the paper's d and seeds (slow)")
    p.add_argument("--caption-settings", action="store_true",
                   help="the settings the captions state (ReLU, n = 3d, one eta per figure) and "
                        "the mean oriented overlap, instead of those that reproduce the "
                        "published panels")
    p.add_argument("--samples", type=int, help="DMFT effective samples (overrides the size)")
    p.add_argument("--d", type=int, help="simulation dimension (overrides the size)")
    p.add_argument("--seeds", type=int, help="simulation seeds (overrides the size)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--data", metavar="FILE.h5", help="also save the trajectories to FILE.h5")
    add_quiet(p)
    p.set_defaults(func=_cmd_figure)


def _cmd_figure(args: argparse.Namespace) -> int:
    import time

    from ..figures import DEFAULT_SIZES, FULL_SIZES, Sizes, make_figure

    base = (FULL_SIZES if args.full else DEFAULT_SIZES)[args.name]
    try:
        sizes = Sizes(samples=base.samples if args.samples is None else args.samples,
                      d=base.d if args.d is None else args.d,
                      seeds=base.seeds if args.seeds is None else args.seeds, seed=args.seed)
    except (TypeError, ValueError) as exc:
        return error(str(exc))
    start = time.perf_counter()
    make_figure(args.name, args.out, sizes=sizes, caption_settings=args.caption_settings,
                data_out=args.data, progress=progress(args))
    print(f"{args.name} saved to {args.out} ({time.perf_counter() - start:.0f} s)")
    if args.data:
        print(f"trajectories saved to {args.data}")
    return EXIT_OK
