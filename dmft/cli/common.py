"""What the subcommands share: exit codes, error output, options and trajectory printing.

Exit codes: 0 success (for ``compare``: the trajectories agree), 1 for ``compare`` (and ``run
--strict``): they disagree, 2 usage or input errors (unreadable file, bad option), as for
argparse errors.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_DISAGREE, EXIT_ERROR = 0, 1, 2


def error(message: str) -> int:
    """Print ``dmft: error: message`` on stderr; returns :data:`EXIT_ERROR`."""
    print(f"dmft: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def count(text: str) -> int:
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


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet`` on a subcommand, as after ``dmft``."""
    # SUPPRESS: a subcommand's --quiet must not reset ``dmft --quiet COMMAND``
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or messages")


def progress(args: argparse.Namespace) -> bool | None:
    """False with --quiet, else None: the solvers show tqdm bars when stderr is a terminal."""
    return False if getattr(args, "quiet", False) else None


def say(args: argparse.Namespace, message: str) -> None:
    """A message on stderr, unless --quiet."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def add_problem_options(p: argparse.ArgumentParser) -> None:
    """The fields of a :class:`dmft.Problem` as options (defaults: the paper's Fig. 2 centre)."""
    from ..activations import ACTIVATIONS
    from ..targets import TARGETS

    g = p.add_argument_group("problem (docs/theory/model.md; defaults: the paper's Fig. 2 "
                             "centre)")
    g.add_argument("--target", default="tanh-he1-he3",
                   help=f"teacher g* (registry name: {', '.join(TARGETS)})")
    g.add_argument("--P", type=int, default=2, help="hidden units (default 2)")
    g.add_argument("--activation", default="relu",
                   help=f"student activation ({', '.join(ACTIVATIONS)}; default relu)")
    g.add_argument("--alpha", type=float, default=3.0, help="n / d (default 3)")
    g.add_argument("--eta", type=float, default=None,
                   help="learning rate (default 0.2; not with --dynamics flow)")
    g.add_argument("--lam", type=float, default=0.0, help="weight decay (default 0)")
    g.add_argument("--T", type=int, default=None,
                   help="time points t = 0..T-1 (default 7; not with --dynamics flow)")
    g.add_argument("--schedule", default="full",
                   help="full | one-pass | cyclic(n_blocks) | bernoulli(b) (default full)")
    g.add_argument("--noise", type=float, default=0.0, help="label-noise variance (default 0)")
    g.add_argument("--dynamics", choices=("gd", "flow"), default="gd",
                   help="gd (default) or gradient flow (with --t-max; docs/theory/flow.md)")
    g.add_argument("--t-max", type=float, default=None, help="final time of gradient flow")
    g.add_argument("--temperature", type=float, default=0.0,
                   help="Langevin temperature tau (default 0)")
    g.add_argument("--dt", type=float, default=None,
                   help="time step of the reported grid of gradient flow (solver default)")
    g.add_argument("--loss", default="square",
                   help="training loss: square | logistic | hinge | huber | huber(threshold) "
                        "(default square)")


def problem_from(args: argparse.Namespace):
    """The :class:`dmft.Problem` of the options of :func:`add_problem_options`."""
    from ..problem import Problem

    return Problem(target=args.target, P=args.P, activation=args.activation, alpha=args.alpha,
                   eta=args.eta, lam=args.lam, T=args.T, schedule=args.schedule,
                   noise=args.noise, dynamics=args.dynamics, t_max=args.t_max,
                   temperature=args.temperature, loss=getattr(args, "loss", "square"))


def time_options(args: argparse.Namespace) -> dict:
    """``{"dt": ...}`` when --dt was given (flow problems), else nothing."""
    dt = getattr(args, "dt", None)
    return {} if dt is None else {"dt": dt}


def print_trajectory(traj) -> None:
    """One line per t: M (row-major) with its largest standard error, e_train, e_gen."""
    import numpy as np

    print(f"{traj.method}: {traj.problem!r}")
    for t in traj.t:
        m = np.array2string(traj.M[t], precision=4, separator=", ", suppress_small=True)
        m = " ".join(m.split())
        when = f"t={traj.time[t]:<6.4g}" if traj.problem.is_flow else f"t={t:<3d}"
        print(f"{when} M = {m} ± {traj.M_se[t].max():.2g}   "
              f"e_train = {traj.e_train[t]:.4g}   e_gen = {traj.e_gen[t]:.4g}")
