"""The caption-faithful versions of figures 1-4 (``caption_settings=True``).

The settings the paper's captions state (ReLU, n = 3d, eta = 0.1; Fig. 2 at eta = 0.2 as in
``dmft run``) and the mean oriented overlap of :func:`~dmft.figures.overlap_panels`: the
package's figures before they were made true to the published panels (those are in
:mod:`dmft.figures.reproduction`; docs/reproducing-the-paper.md says how the two differ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..problem import Problem
from ..schedules import Bernoulli, Cyclic
from .data import METHODS, FigureData, Sizes
from .overlaps import orthogonal_direction, overlap_panels
from .sizes import resolve_sizes
from .solving import _params_line, solve_all

__all__ = ["fig1", "fig2", "fig3", "fig4"]


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

    Examples
    --------
    >>> data = fig1(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    >>> data.panel("g* = he3").series["dmft"].y  # multi-pass: grows from step 2  # doctest: +SKIP
    >>> data.plot().savefig("fig1.png")  # doctest: +SKIP
    """
    sizes = resolve_sizes("fig1", sizes, full)
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

    Examples
    --------
    >>> data = fig2(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    >>> data.panel("tanh-he1-he3 (P = 2): orthogonal").series["dmft"].y  # doctest: +SKIP
    """
    from ..gaussian import first_hermite

    sizes = resolve_sizes("fig2", sizes, full)
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

    Examples
    --------
    >>> data = fig3(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    >>> data.panel("along z4").series["dmft"].y  # doctest: +SKIP
    """
    sizes = resolve_sizes("fig3", sizes, full)
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

    Examples
    --------
    >>> sizes = Sizes(samples=10**5, d=200, seeds=4)
    >>> data = fig4(sizes, epochs=2, progress=False)  # doctest: +SKIP
    >>> data.panel("cyclic: along z4").series["dmft"].x  # in epochs  # doctest: +SKIP
    """
    sizes = resolve_sizes("fig4", sizes, full)
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


