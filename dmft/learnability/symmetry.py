"""Symmetries that decide learnability: parities of the student's activation, even-symmetric
and orthogonally-even-symmetric directions of the target."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..activations import Activation, get_activation
from ..problem import Problem
from ..targets import Target
from .quadrature import _fix_signs, _target_of, _unit

__all__ = [
    "GENERIC_STUDENT",
    "StudentSymmetry",
    "is_even_symmetric",
    "orthogonal_even_partner",
    "student_symmetry",
]


@dataclass(frozen=True)
class StudentSymmetry:
    """Parities of the student that restrict the gradient's dependence on (y, z_U).

    Attributes
    ----------
    sigma : {"odd", "even", None}
        Parity of sigma. Odd sigma: F(-h, -y) = -F(h, y), so E[F | y, z_U] is odd in
        (y, z_U) jointly. Even sigma: F(-h, y) = -F(h, y), so it is odd in z_U.
    dsigma : {"constant", "const+odd", "odd", "even", "mixed"}
        Parity of sigma' (up to a constant): it fixes the parity of the one-pass factor
        E[sigma'(h) | z_U] (ReLU, softplus: constant + odd; tanh, erf: even; quadratic: odd;
        linear: constant).
    name : str
    """

    sigma: str | None
    dsigma: str
    name: str = "generic"


GENERIC_STUDENT = StudentSymmetry(None, "mixed", "generic")


def student_symmetry(activation: str | Activation) -> StudentSymmetry:
    """Parities of sigma and sigma', checked numerically on x in [0.05, 4] against -x.

    Parameters
    ----------
    activation : str or Activation

    Returns
    -------
    StudentSymmetry

    Examples
    --------
    >>> student_symmetry("tanh")
    StudentSymmetry(sigma='odd', dsigma='even', name='tanh')
    >>> student_symmetry("relu").dsigma  # relu' = 1/2 + sign(h)/2
    'const+odd'
    """
    act = get_activation(activation)
    x = np.linspace(0.05, 4.0, 64)
    # scalar calls: no numba compilation for a 64-point check
    s_p, s_m = (np.array([act.sigma(float(v)) for v in sgn * x]) for sgn in (1, -1))
    d_p, d_m = (np.array([act.dsigma(float(v)) for v in sgn * x]) for sgn in (1, -1))

    def zero(v, scale):
        return bool(np.all(np.abs(v) <= 1e-10 * (1.0 + scale)))

    scale_s = float(np.abs(s_p).max() + np.abs(s_m).max())
    scale_d = float(np.abs(d_p).max() + np.abs(d_m).max())
    sigma = "odd" if zero(s_p + s_m, scale_s) else "even" if zero(s_p - s_m, scale_s) else None
    even_part = 0.5 * (d_p + d_m)
    odd_part = 0.5 * (d_p - d_m)
    const = zero(even_part - even_part[0], scale_d)
    if const and zero(odd_part, scale_d):
        dsigma = "constant"
    elif zero(odd_part, scale_d):
        dsigma = "even"
    elif const:
        dsigma = "odd" if zero(even_part, scale_d) else "const+odd"
    else:
        dsigma = "mixed"
    return StudentSymmetry(sigma, dsigma, act.name)


def _reflect(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    return z - 2.0 * np.outer(v, v @ z)


def _invariant(target: Target, transform, points: int, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((target.K, points))
    y = target(z)
    y2 = target(transform(z))
    # relative tolerance far above rounding of the transform, far below any real asymmetry
    return bool(np.all(np.abs(y2 - y) <= 1e-8 * (1.0 + np.abs(y) + np.abs(y2))))


def is_even_symmetric(target: str | Target | Problem, v: ArrayLike, points: int = 2000,
                      seed: int = 0) -> bool:
    """Is g*(R_v z) = g*(z) with R_v = I - 2 v v^T the reflection along v?

    Checked on ``points`` random z ~ N(0, I_K) (seeded) with relative tolerance 1e-8.
    Even-symmetric directions are never learned in O(1) steps from M_0 = 0
    (docs/theory/learnability.md): the law
    of (y, <v,z>) is symmetric, so E[phi(y, z_U) <v,z>] = 0 for every phi and every U
    orthogonal to v.

    Parameters
    ----------
    target : str, Target or Problem
    v : array of shape (K,)
    points : int
    seed : int

    Returns
    -------
    bool

    Examples
    --------
    >>> is_even_symmetric("he4", [1.0]), is_even_symmetric("he3", [1.0])
    (True, False)
    >>> is_even_symmetric("tanh-sum", [1.0, -1.0])  # tanh z1 + tanh z2 is symmetric in z1 <-> z2
    True
    """
    target = _target_of(target)
    u = _unit(v, target.K)
    return _invariant(target, lambda z: _reflect(z, u), points, seed)


def orthogonal_even_partner(target: str | Target | Problem, v: ArrayLike,
                            within: ArrayLike | None = None, points: int = 2000, seed: int = 0
                            ) -> np.ndarray | None:
    """A direction w orthogonal to v with g*(R_w R_v z) = g*(z), if one is found.

    Definition used for *orthogonally-even-symmetric* directions: v is one if g* is invariant
    under the reflection along v composed with the reflection along some w orthogonal to v
    (a rotation by pi in the plane (v, w)), e.g. v = e1, w = e2 for z1 z2 z3. If v and w are
    orthogonal to the learned subspace U, that map fixes z_U and y and flips <v,z>, so
    E[phi(y, z_U) <v,z>] = 0 and v is never learned. Candidates for w: the projections onto
    (v^perp intersected with ``within``) of the coordinate axes and of their pairwise sums and
    differences; a None answer means none of these works, not a proof that no w exists.

    Parameters
    ----------
    target : str, Target or Problem
    v : array of shape (K,)
    within : array of shape (K, r), optional
        Orthonormal basis of the subspace w must lie in (default R^K).
    points, seed : int
        Random test points, as in :func:`is_even_symmetric`.

    Returns
    -------
    ndarray of shape (K,) or None

    Examples
    --------
    >>> orthogonal_even_partner("z1z2z3-he3", [1.0, 0.0, 0.0, 0.0]).tolist()  # z1 z2 z3 + He3(z4)
    [0.0, 1.0, 0.0, 0.0]
    >>> orthogonal_even_partner("he3", [1.0]) is None
    True
    """
    target = _target_of(target)
    K = target.K
    u = _unit(v, K)
    W = np.eye(K) if within is None else np.asarray(within, dtype=np.float64).reshape(K, -1)
    proj = W @ W.T
    proj = proj - np.outer(proj @ u, proj @ u) / max(float(u @ proj @ u), 1e-300) \
        if np.linalg.norm(proj @ u) > 1e-12 else proj
    axes = list(np.eye(K))
    raw = axes + [a + s * b for a, b in itertools.combinations(axes, 2) for s in (1.0, -1.0)]
    seen: list[np.ndarray] = []
    for c in raw:
        w = proj @ c
        w = w - u * (u @ w)
        n = np.linalg.norm(w)
        if n < 1e-9:
            continue
        w = w / n
        if any(abs(w @ s) > 1 - 1e-12 for s in seen):
            continue
        seen.append(w)
        if _invariant(target, lambda z, w=w: _reflect(_reflect(z, u), w), points, seed):
            return _fix_signs(w[:, None])[:, 0]
    return None
