"""Subspaces of R^K learned step by step by one-pass and multi-pass GD from M_0 = 0.

Each step's new directions are the range of an "explained-variance" matrix of z on a set of
features of (y, z_U), U the subspace learned before; which features count depends on the
algorithm, the step and the student's parities. The derivation is on the user guide page
docs/guide/learnability.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..activations import Activation
from ..problem import Problem
from ..targets import Target
from ..validation import integer
from .quadrature import (
    ROUNDING_FLOOR,
    SAFETY,
    _error,
    _fix_signs,
    _Grid,
    _grids,
    _multi_indices,
    _node_counts,
    _norm_He_all,
    _target_of,
    _tolerance,
    _unit,
)
from .symmetry import GENERIC_STUDENT, StudentSymmetry, student_symmetry

__all__ = [
    "Subspace",
    "SubspaceSequence",
    "learned_subspaces",
    "moment_subspace",
    "moment_vectors",
]


# eigenvalues of a feature Gram matrix below this fraction of the largest are dependencies
_GRAM_CUTOFF = 1e-10


def moment_vectors(target: str | Target | Problem, k_max: int = 4, nodes: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment vectors E[g*(z)^k z], k = 1..k_max.

    Returns
    -------
    moments : ndarray, shape (k_max, K)
    error : ndarray, shape (k_max, K)
        Quadrature error estimates.
    scale : ndarray, shape (k_max,)
        sqrt(E[g*^(2k)]), the Cauchy-Schwarz bound on |E[g*^k <v,z>]| for unit v.

    Examples
    --------
    >>> moments, error, scale = moment_vectors("he3", k_max=3, nodes=20)
    >>> [round(float(m), 6) + 0.0 for m in moments[:, 0]]  # E[He3(z)^k z], k = 1, 2, 3
    [0.0, 0.0, 324.0]
    """
    target = _target_of(target)
    k_max = integer("k_max", k_max, 1, 12)

    def moments(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
        mom, second = np.empty((k_max, target.K)), np.empty(k_max)
        yk_w = grid.w.copy()
        for k in range(k_max):
            yk_w *= grid.y  # w y^(k+1)
            mom[k] = grid.z @ yk_w
            second[k] = yk_w @ grid.y ** (k + 1)
        return mom, second

    fine, *coarse = _grids(target, nodes)
    mom, second = moments(fine)
    err = _error(mom, [moments(g)[0] for g in coarse])
    return mom, err, np.sqrt(second)


@dataclass(frozen=True)
class Subspace:
    """A subspace of R^K found by quadrature.

    Attributes
    ----------
    basis : ndarray, shape (K, r)
        Orthonormal columns (principal directions, strongest first).
    strength : ndarray, shape (r,)
        Eigenvalues of the explained-variance matrix for these directions: the fraction of
        Var(<v,z>) explained by the features (0..1).
    rejected : ndarray, shape (K - r,)
        The eigenvalues declared zero.
    tol : float
        Threshold used, SAFETY x quadrature error + ROUNDING_FLOOR.
    error : float
        Quadrature error estimate of the explained-variance matrix (spectral norm of the
        difference to the two coarser rules).
    """

    basis: np.ndarray
    strength: np.ndarray
    rejected: np.ndarray
    tol: float
    error: float

    @property
    def dim(self) -> int:
        return self.basis.shape[1]


@dataclass(frozen=True)
class SubspaceSequence:
    """Subspaces U_1 <= U_2 <= ... learned at successive GD steps.

    Attributes
    ----------
    kind : str
        "one-pass" or "multi-pass".
    new : list of Subspace
        new[t-1] = directions added at step t (orthogonal to U_{t-1}); the list stops at the
        first step that adds nothing (from then on nothing changes).
    student : StudentSymmetry
        The student parities assumed (generic = none).
    """

    kind: str
    new: list
    student: StudentSymmetry | None = None

    def basis(self, step: int | None = None) -> np.ndarray:
        """Orthonormal basis of U_step, shape (K, dim); step None = the final subspace."""
        parts = self.new if step is None else self.new[: max(step, 0)]
        K = self.new[0].basis.shape[0]
        cols = [s.basis for s in parts if s.dim]
        return np.concatenate(cols, axis=1) if cols else np.zeros((K, 0))

    def first_step(self, v: ArrayLike, tol: float = 1e-6) -> int | None:
        """First step t whose U_t has a component |P_{U_t} v| > tol (overlap along v != 0)."""
        u = _unit(v, self.new[0].basis.shape[0])
        for t in range(1, len(self.new) + 1):
            if np.linalg.norm(self.basis(t).T @ u) > tol:
                return t
        return None

    @property
    def direction_tol(self) -> float:
        """Error on the computed directions: quadrature error / smallest accepted strength."""
        errs = [s.error / s.strength.min() for s in self.new if s.dim]
        return max([1e-6] + [SAFETY * e for e in errs])


def _hermite_features(s: np.ndarray, degree: int) -> np.ndarray:
    """Products of orthonormal Hermite polynomials of the rows of s (u, N), total degree <=
    degree, constant first. Returns (m, N)."""
    u, N = s.shape
    if u == 0:
        return np.ones((1, N))
    he = [_norm_He_all(degree, s[i]) for i in range(u)]
    rows = []
    for J in _multi_indices(u, degree):
        prod = np.ones(N)
        for i, j in enumerate(J):
            if j:
                prod = prod * he[i][j]
        rows.append(prod)
    return np.stack(rows)


def _explained_matrix(grid: _Grid, features, U: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """K x K matrix P A^T A P, A = coefficients of z on the orthonormalised features, P the
    projector orthogonal to U (K, u). Its range is span{P E[phi z] : phi in features}."""
    K = grid.z.shape[0]
    G = B = None
    for start in range(0, grid.w.size, chunk):
        sl = slice(start, start + chunk)
        z, w = grid.z[:, sl], grid.w[sl]
        phi = features(grid, sl)
        pw = phi * w
        G = pw @ phi.T if G is None else G + pw @ phi.T
        B = pw @ z.T if B is None else B + pw @ z.T
    evals, evecs = np.linalg.eigh(0.5 * (G + G.T))
    keep = evals > _GRAM_CUTOFF * max(evals.max(), 1e-300)
    A = (evecs[:, keep] / np.sqrt(evals[keep])).T @ B  # (r, K)
    P = np.eye(K) - U @ U.T
    A = A @ P
    E = A.T @ A
    return 0.5 * (E + E.T)


_SUBSPACE_CACHE: dict = {}


def _subspace_from(target: Target, nodes, features_for, U: np.ndarray, key=None) -> Subspace:
    """Directions orthogonal to U spanned by E[phi z], phi in features (fine vs coarse rules).

    ``key`` (hashable, describing the features completely) memoises the result: the generic
    and student closures of a report share most of their steps."""
    if key is not None:
        key = (target, _node_counts(target.K, nodes), key, U.shape, U.tobytes())
        if key in _SUBSPACE_CACHE:
            return _SUBSPACE_CACHE[key]
        if len(_SUBSPACE_CACHE) > 256:
            _SUBSPACE_CACHE.clear()
        _SUBSPACE_CACHE[key] = sub = _subspace_from(target, nodes, features_for, U)
        return sub
    fine, *coarse = _grids(target, nodes)
    E = _explained_matrix(fine, features_for(fine), U)
    err = max(float(np.linalg.norm(E - _explained_matrix(g, features_for(fine), U), 2))
              for g in coarse)
    tol = float(_tolerance(err))
    evals, evecs = np.linalg.eigh(E)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    # directions inside U have eigenvalue 0 by construction; never return them
    inside = np.linalg.norm(U.T @ evecs, axis=0) > 0.5 if U.shape[1] else np.zeros(len(evals), bool)
    accept = (evals > tol) & ~inside
    basis = evecs[:, accept]
    if basis.shape[1] and U.shape[1]:
        basis = basis - U @ (U.T @ basis)
        basis, _ = np.linalg.qr(basis)
        basis = _fix_signs(basis)
    elif basis.shape[1]:
        basis = _fix_signs(basis)
    return Subspace(basis, evals[accept], evals[~accept & ~inside], tol, err)


def _allowed(kind: str, step: int, sym: StudentSymmetry):
    """(y powers, predicate(i, j) on the y power i and the z_U degree j) of the features
    phi = y^i He_J(z_U) that E[F(t) | y, z_U] can contain at this step
    (docs/guide/learnability.md, student parities)."""
    if kind == "one-pass" or step == 1:
        # F linear in y times E[sigma'(h) | z_U]: a function of z_U with sigma''s parity
        rule = {"constant": lambda j: j == 0, "const+odd": lambda j: j == 0 or j % 2 == 1,
                "odd": lambda j: j % 2 == 1, "even": lambda j: j % 2 == 0,
                "mixed": lambda j: True}[sym.dsigma]
        return (1,), lambda i, j: rule(j)
    if sym.dsigma == "constant":
        # linear student: F and h stay linear in (y, z_U, noise)
        return (1,), lambda i, j: j == 0
    if sym.sigma == "odd":
        return None, lambda i, j: (i + j) % 2 == 1
    if sym.sigma == "even":
        return None, lambda i, j: j % 2 == 1
    return None, lambda i, j: True


def _feature_factory(kind: str, step: int, k_max: int, cond_degree: int, U: np.ndarray,
                     sym: StudentSymmetry):
    """features_for(reference_grid) -> features(grid, slice) for the subspace computations:
    phi = t^i He_J(U^T z), t = y / rms(y) (not centred: centring would mix parities), i >= 1
    (E[He_J(z_U) z_perp] = 0, so i = 0 adds nothing), |J| <= cond_degree, filtered by
    :func:`_allowed`. rms(y) is taken on the reference grid and reused on the other one."""
    powers, allow = _allowed(kind, step, sym)
    powers = tuple(range(1, k_max + 1)) if powers is None else powers
    u = U.shape[1]
    J_all = _multi_indices(u, cond_degree if u else 0)
    pairs = [(i, m) for i in powers for m, J in enumerate(J_all) if allow(i, int(J.sum()))]

    def features_for(ref: _Grid):
        rms = float(np.sqrt(ref.expect(ref.y**2))) or 1.0

        def features(grid: _Grid, sl: slice) -> np.ndarray:
            t = grid.y[sl] / rms
            tp = {1: t}
            for i in range(2, max(powers) + 1):
                tp[i] = tp[i - 1] * t
            hz = _hermite_features(U.T @ grid.z[:, sl], cond_degree) if u else None
            out = np.empty((len(pairs), t.size))
            for r, (i, m) in enumerate(pairs):
                out[r] = tp[i] if hz is None else tp[i] * hz[m]
            return out

        return features

    return features_for, (tuple(pairs), cond_degree)


def moment_subspace(target: str | Target | Problem, k_max: int = 4, nodes: int | None = None
                    ) -> Subspace:
    """The two-step test (docs/theory/learnability.md): span{E[g*(z)^k z] : k = 1..k_max}.

    These are the directions v with some moment E[g*^k <v,z>] != 0; for a generic student,
    multi-pass GD learns them by step 2 (M_0 = 0). Computed as the range of the
    explained-variance matrix of the features (y/rms)^k, k = 1..k_max (same span as the raw
    moments; the Gram-matrix orthonormalisation handles their conditioning), with rank
    tolerance SAFETY x quadrature error + ROUNDING_FLOOR.

    Returns
    -------
    Subspace

    Examples
    --------
    >>> moment_subspace("he3", nodes=40).dim  # E[He3(z)^3 z] != 0: learned at step 2
    1
    >>> moment_subspace("he4", nodes=40).dim  # even target: every moment vanishes
    0
    """
    target = _target_of(target)
    k_max = integer("k_max", k_max, 1, 12)
    U0 = np.zeros((target.K, 0))
    factory, key = _feature_factory("multi-pass", 2, k_max, 0, U0, GENERIC_STUDENT)
    return _subspace_from(target, nodes, factory, U0, key)


def learned_subspaces(target: str | Target | Problem, kind: str = "multi-pass", k_max: int = 4,
                      cond_degree: int = 2, nodes: int | None = None,
                      activation: str | Activation | None = None) -> SubspaceSequence:
    """Subspaces learned at steps 1, 2, ... from M_0 = 0 (docs/guide/learnability.md).

    Parameters
    ----------
    target : str, Target or Problem
        With a Problem, its activation is used (unless ``activation`` is given).
    kind : {"multi-pass", "one-pass"}
    k_max : int
        Largest power of y in the multi-pass features (1..12).
    cond_degree : int
        Largest total degree in z_U of the conditioning features (0..4).
    nodes : int, optional
    activation : str or Activation, optional
        Restrict the features by the parities of sigma and sigma' (:func:`student_symmetry`).
        Default: a generic student (no restriction).

    Returns
    -------
    SubspaceSequence

    Examples
    --------
    >>> staircase = learned_subspaces("staircase", nodes=40)  # z1 + z1 z2
    >>> [new.dim for new in staircase.new], staircase.first_step([0.0, 1.0])
    ([1, 1], 2)
    """
    if activation is None and isinstance(target, Problem):
        activation = target.activation
    target = _target_of(target)
    sym = GENERIC_STUDENT if activation is None else student_symmetry(activation)
    if kind not in ("multi-pass", "one-pass"):
        raise ValueError(f"kind must be 'multi-pass' or 'one-pass', got {kind!r}")
    k_max = integer("k_max", k_max, 1, 12)
    cond_degree = integer("cond_degree", cond_degree, 0, 4)
    K = target.K
    U = np.zeros((K, 0))
    new = []
    step = 1
    while True:
        factory, key = _feature_factory(kind, step, k_max, cond_degree, U, sym)
        if key[0]:
            sub = _subspace_from(target, nodes, factory, U, key)
        else:
            sub = Subspace(np.zeros((K, 0)), np.zeros(0), np.zeros(0), ROUNDING_FLOOR, 0.0)
        new.append(sub)
        if sub.dim:
            U = np.concatenate([U, sub.basis], axis=1)
        elif step > 1:
            break
        if U.shape[1] == K:
            break
        step += 1
    return SubspaceSequence(kind, new, sym)
