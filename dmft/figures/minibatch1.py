"""Fig. 5: minibatches of size 1 on Fig. 3's problem, simulated at finite d.

One epoch is n = alpha d steps of one sample each, and each step moves the overlaps by O(1/d):
an epoch of size-1 steps moves them as much as one full-batch step. Three ways to pick the sample
of step t: ``"sequential"`` (the same n samples in the same order every epoch), ``"with
replacement"`` (a uniformly random one of the n samples at every step) and ``"fresh"`` (a new
sample at every step: online SGD). Which theory applies (docs/reproducing-the-paper.md, Fig. 5):
while no sample is reused, the d -> infinity limit is the online-SGD ODE (the one-pass theory
with batches alpha/m -> 0, m steps per epoch), and with M_0 = 0 and E[g* z] = 0 its solution is
M = 0 at all times; that line is drawn for fresh samples (every epoch) and for sequential
cycling during the first epoch only. With reuse, neither the multi-pass DMFT (a fixed number of
blocks per epoch as d -> infinity) nor the one-pass theory describes size-1 minibatches, and no
line is drawn.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from ..problem import Problem
from ..schedules import Cyclic
from ..stats import mean_se
from ..trajectory import DivergenceError, Trajectory, base_provenance
from ..validation import integer
from .data import FigureData, Series, Sizes
from .overlaps import signed_panel
from .reproduction import _Z, _fig3_problem, panel_settings
from .sizes import resolve_sizes

__all__ = ["ORDERS", "simulate_size1", "fig5"]

ORDERS = ("sequential", "with replacement", "fresh")
_TITLES = {"sequential": "sequential: the same n samples, same order, every epoch",
           "with replacement": "with replacement: a random one of the n samples per step",
           "fresh": "fresh samples (online SGD)"}


def _initial_weights(problem: Problem, d: int, rng: np.random.Generator):
    """Teacher (K, d) with W* W*^T / d = I and student (P, d) with overlaps M_0, Q_0."""
    P, K = problem.P, problem.K
    basis, R = np.linalg.qr(rng.standard_normal((d, K + P)))
    frame = math.sqrt(d) * (basis * np.sign(np.diag(R))).T
    w, V = np.linalg.eigh(problem.Qperp0)
    root = (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T
    W0 = problem.M0 @ frame[:K] + root @ frame[K:]
    return np.ascontiguousarray(frame[:K]), np.ascontiguousarray(W0)


def _data(problem: Problem, n: int, Wstar: np.ndarray, rng: np.random.Generator):
    """n samples: X (n, d), labels y (n,), teacher fields Z = X W*^T / sqrt(d) (n, K)."""
    X = rng.standard_normal((n, Wstar.shape[1]))
    Z = np.ascontiguousarray(X @ Wstar.T / math.sqrt(Wstar.shape[1]))
    y = problem.target(Z.T)
    if problem.noise > 0:
        y = y + math.sqrt(problem.noise) * rng.standard_normal(n)
    return X, np.ascontiguousarray(y), Z


def _one_run(problem: Problem, d: int, n: int, epochs: int, order: str, marks: np.ndarray,
             rng: np.random.Generator, M_run: np.ndarray, Q_run: np.ndarray) -> None:
    """One run: fills M_run (points, P, K) and Q_run (points, P, P) at the marked steps of
    every epoch (marks: steps within an epoch, 0 < marks <= n)."""
    from solvers.numerics.gd import small_block_steps  # the simulator's sequential kernel

    sig, dsig, _ = problem.activation.cfuncs()
    Wstar, W = _initial_weights(problem, d, rng)
    X, y, Z = _data(problem, n, Wstar, rng)
    M_out = np.empty((n + 1, problem.P, problem.K))
    Q_out = np.empty((n + 1, problem.P, problem.P))
    starts = np.arange(n + 1, dtype=np.int64)  # blocks of one sample
    M_run[0], Q_run[0] = W @ Wstar.T / d, W @ W.T / d
    for e in range(epochs):
        if order == "with replacement":
            pick = rng.integers(n, size=n)
            Xe, ye, Ze = X[pick], y[pick], np.ascontiguousarray(Z[pick])
        elif order == "fresh" and e > 0:
            Xe, ye, Ze = _data(problem, n, Wstar, rng)
        else:
            Xe, ye, Ze = X, y, Z
        stop = small_block_steps((Xe, ye, Ze, Wstar), W, problem.a, sig, dsig,
                                 (problem.eta, problem.lam), starts, (0, n + 1), (M_out, Q_out),
                                 problem.loss.kernel_args())
        if stop < n + 1:
            raise DivergenceError(f"size-1 SGD diverged at step {stop} of epoch {e + 1} "
                                  f"(d={d}, eta={problem.eta}); reduce eta", stop, None)
        rows = 1 + e * len(marks) + np.arange(len(marks))
        M_run[rows], Q_run[rows] = M_out[marks], Q_out[marks]


def simulate_size1(problem: Problem, d: int, seeds: int = 8, *, epochs: int = 4,
                   order: str = "sequential", points_per_epoch: int = 5, seed: int = 0,
                   progress: bool | None = None) -> Trajectory:
    """Finite-d SGD with minibatches of one sample: ``epochs`` epochs of n = alpha d steps.

    Each step is ``W <- (1 - eta lam) W - eta F(u_mu, y_mu) x_mu^T / sqrt(d)`` for one sample
    mu (the loss of the one sample, as the simulator's ``Cyclic(n)``), by the simulator's
    sequential kernel.

    Parameters
    ----------
    problem : Problem
        Target, student, alpha (n = round(alpha d)), eta, lam, M0, Q0, noise; its ``T`` and
        ``schedule`` are ignored.
    d : int
        Input dimension, >= P + K.
    seeds : int
        Independent runs (teacher, initialisation, data and draws), >= 2.
    epochs : int
        Passes of n steps, >= 1.
    order : {"sequential", "with replacement", "fresh"}
        Sample of step t: row t mod n of one fixed data set; a uniformly random row of it; a
        new sample (online SGD).
    points_per_epoch : int
        Overlaps recorded every n / points_per_epoch steps (rounded).
    seed : int
        Master seed; run i uses ``SeedSequence(seed).spawn(seeds)[i]``.
    progress : bool, optional
        One line per run on stderr (None: when stderr is a terminal).

    Returns
    -------
    Trajectory
        ``M`` (points, P, K), ``Q`` (points, P, P) with points = epochs * points_per_epoch + 1
        (time index = epochs * points_per_epoch: x = index / points_per_epoch epochs), mean and
        standard error over runs; e_train and e_gen NaN (not computed). Its problem has
        ``schedule = Cyclic(n)`` (one epoch = n steps of one sample) and ``T`` = points;
        ``provenance["order"]`` says how samples were picked. ``diagnostics["M_runs"]``
        (seeds, points, P, K), ``diagnostics["Q_runs"]``.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="z1z2z3-he3", P=4, activation="relu", alpha=5.0, eta=0.2)
    >>> traj = simulate_size1(prob, d=200, seeds=4, epochs=2, order="with replacement")
    ... # doctest: +SKIP
    >>> traj.M.shape  # doctest: +SKIP
    (11, 4, 4)
    """
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not valid; allowed: {ORDERS}")
    P, K = problem.P, problem.K
    d = integer("d", d, P + K)
    seeds = integer("seeds", seeds, 2)
    epochs = integer("epochs", epochs, 1)
    n = int(round(problem.alpha * d))
    per = integer("points_per_epoch", points_per_epoch, 1, max(1, n))
    seed = integer("seed", seed, 0)
    marks = np.round(np.arange(1, per + 1) * n / per).astype(np.int64)
    points = epochs * per + 1
    M_runs = np.full((seeds, points, P, K), np.nan)
    Q_runs = np.full((seeds, points, P, P), np.nan)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    start = time.perf_counter()
    for i, run_ss in enumerate(np.random.SeedSequence(seed).spawn(seeds)):
        _one_run(problem, d, n, epochs, order, marks, np.random.default_rng(run_ss),
                 M_runs[i], Q_runs[i])
        if show:
            print(f"size-1 SGD ({order}) d={d}: run {i + 1}/{seeds}, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    (M, M_se), (Q, Q_se) = mean_se(M_runs), mean_se(Q_runs)
    nan = np.full(points, np.nan)
    provenance = base_provenance(
        "simulate-size1", d=d, n=n, seeds=seeds, seed=seed, order=order, epochs=epochs,
        points_per_epoch=per, schedule=f"minibatches of 1 sample, {order}",
        wall_time=time.perf_counter() - start)
    return Trajectory(problem=problem.replace(T=points, schedule=Cyclic(n)), M=M, M_se=M_se,
                      Q=Q, Q_se=Q_se, e_train=nan, e_train_se=nan, e_gen=nan, e_gen_se=nan,
                      provenance=provenance, diagnostics={"M_runs": M_runs, "Q_runs": Q_runs})


def _online_limit(problem: Problem, epochs_valid: float, per: int) -> Series:
    """The online-SGD limit from M_0 = 0 for a target with E[g* z] = 0: M = 0 up to
    ``epochs_valid`` epochs."""
    npts = int(round(epochs_valid * per)) + 1
    zeros = np.zeros((npts, problem.P * problem.K))
    return Series(method="one-pass", x=np.arange(npts) / per, y=zeros[:, 0],
                  se=zeros[:, 0], parts=zeros, parts_se=zeros,
                  text="online-SGD limit d -> inf (M = 0)")


def fig5(sizes: Sizes | None = None, *, full: bool = False, epochs: int = 4,
         points_per_epoch: int = 5, orders: Sequence[str] = ORDERS,
         progress: bool | None = None) -> FigureData:
    """Fig. 5: Fig. 3's problem (z1 z2 z3 + He3(z4), P = 4, ReLU, n = 5d, eta = 0.2) with
    minibatches of size 1, against epochs (n steps).

    One panel per order (:data:`ORDERS`): every M_t[j, k] of the simulations with error bars,
    directions colour-coded; the theory line (M = 0, the online-SGD limit) only where it holds:
    fresh samples, and sequential cycling during the first epoch.

    Parameters
    ----------
    sizes : Sizes, optional
        ``d`` and ``seeds`` of the simulations (``samples`` unused). Default
        ``DEFAULT_SIZES["fig5"]`` (``FULL_SIZES`` with ``full=True``).
    full : bool
    epochs : int
    points_per_epoch : int
    orders : sequence of str
        Among :data:`ORDERS`.
    progress : bool, optional

    Returns
    -------
    FigureData
        Panels keyed by order; trajectories ``"<order>/sim"``.

    Examples
    --------
    >>> data = fig5(Sizes(samples=1, d=200, seeds=4), epochs=2)  # doctest: +SKIP
    >>> data.panel("sequential").series["sim"].parts[:, 3::4]  # z4, every unit  # doctest: +SKIP
    """
    from ..gaussian import first_hermite

    sizes = resolve_sizes("fig5", sizes, full)
    prob = _fig3_problem(T=2)
    c1 = np.asarray(first_hermite(prob.target))
    if np.max(np.abs(c1)) > 1e-8:  # the zero line below is the solution only when C1 = 0
        raise ValueError(f"fig5 draws M = 0 as the online-SGD limit, which needs E[g* z] = 0; "
                         f"got {c1}")
    row, trajs = [], {}
    valid = {"fresh": float(epochs), "sequential": 1.0}
    notes = {"fresh": "theory: M = 0 at every epoch (E[g* z] = 0)",
             "sequential": "theory only in epoch 1 (no sample reused yet)",
             "with replacement": "no theory line: samples are reused from the first epoch on"}
    for order in orders:
        start = time.perf_counter()
        sim = simulate_size1(prob, sizes.d, sizes.seeds, epochs=epochs, order=order,
                             points_per_epoch=points_per_epoch, seed=sizes.seed,
                             progress=progress)
        if progress is not False:
            print(f"fig5 {order}: {time.perf_counter() - start:.1f} s", file=sys.stderr,
                  flush=True)
        trajs[f"{order}/sim"] = sim
        panel = signed_panel({"sim": sim}, _Z, title=_TITLES[order], ylabel="M[j, k]",
                             xlabel=f"epoch (= n = {prob.alpha:g}d steps of one sample)",
                             x_scale=float(points_per_epoch), key=order,
                             theory_note=notes.get(order, ""))
        panel.series["sim"].text = "simulation, minibatches of 1"
        if order in valid:
            panel.series["one-pass"] = _online_limit(prob, valid[order], points_per_epoch)
        row.append(panel)
    params = (panel_settings(prob) + "; minibatches of one sample; M_0 = 0, Q_0 = I, "
              f"lambda = 0; simulations d = {sizes.d}, {sizes.seeds} seeds (error bars: 1 SE)")
    note = ("theory (d -> inf) only where no sample is reused: the online-SGD limit, M = 0 from "
            "M_0 = 0 because E[g* z] = 0 (docs/reproducing-the-paper.md)")
    return FigureData("fig5", "Fig. 5: minibatches of size 1", params, [row], trajs,
                      notes=[note])
