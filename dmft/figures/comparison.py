"""The package's values against the published ones, point by point.

For every published curve of a figure's panels (:mod:`dmft.figures.published_data`) and every
step it shows, the package's value of the same method, direction and hidden units (the mean over
the units of a sign class, equal in the theory), with standard errors on both sides where they
exist. docs/reproducing-the-paper.md prints these tables; the tests hold them to tolerances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .data import FigureData, Panel
from .published_data import PublishedCurve, units_of

__all__ = ["PublishedRow", "published_table", "format_table"]


@dataclass(frozen=True)
class PublishedRow:
    """One published point and the package's value there.

    Attributes
    ----------
    panel, method, direction, units : str
        As in :class:`~dmft.figures.PublishedCurve`.
    t : int
        Step.
    published : float
    published_err : float
        Half-length of the published error bar (NaN for theory lines).
    package : float
        The package's value (mean over the matching units).
    package_se : float
        Its standard error (0 for exact quadrature).
    """

    panel: str
    method: str
    direction: str
    units: str
    t: int
    published: float
    published_err: float
    package: float
    package_se: float

    @property
    def difference(self) -> float:
        """package - published."""
        return self.package - self.published


def _rows(panel: Panel, curve: PublishedCurve) -> Iterable[PublishedRow]:
    series = panel.series.get(curve.method)
    if series is None or panel.a is None:
        return
    n_dir = max(1, len(panel.directions))
    names = list(panel.directions)
    i = names.index(curve.direction) if curve.direction in names else 0
    cols = [j * n_dir + i for j in units_of(curve, panel.a)]
    if not cols:
        return
    steps = np.rint(series.x * panel.x_scale).astype(np.int64)
    for k, t in enumerate(curve.t):
        where = np.flatnonzero(steps == t)
        if where.size == 0:
            continue
        r = where[0]
        value = float(np.mean(series.parts[r, cols]))
        se = float(np.sqrt(np.sum(series.parts_se[r, cols] ** 2)) / len(cols))
        err = np.nan if curve.err is None else float(curve.err[k])
        yield PublishedRow(panel.key, curve.method, curve.direction, curve.units, int(t),
                           float(curve.y[k]), err, value, se)


def published_table(data: FigureData) -> list[PublishedRow]:
    """Every published point of ``data``'s panels with the package's value there.

    Parameters
    ----------
    data : FigureData
        A figure made with the published settings (its panels carry the published curves).

    Returns
    -------
    list of PublishedRow
        In panel, curve and step order; points the package did not compute (other methods,
        steps beyond its horizon) are left out.

    Examples
    --------
    >>> from dmft.figures import Sizes, fig1
    >>> data = fig1(Sizes(samples=10**5, d=200, seeds=4), targets=("tanh",),
    ...             methods=("one-pass",), progress=False)  # doctest: +SKIP
    >>> row = published_table(data)[1]  # doctest: +SKIP
    >>> round(row.published, 4), round(row.package, 4)  # tanh, one-pass, t = 1  # doctest: +SKIP
    (0.1184, 0.1184)
    """
    out = []
    for row in data.panels:
        for panel in row:
            for curve in panel.published:
                out.extend(_rows(panel, curve))
    return out


def _curve_name(r: PublishedRow) -> str:
    unit = r.units if not r.units.isdigit() else f"unit {r.units}"
    return " ".join(x for x in (r.method, r.direction, unit) if x)


def _value(x: float, se: float) -> str:
    return f"{x:.4f}" if not se > 0 else f"{x:.4f} ± {se:.4f}"


def format_table(rows: Sequence[PublishedRow], steps: Sequence[int] | None = None, *,
                 wide: bool = False) -> str:
    """A markdown table of :func:`published_table` rows (optionally only some steps).

    Parameters
    ----------
    rows : sequence of PublishedRow
    steps : sequence of int, optional
        Keep these steps only.
    wide : bool
        One row per curve and one column per step, each cell "published / package" (standard
        errors left out), instead of one row per point.

    Returns
    -------
    str

    Examples
    --------
    >>> row = PublishedRow("tanh", "dmft", "", "0", 6, 0.5262, float("nan"), 0.5049, 0.0007)
    >>> print(format_table([row]))
    | panel | curve | t | published | package | package - published |
    |---|---|---|---|---|---|
    | tanh | dmft unit 0 | 6 | 0.5262 | 0.5049 ± 0.0007 | -0.0213 |
    >>> print(format_table([row], wide=True))
    | panel | curve | t = 6 |
    |---|---|---|
    | tanh | dmft unit 0 | 0.5262 / 0.5049 |
    """
    rows = [r for r in rows if steps is None or r.t in steps]
    if wide:
        ts = sorted({r.t for r in rows})
        curves: dict[tuple, dict[int, PublishedRow]] = {}
        for r in rows:
            curves.setdefault((r.panel, _curve_name(r)), {})[r.t] = r
        lines = ["| panel | curve | " + " | ".join(f"t = {t}" for t in ts) + " |",
                 "|---|---|" + "---|" * len(ts)]
        for (panel, name), by_t in curves.items():
            cells = [f"{by_t[t].published:.4f} / {by_t[t].package:.4f}" if t in by_t else ""
                     for t in ts]
            lines.append(f"| {panel} | {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
    lines = ["| panel | curve | t | published | package | package - published |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        pub = _value(r.published, r.published_err if not np.isnan(r.published_err) else 0.0)
        lines.append(f"| {r.panel} | {_curve_name(r)} | {r.t} | {pub} | "
                     f"{_value(r.package, r.package_se)} | {r.difference:+.4f} |")
    return "\n".join(lines)
