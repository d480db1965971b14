"""Gradient flow: multi-pass gradient flow (DMFT and simulations) against population gradient
flow, along C1 and orthogonal to it (docs/theory/flow.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..problem import Problem
from .data import FigureData, Sizes
from .overlaps import orthogonal_direction, overlap_panels
from .sizes import resolve_sizes
from .solving import solve_all

__all__ = ["flow"]

_TEXT = {"dmft": "multi-pass gradient flow (DMFT)",
         "one-pass": "population gradient flow",
         "sim": "multi-pass gradient flow (simulation)"}


def flow(sizes: Sizes | None = None, *, full: bool = False, t_max: float = 10.0,
         dt: float = 0.1, cases: Sequence[tuple[str, int]] = (("tanh-he1-he3", 2), ("he3", 1)),
         methods: Sequence[str] = ("dmft", "one-pass", "sim"),
         options: Mapping[str, Mapping] | None = None,
         progress: bool | None = None) -> FigureData:
    """Multi-pass against population gradient flow, ReLU students, alpha = 3, to ``t_max``.

    Top row: the mean oriented overlap along C1 = E[g*(z) z] (along z1 for targets whose C1 is
    0, such as He3); bottom row: orthogonal to C1 (targets with K = 2). The paper (section 2)
    expects, without proof, that gradient flow learns the directions that one-pass methods
    cannot: this figure shows whether it does in the DMFT and in simulations.

    Parameters
    ----------
    sizes : Sizes, optional
        Default ``DEFAULT_SIZES["flow"]`` (``FULL_SIZES["flow"]`` with ``full=True``).
    full : bool
    t_max, dt : float
        Final time and the reported grid's step (t_max / dt an integer).
    cases : sequence of (target, P)
    methods : sequence of {"dmft", "one-pass", "sim"}
    options : mapping of method -> mapping, optional
        Extra keyword arguments of a method's solver.
    progress : bool, optional

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = flow(Sizes(samples=10**5, d=200, seeds=4), t_max=2.0)  # doctest: +SKIP
    >>> data.plot().savefig("flow.png")  # doctest: +SKIP
    """
    import numpy as np

    from ..gaussian import first_hermite

    sizes = resolve_sizes("flow", sizes, full)
    opts = {m: {"dt": dt, **dict((options or {}).get(m, {}))} for m in methods}
    top, bottom, trajs = [], [], {}
    for target, P in cases:
        prob = Problem(target=target, P=P, activation="relu", alpha=3.0, dynamics="flow",
                       t_max=t_max)
        c1 = np.asarray(first_hermite(target), dtype=np.float64)
        along = "C1"
        if not np.linalg.norm(c1) > 1e-12:
            c1, along = np.eye(prob.K)[0], "z1 (C1 = 0)"
        res = solve_all(prob, sizes, methods=methods, options=opts, progress=progress,
                        label=f"flow {target}: ")
        trajs.update({f"{target}/{m}": tr for m, tr in res.items()})
        rows = [(f"{target} (P = {P}): along {along}", f"overlap along {along.split()[0]}", c1)]
        if prob.K == 2:
            rows.append((f"{target} (P = {P}): orthogonal", "overlap orthogonal to C1",
                         orthogonal_direction(c1)))
        panels = overlap_panels(res, rows, xlabel="time t")
        for panel in panels:
            for method, series in panel.series.items():
                series.text = _TEXT.get(method, "")
        top.append(panels[0])
        bottom.extend(panels[1:])
    params = (f"ReLU, alpha = n/d = 3, gradient flow to t = {t_max:g} (dt = {dt:g}), "
              f"lambda = 0, a_j = ±1/sqrt(P), M_0 = 0, Q_0 = I; {sizes.describe()}")
    return FigureData("flow", "Gradient flow: multi-pass vs population", params,
                      [top, bottom] if bottom else [top], trajs)
