"""The paper's published curves (digitised; dmft/figures/published/README.md) as one flat list.

Every series of the two shipped JSON files becomes a :class:`PublishedCurve` naming the panel it
belongs to (the panel keys of :mod:`dmft.figures.reproduction`), the method in the package's
terms (:data:`~dmft.figures.METHODS`), the direction, which hidden units it shows, and the
values against the step t.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

__all__ = ["PublishedCurve", "published_curves", "units_of"]

_FILES = {"fig1": "published_fig1.json", "fig2": "published_fig2_4.json",
          "fig3": "published_fig2_4.json", "fig4": "published_fig2_4.json"}
# panel keys of the package's figures -> (figure object, panel object) in published_fig2_4.json
_PANELS = {
    "fig2": {f"{case}/{row}": ("fig2_multi_index_v2", f"{case}_{row}")
             for case in ("staircase", "tanh-he1-he3", "tanh-sum") for row in ("along", "perp")},
    "fig3": {"all": ("fig3_bad_example", "all_directions")},
    "fig4": {"cyclic": ("fig4_overlaps_batch", "cyclic_sequential"),
             "bernoulli": ("fig4_overlaps_batch", "with_replacement")},
}
_METHOD = {("multipass", "line"): "dmft", ("singlepass", "line"): "one-pass",
           ("multipass", "dots"): "sim", ("singlepass", "dots"): "sim-one-pass",
           ("blue", "line"): "dmft", ("red", "line"): "one-pass",
           ("blue", "dots"): "sim", ("red", "dots"): "sim-one-pass"}


@dataclass(frozen=True, eq=False)
class PublishedCurve:
    """One published series.

    Attributes
    ----------
    figure : str
        ``"fig1"`` ... ``"fig4"``.
    panel : str
        Panel key: Fig. 1 the target (``"tanh"``, ``"he3"``, ``"he4"``); Fig. 2
        ``"<case>/along"`` or ``"<case>/perp"``; Fig. 3 ``"all"``; Fig. 4 ``"cyclic"`` or
        ``"bernoulli"`` (the paper's "with replacement").
    method : str
        ``"dmft"`` (multi-pass theory line), ``"one-pass"`` (single-pass theory line),
        ``"sim"`` or ``"sim-one-pass"`` (simulation dots).
    direction : str
        ``"z1"`` ... ``"z4"`` (Figs. 3-4), ``"along"`` / ``"perp"`` (Fig. 2), ``""`` (Fig. 1).
    units : str
        Which hidden units the curve shows: ``"0"``, ``"1"``, ... (one unit), ``"a>0"`` /
        ``"a<0"`` (every unit of that sign class, equal in the theory) or ``"all"``.
    t : ndarray of int, shape (n,)
        Steps.
    y : ndarray, shape (n,)
        Values as drawn (Fig. 1's He3 multi-pass curve is -M).
    err : ndarray, shape (n,), or None
        Half-length of the drawn error bars (simulation dots only).
    """

    figure: str
    panel: str
    method: str
    direction: str
    units: str
    t: np.ndarray
    y: np.ndarray
    err: np.ndarray | None = None

    @property
    def kind(self) -> str:
        """``"line"`` (theory) or ``"dots"`` (simulations)."""
        return "dots" if self.method.startswith("sim") else "line"


def units_of(curve: PublishedCurve, a: np.ndarray) -> list[int]:
    """The package's hidden units a published curve corresponds to, given the second layer a.

    Examples
    --------
    >>> c = PublishedCurve("fig2", "tanh-sum/along", "dmft", "along", "a<0", np.arange(2),
    ...                    np.zeros(2))
    >>> units_of(c, np.array([0.5, -0.5, 0.5, -0.5]))
    [1, 3]
    """
    a = np.asarray(a)
    if curve.units == "all":
        return list(range(a.size))
    if curve.units in ("a>0", "a<0"):
        positive = curve.units == "a>0"
        return [j for j in range(a.size) if (a[j] >= 0) == positive]
    j = int(curve.units)
    return [j] if j < a.size else []


@cache
def _load(name: str) -> dict:
    text = resources.files("dmft.figures").joinpath("published", name).read_text("utf-8")
    return json.loads(text)


def _fig1() -> list[PublishedCurve]:
    data = _load(_FILES["fig1"])
    out = []
    for target in ("tanh", "he3", "he4"):
        for colour in ("blue", "red"):
            line = np.asarray(data[f"{target}_{colour}_line"])
            t = np.arange(line.size)
            out.append(PublishedCurve("fig1", target, _METHOD[colour, "line"], "", "0", t, line))
            err = data.get(f"{target}_{colour}_errbar_half")  # none drawn for tanh multi-pass
            out.append(PublishedCurve(
                "fig1", target, _METHOD[colour, "dots"], "", "0", t,
                np.asarray(data[f"{target}_{colour}_dots"]),
                None if err is None else np.asarray(err)))
    return out


_SERIES = re.compile(r"^(?:(?P<algo>multipass|singlepass)|(?P<dir>z\d))_(?P<kind>line|dots)_"
                     r"(?P<k>\d+)$")


def _units(figure: str, panel: str, direction: str, kind: str, k: int, n_lines: int) -> str | None:
    """The unit label of series k (None: a repeated series, skipped)."""
    if figure == "fig2":
        if panel.endswith("staircase_perp"):
            return "all"  # one curve: both sign classes coincide
        if kind == "dots" and panel.startswith("tanh-sum"):
            return {0: "a>0", 1: None, 2: "a<0"}[k]  # dots _1 repeats _0
        return "a>0" if k == 0 else "a<0"
    if figure == "fig4" and kind == "line" and n_lines == 2:
        return "a>0" if k == 0 else "a<0"  # Fig. 4's z4 theory: one line per sign class
    return str(k % 4)  # Figs. 3-4: neuron k (Fig. 4 dots after epoch 1 are drawn as k + 4)


def _fig2_4(figure: str) -> list[PublishedCurve]:
    data = _load(_FILES[figure])
    out = []
    for key, (fig_obj, panel_obj) in _PANELS[figure].items():
        series = data[fig_obj][panel_obj]
        for name in sorted(series):
            m = _SERIES.match(name)
            if m is None:
                raise ValueError(f"unexpected published series {fig_obj}/{panel_obj}/{name}")
            kind, k = m["kind"], int(m["k"])
            if m["algo"]:
                method, direction = _METHOD[m["algo"], kind], panel_obj.rsplit("_", 1)[1]
            else:
                method, direction = ("dmft" if kind == "line" else "sim"), m["dir"]
            n_lines = sum(1 for s in series if s.startswith(f"{direction}_line_"))
            units = _units(figure, panel_obj, direction, kind, k, n_lines)
            if units is None:
                continue
            s = series[name]
            err = s.get("err_half")
            out.append(PublishedCurve(figure, key, method, direction, units,
                                      np.asarray(s["t"], dtype=np.int64), np.asarray(s["y"]),
                                      None if err is None else np.asarray(err)))
    return _joined(out)


def _joined(curves: list[PublishedCurve]) -> list[PublishedCurve]:
    """One curve per (panel, method, direction, units): Fig. 4 draws a neuron's dots before
    and after the first epoch as two series."""
    groups: dict[tuple, list[PublishedCurve]] = {}
    for c in curves:
        groups.setdefault((c.panel, c.method, c.direction, c.units), []).append(c)
    out = []
    for parts in groups.values():
        first = parts[0]
        if len(parts) == 1:
            out.append(first)
            continue
        t = np.concatenate([c.t for c in parts])
        order = np.argsort(t, kind="stable")
        err = (None if any(c.err is None for c in parts)
               else np.concatenate([c.err for c in parts])[order])
        out.append(PublishedCurve(first.figure, first.panel, first.method, first.direction,
                                  first.units, t[order],
                                  np.concatenate([c.y for c in parts])[order], err))
    return out


def published_curves(figure: str, panel: str | None = None) -> list[PublishedCurve]:
    """The published curves of a figure (or of one of its panels).

    Parameters
    ----------
    figure : {"fig1", "fig2", "fig3", "fig4"}
    panel : str, optional
        A panel key (see :class:`PublishedCurve`); default all panels.

    Returns
    -------
    list of PublishedCurve

    Examples
    --------
    >>> [c.y[1].round(5) for c in published_curves("fig1", "tanh") if c.method == "dmft"]
    [np.float64(0.11838)]
    >>> sorted({c.panel for c in published_curves("fig4")})
    ['bernoulli', 'cyclic']
    """
    if figure not in _FILES:
        raise ValueError(f"figure={figure!r} has no published data; allowed: {tuple(_FILES)}")
    curves = _fig1() if figure == "fig1" else _fig2_4(figure)
    if panel is None:
        return curves
    out = [c for c in curves if c.panel == panel]
    if not out:
        raise ValueError(f"{figure} has no published panel {panel!r}; panels: "
                         f"{sorted({c.panel for c in curves})}")
    return out
