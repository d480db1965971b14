"""The outer rule over the teacher coordinates z ~ N(0, I_K), and the target's moments on it.

A trapezoid grid (exponentially convergent for the registry targets' narrow analytic features),
Gauss-Hermite for K >= 3, or a grid rotated along a nearly sharp student kink
(:func:`rotated_z_rule`). Accuracy: ``docs/quadrature.md``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from solvers.numerics.gauss_hermite import gauss_hermite
from solvers.numerics.quadrature import gauss_legendre

from ..targets import Target, get_target
from .options import QuadratureOptions

__all__ = ["z_rule", "target_on_rule", "target_moments", "first_hermite", "rotated_z_rule"]

_ISQ2PI = 1.0 / math.sqrt(2.0 * math.pi)


@lru_cache(maxsize=32)
def _z_rule_cached(K: int, kind: str, n: int, h: float, R: float
                   ) -> tuple[np.ndarray, np.ndarray, str]:
    if kind == "trapezoid":
        x = (np.arange(n) - 0.5 * (n - 1)) * h
        w1 = h * _ISQ2PI * np.exp(-0.5 * x * x)
        desc = f"trapezoid h={h:g} {n}^{K}"
    else:
        x, w1 = gauss_hermite(n)
        desc = f"gauss-hermite {n}^{K}"
    grids = np.meshgrid(*([x] * K), indexing="ij")
    Z = np.stack([g.reshape(-1) for g in grids], axis=1)
    wgrids = np.meshgrid(*([w1] * K), indexing="ij")
    w = np.prod(np.stack([g.reshape(-1) for g in wgrids], axis=0), axis=0)
    if kind == "trapezoid":
        # a ball of radius R instead of the cube (22% fewer nodes for K = 2): the corners carry
        # mass P(chi2_K > R^2) ~ 1e-17 for R = 9. Gauss-Hermite grids are kept whole (exact for
        # polynomials).
        keep = np.einsum("nk,nk->n", Z, Z) <= R * R * (1 + 1e-12)
        Z, w = Z[keep], w[keep]
    Z, w = np.ascontiguousarray(Z), w / w.sum()
    Z.setflags(write=False)
    w.setflags(write=False)
    return Z, w, f"{desc} ({w.shape[0]} nodes)"


def z_rule(K: int, options: QuadratureOptions | None = None
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """Outer rule over z ~ N(0, I_K): trapezoid grid (K <= 2 or fine enough), else Gauss-Hermite.

    Returns
    -------
    Z : ndarray, shape (N, K)
    w : ndarray, shape (N,), summing to one
    description : str
        Both arrays are read-only (cached).

    Examples
    --------
    >>> Z, w, desc = z_rule(2)
    >>> desc
    'trapezoid h=0.125 145^2 (16241 nodes)'
    """
    opts = options or QuadratureOptions()
    n_trap = 2 * int(math.ceil(opts.z_R / opts.z_h)) + 1
    if n_trap**K <= opts.z_budget:
        return _z_rule_cached(K, "trapezoid", n_trap, float(opts.z_h), float(opts.z_R))
    n = max(2, int(math.floor(opts.z_budget ** (1.0 / K) + 1e-9)))
    # Gauss-Hermite nodes beyond the ball carry negligible weight too (same criterion)
    return _z_rule_cached(K, "gauss-hermite", min(n, 300), 0.0, float(opts.z_R))


_TARGET_CACHE: dict = {}


def target_on_rule(target: str | Target, options: QuadratureOptions | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The outer z-rule with the target evaluated on it (cached per target and options).

    Returns
    -------
    Z (N, K), w (N,), y (N,) = g*(Z), description
        The arrays are read-only (cached).

    Examples
    --------
    >>> Z, w, y, desc = target_on_rule("he3")
    >>> Z.shape, round(float(w @ y**2), 9)  # E[He3^2] = 3! = 6
    ((145, 1), 6.0)
    """
    tgt = get_target(target)
    opts = options or QuadratureOptions()
    Z, w, desc = z_rule(tgt.K, opts)
    key = ("y", tgt, desc)
    if key not in _TARGET_CACHE:
        # a writable C-ordered copy: the target kernels then see one array type for every K
        y = np.ascontiguousarray(tgt(np.array(Z.T, order="C")))
        if not np.all(np.isfinite(y)):
            raise ValueError(f"target {tgt.name!r} returned non-finite values on the z-grid")
        y.setflags(write=False)
        _TARGET_CACHE[key] = y
    return Z, w, _TARGET_CACHE[key], desc


def target_moments(target: str | Target, options: QuadratureOptions | None = None
                   ) -> dict:
    """E[g*], E[g*^2] and the first Hermite vector E[g*(z) z] on the outer z-rule.

    Returns
    -------
    dict with ``mean`` (float), ``second`` (float), ``C1`` (K,) and ``rule`` (str).

    Examples
    --------
    >>> mom = target_moments("staircase")  # z1 + z1 z2
    >>> round(mom["second"], 9), mom["C1"].round(9).tolist()
    (2.0, [1.0, 0.0])
    """
    Z, w, y, desc = target_on_rule(target, options)
    key = ("moments", get_target(target), desc)
    if key not in _TARGET_CACHE:
        c1 = (w * y) @ Z
        c1.setflags(write=False)
        _TARGET_CACHE[key] = {"mean": float(w @ y), "second": float(w @ (y * y)), "C1": c1,
                              "rule": desc}
    return dict(_TARGET_CACHE[key])


def first_hermite(target: str | Target, options: QuadratureOptions | None = None) -> np.ndarray:
    """First Hermite vector C_1 = E[g*(z) z] of a target, by quadrature.

    The projections of the overlaps along C_1 are the paper's Fig. 2 observables
    (docs/theory/model.md).

    Trapezoid rule in each teacher coordinate (h = 0.125 on the ball |z| <= 9; error < 1e-10
    for the paper's targets), Gauss-Hermite for K >= 3 (exact for polynomial targets of low
    degree).

    Parameters
    ----------
    target : str or Target
        Registry name (``dmft.TARGETS``) or a :class:`dmft.Target`.
    options : QuadratureOptions, optional

    Returns
    -------
    ndarray, shape (K,)

    Examples
    --------
    >>> first_hermite("tanh-he1-he3").round(6)
    array([ 0.357662, -0.29842 ])
    """
    return np.array(target_moments(target, options)["C1"], dtype=np.float64)


def rotated_z_rule(K: int, direction: np.ndarray, kink_width: float,
                   options: QuadratureOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Outer z-rule for an integrand with a (nearly) sharp kink across direction . z = 0.

    In an orthonormal frame whose first axis is direction / |direction|, t = that coordinate
    uses composite Gauss-Legendre panels of width <= 0.5 on [-z_R, z_R] (fine enough for the
    paper target's features), geometrically graded towards t = 0 from ``kink_width`` (the
    smoothing width s / |M_j|; 0 for a sharp kink, which is then a panel edge); the other K - 1
    coordinates use the trapezoid grid of :func:`z_rule`.

    Returns
    -------
    Z : ndarray, shape (N, K);  w : ndarray, shape (N,), summing to one

    Examples
    --------
    >>> Z, w = rotated_z_rule(2, np.array([1.0, 1.0]), 0.0)
    >>> round(float(w @ np.maximum(Z @ np.array([1.0, 1.0]), 0.0)), 10)  # E[relu(z1 + z2)]
    0.5641895835
    """
    opts = options or QuadratureOptions()
    norm = float(np.linalg.norm(direction))
    if not norm > 0:
        raise ValueError("rotated_z_rule: direction must be non-zero")
    frame, _ = np.linalg.qr(np.column_stack([direction / norm, np.eye(K)]))
    frame = frame[:, :K] * np.sign(frame[:, 0] @ direction)  # first column = direction / |.|
    R = float(opts.z_R)
    brk = set(np.linspace(-R, R, int(math.ceil(2 * R / 0.5)) + 1).tolist())
    width = max(float(kink_width), 1e-6)
    while width < 0.5:
        brk.update((width, -width))
        width *= 2.0
    brk.add(0.0)
    edges = np.array(sorted(brk))
    gx, gw = gauss_legendre(max(opts.n_mid, 10))
    half = 0.5 * np.diff(edges)
    t = ((edges[:-1] + half)[:, None] + half[:, None] * gx[None, :]).reshape(-1)
    wt = (half[:, None] * gw[None, :]).reshape(-1) * _ISQ2PI * np.exp(-0.5 * t * t)
    if K == 1:
        Z, w = t[:, None] * frame[0, 0], wt
    else:
        Wz, ww, _ = z_rule(K - 1, opts)
        Z = (t[:, None, None] * frame[:, 0][None, None, :]
             + (Wz @ frame[:, 1:].T)[None, :, :]).reshape(-1, K)
        w = (wt[:, None] * ww[None, :]).reshape(-1)
    return np.ascontiguousarray(Z), w / w.sum()
