"""The paper's figures (SPEC section 10): data first, plotting separately.

Each ``figN(...)`` solves the multi-pass DMFT, the one-pass theory and finite-d simulations of both
algorithms for the figure's problems and returns a :class:`FigureData`: panels of
:class:`Series` (the plotted values with standard errors, plus the individual overlaps that were
averaged into them) and the trajectories themselves. :func:`plot` turns it into a matplotlib
figure (matplotlib is imported only there), so tests check the physics without plotting.

Plotted quantity. Each panel shows the mean over hidden units j (and over the panel's unit
directions u of R^K: one, or several that the target treats alike, e.g. z1, z2, z3 in Fig. 3) of
the **oriented overlap** ``o_j M_t[j] . u``. The sign o_j = +-1 is shared by the units of one class
(a_j > 0 or a_j < 0, exchangeable in the theory) and chosen so that the class's multi-pass DMFT
overlap is >= 0 at the last time; the same signs are applied to every curve of the panel. So a
learned direction shows as a positive curve whichever sign each class takes (the overlap along
C_1 is proportional to a_j, the staircase's z2 overlap to a_j^2), an unlearned one as a curve
around zero, and unlike |M| the finite-d estimate has no bias there. Fig. 1 (P = 1, a = 1) thus
shows +-M_t, not normalised by sqrt(Q_t) as in the published panel. For K = 2 the "orthogonal
overlap" of Fig. 2 is the projection on the unit vector orthogonal to C_1 = E[g*(z) z] (the
orthogonal complement is one-dimensional).

Standard errors of the mean: simulations, from the per-seed values (exact); DMFT, the mean of
the individual overlaps' standard errors, an upper bound whatever their correlation (the DMFT
does not return per-replica values). ``Series.parts`` keeps every oriented overlap with its own
standard error, for tests.
"""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .problem import Problem
from .schedules import Bernoulli, Cyclic
from .trajectory import Trajectory

__all__ = [
    "FIGURES",
    "METHODS",
    "DEFAULT_SIZES",
    "FULL_SIZES",
    "Sizes",
    "Series",
    "Panel",
    "FigureData",
    "orientation",
    "oriented_overlap",
    "orthogonal_direction",
    "overlap_panels",
    "solve_all",
    "fig1",
    "fig2",
    "fig3",
    "fig4",
    "make_figure",
    "plot",
]

# series keys, in plotting order
METHODS = ("dmft", "one-pass", "sim", "sim-one-pass")
_LABELS = {
    "dmft": "multi-pass DMFT",
    "one-pass": "one-pass theory",
    "sim": "multi-pass simulation",
    "sim-one-pass": "one-pass simulation",
}


# ----------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class Sizes:
    """Monte Carlo and simulation sizes of a figure.

    Parameters
    ----------
    samples : int
        Effective samples S of the multi-pass DMFT (>= 1).
    d : int
        Input dimension of the simulations.
    seeds : int
        Independent simulation runs per curve (>= 2, for a standard error).
    seed : int
        Master seed of every solver call (>= 0).
    """

    samples: int
    d: int
    seeds: int
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("samples", 1), ("d", 1), ("seeds", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
            if value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
            object.__setattr__(self, name, int(value))

    def describe(self) -> str:
        return f"DMFT S = {self.samples:.0e}; simulations d = {self.d}, {self.seeds} seeds"


@dataclass(eq=False)
class Series:
    """One curve of a panel.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    x : ndarray, shape (n,)
        Steps (or epochs for cyclic schedules).
    y, se : ndarray, shape (n,)
        The mean oriented overlap and its standard error (see the module docstring).
    parts, parts_se : ndarray, shape (n, P * n_dir)
        The averaged overlaps o_ji M_t[j] . u_i (column j * n_dir + i) and their standard
        errors (see :func:`oriented_overlap`).
    """

    method: str
    x: np.ndarray
    y: np.ndarray
    se: np.ndarray
    parts: np.ndarray
    parts_se: np.ndarray

    @property
    def label(self) -> str:
        return _LABELS.get(self.method, self.method)


@dataclass(eq=False)
class Panel:
    """One axes: a title, axis labels and a curve per method."""

    title: str
    ylabel: str
    xlabel: str
    series: dict[str, Series] = field(default_factory=dict)


@dataclass(eq=False)
class FigureData:
    """Everything a figure shows.

    Attributes
    ----------
    name : str
        ``"fig1"`` ... ``"fig4"`` or ``"run"``.
    title : str
    params : str
        Parameters printed on the figure.
    panels : list of list of Panel
        Rows of panels.
    trajectories : dict of str -> Trajectory
        Keyed ``"<case>/<method>"``, e.g. ``"he3/dmft"``.
    """

    name: str
    title: str
    params: str
    panels: list[list[Panel]]
    trajectories: dict[str, Trajectory] = field(default_factory=dict)

    def panel(self, title: str) -> Panel:
        """The panel with this title (ValueError if none)."""
        for row in self.panels:
            for p in row:
                if p.title == title:
                    return p
        titles = [p.title for row in self.panels for p in row]
        raise ValueError(f"no panel titled {title!r}; panels: {titles}")

    def plot(self):
        """The matplotlib figure (see :func:`plot`)."""
        return plot(self)

    def save(self, path) -> None:
        """Write all trajectories to one HDF5 file, one group per key (atomic write)."""
        from .io import atomic_h5file, write_group

        with atomic_h5file(path) as f:
            f.attrs["figure"] = self.name
            f.attrs["params"] = self.params
            for key, traj in self.trajectories.items():
                write_group(f.create_group(key), traj)


# ----------------------------------------------------------------------------- quantities
def _unit_rows(directions, K: int) -> np.ndarray:
    U = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if U.ndim != 2 or U.shape[1] != K:
        raise ValueError(f"directions must have shape (n_dir, {K}), got {U.shape}")
    norms = np.linalg.norm(U, axis=1)
    if not np.all(np.isfinite(norms) & (norms > 0)):
        raise ValueError(f"directions must be finite and non-zero, got {U.tolist()}")
    return U / norms[:, None]


def orientation(traj: Trajectory, directions) -> np.ndarray:
    """Signs o (P, n_dir) making each unit class's mean overlap with each direction >= 0 at the
    last time of ``traj`` (classes: a_j > 0 and a_j < 0; +1 where the mean is exactly 0).

    Parameters
    ----------
    traj : Trajectory
    directions : array, shape (K,) or (n_dir, K)

    Returns
    -------
    ndarray, shape (P, n_dir), entries +-1
    """
    U = _unit_rows(directions, traj.problem.K)
    last = traj.M[-1] @ U.T  # (P, n_dir)
    positive = traj.problem.a >= 0
    out = np.ones_like(last)
    for cls in (positive, ~positive):
        if np.any(cls):
            out[cls] = np.where(last[cls].mean(axis=0) < 0, -1.0, 1.0)
    return out


def oriented_overlap(traj: Trajectory, directions,
                     signs: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Mean oriented overlap of ``traj`` with some directions of R^K (module docstring).

    Parameters
    ----------
    traj : Trajectory
    directions : array, shape (K,) or (n_dir, K)
        Directions u_i (normalised here).
    signs : array, shape (P, n_dir), optional
        Orientations o_ji = +-1; default :func:`orientation` of ``traj`` itself.

    Returns
    -------
    y, se : ndarray, shape (T,)
        ``mean_{j, i} o_ji M_t[j] . u_i`` and its standard error: from the per-seed values
        when ``traj.diagnostics`` holds ``M_runs`` (simulations), else the mean of the parts'
        standard errors (an upper bound whatever their correlation).
    parts, parts_se : ndarray, shape (T, P * n_dir)
        ``o_ji M_t[j] . u_i`` in column ``j * n_dir + i``, and standard errors (entries of a
        row of M treated as independent, as in :meth:`Trajectory.overlap_along`; exact for
        coordinate directions and for simulations).
    """
    U = _unit_rows(directions, traj.problem.K)
    T, P = traj.T, traj.problem.P
    o = orientation(traj, U) if signs is None else np.asarray(signs, dtype=np.float64)
    if o.shape != (P, U.shape[0]):
        raise ValueError(f"signs must have shape ({P}, {U.shape[0]}), got {o.shape}")
    runs = traj.diagnostics.get("M_runs")
    if runs is not None and np.ndim(runs) == 4 and np.shape(runs)[0] >= 2:
        runs = np.asarray(runs)[:, :T]  # (seeds, T, P, K)
        per_run = (o * (runs @ U.T)).reshape(runs.shape[0], T, -1)  # (seeds, T, P * n_dir)
        root_n = np.sqrt(per_run.shape[0])
        parts = per_run.mean(axis=0)
        parts_se = per_run.std(axis=0, ddof=1) / root_n
        y_se = per_run.mean(axis=2).std(axis=0, ddof=1) / root_n
        return parts.mean(axis=1), y_se, parts, parts_se
    parts = (o * (traj.M @ U.T)).reshape(T, -1)
    parts_se = np.sqrt(traj.M_se**2 @ (U.T**2)).reshape(T, -1)
    return parts.mean(axis=1), parts_se.mean(axis=1), parts, parts_se


def orthogonal_direction(v) -> np.ndarray:
    """The unit vector of R^2 orthogonal to ``v`` (rotated by +90 degrees)."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.shape != (2,) or not np.linalg.norm(v) > 0:
        raise ValueError(f"orthogonal_direction needs a non-zero vector of R^2, got {v.tolist()}")
    u = v / np.linalg.norm(v)
    return np.array([-u[1], u[0]])


def _series(method: str, traj: Trajectory, directions, signs, x_scale: float) -> Series:
    y, se, parts, parts_se = oriented_overlap(traj, directions, signs)
    return Series(method=method, x=traj.t / x_scale, y=y, se=se, parts=parts, parts_se=parts_se)


def overlap_panels(trajectories: dict[str, Trajectory], rows: Sequence[tuple[str, str, object]],
                   xlabel: str = "step t", x_scale: float = 1.0) -> list[Panel]:
    """One panel per ``(title, ylabel, directions)`` with a series per available method.

    All series of a panel share the orientation of the multi-pass DMFT (or, without it, of
    the first trajectory given).

    Parameters
    ----------
    trajectories : dict of method -> Trajectory
        Keys among :data:`METHODS`.
    rows : sequence of (title, ylabel, directions)
        ``directions`` as in :func:`oriented_overlap`.
    xlabel : str
    x_scale : float
        x = t / x_scale (e.g. the number of blocks, for epochs).
    """
    reference = trajectories.get("dmft") or next(iter(trajectories.values()))
    panels = []
    for title, ylabel, directions in rows:
        signs = orientation(reference, directions)
        series = {m: _series(m, trajectories[m], directions, signs, x_scale)
                  for m in METHODS if m in trajectories}
        panels.append(Panel(title=title, ylabel=ylabel, xlabel=xlabel, series=series))
    return panels


# ----------------------------------------------------------------------------- solving
def _say(progress: bool | None, message: str) -> None:
    if progress is not False:
        print(message, file=sys.stderr, flush=True)


def solve_all(problem: Problem, sizes: Sizes, *, one_pass_problem: Problem | None = None,
              methods: Sequence[str] = METHODS, options: Mapping[str, Mapping] | None = None,
              progress: bool | None = None, label: str = "") -> dict[str, Trajectory]:
    """Multi-pass DMFT, one-pass theory and simulations of both algorithms for one problem.

    Parameters
    ----------
    problem : Problem
        The multi-pass problem (schedule full, cyclic or Bernoulli).
    sizes : Sizes
    one_pass_problem : Problem, optional
        The fresh-batch problem of the one-pass curves (default: ``problem`` with schedule
        ``"one-pass"``; for minibatch schedules pass the batch size as alpha).
    methods : sequence of str
        Which of :data:`METHODS` to compute.
    options : mapping of method -> mapping, optional
        Extra keyword arguments of the solver of a method, e.g.
        ``{"one-pass": {"qmc_log2": 12}, "dmft": {"replicas": 8}}``.
    progress : bool, optional
        Progress bars and step messages (None: bars when stderr is a terminal).
    label : str
        Prefix of the progress messages.

    Returns
    -------
    dict of method -> Trajectory
        Keys ``methods`` (default ``"dmft"``, ``"one-pass"``, ``"sim"``, ``"sim-one-pass"``).
    """
    from .api import simulate, solve

    bad = [m for m in methods if m not in METHODS] + [m for m in (options or {})
                                                       if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods={tuple(methods)!r} / options keys must be among {METHODS}, "
                         f"got {bad or 'no method'}")
    opt = {m: dict((options or {}).get(m, {})) for m in METHODS}
    one = (problem.replace(schedule="one-pass") if one_pass_problem is None
           else one_pass_problem.replace(schedule="one-pass"))
    out = {}
    jobs: list[tuple[str, Callable[[], Trajectory]]] = [
        ("dmft", lambda: solve(problem, samples=sizes.samples, seed=sizes.seed,
                               progress=progress, **opt["dmft"])),
        ("one-pass", lambda: solve(one, method="one-pass", **opt["one-pass"])),
        ("sim", lambda: simulate(problem, d=sizes.d, seeds=sizes.seeds, seed=sizes.seed,
                                 progress=progress, **opt["sim"])),
        ("sim-one-pass", lambda: simulate(one, d=sizes.d, seeds=sizes.seeds,
                                          seed=sizes.seed + 1, progress=progress,
                                          **opt["sim-one-pass"])),
    ]
    for method, job in jobs:
        if method not in methods:
            continue
        start = time.perf_counter()
        out[method] = job()
        _say(progress, f"{label}{_LABELS[method]}: {time.perf_counter() - start:.1f} s")
    return out


def _params_line(problem: Problem, extra: str = "") -> str:
    text = (f"{problem.activation.name}, alpha = n/d = {problem.alpha:g}, eta = {problem.eta:g}, "
            f"lambda = {problem.lam:g}, a_j = ±1/sqrt(P), M_0 = 0, Q_0 = I")
    return text + (f"; {extra}" if extra else "")


# ----------------------------------------------------------------------------- the figures
DEFAULT_SIZES = {
    "fig1": Sizes(samples=10**6, d=1000, seeds=8),
    "fig2": Sizes(samples=10**6, d=1000, seeds=8),
    "fig3": Sizes(samples=4 * 10**5, d=1000, seeds=8),
    "fig4": Sizes(samples=2 * 10**5, d=1000, seeds=8),
}
# the paper's d and seeds (SPEC 10; Fig. 3-4 seeds are not stated, 16 chosen)
FULL_SIZES = {
    "fig1": Sizes(samples=4 * 10**6, d=5000, seeds=32),
    "fig2": Sizes(samples=4 * 10**6, d=5000, seeds=32),
    "fig3": Sizes(samples=2 * 10**6, d=10**4, seeds=16),
    "fig4": Sizes(samples=10**6, d=10**4, seeds=16),
}


def _sizes(name: str, sizes: Sizes | None, full: bool) -> Sizes:
    if sizes is not None:
        if not isinstance(sizes, Sizes):
            raise TypeError(f"sizes must be a dmft.figures.Sizes, got {type(sizes).__name__}")
        return sizes
    return (FULL_SIZES if full else DEFAULT_SIZES)[name]


def fig1(sizes: Sizes | None = None, *, full: bool = False, T: int = 7,
         targets: Sequence[str] = ("tanh", "he3", "he4"), methods: Sequence[str] = METHODS,
         options: Mapping[str, Mapping] | None = None,
         progress: bool | None = None) -> FigureData:
    """Fig. 1: single index, P = 1, ReLU, n = 3d, eta = 0.1; g* = tanh, He3, He4.

    Claims: tanh is learned by both algorithms, He3 by multi-pass only (from step 2), He4 by
    neither. One panel per target showing M_t (P = 1, a = 1; not normalised by sqrt(Q_t)).

    Parameters
    ----------
    sizes : Sizes, optional
        Default :data:`DEFAULT_SIZES` (or :data:`FULL_SIZES` with ``full=True``).
    full : bool
        The paper's d = 5000 and 32 seeds.
    T : int
        Time points t = 0..T-1.
    targets : sequence of str
        Single-index registry targets, one panel each.
    methods : sequence of str
        Curves to compute (default all of :data:`METHODS`).
    options : mapping, optional
        Extra solver arguments per method (see :func:`solve_all`).
    progress : bool, optional

    Returns
    -------
    FigureData
        One row of panels titled by target; trajectories ``"<target>/<method>"``.
    """
    sizes = _sizes("fig1", sizes, full)
    row, trajs = [], {}
    for target in targets:
        prob = Problem(target=target, P=1, activation="relu", alpha=3.0, eta=0.1, T=T)
        if prob.K != 1:
            raise ValueError(f"fig1 needs single-index targets (K = 1), got {target!r}")
        res = solve_all(prob, sizes, methods=methods, options=options, progress=progress,
                        label=f"fig1 {target}: ")
        trajs.update({f"{target}/{m}": tr for m, tr in res.items()})
        row += overlap_panels(res, [(f"g* = {target}", "overlap ±M_t", [1.0])])
    params = "P = 1, " + _params_line(prob, sizes.describe())
    return FigureData("fig1", "Fig. 1: single-index targets", params, [row], trajs)


def fig2(sizes: Sizes | None = None, *, full: bool = False, eta: float = 0.2, T: int = 7,
         cases: Sequence[tuple[str, int]] = (("staircase", 8), ("tanh-he1-he3", 2),
                                             ("tanh-sum", 2)),
         methods: Sequence[str] = METHODS, options: Mapping[str, Mapping] | None = None,
         progress: bool | None = None) -> FigureData:
    """Fig. 2: multi-index targets, overlap along C_1 (top) and orthogonal to it (bottom).

    g* = z1 + z1 z2 (P = 8), tanh(z1 + He3(z2)) (P = 2), tanh z1 + tanh z2 (P = 2); ReLU,
    n = 3d. The paper's caption says eta = 0.1, its published data use eta = 0.2 (default here,
    as in ``dmft run``); the value used is printed on the figure.

    Parameters
    ----------
    sizes, full, T, methods, options, progress
        As in :func:`fig1`.
    eta : float
    cases : sequence of (target, P)
        Targets with K = 2.

    Returns
    -------
    FigureData
        Rows "overlap along C1", "orthogonal overlap"; panel titles
        ``"<target>: along C1"`` and ``"<target>: orthogonal"``.
    """
    from .gaussian import first_hermite

    sizes = _sizes("fig2", sizes, full)
    top, bottom, trajs = [], [], {}
    for target, P in cases:
        prob = Problem(target=target, P=P, activation="relu", alpha=3.0, eta=eta, T=T)
        if prob.K != 2:
            raise ValueError(f"fig2 needs targets with K = 2, got {target!r} (K = {prob.K})")
        c1 = first_hermite(target)
        res = solve_all(prob, sizes, methods=methods, options=options, progress=progress,
                        label=f"fig2 {target}: ")
        trajs.update({f"{target}/{m}": tr for m, tr in res.items()})
        par, perp = overlap_panels(res, [
            (f"{target} (P = {P}): along C1", "overlap along C1/|C1|", c1),
            (f"{target} (P = {P}): orthogonal", "overlap orthogonal to C1",
             orthogonal_direction(c1)),
        ])
        top.append(par)
        bottom.append(perp)
    params = _params_line(prob, sizes.describe())
    return FigureData("fig2", "Fig. 2: multi-index targets", params, [top, bottom], trajs)


_FIG3_ROWS = (("along z4", "overlap with z4", [[0, 0, 0, 1.0]]),
              ("along z1, z2, z3", "mean overlap with z1, z2, z3",
               [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]]))


def _fig3_problem(T: int, schedule="full") -> Problem:
    return Problem(target="z1z2z3-he3", P=4, activation="relu", alpha=5.0, eta=0.2, T=T,
                   schedule=schedule)


def fig3(sizes: Sizes | None = None, *, full: bool = False, T: int = 7,
         methods: Sequence[str] = METHODS, options: Mapping[str, Mapping] | None = None,
         progress: bool | None = None) -> FigureData:
    """Fig. 3: g* = z1 z2 z3 + He3(z4), P = 4, ReLU, n = 5d, eta = 0.2, full batch.

    Claim: only the z4 overlap grows (after step 1, multi-pass only); z1..z3 stay 0.

    Parameters
    ----------
    sizes, full, T, methods, options, progress
        As in :func:`fig1`.

    Returns
    -------
    FigureData
        One row: panels ``"along z4"`` and ``"along z1, z2, z3"``.
    """
    sizes = _sizes("fig3", sizes, full)
    prob = _fig3_problem(T)
    res = solve_all(prob, sizes, methods=methods, options=options, progress=progress,
                    label="fig3: ")
    row = overlap_panels(res, [(f"{title}", ylabel, dirs) for title, ylabel, dirs in _FIG3_ROWS])
    trajs = {f"z1z2z3-he3/{m}": tr for m, tr in res.items()}
    params = "g* = z1 z2 z3 + He3(z4), P = 4, " + _params_line(prob, sizes.describe())
    return FigureData("fig3", "Fig. 3", params, [row], trajs)


def fig4(sizes: Sizes | None = None, *, full: bool = False, n_blocks: int = 5,
         epochs: int = 4, T_bernoulli: int = 11, methods: Sequence[str] = METHODS,
         options: Mapping[str, Mapping] | None = None,
         progress: bool | None = None) -> FigureData:
    """Fig. 4: Fig. 3's problem with minibatches of n / n_blocks.

    Top row: cyclic blocks, ``dmft.Cyclic(n_blocks)``, x-axis in epochs (claim: z4 departs
    after epoch 1). Bottom row: sampling each sample with probability 1 / n_blocks at every
    step, ``dmft.Bernoulli(1 / n_blocks)``, x-axis in steps (claim: departs at step 2). The
    one-pass curves use fresh batches of the same size n / n_blocks (alpha / n_blocks).

    Parameters
    ----------
    sizes, full, methods, options, progress
        As in :func:`fig1`.
    n_blocks : int
        Minibatch size n / n_blocks (paper: 5).
    epochs : int
        Cyclic horizon: T = epochs * n_blocks + 1.
    T_bernoulli : int
        Bernoulli horizon.

    Returns
    -------
    FigureData
        Panels ``"cyclic: along z4"``, ``"cyclic: along z1, z2, z3"``,
        ``"bernoulli: along z4"``, ``"bernoulli: along z1, z2, z3"``.
    """
    sizes = _sizes("fig4", sizes, full)
    rows, trajs = [], {}
    specs = (("cyclic", Cyclic(n_blocks), epochs * n_blocks + 1, float(n_blocks),
              f"epoch (= {n_blocks} steps)"),
             ("bernoulli", Bernoulli(1.0 / n_blocks), T_bernoulli, 1.0, "step t"))
    # fresh batches of n / n_blocks: the same curves for both rows, solved once to the longest T
    T_max = max(spec[2] for spec in specs)
    small = _fig3_problem(T_max).replace(alpha=_fig3_problem(T_max).alpha / n_blocks)
    fresh_methods = [m for m in ("one-pass", "sim-one-pass") if m in methods]
    fresh = {} if not fresh_methods else solve_all(
        small, sizes, methods=fresh_methods, options=options, progress=progress,
        label="fig4 fresh batches: ")
    for name, schedule, T, x_scale, xlabel in specs:
        prob = _fig3_problem(T, schedule)
        multi = [m for m in ("dmft", "sim") if m in methods]
        res = {} if not multi else solve_all(prob, sizes, methods=multi, options=options,
                                             progress=progress, label=f"fig4 {name}: ")
        res.update({m: tr.truncated(T) for m, tr in fresh.items()})
        trajs.update({f"{name}/{m}": tr for m, tr in res.items()})
        rows.append(overlap_panels(
            res, [(f"{name}: {title}", ylabel, dirs) for title, ylabel, dirs in _FIG3_ROWS],
            xlabel=xlabel, x_scale=x_scale))
    params = ("g* = z1 z2 z3 + He3(z4), P = 4, " + _params_line(prob, sizes.describe())
              + f"; minibatch n/{n_blocks}: cyclic({n_blocks}), bernoulli({1 / n_blocks:g}); "
              f"one-pass: fresh batches of n/{n_blocks}")
    return FigureData("fig4", "Fig. 4: minibatches", params, rows, trajs)


FIGURES: dict[str, Callable[..., FigureData]] = {"fig1": fig1, "fig2": fig2, "fig3": fig3,
                                                  "fig4": fig4}


# ----------------------------------------------------------------------------- plotting
_STYLE = {
    "dmft": {"color": "C0", "ls": "-", "lw": 1.8},
    "one-pass": {"color": "C1", "ls": "--", "lw": 1.8},
    "sim": {"color": "C0", "marker": "o", "ms": 5, "ls": "none", "capsize": 2},
    "sim-one-pass": {"color": "C1", "marker": "s", "ms": 5, "ls": "none", "capsize": 2,
                     "mfc": "none"},
}


def plot(data: FigureData):
    """Draw a :class:`FigureData`: theory lines (DMFT with a +-SE band), simulation dots with
    error bars, the parameters printed under the panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # no display needed; a notebook's backend is kept
    import matplotlib.pyplot as plt

    n_rows = len(data.panels)
    n_cols = max(len(r) for r in data.panels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.0 * n_cols, 3.1 * n_rows + 0.7),
                             squeeze=False)
    for i, row in enumerate(data.panels):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.set_visible(False)
                continue
            _draw_panel(ax, row[j])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize="small",
               frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.text(0.5, 0.005, _wrap(f"{data.title}: {data.params}", 150), ha="center", va="bottom",
             fontsize="x-small")
    fig.tight_layout(rect=(0, 0.05, 1, 0.94))
    return fig


def _draw_panel(ax, panel: Panel) -> None:
    for method in METHODS:
        s = panel.series.get(method)
        if s is None:
            continue
        style = _STYLE[method]
        if method in ("dmft", "one-pass"):
            ax.plot(s.x, s.y, label=s.label, **style)
            if np.any(s.se > 0):
                ax.fill_between(s.x, s.y - s.se, s.y + s.se, color=style["color"], alpha=0.2,
                                lw=0)
        else:
            ax.errorbar(s.x, s.y, yerr=s.se, label=s.label, **style)
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_title(panel.title, fontsize="medium")
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def make_figure(name: str, out, *, full: bool = False, sizes: Sizes | None = None,
                data_out=None, progress: bool | None = None) -> FigureData:
    """Compute figure ``name`` and save it to ``out`` (any matplotlib format).

    Parameters
    ----------
    name : {"fig1", "fig2", "fig3", "fig4"}
    out : str or Path
    full : bool
        The paper's sizes.
    sizes : Sizes, optional
        Overrides the default (or full) sizes.
    data_out : str or Path, optional
        Also save the trajectories (HDF5, one group per curve).
    progress : bool, optional
    """
    if name not in FIGURES:
        raise ValueError(f"figure {name!r} is not valid; allowed: {tuple(FIGURES)}")
    data = FIGURES[name](sizes, full=full, progress=progress)
    fig = plot(data)
    fig.savefig(out, dpi=130)
    import matplotlib.pyplot as plt

    plt.close(fig)
    if data_out is not None:
        data.save(data_out)
    return data
