"""The plotted quantities: overlaps of trajectories with directions of R^K.

The published panels (:func:`signed_panel`) show the raw signed overlap ``M_t[j] . u`` of every
hidden unit j, as the paper draws it. The caption-faithful versions (:func:`overlap_panels`)
show the mean over hidden units j (and over its unit directions u) of ``o_j M_t[j] . u``,
the sign o_j = +-1 shared by the units of one class (a_j > 0 or a_j < 0) and chosen so that the
class's multi-pass DMFT overlap ends >= 0: a learned direction shows as a positive curve, an
unlearned one as a curve around zero, without the bias of |M| at finite d (see "What is
plotted" in docs/reproducing-the-paper.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..stats import mean_se
from ..trajectory import Trajectory
from .data import METHODS, Panel, Series

__all__ = ["orientation", "oriented_overlap", "orthogonal_direction", "overlap_panels",
           "signed_panel"]


def _unit_rows(directions, K: int) -> np.ndarray:
    U = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if U.ndim != 2 or U.shape[1] != K:
        raise ValueError(f"directions must have shape (n_dir, {K}), got {U.shape}")
    norms = np.linalg.norm(U, axis=1)
    if not np.all(np.isfinite(norms) & (norms > 0)):
        raise ValueError(f"directions must be finite and non-zero, got {U.tolist()}")
    return U / norms[:, None]


def orientation(traj: Trajectory, directions: ArrayLike) -> np.ndarray:
    """Signs o (P, n_dir) making each unit class's mean overlap with each direction >= 0 at the
    last time of ``traj`` (classes: a_j > 0 and a_j < 0; +1 where the mean is exactly 0).

    Parameters
    ----------
    traj : Trajectory
    directions : array, shape (K,) or (n_dir, K)

    Returns
    -------
    ndarray, shape (P, n_dir), entries +-1

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="tanh-sum", P=2, activation="relu", T=2)  # a = (+, -) / sqrt(2)
    >>> M = np.array([np.zeros((2, 2)), [[0.3, 0.1], [-0.2, 0.0]]])  # (T, P, K)
    >>> traj = dmft.Trajectory(problem=prob, M=M, M_se=np.full_like(M, 0.01),
    ...                        Q=np.tile(np.eye(2), (2, 1, 1)), e_train=np.zeros(2),
    ...                        e_gen=np.zeros(2))
    >>> orientation(traj, [1.0, 0.0]).tolist()  # unit 1 (a < 0) ends negative along z1
    [[1.0], [-1.0]]
    """
    U = _unit_rows(directions, traj.problem.K)
    last = traj.M[-1] @ U.T  # (P, n_dir)
    positive = traj.problem.a >= 0
    out = np.ones_like(last)
    for cls in (positive, ~positive):
        if np.any(cls):
            out[cls] = np.where(last[cls].mean(axis=0) < 0, -1.0, 1.0)
    return out


def oriented_overlap(traj: Trajectory, directions: ArrayLike,
                     signs: ArrayLike | None = None) -> tuple[np.ndarray, ...]:
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

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="tanh-sum", P=2, activation="relu", T=2)
    >>> M = np.array([np.zeros((2, 2)), [[0.3, 0.1], [-0.2, 0.0]]])  # (T, P, K)
    >>> traj = dmft.Trajectory(problem=prob, M=M, M_se=np.full_like(M, 0.01),
    ...                        Q=np.tile(np.eye(2), (2, 1, 1)), e_train=np.zeros(2),
    ...                        e_gen=np.zeros(2))
    >>> y, se, parts, parts_se = oriented_overlap(traj, [1.0, 0.0])
    >>> y.tolist(), se.tolist(), parts[-1].tolist()  # mean of (0.3, +0.2)
    ([0.0, 0.25], [0.01, 0.01], [0.3, 0.2])
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
        parts, parts_se = mean_se(per_run)
        _, y_se = mean_se(per_run.mean(axis=2))
        return parts.mean(axis=1), y_se, parts, parts_se
    parts = (o * (traj.M @ U.T)).reshape(T, -1)
    parts_se = np.sqrt(traj.M_se**2 @ (U.T**2)).reshape(T, -1)
    return parts.mean(axis=1), parts_se.mean(axis=1), parts, parts_se


def orthogonal_direction(v: ArrayLike) -> np.ndarray:
    """The unit vector of R^2 orthogonal to ``v`` (rotated by +90 degrees).

    Parameters
    ----------
    v : array of shape (2,)
        Non-zero.

    Returns
    -------
    ndarray, shape (2,)

    Examples
    --------
    >>> orthogonal_direction([3.0, 4.0]).tolist()
    [-0.8, 0.6]
    """
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.shape != (2,) or not np.linalg.norm(v) > 0:
        raise ValueError(f"orthogonal_direction needs a non-zero vector of R^2, got {v.tolist()}")
    u = v / np.linalg.norm(v)
    return np.array([-u[1], u[0]])


def _series(method: str, traj: Trajectory, directions, signs, x_scale: float) -> Series:
    y, se, parts, parts_se = oriented_overlap(traj, directions, signs)
    x = traj.time if traj.problem.is_flow else traj.t  # flow: the times k dt
    return Series(method=method, x=x / x_scale, y=y, se=se, parts=parts, parts_se=parts_se)


def overlap_panels(trajectories: Mapping[str, Trajectory],
                   rows: Sequence[tuple[str, str, ArrayLike]],
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

    Returns
    -------
    list of Panel
        One per row, in order.

    Examples
    --------
    >>> import dmft
    >>> from dmft.figures import Sizes, solve_all
    >>> prob = dmft.Problem(target="he3", P=1, activation="relu", alpha=3.0, eta=0.1, T=4)
    >>> runs = solve_all(prob, Sizes(samples=10**5, d=200, seeds=4))  # doctest: +SKIP
    >>> (panel,) = overlap_panels(runs, [("He3", "overlap", [1.0])])  # doctest: +SKIP
    >>> panel.series["dmft"].y, panel.series["sim"].se  # doctest: +SKIP
    """
    reference = trajectories.get("dmft") or next(iter(trajectories.values()))
    panels = []
    for title, ylabel, directions in rows:
        signs = orientation(reference, directions)
        series = {m: _series(m, trajectories[m], directions, signs, x_scale)
                  for m in METHODS if m in trajectories}
        panels.append(Panel(title=title, ylabel=ylabel, xlabel=xlabel, series=series))
    return panels


def signed_panel(trajectories: Mapping[str, Trajectory],
                 directions: Sequence[tuple[str, ArrayLike]], *, title: str, ylabel: str,
                 xlabel: str = "step t", x_scale: float = 1.0, sign: float = 1.0,
                 **panel_fields) -> Panel:
    """A per-unit panel: the signed overlap ``sign * M_t[j] . u_i`` of every hidden unit j with
    every direction u_i, for every method (not oriented, not averaged, not normalised).

    Parameters
    ----------
    trajectories : dict of method -> Trajectory
        Keys among :data:`METHODS`.
    directions : sequence of (name, vector)
        The directions u_i of R^K (normalised here) and their names.
    title, ylabel, xlabel : str
    x_scale : float
        x = t / x_scale.
    sign : float
        +1, or -1 where the paper draws -M (Fig. 1's He3 panel).
    **panel_fields
        Further :class:`Panel` fields (``key``, ``settings``, ``published``, ...).

    Returns
    -------
    Panel
        ``per_unit=True``; ``Series.parts[:, j * n_dir + i]`` is unit j along direction i,
        ``Series.y`` their mean.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="tanh-sum", P=2, activation="relu", T=2)
    >>> M = np.array([np.zeros((2, 2)), [[0.3, 0.1], [-0.2, 0.0]]])  # (T, P, K)
    >>> traj = dmft.Trajectory(problem=prob, M=M, M_se=np.full_like(M, 0.01),
    ...                        Q=np.tile(np.eye(2), (2, 1, 1)), e_train=np.zeros(2),
    ...                        e_gen=np.zeros(2))
    >>> panel = signed_panel({"dmft": traj}, [("z1", [1.0, 0.0])], title="z1", ylabel="M")
    >>> panel.series["dmft"].parts[-1].tolist()  # unit 1 keeps its sign
    [0.3, -0.2]
    """
    names = [name for name, _ in directions]
    problem = next(iter(trajectories.values())).problem
    U = np.stack([_unit_rows(v, problem.K)[0] for _, v in directions])
    series = {}
    for method in METHODS:
        if method in trajectories:
            traj = trajectories[method]
            signs = np.full((traj.problem.P, len(names)), float(sign))
            series[method] = _series(method, traj, U, signs, x_scale)
    return Panel(title=title, ylabel=ylabel, xlabel=xlabel, series=series, per_unit=True,
                 directions=names, x_scale=x_scale, a=np.array(problem.a), **panel_fields)
