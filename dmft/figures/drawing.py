"""Drawing a :class:`~dmft.figures.FigureData` with matplotlib (imported only here, on use)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import numpy as np

from .data import METHODS, FigureData, Panel, Sizes
from .paper import FIGURES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["make_figure", "plot"]


_STYLE = {
    "dmft": {"color": "C0", "ls": "-", "lw": 1.8},
    "one-pass": {"color": "C1", "ls": "--", "lw": 1.8},
    "sim": {"color": "C0", "marker": "o", "ms": 5, "ls": "none", "capsize": 2},
    "sim-one-pass": {"color": "C1", "marker": "s", "ms": 5, "ls": "none", "capsize": 2,
                     "mfc": "none"},
}


def plot(data: FigureData) -> Figure:
    """Draw a :class:`FigureData`: theory lines (DMFT with a +-SE band), simulation dots with
    error bars, the parameters printed under the panels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from dmft.figures import fig3
    >>> figure = plot(fig3(Sizes(samples=10**5, d=200, seeds=4)))  # doctest: +SKIP
    >>> figure.savefig("fig3.pdf")  # doctest: +SKIP
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


def make_figure(name: str, out: str | os.PathLike, *, full: bool = False,
                sizes: Sizes | None = None, data_out: str | os.PathLike | None = None,
                progress: bool | None = None) -> FigureData:
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

    Returns
    -------
    FigureData
        The data drawn.

    Examples
    --------
    >>> make_figure("fig1", "fig1.png", data_out="fig1.h5")  # doctest: +SKIP
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
