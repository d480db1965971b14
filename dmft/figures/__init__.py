"""The paper's figures: data first, drawing separately.

Each ``figN(...)`` computes the figure's curves (multi-pass DMFT, one-pass theory, finite-d
simulations of both algorithms; Fig. 5: simulations of size-1 minibatches) and returns a
:class:`FigureData` (panels of curves with standard errors, the published curves, the
trajectories); :func:`plot` draws it (matplotlib is imported only there), so the tests check the
physics without plotting. By default a figure is true to the published panel; with
``caption_settings=True`` it uses the settings the captions state. Modules:
:mod:`~dmft.figures.data` (the data model), :mod:`~dmft.figures.published_data` (the paper's
curves, shipped), :mod:`~dmft.figures.overlaps` (the plotted quantities),
:mod:`~dmft.figures.solving` (every method on one problem), :mod:`~dmft.figures.reproduction`
(figures 1-4 as published), :mod:`~dmft.figures.caption` (as captioned),
:mod:`~dmft.figures.minibatch1` (Fig. 5), :mod:`~dmft.figures.gradient_flow` (gradient flow,
not in the paper), :mod:`~dmft.figures.comparison` (published against
package), :mod:`~dmft.figures.drawing`. What the figures show: docs/reproducing-the-paper.md.
"""

from .comparison import PublishedRow, format_table, published_table
from .data import METHODS, FigureData, Panel, Series, Sizes
from .drawing import make_figure, plot
from .minibatch1 import ORDERS, simulate_size1
from .overlaps import (
    orientation,
    oriented_overlap,
    orthogonal_direction,
    overlap_panels,
    signed_panel,
)
from .paper import FIGURES, fig1, fig2, fig3, fig4, fig5, flow
from .published_data import PublishedCurve, published_curves
from .sizes import DEFAULT_SIZES, FULL_SIZES
from .solving import solve_all

__all__ = [
    "FIGURES",
    "METHODS",
    "ORDERS",
    "DEFAULT_SIZES",
    "FULL_SIZES",
    "Sizes",
    "Series",
    "Panel",
    "FigureData",
    "PublishedCurve",
    "PublishedRow",
    "published_curves",
    "published_table",
    "format_table",
    "orientation",
    "oriented_overlap",
    "orthogonal_direction",
    "overlap_panels",
    "signed_panel",
    "solve_all",
    "simulate_size1",
    "fig1",
    "fig2",
    "fig3",
    "fig4",
    "fig5",
    "flow",
    "make_figure",
    "plot",
]
