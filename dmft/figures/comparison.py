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


def format_table(rows: Sequence[PublishedRow], steps: Sequence[int] | None = None) -> str:
    """A markdown table of :func:`published_table` rows (optionally only some steps).

    Examples
    --------
    >>> row = PublishedRow("tanh", "dmft", "", "0", 6, 0.5262, float("nan"), 0.5049, 0.0007)
    >>> print(format_table([row]))
    | panel | curve | t | published | package | package - published |
    |---|---|---|---|---|---|
    | tanh | dmft unit 0 | 6 | 0.5262 | 0.5049 ± 0.0007 | -0.0213 |
    """
    lines = ["| panel | curve | t | published | package | package - published |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if steps is not None and r.t not in steps:
            continue
        unit = r.units if not r.units.isdigit() else f"unit {r.units}"
        curve = " ".join(x for x in (r.method, r.direction, unit) if x)
        pub = (f"{r.published:.4f}" if np.isnan(r.published_err)
               else f"{r.published:.4f} ± {r.published_err:.4f}")
        pkg = f"{r.package:.4f}" if r.package_se == 0 else f"{r.package:.4f} ± {r.package_se:.4f}"
        lines.append(f"| {r.panel} | {curve} | {r.t} | {pub} | {pkg} | {r.difference:+.4f} |")
    return "\n".join(lines)
