"""Text tables of a sweep's results (what ``dmft sweep`` prints)."""

from __future__ import annotations

import warnings

import numpy as np

from ..validation import integer
from .grid import label
from .result import SweepResult

__all__ = ["format_report"]


def format_report(result: SweepResult, observable: str = "overlap", t: int | None = None) -> str:
    """Text tables of an observable at time t (mean over hidden units), one per method.

    With two grid fields each table is a matrix (rows: first field, columns: second); otherwise
    one line per point.

    Parameters
    ----------
    result : SweepResult
    observable : {"overlap", "orthogonal_overlap", "e_gen", "e_train"}
    t : int, optional
        Time index; default the last.

    Returns
    -------
    str

    Examples
    --------
    >>> print(format_report(load_sweep("sweep.h5"), "e_gen", t=2))  # doctest: +SKIP
    """
    if observable not in ("overlap", "orthogonal_overlap", "e_gen", "e_train"):
        raise ValueError(f"report observable {observable!r} is not valid; allowed: overlap, "
                         "orthogonal_overlap, e_gen, e_train")
    g = len(result.shape)
    val, err = result.array(observable, return_se=True)  # (*shape, methods, T[, P])
    T = val.shape[g + 1]
    t = T - 1 if t is None else integer("report t", t, low=0, high=T - 1)
    v, e = val[..., t, :], err[..., t, :]
    if observable in ("e_gen", "e_train"):
        v, e = val[..., t], err[..., t]
    else:  # mean over hidden units, ignoring the padding of smaller P
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            units = np.sum(np.isfinite(v), axis=-1)
            e = np.sqrt(np.nansum(e**2, axis=-1)) / np.maximum(units, 1)
            v = np.nanmean(v, axis=-1)
    names = list(result.coords)
    lines = []
    for m, method in enumerate(result.methods):
        lines.append(f"{observable} at t = {t} (mean over hidden units), method {method}:")
        vm, em = v[..., m], e[..., m]
        if g == 2:
            rows, cols = (result.coords[n] for n in names)
            head = f"{names[0]} \\ {names[1]}"
            width = max(16, len(head) + 2)
            lines.append(head.ljust(width) + "".join(f"{label(c)!s:>18}" for c in cols))
            for i, r in enumerate(rows):
                cells = "".join(f"{_cell(vm[i, j], em[i, j]):>18}" for j in range(len(cols)))
                lines.append(f"{label(r)!s:<{width}}" + cells)
        else:
            for idx in np.ndindex(*result.shape):
                where = ", ".join(f"{n}={label(result.coords[n][i])}"
                                  for n, i in zip(names, idx, strict=True))
                lines.append(f"  {where}: {_cell(vm[idx], em[idx])}")
        lines.append("")
    return "\n".join(lines)


def _cell(v: float, e: float) -> str:
    if not np.isfinite(v):
        return "--"
    return f"{v:.4f}" if not np.isfinite(e) or e == 0 else f"{v:.4f}+-{e:.4f}"
