"""What a figure holds: its sizes, panels of curves with standard errors, the trajectories."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..trajectory import Trajectory
from ..validation import integer

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["METHODS", "FigureData", "Panel", "Series", "Sizes"]


# series keys, in plotting order
METHODS = ("dmft", "one-pass", "sim", "sim-one-pass")
_LABELS = {
    "dmft": "multi-pass DMFT",
    "one-pass": "one-pass theory",
    "sim": "multi-pass simulation",
    "sim-one-pass": "one-pass simulation",
}


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

    Examples
    --------
    >>> Sizes(samples=1e6, d=1000, seeds=8).describe()
    'DMFT S = 1e+06; simulations d = 1000, 8 seeds'
    """

    samples: int
    d: int
    seeds: int
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("samples", 1), ("d", 1), ("seeds", 2), ("seed", 0)):
            object.__setattr__(self, name, integer(name, getattr(self, name), minimum))

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
        The mean oriented overlap and its standard error (see :func:`oriented_overlap`).
    parts, parts_se : ndarray, shape (n, P * n_dir)
        The averaged overlaps o_ji M_t[j] . u_i (column j * n_dir + i) and their standard
        errors (see :func:`oriented_overlap`).
    text : str
        Legend label ("" for the method's default).
    """

    method: str
    x: np.ndarray
    y: np.ndarray
    se: np.ndarray
    parts: np.ndarray
    parts_se: np.ndarray
    text: str = ""

    @property
    def label(self) -> str:
        """``text`` if set, else the method's name."""
        return self.text or _LABELS.get(self.method, self.method)


@dataclass(eq=False)
class Panel:
    """One axes: a title, axis labels and a curve per method.

    Attributes
    ----------
    title, ylabel, xlabel : str
    series : dict of str -> Series
        Keyed by method (:data:`METHODS`).
    key : str
        Identifier of the panel (the published panel it reproduces, e.g. ``"he3"``,
        ``"staircase/along"``, ``"cyclic"``; ``""`` when none).
    settings : str
        The panel's own settings, printed under its title ("" when the figure's are shared).
    per_unit : bool
        Draw one curve per hidden unit and direction (``Series.parts``, signed) instead of the
        mean ``Series.y``.
    directions : list of str
        Names of the directions of ``Series.parts`` (column ``j * len(directions) + i``).
    x_scale : float
        x = t / x_scale (e.g. 5 for epochs of 5 steps).
    published : list of PublishedCurve
        The paper's curves for this panel (drawn faintly, labelled "published").
    theory_note : str
        Why a theory curve is drawn only where it is (Fig. 5), "" otherwise.
    a : ndarray of shape (P,), or None
        The second layer of the units of a per-unit panel (which units a published curve of a
        sign class stands for).
    """

    title: str
    ylabel: str
    xlabel: str
    series: dict[str, Series] = field(default_factory=dict)
    key: str = ""
    settings: str = ""
    per_unit: bool = False
    directions: list[str] = field(default_factory=list)
    x_scale: float = 1.0
    published: list = field(default_factory=list)
    theory_note: str = ""
    a: np.ndarray | None = None


@dataclass(eq=False)
class FigureData:
    """Everything a figure shows.

    Attributes
    ----------
    name : str
        ``"fig1"`` ... ``"fig5"`` or ``"run"``.
    title : str
    params : str
        Parameters printed on the figure.
    panels : list of list of Panel
        Rows of panels.
    trajectories : dict of str -> Trajectory
        Keyed ``"<case>/<method>"``, e.g. ``"he3/dmft"``.
    notes : list of str
        Where the run differs from the paper's caption (printed on the figure).

    Examples
    --------
    >>> from dmft.figures import fig1
    >>> data = fig1(Sizes(samples=10**5, d=200, seeds=4), targets=("he3",))  # doctest: +SKIP
    >>> data.panel("g* = he3").series["dmft"].y  # doctest: +SKIP
    >>> data.plot().savefig("fig1.png"); data.save("fig1.h5")  # doctest: +SKIP
    """

    name: str
    title: str
    params: str
    panels: list[list[Panel]]
    trajectories: dict[str, Trajectory] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def panel(self, title: str) -> Panel:
        """The panel with this title or key (ValueError if none)."""
        for row in self.panels:
            for p in row:
                if title in (p.title, p.key):
                    return p
        titles = [p.key or p.title for row in self.panels for p in row]
        raise ValueError(f"no panel titled {title!r}; panels: {titles}")

    def plot(self) -> Figure:
        """The matplotlib figure (see :func:`plot`)."""
        from .drawing import plot

        return plot(self)

    def save(self, path: str | os.PathLike) -> None:
        """Write all trajectories to one HDF5 file, one group per key (atomic write)."""
        from ..io import atomic_h5file, write_group

        with atomic_h5file(path) as f:
            f.attrs["figure"] = self.name
            f.attrs["params"] = self.params
            f.attrs["notes"] = "\n".join(self.notes)
            for key, traj in self.trajectories.items():
                write_group(f.create_group(key), traj)
