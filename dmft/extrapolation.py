"""Extrapolating finite-d simulations to d -> infinity by a weighted fit of a + b/d."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from .trajectory import OBSERVABLES, Trajectory, base_provenance, problem_until

__all__ = ["extrapolate", "problem_differences"]

# standard errors are floored at this fraction of |value| (floating-point resolution) in fits
_SE_FLOOR_REL = 1e-14


def problem_differences(pa, pb) -> list[str]:
    """``"name: value_a vs value_b"`` for each setting but the horizon (T, t_max) in which two
    problems differ (a setting at its default is absent from one dictionary: "default")."""
    da, db = pa.to_dict(), pb.to_dict()
    keys = list(da) + [k for k in db if k not in da]
    return [f"{k}: {da.get(k, 'default')!r} vs {db.get(k, 'default')!r}" for k in keys
            if k not in ("T", "t_max") and da.get(k) != db.get(k)]


def extrapolate(simulations: Sequence[Trajectory]) -> Trajectory:
    """Extrapolate finite-d simulations to d -> infinity by fitting a + b/d entry by entry.

    Each entry of M, Q, e_train and e_gen is fitted by weighted least squares in x = 1/d with
    weights 1/se^2 (standard errors below floating-point resolution, 1e-14 |value|, are raised
    to it so that deterministic entries keep finite weights). The intercept a is returned with
    its standard error sqrt(Var a) computed from the input standard errors (not rescaled by the
    fit residuals; the residual chi^2 of each entry is in ``diagnostics`` to check the 1/d
    model when there are more than two distinct d).

    Parameters
    ----------
    simulations : sequence of Trajectory
        Simulations of the same problem (T may differ: the common prefix is used), each with
        ``provenance["d"]``; at least two distinct d.

    Returns
    -------
    Trajectory
        Intercepts and their standard errors; no kernels. ``provenance``: method
        ``"extrapolated"``, ``d`` (list), ``seeds`` and ``seed`` (lists, from the inputs),
        ``sources`` (their methods). :func:`compare` takes the smallest ``seeds`` - 1 as the
        degrees of freedom of the intercepts' standard errors (a lower bound of their
        Welch-Satterthwaite value). ``diagnostics``: ``fit_dof`` (number of simulations - 2)
        and ``fit_chi2_<obs>`` (residual chi^2 per entry, same shape as the observable).

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(T=3)
    >>> sims = [dmft.simulate(prob, d=d, seeds=4, seed=0) for d in (200, 400)]  # doctest: +SKIP
    >>> limit = dmft.extrapolate(sims)  # doctest: +SKIP
    >>> limit.provenance["d"], limit.provenance["seeds"]  # doctest: +SKIP
    ([200, 400], [4, 4])
    """
    sims = list(simulations) if not isinstance(simulations, Trajectory) else [simulations]
    for i, s in enumerate(sims):
        if not isinstance(s, Trajectory):
            raise TypeError(f"simulations[{i}] must be a dmft.Trajectory, got {type(s).__name__}")
    ds = []
    for i, s in enumerate(sims):
        d = s.provenance.get("d")
        if isinstance(d, bool) or not isinstance(d, numbers.Real) or not d > 0:
            raise ValueError(
                f"simulations[{i}] (method {s.method!r}) has provenance['d'] = {d!r}; "
                "extrapolate needs finite-d simulations with a dimension d > 0"
            )
        ds.append(d)
    if len(set(ds)) < 2:
        raise ValueError(
            f"extrapolate needs simulations at >= 2 distinct d to fit a + b/d, got d = {ds}"
        )
    ref = sims[0].problem
    for i, s in enumerate(sims[1:], start=1):
        diffs = problem_differences(ref, s.problem)
        if diffs:
            raise ValueError(
                f"simulations[{i}] is for a different problem than simulations[0]: "
                + "; ".join(diffs)
            )
    T = min(s.T for s in sims)
    for i, s in enumerate(sims[1:], start=1):
        if not np.allclose(s.time[:T], sims[0].time[:T], rtol=1e-9, atol=1e-12):
            raise ValueError(f"simulations[{i}] has another time grid than simulations[0] "
                             f"({s.time[:3].tolist()}... vs {sims[0].time[:3].tolist()}...): "
                             "use Trajectory.at_times to put them on one grid")
    x = 1.0 / np.asarray(ds, dtype=np.float64)
    out, diagnostics = {}, {"fit_dof": len(sims) - 2}
    for name in OBSERVABLES:
        y = np.stack([getattr(s, name)[:T] for s in sims])
        se = np.stack([getattr(s, name + "_se")[:T] for s in sims])
        value, err, chi2 = _fit_intercept(x, y, se)
        out[name], out[name + "_se"] = value, err
        diagnostics[f"fit_chi2_{name}"] = chi2
    provenance = base_provenance(
        "extrapolated",
        d=[_plain(d) for d in ds],
        seeds=[_plain(s.provenance.get("seeds")) for s in sims],
        seed=[_plain(s.provenance.get("seed")) for s in sims],
        sources=[s.method for s in sims],
        fit="a + b/d, weighted least squares (weights 1/se^2)",
    )
    problem = problem_until(ref, sims[0].time, T)
    return Trajectory(problem=problem, provenance=provenance, diagnostics=diagnostics,
                      time=sims[0].time[:T], **out)


def _plain(v):
    """Numpy scalars to Python scalars (for JSON provenance)."""
    return v.item() if isinstance(v, np.generic) else v


def _fit_intercept(x: np.ndarray, y: np.ndarray, se: np.ndarray):
    """Weighted least-squares fit y_i = a + b x_i along axis 0.

    Parameters
    ----------
    x : ndarray, shape (n,)
    y, se : ndarray, shape (n, ...)

    Returns
    -------
    a, se_a, chi2 : ndarrays of shape (...)
        Intercept, its standard error from the input errors, residual sum of squared z.
    """
    floor = _SE_FLOOR_REL * np.maximum(np.max(np.abs(y), axis=0), 1.0)
    w = 1.0 / (se**2 + floor**2)
    xb = x.reshape((-1,) + (1,) * (y.ndim - 1))
    # centred form: stable when the x = 1/d are small and close together
    sw = w.sum(axis=0)
    x_mean = (w * xb).sum(axis=0) / sw
    y_mean = (w * y).sum(axis=0) / sw
    dx = xb - x_mean
    sxx = (w * dx**2).sum(axis=0)
    slope = (w * dx * (y - y_mean)).sum(axis=0) / sxx
    intercept = y_mean - slope * x_mean
    var = 1.0 / sw + x_mean**2 / sxx
    resid = y - intercept - slope * xb
    chi2 = (w * resid**2).sum(axis=0)
    return intercept, np.sqrt(var), chi2
