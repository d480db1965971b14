"""The paper's figures: data first, drawing separately.

Each ``figN(...)`` solves the multi-pass DMFT, the one-pass theory and finite-d simulations of
both algorithms for the figure's problems and returns a :class:`FigureData` (panels of curves with
standard errors, and the trajectories); :func:`plot` draws it (matplotlib is imported only
there), so the tests check the physics without plotting. Modules: :mod:`~dmft.figures.data`
(the data model), :mod:`~dmft.figures.overlaps` (the plotted quantity),
:mod:`~dmft.figures.solving` (every method on one problem), :mod:`~dmft.figures.paper` (figures
1-4) and :mod:`~dmft.figures.drawing`. What the figures show: docs/reproducing-the-paper.md.
"""

from .data import METHODS, FigureData, Panel, Series, Sizes
from .drawing import make_figure, plot
from .overlaps import orientation, oriented_overlap, orthogonal_direction, overlap_panels
from .paper import DEFAULT_SIZES, FIGURES, FULL_SIZES, fig1, fig2, fig3, fig4
from .solving import solve_all

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
