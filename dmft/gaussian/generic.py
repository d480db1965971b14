"""The generic engine: E[f(x)] for x ~ N(0, cov) by tensor Gauss-Hermite, kink-polar or QMC rules.

:func:`plan_rules` picks the rule (Gauss-Hermite for smooth integrands, a polar rule split at
the kinks when <= 2 kink normals, randomized quasi-Monte Carlo otherwise) and :func:`expect`
applies it. Accuracy and when each rule is used: ``docs/quadrature.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from solvers.numerics.gauss_hermite import gauss_hermite
from solvers.numerics.quadrature import composite_gauss_legendre

from ..stats import mean_se
from .options import QuadratureOptions, Rule

__all__ = [
    "omega", "sqrt_psd", "gauss_hermite_rule", "kink_polar_rule", "kink_polar_size",
    "qmc_rules", "plan_rules", "expect",
]

_EIG_RTOL = 1e-12  # eigenvalues below this fraction of the largest are treated as zero


def omega(M: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Joint covariance of (u, z): [[Q, M], [M^T, I_K]].

    Parameters
    ----------
    M : ndarray, shape (P, K)
    Q : ndarray, shape (P, P)

    Returns
    -------
    ndarray, shape (P + K, P + K)

    Examples
    --------
    >>> omega(np.array([[0.5]]), np.array([[1.0]]))
    array([[1. , 0.5],
           [0.5, 1. ]])
    """
    P, K = M.shape
    out = np.empty((P + K, P + K))
    out[:P, :P] = 0.5 * (Q + Q.T)
    out[:P, P:] = M
    out[P:, :P] = M.T
    out[P:, P:] = np.eye(K)
    return out


def sqrt_psd(S: np.ndarray, rtol: float = _EIG_RTOL) -> np.ndarray:
    """Square-root factor L (n, D) with L L^T = S, D = numerical rank of S (eigh based).

    Eigenvalues below ``rtol * max(1, largest)`` are dropped (also slightly negative ones from
    round-off); a clearly negative one (< -1e-8 * scale) raises ValueError.

    Parameters
    ----------
    S : ndarray, shape (n, n), symmetric positive semi-definite

    Returns
    -------
    ndarray, shape (n, D); D >= 1 (a zero column when S = 0)

    Examples
    --------
    >>> L = sqrt_psd(np.array([[1.0, 1.0], [1.0, 1.0]]))  # rank 1
    >>> L.shape, bool(np.allclose(L @ L.T, 1.0))
    ((2, 1), True)
    """
    S = 0.5 * (S + S.T)
    if not np.all(np.isfinite(S)):
        raise ValueError("covariance matrix is not finite")
    lam, V = np.linalg.eigh(S)
    scale = max(1.0, float(np.abs(lam).max()))
    if lam.min() < -1e-8 * scale:
        raise ValueError(
            f"covariance matrix is not positive semi-definite (smallest eigenvalue {lam.min():.3g})"
        )
    keep = lam > rtol * scale
    if not keep.any():
        return np.zeros((S.shape[0], 1))
    return V[:, keep] * np.sqrt(lam[keep])


@lru_cache(maxsize=32)
def gauss_hermite_rule(D: int, n: int) -> Rule:
    """Tensor Gauss-Hermite rule for N(0, I_D), n nodes per dimension (n^D nodes).

    Exact for polynomials of degree <= 2n - 1 in each coordinate; nodes and weights read-only.

    Examples
    --------
    >>> rule = gauss_hermite_rule(2, 3)
    >>> rule.n_nodes, round(float(rule.w @ (rule.xi[:, 0] ** 2 * rule.xi[:, 1] ** 2)), 12)
    (9, 1.0)
    """
    x, w = gauss_hermite(n)
    grids = np.meshgrid(*([x] * D), indexing="ij")
    xi = np.stack([g.reshape(-1) for g in grids], axis=1)
    wgrids = np.meshgrid(*([w] * D), indexing="ij")
    ww = np.prod(np.stack([g.reshape(-1) for g in wgrids], axis=0), axis=0)
    xi.setflags(write=False)
    ww.setflags(write=False)
    return Rule(xi, ww, "gauss-hermite", f"gauss-hermite {n}^{D} = {n**D} nodes")


def _orthonormal_frame(normals: np.ndarray, D: int) -> tuple[np.ndarray, int]:
    """Orthonormal basis E (D, D) whose first columns span the normals; and their rank."""
    cols: list[np.ndarray] = []
    for nvec in normals:
        v = np.array(nvec, dtype=np.float64)
        nv = np.linalg.norm(v)
        if nv == 0.0:
            continue
        for c in cols:
            v -= (c @ v) * c
        if np.linalg.norm(v) > 1e-9 * nv:
            cols.append(v / np.linalg.norm(v))
    frame = np.column_stack(cols + [np.eye(D)[:, i] for i in range(D)])
    E, _ = np.linalg.qr(frame)
    E = E[:, :D].copy()
    for i, c in enumerate(cols):  # QR may flip signs
        if E[:, i] @ c < 0:
            E[:, i] = -E[:, i]
    return E, len(cols)


def kink_polar_rule(normals: np.ndarray, D: int, options: QuadratureOptions | None = None,
                    n_gh: int | None = None) -> Rule:
    """Rule for N(0, I_D) integrands smooth except on hyperplanes {normal . xi = 0}.

    Polar coordinates (r, theta) in the plane of the normals (which must span <= 2
    dimensions): composite Gauss-Legendre in theta on every sector between two kink lines
    (sub-panels of width <= polar_dtheta), composite Gauss-Legendre in r on [0, z_R + 0.5]
    (panels of width polar_dr; weight r exp(-r^2/2) included), tensor Gauss-Hermite on the
    D - 2 other dimensions. ReLU is positively homogeneous, so along rays the student part is
    polynomial in r; the panels resolve the target's features.

    Parameters
    ----------
    normals : ndarray, shape (m, D)
    D : int
        Dimension (D = 1 is embedded in a plane and projected back).
    options : QuadratureOptions, optional
        polar_dr, polar_dtheta, n_polar (Gauss-Legendre nodes per panel), n_gh, z_R.
    n_gh : int, optional
        Overrides options.n_gh.

    Returns
    -------
    Rule with xi of shape (N, D).

    Examples
    --------
    >>> rule = kink_polar_rule(np.array([[1.0, 0.0]]), 2)  # kink across x_0 = 0
    >>> round(float(rule.w @ np.maximum(rule.xi[:, 0], 0.0)), 12)  # E[relu(x)] = 1/sqrt(2 pi)
    0.398942280401
    """
    opts = options or QuadratureOptions()
    n_gh = opts.n_gh if n_gh is None else n_gh
    normals = np.atleast_2d(np.asarray(normals, dtype=np.float64))
    Dp = max(D, 2)
    pad = np.zeros((normals.shape[0], Dp))
    pad[:, :D] = normals
    E, rank = _orthonormal_frame(pad, Dp)
    if rank > 2:
        raise ValueError(f"kink normals span {rank} > 2 dimensions; use QMC")
    angles = []
    for nvec in pad:
        c, s = float(nvec @ E[:, 0]), float(nvec @ E[:, 1])
        if math.hypot(c, s) <= 1e-12 * max(1.0, float(np.linalg.norm(nvec))):
            continue
        phi = math.atan2(s, c) + 0.5 * math.pi
        angles += [phi % (2 * math.pi), (phi + math.pi) % (2 * math.pi)]
    angles_arr = np.sort(np.array(angles)) if angles else np.array([0.0])
    keep = np.concatenate([[True], np.diff(angles_arr) > 1e-12])
    angles_arr = angles_arr[keep]
    if len(angles_arr) > 1 and angles_arr[0] + 2 * math.pi - angles_arr[-1] <= 1e-12:
        angles_arr = angles_arr[:-1]
    ends = np.concatenate([angles_arr[1:], [angles_arr[0] + 2 * math.pi]])
    th_edges = [angles_arr[:1]]
    for a0, a1 in zip(angles_arr, ends, strict=True):
        k = max(1, int(math.ceil((a1 - a0) / opts.polar_dtheta)))
        th_edges.append(np.linspace(a0, a1, k + 1)[1:])
    theta, wtheta = composite_gauss_legendre(np.concatenate(th_edges), opts.n_polar)
    wtheta = wtheta / (2 * math.pi)
    r_max = float(opts.z_R) + 0.5
    r_edges = np.linspace(0.0, r_max, int(math.ceil(r_max / opts.polar_dr)) + 1)
    r, wr = composite_gauss_legendre(r_edges, opts.n_polar)
    wr = wr * r * np.exp(-0.5 * r * r)
    p1 = (r[:, None] * np.cos(theta)[None, :]).reshape(-1)
    p2 = (r[:, None] * np.sin(theta)[None, :]).reshape(-1)
    wp = (wr[:, None] * wtheta[None, :]).reshape(-1)
    if Dp > 2:
        gh = gauss_hermite_rule(Dp - 2, n_gh)
        coords = np.empty((wp.shape[0], gh.n_nodes, Dp))
        coords[:, :, 0] = p1[:, None]
        coords[:, :, 1] = p2[:, None]
        coords[:, :, 2:] = gh.xi[None, :, :]
        coords = coords.reshape(-1, Dp)
        w = (wp[:, None] * gh.w[None, :]).reshape(-1)
        rest = f" x gauss-hermite {n_gh}^{Dp - 2}"
    else:
        coords = np.stack([p1, p2], axis=1)
        w = wp
        rest = ""
    xi = coords @ E.T
    desc = (f"kink-polar r {r.shape[0]} x theta {theta.shape[0]} ({len(angles_arr)} sectors)"
            f"{rest} = {w.shape[0]} nodes")
    return Rule(np.ascontiguousarray(xi[:, :D]), w / w.sum(), "kink-polar", desc)


def kink_polar_size(options: QuadratureOptions | None = None) -> int:
    """Number of nodes of the polar part of :func:`kink_polar_rule` (4 sectors, upper bound).

    Examples
    --------
    >>> kink_polar_size()
    36480
    """
    opts = options or QuadratureOptions()
    r_max = float(opts.z_R) + 0.5
    n_r = int(math.ceil(r_max / opts.polar_dr)) * opts.n_polar
    n_t = (int(math.ceil(2 * math.pi / opts.polar_dtheta)) + 4) * opts.n_polar
    return n_r * n_t


def qmc_rules(D: int, log2_points: int, replicas: int,
              seed: int | np.random.SeedSequence) -> list[Rule]:
    """Independent scrambled Sobol rules for N(0, I_D), 2**log2_points points each.

    Parameters
    ----------
    D : int
    log2_points : int
    replicas : int
    seed : int or SeedSequence
        Replica i uses child i of ``SeedSequence(seed).spawn(replicas)``.

    Returns
    -------
    list of ``replicas`` Rules with equal weights.

    Examples
    --------
    >>> rules = qmc_rules(2, 10, 4, seed=0)
    >>> len(rules), rules[0].xi.shape
    (4, (1024, 2))
    """
    from scipy.special import ndtri
    from scipy.stats import qmc

    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    n = 2**log2_points
    out = []
    for child in ss.spawn(replicas):
        sob = qmc.Sobol(d=D, scramble=True, rng=np.random.default_rng(child))
        u = sob.random_base2(log2_points)
        # scrambled points lie in (0, 1) almost surely; guard the quantile anyway
        u = np.clip(u, 0.5 / 2**53, 1.0 - 0.5 / 2**53)
        out.append(Rule(ndtri(u), np.full(n, 1.0 / n), "qmc",
                        f"qmc scrambled sobol 2^{log2_points} (D = {D})"))
    return out


def plan_rules(L: np.ndarray, kink_rows=(), options: QuadratureOptions | None = None,
               seed: int | np.random.SeedSequence | None = None) -> list[Rule]:
    """Generic engine: rule(s) for E[f(L xi)], xi ~ N(0, I_D), f kinked across x_j = 0.

    Parameters
    ----------
    L : ndarray, shape (n, D)
        Square-root factor of the covariance (:func:`sqrt_psd`).
    kink_rows : sequence of int
        Coordinates x_j = (L xi)_j across whose zero f has a kink or a jump.
    options : QuadratureOptions, optional
    seed : int or SeedSequence, optional
        Seed of the QMC randomizations (default ``options.seed``).

    Returns
    -------
    list of Rule
        One quadrature rule (standard error 0), or ``qmc_replicas`` randomized QMC rules.

    Examples
    --------
    >>> [r.kind for r in plan_rules(np.eye(2), kink_rows=(0,))]
    ['kink-polar']
    >>> len(plan_rules(np.eye(2), options=QuadratureOptions(method="qmc", qmc_replicas=4)))
    4
    """
    opts = options or QuadratureOptions()
    D = L.shape[1]
    normals = np.array([L[j] for j in kink_rows], dtype=np.float64).reshape(-1, D)
    if normals.size:
        normals = normals[np.linalg.norm(normals, axis=1) > 0]
    rule = None
    if opts.method != "qmc":
        if normals.shape[0] == 0:
            n = min(opts.n_gh, int(math.floor(opts.max_nodes ** (1.0 / D) + 1e-9)))
            if n >= min(opts.n_min, opts.n_gh):
                rule = gauss_hermite_rule(D, n)
        else:
            rank = np.linalg.matrix_rank(normals, tol=1e-9 * float(np.abs(normals).max()))
            if rank <= 2:
                n_polar = kink_polar_size(opts)
                rest = max(D - 2, 0)
                n = opts.n_gh
                if rest:
                    n = min(n, int(math.floor((opts.max_nodes / n_polar) ** (1 / rest) + 1e-9)))
                if n >= min(opts.n_min, opts.n_gh):
                    rule = kink_polar_rule(normals, D, opts, n)
        if rule is None and opts.method == "quadrature":
            raise ValueError(
                f"no quadrature rule fits max_nodes={opts.max_nodes} in dimension {D} with "
                f"{normals.shape[0]} kink normals; use method='qmc' or raise max_nodes"
            )
    if rule is not None:
        return [rule]
    return qmc_rules(D, opts.qmc_log2, opts.qmc_replicas, opts.seed if seed is None else seed)


def expect(fn: Callable[[np.ndarray], np.ndarray], cov: np.ndarray, kink_rows=(),
           options: QuadratureOptions | None = None, chunk: int = 1 << 18,
           **kw) -> tuple[np.ndarray, np.ndarray, str]:
    """E[fn(x)] for x ~ N(0, cov) with the generic engine, a standard error and a description.

    Parameters
    ----------
    fn : callable
        ``fn(x)`` with x of shape (N, n) returns an array of shape (N, ...).
    cov : ndarray, shape (n, n)
        Positive semi-definite covariance (may be singular).
    kink_rows : sequence of int
        Coordinates across whose zero fn has a kink or a jump (e.g. ReLU pre-activations).
    options : QuadratureOptions, optional
        Keyword overrides (``n_gh=...``, ``method="qmc"``, ...) are also accepted.
    chunk : int
        Nodes per call of fn.

    Returns
    -------
    mean, se : ndarray, shape (...)
        se is 0 for a quadrature rule and the spread of the randomizations / sqrt(R) for QMC.
    description : str

    Examples
    --------
    >>> cov = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> mean, se, desc = expect(lambda x: x[:, 0] * x[:, 1], cov)
    >>> round(float(mean), 12), float(se), desc
    (0.5, 0.0, 'gauss-hermite 40^2 = 1600 nodes')
    """
    opts = QuadratureOptions.from_kwargs(options, **kw)
    L = sqrt_psd(np.asarray(cov, dtype=np.float64))
    rules = plan_rules(L, kink_rows, opts)
    means = []
    for rule in rules:
        acc = None
        for start in range(0, rule.n_nodes, chunk):
            x = rule.xi[start:start + chunk] @ L.T
            vals = np.asarray(fn(x), dtype=np.float64)
            part = np.tensordot(rule.w[start:start + chunk], vals, axes=(0, 0))
            acc = part if acc is None else acc + part
        means.append(acc)
    mean, se = mean_se(np.array(means))
    if len(rules) == 1:
        return mean, np.zeros_like(mean), rules[0].description
    return mean, se, f"{rules[0].description} x {len(rules)} randomizations"
