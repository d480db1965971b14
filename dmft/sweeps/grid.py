"""A sweep's grid: the product of lists of Problem field values around a base problem."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..problem import Problem

__all__ = ["FIELDS", "expand_grid", "label"]

FIELDS = tuple(f.name for f in dataclasses.fields(Problem) if f.init)


def label(value) -> Any:
    """A hashable, printable coordinate label (lists become JSON text)."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def expand_grid(base_problem: Problem, grid: Mapping[str, Sequence]) -> tuple[
        dict[str, list], list[tuple[tuple[int, ...], dict, Problem]]]:
    """Validate a grid and expand it into Problems (C order: the last field varies fastest).

    Parameters
    ----------
    base_problem : Problem
        Fields not in the grid are taken from it.
    grid : mapping of str to sequence
        Problem field name -> non-empty list of distinct values, e.g.
        ``{"alpha": [1.0, 2.0], "eta": [0.1, 0.2]}``. Allowed fields: those of ``Problem``.

    Returns
    -------
    coords : dict of str to list
        Normalised coordinate values per field (``Problem.to_dict`` form), in grid order.
    points : list of (index, coords, Problem)
        ``index`` is a tuple of positions, one per grid field.

    Raises
    ------
    TypeError, ValueError
        Naming the field: unknown field, not a list, empty list, duplicate or invalid value,
        or a combination of values that makes an invalid Problem.

    Examples
    --------
    >>> base = Problem(target="he3", P=1)
    >>> coords, points = expand_grid(base, {"alpha": [1, 2], "eta": [0.1]})
    >>> coords
    {'alpha': [1.0, 2.0], 'eta': [0.1]}
    >>> [index for index, _, _ in points], points[1][2] == base.replace(alpha=2.0, eta=0.1)
    ([(0, 0), (1, 0)], True)
    """
    if not isinstance(base_problem, Problem):
        raise TypeError(f"base_problem must be a dmft.Problem, got {type(base_problem).__name__}")
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of Problem field -> list of values, got {grid!r}")
    coords: dict[str, list] = {}
    for name, values in grid.items():
        if name not in FIELDS:
            raise ValueError(f"grid field {name!r} is not a Problem field; allowed: {FIELDS}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(
                values, (Sequence, np.ndarray)):
            raise TypeError(
                f"grid[{name!r}] must be a list of values, got {values!r} "
                f"({type(values).__name__}); write [{values!r}] for a single value"
            )
        if len(values) == 0:
            raise ValueError(f"grid[{name!r}] is empty; give at least one value")
        normalised = []
        for value in values:
            try:
                prob = base_problem.replace(**{name: value})
            except (TypeError, ValueError) as exc:
                raise ValueError(f"grid[{name!r}] has an invalid value {value!r}: {exc}") from None
            # the normalised, JSON-able value (target by name, schedule as text)
            # new fields at their default are left out of to_dict (the square loss: by name)
            value = getattr(prob, name)
            coord = prob.to_dict().get(name, getattr(value, "name", value))
            if coord in normalised:
                raise ValueError(f"grid[{name!r}] has the value {value!r} twice")
            normalised.append(coord)
        coords[name] = normalised
    names = list(coords)
    raw = [list(grid[n]) for n in names]
    points = []
    for index in itertools.product(*(range(len(v)) for v in raw)):
        changes = {n: raw[i][j] for i, (n, j) in enumerate(zip(names, index, strict=True))}
        try:
            prob = base_problem.replace(**changes)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"grid point {changes} is not a valid Problem: {exc}") from None
        points.append((index, {n: coords[n][j] for n, j in zip(names, index, strict=True)}, prob))
    return coords, points
