"""The one result type every solver returns."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .problem import Problem

__all__ = ["Trajectory", "DivergenceError", "base_provenance", "matching_indices",
           "problem_until"]

# arrays with their standard errors; name -> name of the SE field
OBSERVABLES = ("M", "Q", "e_train", "e_gen")
KERNELS = ("C", "R", "Lam")

# named dimensions of every array field (to_xarray and the HDF5 dimension scales)
DIMS = {
    "M": ("time", "unit", "direction"),
    "Q": ("time", "unit", "unit2"),
    "e_train": ("time",),
    "e_gen": ("time",),
    "C": ("time", "time2", "unit", "unit2"),
    "R": ("time", "time2", "unit", "unit2"),
    "Lam": ("time", "unit", "unit2"),
}
DESCRIPTIONS = {
    "M": "teacher overlap M[t, j, k] = w_j(t) . w*_k / d of student unit j with teacher "
         "direction k",
    "Q": "student Gram matrix Q[t, j, l] = w_j(t) . w_l(t) / d",
    "e_train": "training loss per sample, mean over the training samples of (y - f)^2 / 2",
    "e_gen": "generalisation error E[(g*(z) - a.sigma(u))^2] / 2 at (M[t], Q[t])",
    "C": "DMFT correlation kernel C[t, s] = alpha E[F(t) F(s)^T]",
    "R": "DMFT memory kernel R[t, s] = alpha E[J(t) chi(t, s)] (for s < t)",
    "Lam": "DMFT instantaneous kernel Lambda[t] = lam I + alpha E[J(t)]",
    "time": "time index t = 0..T-1: the weights after t GD steps (flow: t time steps dt)",
    "physical_time": "time of each point: eta * step for GD, k dt for gradient flow",
    "time2": "second time index s of C[t, s] and R[t, s]",
    "unit": "student hidden unit j = 0..P-1",
    "unit2": "second student hidden unit l of Q, C, R and Lam",
    "direction": "teacher direction k = 0..K-1",
}
for _name in OBSERVABLES + KERNELS:
    DIMS[_name + "_se"] = DIMS[_name]
    DESCRIPTIONS[_name + "_se"] = f"standard error of {_name} (0 for exact results)"
DIMS["physical_time"] = ("time",)


def base_provenance(method: str, **extra: Any) -> dict:
    """Provenance record shared by all solvers: method, versions, plus solver-specific keys."""
    import numba

    from ._version import __version__

    prov = {
        "method": method,
        "dmft_version": __version__,
        "numpy_version": np.__version__,
        "numba_version": numba.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
    }
    prov.update(extra)
    return prov


@dataclass(eq=False)
class Trajectory:
    """Time series of order parameters for one :class:`Problem`, time axis first.

    Attributes
    ----------
    problem : Problem
    M : ndarray, shape (T, P, K)
        Teacher overlaps W_t W*^T / d.
    Q : ndarray, shape (T, P, P)
        Student Gram matrices W_t W_t^T / d.
    e_train : ndarray, shape (T,)
        Training loss per sample, E over training samples of (y - f)^2 / 2.
    e_gen : ndarray, shape (T,)
        Generalisation error E[(g*(z) - a.sigma(u))^2] / 2 at (M_t, Q_t).
    M_se, Q_se, e_train_se, e_gen_se : ndarray
        Standard errors, same shapes; zero for deterministic results.
    C, R : ndarray, shape (T, T, P, P), optional
        DMFT correlation and memory kernels (C[t, s] = alpha E[F(t) F(s)^T], R[t, s] for s < t).
    Lam : ndarray, shape (T, P, P), optional
        DMFT instantaneous kernel Lambda(t) = lam I + alpha E[J(t)].
    C_se, R_se, Lam_se : ndarray, optional
        Standard errors of the kernels.
    provenance : dict
        method, samples or (d, seeds), seed, versions, wall time, estimator, ...
    diagnostics : dict
        Solver-specific extra arrays (e.g. condition numbers), saved with the trajectory.
    time : ndarray, shape (T,)
        Time of each point: eta * step for GD, k dt for gradient flow (default: eta * step,
        or for flow k * provenance["dt"], else a uniform grid from 0 to t_max).
    """

    problem: Problem
    M: np.ndarray
    Q: np.ndarray
    e_train: np.ndarray
    e_gen: np.ndarray
    M_se: np.ndarray | None = None
    Q_se: np.ndarray | None = None
    e_train_se: np.ndarray | None = None
    e_gen_se: np.ndarray | None = None
    C: np.ndarray | None = None
    R: np.ndarray | None = None
    Lam: np.ndarray | None = None
    C_se: np.ndarray | None = None
    R_se: np.ndarray | None = None
    Lam_se: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    time: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.problem, Problem):
            raise TypeError(
                f"Trajectory.problem must be a dmft.Problem, got {type(self.problem).__name__}"
            )
        self.M = np.asarray(self.M, dtype=np.float64)
        if self.M.ndim == 0:
            raise ValueError("Trajectory.M must have shape (T, P, K), got a scalar")
        T = self.M.shape[0]
        P, K = self.problem.P, self.problem.K
        shapes = {"M": (T, P, K), "Q": (T, P, P), "e_train": (T,), "e_gen": (T,)}
        for name, shape in shapes.items():
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"Trajectory.{name} must have shape {shape}, got {arr.shape}")
            setattr(self, name, arr)
            se = getattr(self, name + "_se")
            se = np.zeros(shape) if se is None else np.asarray(se, dtype=np.float64)
            if se.shape != shape:
                raise ValueError(f"Trajectory.{name}_se must have shape {shape}, got {se.shape}")
            if np.any(se < 0):
                raise ValueError(f"Trajectory.{name}_se must be >= 0, got min {np.nanmin(se)}")
            setattr(self, name + "_se", se)
        kernel_shapes = {"C": (T, T, P, P), "R": (T, T, P, P), "Lam": (T, P, P)}
        for name, shape in kernel_shapes.items():
            for key in (name, name + "_se"):
                val = getattr(self, key)
                if val is None:
                    continue
                val = np.asarray(val, dtype=np.float64)
                if val.shape != shape:
                    raise ValueError(f"Trajectory.{key} must have shape {shape}, got {val.shape}")
                setattr(self, key, val)
        self.time = _time_axis(self.problem, T, self.time, self.provenance)

    @classmethod
    def from_runs(cls, problem: Problem, runs: dict, provenance: dict, *, count: str = "seeds",
                  added_variance: dict | None = None, diagnostics: dict | None = None,
                  **fields: Any) -> Trajectory:
        """Mean and standard error over R independent runs (seeds, replicas) of each array.

        Parameters
        ----------
        problem : Problem
        runs : dict of str -> ndarray, shape (R, T, ...)
            Per-run values of any of ``M``, ``Q``, ``e_train``, ``e_gen``, ``C``, ``R``,
            ``Lam`` (same R for all). Observables absent here and from ``fields`` are NaN (not
            measured).
        provenance : dict
            Copied; ``provenance[count]`` is set to R (an existing value must equal R), so the
            standard errors' R - 1 degrees of freedom can be recovered (``dmft.compare`` reads
            them; :func:`dmft.stats.dof_from_provenance`).
        count : str
            Provenance key of the number of runs: ``"seeds"`` (simulations) or ``"replicas"``
            (DMFT sub-solves).
        added_variance : dict of str -> ndarray, optional
            Variance common to all runs, which their spread cannot show (e.g. an integration
            error), added to the squared standard error of that array.
        diagnostics : dict, optional
        **fields
            Arrays given directly (e.g. ``e_gen=..., e_gen_se=...`` computed otherwise); they
            take precedence over ``runs``.

        Returns
        -------
        Trajectory
            Means ``runs[name].mean(0)`` and standard errors ``std(ddof=1) / sqrt(R)``
            (:func:`dmft.stats.mean_se`; NaN for R = 1).

        Examples
        --------
        >>> import dmft
        >>> prob = dmft.Problem(target="tanh", P=1, T=2)
        >>> M_runs = np.array([[0.0, 0.4], [0.0, 0.6]]).reshape(2, 2, 1, 1)
        >>> traj = Trajectory.from_runs(prob, {"M": M_runs}, {"method": "finite-d", "d": 100})
        >>> traj.M[:, 0, 0], traj.M_se[:, 0, 0], traj.provenance["seeds"]
        (array([0. , 0.5]), array([0. , 0.1]), 2)
        """
        from .stats import mean_se

        counts = {name: np.shape(arr)[0] for name, arr in runs.items()}
        if not counts or len(set(counts.values())) != 1:
            raise ValueError(f"runs must hold arrays with one common number of runs, got "
                             f"{counts or 'none'}")
        n_runs = next(iter(counts.values()))
        provenance = dict(provenance)
        if provenance.setdefault(count, n_runs) != n_runs:
            raise ValueError(f"provenance[{count!r}] = {provenance[count]!r} but runs hold "
                             f"{n_runs} runs")
        out = {}
        for name, arr in runs.items():
            if name not in OBSERVABLES + KERNELS:
                raise ValueError(f"runs[{name!r}]: not an observable or kernel; allowed: "
                                 f"{OBSERVABLES + KERNELS}")
            out[name], out[name + "_se"] = mean_se(arr)
        for name, var in (added_variance or {}).items():
            out[name + "_se"] = np.sqrt(out[name + "_se"] ** 2 + var)
        out.update(fields)
        T = next((np.shape(out[n])[0] for n in OBSERVABLES if n in out), problem.T)
        missing = {"M": (T, problem.P, problem.K), "Q": (T, problem.P, problem.P),
                   "e_train": (T,), "e_gen": (T,)}
        for name, shape in missing.items():
            if name not in out:
                out[name] = out[name + "_se"] = np.full(shape, np.nan)
        return cls(problem=problem, provenance=provenance, diagnostics=dict(diagnostics or {}),
                   **out)

    # ------------------------------------------------------------------ basic facts
    @property
    def T(self) -> int:
        """Number of time points."""
        return self.M.shape[0]

    @property
    def t(self) -> np.ndarray:
        """Time axis 0..T-1 (GD steps)."""
        return np.arange(self.T)

    @property
    def class_error(self) -> np.ndarray | None:
        """Population misclassification rate P(y f < 0) (+ P(f = 0) / 2) at (M[t], Q[t]), (T,),
        for problems with +-1 labels (None otherwise); kept in ``diagnostics``."""
        return self.diagnostics.get("class_error")

    @property
    def class_error_se(self) -> np.ndarray | None:
        """Standard error of :attr:`class_error` (None when it is absent)."""
        return self.diagnostics.get("class_error_se")

    @property
    def method(self) -> str:
        return str(self.provenance.get("method", "unknown"))

    def __repr__(self) -> str:
        return (
            f"Trajectory(method={self.method!r}, T={self.T}, problem={self.problem!r}, "
            f"M[-1]={np.array2string(self.M[-1], precision=4)})"
        )

    def truncated(self, T: int) -> Trajectory:
        """The first T time points (kernels cut accordingly), 1 <= T <= self.T."""
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or not 1 <= T <= self.T:
            raise ValueError(f"truncated: T must be an integer in [1, {self.T}], got {T!r}")
        kw = {}
        for name in OBSERVABLES:
            kw[name] = getattr(self, name)[:T]
            kw[name + "_se"] = getattr(self, name + "_se")[:T]
        for name in ("C", "R", "C_se", "R_se"):
            val = getattr(self, name)
            kw[name] = None if val is None else val[:T, :T]
        for name in ("Lam", "Lam_se"):
            val = getattr(self, name)
            kw[name] = None if val is None else val[:T]
        return Trajectory(
            problem=problem_until(self.problem, self.time, T), provenance=dict(self.provenance),
            diagnostics=dict(self.diagnostics), time=self.time[:T], **kw
        )

    def at_times(self, times) -> Trajectory:
        """The points at the given times (each must be on this trajectory's grid, within 1e-9).

        Used to compare trajectories on different grids (e.g. a flow DMFT at dt and a
        simulation at 2 dt); kernels are subsampled accordingly.

        Parameters
        ----------
        times : array of float, shape (n,)
            Increasing times, starting at 0.

        Returns
        -------
        Trajectory

        Examples
        --------
        >>> import dmft
        >>> p = dmft.Problem(dynamics="flow", t_max=1.0)
        >>> traj = Trajectory(p, M=np.zeros((5, 2, 2)), Q=np.ones((5, 2, 2)),
        ...                   e_train=np.zeros(5), e_gen=np.ones(5))
        >>> traj.at_times([0.0, 0.5, 1.0]).time
        array([0. , 0.5, 1. ])
        """
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        index = matching_indices(self.time, times)
        if index is None:
            raise ValueError(f"at_times: times {times.tolist()} are not all on this "
                             f"trajectory's grid {self.time.tolist()}")
        kw = {}
        for name in OBSERVABLES:
            kw[name] = getattr(self, name)[index]
            kw[name + "_se"] = getattr(self, name + "_se")[index]
        for name in ("C", "R", "C_se", "R_se"):
            val = getattr(self, name)
            kw[name] = None if val is None else val[np.ix_(index, index)]
        for name in ("Lam", "Lam_se"):
            val = getattr(self, name)
            kw[name] = None if val is None else val[index]
        problem = self.problem
        if not problem.is_flow and problem.T != len(index):
            problem = problem.replace(T=len(index))
        elif problem.is_flow and times[-1] > 0:
            problem = problem.replace(t_max=float(times[-1]))
        return Trajectory(problem=problem, provenance=dict(self.provenance),
                          diagnostics=dict(self.diagnostics), time=self.time[index], **kw)

    # ------------------------------------------------------------------ projections
    def overlap_along(self, v, return_se: bool = False):
        """Overlap of each hidden unit with the unit vector v/|v| of R^K.

        Parameters
        ----------
        v : array of shape (K,)
        return_se : bool
            Also return the standard error (entries of M treated as independent).

        Returns
        -------
        ndarray of shape (T, P) (and its standard error if ``return_se``).
        """
        u = _unit(v, self.problem.K)
        val = self.M @ u
        if not return_se:
            return val
        return val, np.sqrt((self.M_se**2) @ (u**2))

    def orthogonal_overlap(self, v, return_se: bool = False):
        """Norm of each unit's overlap projected on the orthogonal complement of v in R^K.

        For K = 2 this is |M projected on the direction orthogonal to v|. The standard error is
        propagated linearly (delta method), entries of M treated as independent.

        Returns
        -------
        ndarray of shape (T, P) (and its standard error if ``return_se``).
        """
        K = self.problem.K
        u = _unit(v, K)
        proj = np.eye(K) - np.outer(u, u)
        perp = self.M @ proj  # (T, P, K)
        val = np.linalg.norm(perp, axis=-1)
        if not return_se:
            return val
        safe = np.where(val > 0, val, 1.0)[..., None]
        grad = (perp / safe) @ proj  # d|perp| / dM, (T, P, K)
        return val, np.sqrt(np.sum(grad**2 * self.M_se**2, axis=-1))

    # ------------------------------------------------------------------ export
    def coordinates(self) -> dict[str, np.ndarray]:
        """Values of the named dimensions: time, time2 (t), unit, unit2 (j), direction (k)."""
        P, K = self.problem.P, self.problem.K
        return {"time": self.t, "time2": self.t, "unit": np.arange(P), "unit2": np.arange(P),
                "direction": np.arange(K)}

    def to_xarray(self):
        """The trajectory as an ``xarray.Dataset`` with named dimensions.

        Returns
        -------
        xarray.Dataset
            Data variables ``M`` (time, unit, direction), ``Q`` (time, unit, unit2),
            ``e_train`` and ``e_gen`` (time), each with ``<name>_se``, and when present ``C``,
            ``R`` (time, time2, unit, unit2) and ``Lam`` (time, unit, unit2) with their
            ``_se``. Coordinates: ``time`` and ``time2`` (t = 0..T-1), ``unit`` and ``unit2``
            (student unit j), ``direction`` (teacher direction k). Every variable has a
            ``description`` attribute. Dataset attributes: ``problem`` and ``provenance``
            (JSON), ``method``, and the problem's scalar fields (target, activation, P, K,
            alpha, eta, lam, T, schedule, noise). :func:`dmft.load` files opened with
            ``xarray.open_dataset(path, engine="h5netcdf")`` hold the same variables.

        Examples
        --------
        >>> import numpy as np, dmft
        >>> p = dmft.Problem(T=3)
        >>> traj = dmft.Trajectory(p, M=np.zeros((3, 2, 2)), Q=np.ones((3, 2, 2)),
        ...                        e_train=np.zeros(3), e_gen=np.ones(3))
        >>> ds = traj.to_xarray()
        >>> ds["M"].dims
        ('time', 'unit', 'direction')
        >>> float(ds["e_gen"].sel(time=2))
        1.0
        """
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install xarray (or the dmft[xarray] "
                              "extra)") from None
        data = {}
        for name in OBSERVABLES + KERNELS:
            for key in (name, name + "_se"):
                val = getattr(self, key)
                if val is not None:
                    data[key] = (DIMS[key], val, {"description": DESCRIPTIONS[key]})
        used = {dim for dims, _, _ in data.values() for dim in dims}
        coords = {dim: (dim, val, {"description": DESCRIPTIONS[dim]})
                  for dim, val in self.coordinates().items() if dim in used}
        coords["physical_time"] = ("time", self.time,
                                   {"description": DESCRIPTIONS["physical_time"]})
        ds = xr.Dataset(data, coords=coords)
        pdict = self.problem.to_dict()
        ds.attrs.update(problem=json.dumps(pdict), provenance=json_text(self.provenance),
                        method=self.method)
        ds.attrs.update({k: v for k, v in pdict.items() if k not in ("a", "M0", "Q0")})
        return ds

    def plot(self, *, axes=None, label: str | None = None, **errorbar_kw):
        """M per unit and direction, Q, and e_train / e_gen against t, with error bars.

        Parameters
        ----------
        axes : sequence of three matplotlib Axes, optional
            Where to draw (M, Q, errors); default a new figure. Pass the axes of an earlier
            plot to overlay another trajectory (e.g. a simulation on a DMFT solution).
        label : str, optional
            Prefix of the legend entries (default the method).
        **errorbar_kw
            Passed to ``Axes.errorbar`` (e.g. ``fmt="s--"``, ``alpha=0.6``).

        Returns
        -------
        matplotlib.figure.Figure

        Examples
        --------
        >>> import dmft
        >>> traj = dmft.solve(dmft.Problem(T=5), samples=10**4, seed=0)  # doctest: +SKIP
        >>> fig = traj.plot()  # doctest: +SKIP
        >>> sims = dmft.simulate(traj.problem, d=500, seeds=4)  # doctest: +SKIP
        >>> sims.plot(axes=fig.axes, fmt="s--", label="d=500")  # doctest: +SKIP
        >>> fig.savefig("run.png")  # doctest: +SKIP
        """
        from ._trajectory_plot import plot_trajectory

        return plot_trajectory(self, axes=axes, label=label, **errorbar_kw)

    # ------------------------------------------------------------------ I/O
    def save(self, path) -> None:
        """Write to HDF5 atomically (see :func:`dmft.load`)."""
        from .io import save

        save(self, path)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def json_text(record: dict) -> str:
    """``record`` as JSON; numpy arrays and scalars become lists and numbers, others text."""
    return json.dumps(record, default=_json_default)


def _time_axis(problem: Problem, T: int, time, provenance: dict) -> np.ndarray:
    """The validated time axis (T,) of a trajectory, or its default for the problem."""
    if time is None:
        if not problem.is_flow:
            return problem.eta * np.arange(T, dtype=np.float64)
        dt = provenance.get("dt")
        if dt is not None:
            return float(dt) * np.arange(T, dtype=np.float64)
        return np.linspace(0.0, problem.t_max, T) if T > 1 else np.zeros(1)
    time = np.asarray(time, dtype=np.float64)
    if time.shape != (T,):
        raise ValueError(f"Trajectory.time must have shape ({T},), got {time.shape}")
    if not np.all(np.isfinite(time)) or np.any(np.diff(time) <= 0):
        raise ValueError(f"Trajectory.time must be finite and increasing, got {time.tolist()}")
    return time


def matching_indices(grid: np.ndarray, times: np.ndarray) -> np.ndarray | None:
    """Indices i with grid[i] = times[j] (within 1e-9 relative), or None if some are missing."""
    tol = 1e-9 * max(1.0, float(np.max(np.abs(grid))) if grid.size else 1.0)
    index = np.searchsorted(grid, times - tol)
    index = np.clip(index, 0, grid.size - 1)
    if grid.size == 0 or np.any(np.abs(grid[index] - times) > tol):
        return None
    return index


def problem_until(problem: Problem, time: np.ndarray, T: int) -> Problem:
    """``problem`` cut to its first T points: T for GD, t_max = time[T - 1] for flow."""
    if not problem.is_flow:
        return problem if problem.T == T else problem.replace(T=T)
    t_end = float(time[T - 1])
    return problem if t_end <= 0 or t_end == problem.t_max else problem.replace(t_max=t_end)


def _unit(v, K: int) -> np.ndarray:
    u = np.asarray(v, dtype=np.float64).reshape(-1)
    if u.shape != (K,):
        raise ValueError(f"direction v must have shape ({K},), got {u.shape}")
    norm = np.linalg.norm(u)
    if not (np.isfinite(norm) and norm > 0):
        raise ValueError(f"direction v must be finite and non-zero, got {u.tolist()}")
    return u / norm


class DivergenceError(RuntimeError):
    """A solver produced non-finite values; ``partial`` holds the trajectory up to ``step``."""

    def __init__(self, message: str, step: int, partial: Trajectory | None = None):
        super().__init__(message)
        self.step = step
        self.partial = partial
