"""The table of a sweep (:class:`SweepResult`), rebuilt from its store by :func:`load_sweep`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..io import read_group
from ..problem import Problem
from ..trajectory import Trajectory
from .grid import label
from .store import Store

__all__ = ["SweepRecord", "SweepResult", "list_sweeps", "load_sweep"]

# |C_1| below this is zero (quadrature error of dmft.first_hermite is < 1e-10), e.g. He3
_C1_ZERO = 1e-8


@dataclass
class SweepRecord:
    """One (point, method) cell of a sweep.

    Attributes
    ----------
    coords : dict
        Grid field -> normalised value at this point.
    method : str
    key : str
        Result key in the store.
    status : {"ok", "diverged", "missing"}
    trajectory : Trajectory or None
        The result when ``status == "ok"``.
    step : int or None
        Step at which the solver diverged (``status == "diverged"``).
    message : str
    """

    coords: dict
    method: str
    key: str
    status: str
    trajectory: Trajectory | None = None
    step: int | None = None
    message: str = ""


def _read_record(group: h5py.Group, coords: dict, method: str, key: str, target,
                 activation) -> SweepRecord:
    status = str(group.attrs.get("status", "ok"))
    if status == "ok":
        traj = read_group(group, target=target, activation=activation)
        return SweepRecord(coords, method, key, "ok", trajectory=traj)
    return SweepRecord(coords, method, key, status, step=int(group.attrs.get("step", -1)),
                       message=str(group.attrs.get("message", "")))


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _overlap_direction(problem: Problem) -> np.ndarray | None:
    """C_1 / |C_1| (docs/theory/model.md); e_1 when C_1 = 0 and K = 1; None when C_1 = 0 and
    K > 1."""
    from ..gaussian import first_hermite

    c1 = np.asarray(first_hermite(problem.target), dtype=np.float64)
    norm = float(np.linalg.norm(c1))
    if norm > _C1_ZERO:
        return c1 / norm
    return np.ones(1) if problem.K == 1 else None


# observables of a SweepResult -> number of axes per cell (time first)
OBSERVABLE_NDIM = {"overlap": 2, "orthogonal_overlap": 2, "e_gen": 1, "e_train": 1, "M": 3,
                   "Q": 3}


class SweepResult:
    """The table of a sweep: grid coordinates x methods, with each cell's trajectory.

    Attributes
    ----------
    coords : dict of str to list
        Grid field -> normalised coordinate values (``Problem.to_dict`` form), in grid order.
    methods : tuple of str
    shape : tuple of int
        Grid shape, one entry per field.
    records : list of SweepRecord
        All cells, C order over the grid, methods fastest.
    status : ndarray of str, shape (*shape, n_methods)
        "ok", "diverged" or "missing".
    store : Path
    sweep_id : str
    computed : int
        Results computed by the :func:`sweep` call that returned this (0 when loaded).
    spec : dict
        The sweep's description as stored (grid, methods, options, seed, base problem).

    Observables (:meth:`array`, :meth:`to_xarray`, :meth:`to_records`): ``overlap`` (M along
    C_1/|C_1|, per hidden unit; along e_1 for K = 1 targets with C_1 = 0 such as He3; NaN for
    K > 1 targets with C_1 = 0), ``orthogonal_overlap`` (norm of M in the orthogonal complement
    of C_1; the norm of M when C_1 = 0), ``e_gen``, ``e_train``, ``M``, each with ``_se``.
    Arrays are padded with NaN when T, P or K vary over the grid; missing and diverged cells are
    NaN.
    """

    def __init__(self, coords, methods, records, store, sweep_id, spec, computed=0) -> None:
        self.coords = {k: list(v) for k, v in coords.items()}
        self.methods = tuple(methods)
        self.records = list(records)
        self.store = Path(store)
        self.sweep_id = sweep_id
        self.spec = spec
        self.computed = int(computed)
        self.shape = tuple(len(v) for v in self.coords.values())
        self._directions: dict[str, np.ndarray | None] = {}

    # ------------------------------------------------------------------ cells
    def _cells(self) -> Iterator[tuple[tuple[int, ...], SweepRecord]]:
        nm = len(self.methods)
        for i, rec in enumerate(self.records):
            yield (*np.unravel_index(i // nm, self.shape), i % nm), rec

    @property
    def status(self) -> np.ndarray:
        out = np.array([r.status for r in self.records], dtype=object)
        return out.reshape(*self.shape, len(self.methods)).astype(str)

    def count(self, status: str = "ok") -> int:
        """Number of cells with the given status."""
        return sum(r.status == status for r in self.records)

    def record(self, method: str, **coords) -> SweepRecord:
        """The cell at the given coordinates (every grid field) for ``method``."""
        if method not in self.methods:
            raise ValueError(f"method={method!r} is not in this sweep; it has {self.methods}")
        if set(coords) != set(self.coords):
            raise ValueError(f"give every grid field {list(self.coords)}, got {sorted(coords)}")
        flat = 0
        for name, values in self.coords.items():
            want = coords[name]
            forms = [want, str(want)] + ([np.asarray(want).tolist()]
                                         if isinstance(want, np.ndarray) else [])
            matches = [i for i, v in enumerate(values)
                       if any(_same(v, w) or _same(label(v), w) for w in forms)]
            if not matches:
                raise ValueError(f"{name}={want!r} is not in the grid; values: {values}")
            flat = flat * len(values) + matches[0]
        return self.records[flat * len(self.methods) + self.methods.index(method)]

    def trajectory(self, method: str, **coords) -> Trajectory | None:
        """The trajectory at the given coordinates, or None if missing or diverged."""
        return self.record(method, **coords).trajectory

    # ------------------------------------------------------------------ observables
    def _direction(self, problem: Problem) -> np.ndarray | None:
        name = problem.target.name
        if name not in self._directions:
            self._directions[name] = _overlap_direction(problem)
        return self._directions[name]

    def _values(self, traj: Trajectory, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name in ("overlap", "orthogonal_overlap"):
            u = self._direction(traj.problem)
            if u is None:
                if name == "overlap":
                    nan = np.full((traj.T, traj.problem.P), np.nan)
                    return nan, nan
                norm = np.linalg.norm(traj.M, axis=-1)
                safe = np.where(norm > 0, norm, 1.0)
                se = np.sqrt(np.sum((traj.M / safe[..., None]) ** 2 * traj.M_se**2, axis=-1))
                return norm, se
            fn = traj.overlap_along if name == "overlap" else traj.orthogonal_overlap
            return fn(u, return_se=True)
        if name in ("M", "Q", "e_gen", "e_train"):
            return getattr(traj, name), getattr(traj, name + "_se")
        raise ValueError(f"observable {name!r} is not known; allowed: {list(OBSERVABLE_NDIM)}")

    def array(self, name: str, return_se: bool = False):
        """One observable over the whole sweep, NaN-padded.

        Parameters
        ----------
        name : {"overlap", "orthogonal_overlap", "e_gen", "e_train", "M", "Q"}
        return_se : bool
            Also return the standard errors (same shape).

        Returns
        -------
        ndarray
            Shape (*shape, n_methods, T) for e_gen/e_train, (*shape, n_methods, T, P) for the
            overlaps, (*shape, n_methods, T, P, K) for M, (*shape, n_methods, T, P, P) for Q,
            with T, P, K the largest over the grid.
        """
        ndim = OBSERVABLE_NDIM.get(name)
        if ndim is None:
            raise ValueError(f"observable {name!r} is not known; allowed: "
                             f"{list(OBSERVABLE_NDIM)}")
        ok = [(idx, r.trajectory) for idx, r in self._cells() if r.status == "ok"]
        shapes = [self._values(t, name)[0].shape for _, t in ok] or [(0,) * ndim]
        tail = tuple(max(s[i] for s in shapes) for i in range(len(shapes[0])))
        val = np.full((*self.shape, len(self.methods), *tail), np.nan)
        err = np.full_like(val, np.nan)
        for idx, traj in ok:
            v, e = self._values(traj, name)
            sl = idx + tuple(slice(0, n) for n in v.shape)
            val[sl], err[sl] = v, e
        return (val, err) if return_se else val

    def to_xarray(self, observables: Sequence[str] = ("overlap", "orthogonal_overlap",
                                                      "e_gen", "e_train", "M")):
        """An ``xarray.Dataset`` with dims (*grid fields, "solver", "t", "unit", "k").

        The method axis is called ``"solver"`` (values "dmft", "one-pass", "simulate") because
        ``Dataset.sel`` has a ``method=`` keyword of its own. Each observable comes with
        ``<name>_se``; ``status`` (*grid, solver) says which cells are "ok", "diverged" or
        "missing". Coordinates that are lists (e.g. ``a``) are JSON text.
        """
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install xarray") from None
        dims_of = {"e_gen": ("t",), "e_train": ("t",), "overlap": ("t", "unit"),
                   "orthogonal_overlap": ("t", "unit"), "M": ("t", "unit", "k"),
                   "Q": ("t", "unit", "unit_b")}
        grid_dims = tuple(self.coords)
        data = {}
        for name in observables:
            if name not in dims_of:
                raise ValueError(f"observable {name!r} is not known; allowed: {list(dims_of)}")
            val, err = self.array(name, return_se=True)
            dims = (*grid_dims, "solver", *dims_of[name])
            data[name] = (dims, val)
            data[name + "_se"] = (dims, err)
        data["status"] = ((*grid_dims, "solver"), self.status)
        coords = {n: [label(v) for v in vals] for n, vals in self.coords.items()}
        coords["solver"] = list(self.methods)
        ds = xr.Dataset(data, coords=coords)
        if "t" in ds.dims:
            ds = ds.assign_coords(t=np.arange(ds.sizes["t"]))
        ds.attrs.update(store=str(self.store), sweep_id=self.sweep_id,
                        spec=json.dumps(self.spec))
        return ds

    def to_records(self, observables: Sequence[str] = ("overlap", "orthogonal_overlap",
                                                       "e_gen", "e_train")) -> list[dict]:
        """A flat table: one dict per (point, method, t, unit) with values and ``_se``.

        Missing and diverged cells give one row each, with ``status`` and no values. Suitable
        for ``pandas.DataFrame(result.to_records())``.
        """
        rows = []
        for _, rec in self._cells():
            base = {**{k: label(v) for k, v in rec.coords.items()}, "method": rec.method,
                    "status": rec.status}
            if rec.status != "ok":
                rows.append(base)
                continue
            traj = rec.trajectory
            vals = {name: self._values(traj, name) for name in observables}
            for t in range(traj.T):
                for j in range(traj.problem.P):
                    row = dict(base, t=t, unit=j)
                    for name, (v, e) in vals.items():
                        row[name] = float(v[t] if v.ndim == 1 else v[t, j])
                        row[name + "_se"] = float(e[t] if e.ndim == 1 else e[t, j])
                    rows.append(row)
        return rows

    def __repr__(self) -> str:
        grid = ", ".join(f"{k}[{len(v)}]" for k, v in self.coords.items())
        counts = {s: self.count(s) for s in ("ok", "diverged", "missing")}
        return (f"SweepResult({grid}; methods={self.methods}; ok={counts['ok']}, "
                f"diverged={counts['diverged']}, missing={counts['missing']}; "
                f"store={str(self.store)!r})")


def list_sweeps(store) -> list[dict]:
    """The sweeps recorded in a store, oldest first.

    Parameters
    ----------
    store : str or Path

    Returns
    -------
    list of dict
        ``id``, ``created`` (Unix time), ``grid`` (field -> values), ``methods``.

    Examples
    --------
    >>> [s["id"] for s in list_sweeps("sweep.h5")]  # doctest: +SKIP
    ['3f1c2a9be0d4c7a1']
    """
    st = Store(store)
    st.check()
    out = []
    for (kind, key), path in st.index().items():
        if kind != "sweeps":
            continue
        with h5py.File(path, "r") as f:
            attrs = f["sweeps"][key].attrs
            spec = json.loads(attrs["spec"])
            grid = {name: spec["grid"][name] for name in spec["grid_fields"]}
            out.append({"id": key, "created": float(attrs["created"]), "grid": grid,
                        "methods": spec["methods"]})
    return sorted(out, key=lambda s: s["created"])


def load_sweep(store, sweep: str | None = None, *, target=None, activation=None,
               computed: int = 0) -> SweepResult:
    """Rebuild a sweep's table from its store alone (main file and journal).

    Parameters
    ----------
    store : str or Path
        The ``store=`` of :func:`sweep`.
    sweep : str, optional
        Sweep id (or a unique prefix) from :func:`list_sweeps`; default the latest.
    target, activation : optional
        Needed only for user-defined targets or activations (stored by name).
    computed : int
        Stored on the result as ``computed`` (used by :func:`sweep`).

    Returns
    -------
    SweepResult
        Cells not (yet) in the store have status "missing".

    Examples
    --------
    >>> result = load_sweep("sweep.h5")  # doctest: +SKIP
    >>> result.array("overlap").shape  # (*grid shape, methods, T, P)  # doctest: +SKIP
    (4, 4, 3, 3, 1)
    """
    for attempt in range(3):
        try:
            return _load_sweep(store, sweep, target, activation, computed)
        except (FileNotFoundError, KeyError):
            # a sweep writing this store compacted its journal while we read it: read again
            if attempt == 2:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _load_sweep(store, sweep, target, activation, computed) -> SweepResult:
    st = Store(store)
    st.check()
    index = st.index()
    sweeps = list_sweeps(store)
    if not sweeps:
        raise ValueError(f"store {str(st.path)!r} holds no sweep (nothing was written yet)")
    if sweep is None:
        sweep_id = sweeps[-1]["id"]
    else:
        found = [s["id"] for s in sweeps if s["id"].startswith(str(sweep))]
        if len(found) != 1:
            raise ValueError(
                f"sweep={sweep!r} matches {len(found)} sweeps in {str(st.path)!r}; "
                f"ids: {[s['id'] for s in sweeps]}"
            )
        sweep_id = found[0]
    with h5py.File(index[("sweeps", sweep_id)], "r") as f:
        attrs = f["sweeps"][sweep_id].attrs
        spec = json.loads(attrs["spec"])
        keys = json.loads(attrs["keys"])
    coords = {name: spec["grid"][name] for name in spec["grid_fields"]}
    methods = spec["methods"]
    names = list(coords)
    records = []
    open_files: dict[Path, h5py.File] = {}
    try:
        for flat, cell_keys in enumerate(keys):
            idx = np.unravel_index(flat, tuple(len(v) for v in coords.values())) if names else ()
            point = {n: coords[n][i] for n, i in zip(names, idx, strict=True)}
            for method, key in zip(methods, cell_keys, strict=True):
                path = index.get(("results", key))
                if path is None:
                    records.append(SweepRecord(point, method, key, "missing"))
                    continue
                if path not in open_files:
                    open_files[path] = h5py.File(path, "r")
                group = open_files[path]["results"][key]
                records.append(_read_record(group, point, method, key, target, activation))
    finally:
        for f in open_files.values():
            f.close()
    return SweepResult(coords, methods, records, st.path, sweep_id, spec, computed=computed)
