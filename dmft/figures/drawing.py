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
# per-unit panels with several directions: one colour per direction, the style says the method
_DIRECTION_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")
_PUBLISHED = {"alpha": 0.4, "lw": 1.1, "ls": ":", "marker": "x", "ms": 4}


def plot(data: FigureData) -> Figure:
    """Draw a :class:`FigureData`: theory lines (DMFT with a ±SE band), simulation dots with
    error bars, the published curves faintly (dotted lines and crosses, labelled "published"),
    each panel's settings under its title, the figure's parameters and notes at the bottom.

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
    width = max(4.4 * n_cols, 8.0)  # room for the legend and the notes under one panel
    footer = _footer(data, chars=int(12.5 * width))
    n_lines = footer.count("\n") + 1
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, 3.4 * n_rows + 0.8 + 0.13 * n_lines),
                             squeeze=False)
    for i, row in enumerate(data.panels):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.set_visible(False)
                continue
            _draw_panel(ax, row[j])
    handles, labels = _legend_entries(fig)
    ncol = min(len(labels), max(3, int(width / 2.6)))
    fig.legend(handles, labels, loc="upper center", ncol=ncol, fontsize="small", frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.text(0.5, 0.005, footer, ha="center", va="bottom", fontsize="x-small")
    height = fig.get_size_inches()[1]
    top = 1.0 - (0.35 + 0.2 * ((len(labels) - 1) // ncol)) / height
    fig.tight_layout(rect=(0, (0.15 + 0.13 * n_lines) / height, 1, top))
    return fig


def _footer(data: FigureData, chars: int) -> str:
    lines = [_wrap(f"{data.title}: {data.params}", chars)]
    lines += [_wrap(f"Note: {note}", chars) for note in data.notes]
    return "\n".join(lines)


def _legend_entries(fig) -> tuple[list, list[str]]:
    """Every labelled artist of the figure once, in order of appearance."""
    handles, labels = [], []
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    return handles, labels


def _draw_panel(ax, panel: Panel) -> None:
    if panel.per_unit:
        _draw_units(ax, panel)
    else:
        _draw_means(ax, panel)
    ax.axhline(0.0, color="0.6", lw=0.6)
    title = panel.title if not panel.settings else f"{panel.title}\n{panel.settings}"
    ax.set_title(title, fontsize="small")
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    if panel.theory_note:
        ax.text(0.02, 0.98, panel.theory_note, transform=ax.transAxes, va="top", ha="left",
                fontsize="x-small", style="italic", color="0.3")


def _draw_means(ax, panel: Panel) -> None:
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


def _colour(panel: Panel, method: str, direction: int) -> str:
    if len(panel.directions) > 1:
        return _DIRECTION_COLOURS[direction % len(_DIRECTION_COLOURS)]
    return _STYLE[method]["color"]


def _draw_units(ax, panel: Panel) -> None:
    n_dir = max(1, len(panel.directions))
    several = n_dir > 1
    for method in METHODS:
        s = panel.series.get(method)
        if s is None:
            continue
        style = dict(_STYLE[method])
        if several:
            style["color"] = "0.2"  # the legend shows the method's style; colours: directions
        for col in range(s.parts.shape[1]):
            i = col % n_dir
            style_col = dict(style, color=_colour(panel, method, i))
            label = s.label if col == 0 else None
            y, se = s.parts[:, col], s.parts_se[:, col]
            if method in ("dmft", "one-pass"):
                ax.plot(s.x, y, **style_col, label=None)
                if np.any(se > 0):
                    ax.fill_between(s.x, y - se, y + se, color=style_col["color"], alpha=0.15,
                                    lw=0)
            else:
                ax.errorbar(s.x, y, yerr=se, **dict(style_col, ms=3.5), label=None)
            if label:  # a legend entry in the method's style (neutral colour with directions)
                proxy = dict(style, ms=3.5) if "marker" in style else style
                if method in ("dmft", "one-pass"):
                    ax.plot([], [], **proxy, label=label)
                else:
                    ax.errorbar([], [], yerr=[], **proxy, label=label)
    if several:
        for i, name in enumerate(panel.directions):
            ax.plot([], [], color=_DIRECTION_COLOURS[i % len(_DIRECTION_COLOURS)], lw=6,
                    alpha=0.8, label=f"along {name}")
    _draw_published(ax, panel)


def _draw_published(ax, panel: Panel) -> None:
    if not panel.published:
        return
    names = list(panel.directions)
    for c in panel.published:
        i = names.index(c.direction) if c.direction in names else 0
        colour = _colour(panel, "dmft" if c.method in ("dmft", "sim") else "one-pass", i)
        x = c.t / panel.x_scale
        if c.kind == "line":
            ax.plot(x, c.y, color=colour, alpha=_PUBLISHED["alpha"], lw=_PUBLISHED["lw"],
                    ls=_PUBLISHED["ls"])
        else:
            ax.errorbar(x, c.y, yerr=c.err, color=colour, alpha=_PUBLISHED["alpha"], ls="none",
                        marker=_PUBLISHED["marker"], ms=_PUBLISHED["ms"], capsize=1.5, lw=0.8)
    ax.plot([], [], color="0.3", alpha=_PUBLISHED["alpha"], ls=_PUBLISHED["ls"],
            marker=_PUBLISHED["marker"], ms=_PUBLISHED["ms"],
            label="published (dotted: theory, x: simulations)")


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def make_figure(name: str, out: str | os.PathLike, *, full: bool = False,
                caption_settings: bool = False, sizes: Sizes | None = None,
                data_out: str | os.PathLike | None = None,
                progress: bool | None = None) -> FigureData:
    """Compute figure ``name`` and save it to ``out`` (any matplotlib format).

    Parameters
    ----------
    name : {"fig1", "fig2", "fig3", "fig4", "fig5"}
    out : str or Path
    full : bool
        The paper's sizes.
    caption_settings : bool
        The settings the captions state instead of those that reproduce the published panels.
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
    data = FIGURES[name](sizes, full=full, caption_settings=caption_settings,
                         progress=progress)
    fig = plot(data)
    fig.savefig(out, dpi=130)
    import matplotlib.pyplot as plt

    plt.close(fig)
    if data_out is not None:
        data.save(data_out)
    return data
