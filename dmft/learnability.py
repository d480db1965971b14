"""Learnability analysis of a multi-index target (SPEC section 7).

Which directions of the teacher subspace R^K does gradient descent learn in O(1) steps, and
when? This module answers from the target alone, by Gaussian quadrature:

* Hermite coefficients along any direction and in a multi-index (tensor) basis, information
  exponents and the leap exponent (Abbe et al. 2023);
* the closed-form step-1 overlap M_1 (SPEC 7);
* the subspaces learned step by step by one-pass SGD and by multi-pass GD (full batch reused),
  the hard subspace, and even-symmetric / orthogonally-even-symmetric directions;
* a printable :class:`LearnabilityReport` (``dmft analyze TARGET`` on the command line).

Conventions
-----------
z ~ N(0, I_K), y = g*(z). Hermite polynomials are the probabilists' ``He_k``; coefficients are
taken in the *orthonormal* basis ``He_k / sqrt(k!)``, so ``c_k(v) = E[g*(z) He_k(<v,z>)] /
sqrt(k!)`` for a unit vector v and sum_k c_k(v)^2 <= E[g*^2] (Parseval).

Expectations use the tensor Gauss-Hermite rule with ``n`` nodes per axis (K <= 4). Every
quantity is also computed with about ``3n/4`` and ``n/2`` nodes; the largest difference is the
reported quadrature error (a bound on the actual error from 60 nodes on for tanh(z1 + He3(z2)),
and an overestimate by orders of magnitude at the default 800 nodes, measured against 1200
nodes in tests/test_learnability.py), and every
"is this zero?" decision uses a tolerance of ``SAFETY = 10`` times that error plus a rounding
floor of 1e-9 (relative to the natural scale of the quantity). The tensor grid is symmetric
under coordinate sign flips and permutations, so moments that vanish by a symmetry of g*
vanish to rounding (~1e-16), while polynomial targets are integrated exactly: the decisions
for the paper's targets have margins > 10^3 on both sides (tests/test_learnability.py).

How the step-by-step subspaces are defined (derivation in SPEC 3/6 notation)
-------------------------------------------------------------------------------
With M_0 = 0 the rows of M_t lie in a subspace U_t, and M_{t+1} - M_t is proportional to
``E[F(t) z^T]``. Since h(t) depends on z only through z_U = U_t^T z, and z_perp (the part of z
orthogonal to U_t) enters only through y, E[F(t) z_perp] = E[phi(y, z_U) z_perp] with
phi = E[F(t) | y, z_U]:

* one-pass (fresh batches, squared loss): F is *linear* in y, so
  U_{t+1} = U_t + span{E[y q(z_U) z_perp] : q polynomial};
* multi-pass (batch reused): h(t) carries y through the memory of past gradients, so phi is a
  general function of (y, z_U) from step 2 on:
  U_{t+1} = U_t + span{E[p(y, z_U) z_perp] : p polynomial}.
* step 1 is common: U_1 = span{C_1}, C_1 = E[g*(z) z].

For U_1 = {0} the multi-pass step-2 subspace is the span of the moments E[g*^k z], k <= k_max
(the "two-step test" of SPEC 7, :func:`moment_subspace`). Polynomials are truncated (degree
``k_max`` in y, ``cond_degree`` in z_U); each span is computed as the range of the K x K
"explained-variance" matrix E = A^T A, A = the coefficients of z_perp on an orthonormalised
feature basis. Its eigenvalues are the fractions of Var(<v,z>) explained by the features
(between 0 and 1, Bessel's inequality), a scale-free measure of how strongly v is learned.
Directions outside the final multi-pass subspace are *hard*: never learned in O(1) steps.

Student parities (:func:`student_symmetry`). Without an activation the verdicts are for a
generic student. The activation restricts phi exactly: odd sigma (tanh, erf) makes the whole
process symmetric under (h, y) -> -(h, y), so phi is odd in (y, z_U); even sigma makes it odd
in z_U; a linear student keeps phi linear (only C_1 is ever learned); and in one-pass the
factor E[sigma'(h) | z_U] has the parity of sigma' up to a constant (ReLU: constant + odd,
so only odd q(z_U) staircase through: for the odd target tanh(z1 + He3(z2)) the even q that
would reach C_1's complement are unavailable and one-pass ReLU never learns it, while one-pass
tanh does). These predictions were checked against the DMFT and one-pass solvers
(tests/test_learnability_dmft.py). Other accidental cancellations of a specific second
layer are not modelled.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate
from scipy.special import roots_hermitenorm

from .activations import get_activation
from .gaussian import first_hermite
from .problem import Problem
from .targets import Target, get_target

__all__ = [
    "gaussian_grid",
    "hermite_coefficients",
    "hermite_tensor_coefficients",
    "HermiteExpansion",
    "information_exponent",
    "leap_of_support",
    "leap_exponent",
    "LeapResult",
    "mean_activation_derivative",
    "step1_overlap",
    "moment_vectors",
    "moment_subspace",
    "learned_subspaces",
    "Subspace",
    "SubspaceSequence",
    "is_even_symmetric",
    "orthogonal_even_partner",
    "StudentSymmetry",
    "GENERIC_STUDENT",
    "student_symmetry",
    "DirectionVerdict",
    "LearnabilityReport",
    "analyze",
]

# Nodes per axis of the tensor Gauss-Hermite rule, by K (at most ~10^6 points). For the paper's
# non-polynomial target tanh(z1 + He3(z2)) the error estimate at 800 nodes is < 2e-6 for the
# Hermite coefficients (actual error < 2e-9, measured against 1200 nodes).
DEFAULT_NODES = {1: 3000, 2: 800, 3: 100, 4: 32}
MAX_K = 4
# "non-zero" means > SAFETY x (quadrature error estimate) + floor
SAFETY = 10.0
# rounding floor for quantities of order 1 summed over ~10^6 weighted nodes
ROUNDING_FLOOR = 1e-9
# eigenvalues of a feature Gram matrix below this fraction of the largest are dependencies
_GRAM_CUTOFF = 1e-10


# ============================================================================ quadrature
@functools.lru_cache(maxsize=32)
def _gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite rule for N(0, 1): nodes (n,), weights (n,) summing to 1."""
    x, w = roots_hermitenorm(n)
    w = w / w.sum()
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def gaussian_grid(K: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Hermite rule for z ~ N(0, I_K).

    Parameters
    ----------
    K : int
        Dimension, 1 <= K <= 4 (the rule has n^K points).
    n : int
        Nodes per axis, n >= 2.

    Returns
    -------
    nodes : ndarray, shape (K, n**K)
    weights : ndarray, shape (n**K,)
        Positive, summing to 1; sum(weights * f(nodes)) approximates E[f(z)], exactly for
        polynomials of degree <= 2n - 1 in each coordinate.
    """
    K = _check_K(K)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n (nodes per axis) must be an integer >= 2, got {n!r}")
    x, w = _gauss_hermite(int(n))
    nodes = np.stack(np.meshgrid(*([x] * K), indexing="ij")).reshape(K, -1)
    weights = w
    for _ in range(K - 1):
        weights = np.multiply.outer(weights, w).ravel()
    return nodes, np.array(weights)


def _check_K(K) -> int:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or not 1 <= K <= MAX_K:
        raise ValueError(
            f"K must be an integer in [1, {MAX_K}] for tensor Gauss-Hermite quadrature, got {K!r}"
        )
    return int(K)


def _node_counts(K: int, nodes) -> tuple[int, int, int]:
    """(fine, coarse, coarser) nodes per axis: about n, 3n/4 and n/2, all of n's parity."""
    if nodes is None:
        n = DEFAULT_NODES[K]
    elif isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 8:
        raise ValueError(f"nodes must be an integer >= 8 (nodes per axis), got {nodes!r}")
    else:
        n = int(nodes)
    # keep the parity: an odd rule has a node at 0, where kinks of g* sit in many targets
    coarse = n - 2 * ((n // 4 + 1) // 2)
    coarser = n - 2 * ((n // 2 + 1) // 2)
    return n, coarse, coarser


@dataclass(frozen=True, eq=False)
class _Grid:
    """Nodes, weights and target values of one tensor rule."""

    z: np.ndarray  # (K, N), tensor grid in "ij" order
    w: np.ndarray  # (N,)
    y: np.ndarray  # (N,)
    n: int  # nodes per axis
    cache: dict = field(default_factory=dict, repr=False)

    def expect(self, values: np.ndarray) -> np.ndarray:
        """E over z of ``values`` (..., N) -> (...)."""
        return values @ self.w

    def chunks(self, size: int = 1 << 16):
        """Yield (z (K, m), w (m,), y (m,)) slices, to bound the memory of feature arrays."""
        for start in range(0, self.w.size, size):
            sl = slice(start, start + size)
            yield self.z[:, sl], self.w[sl], self.y[sl]

    @property
    def norm(self) -> float:
        """sqrt(E[g*^2])."""
        return float(np.sqrt(self.expect(self.y**2)))


@functools.lru_cache(maxsize=4)
def _target_grid(target: Target, n: int) -> _Grid:
    z, w = gaussian_grid(target.K, n)
    y = target(z)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"target {target.name!r} returned non-finite values on quadrature nodes")
    for arr in (z, w, y):
        arr.setflags(write=False)
    return _Grid(z, w, y, n)


def _grids(target: Target, nodes) -> tuple[_Grid, ...]:
    """The fine rule first, then the two coarser ones used for the error estimate."""
    return tuple(_target_grid(target, n) for n in _node_counts(target.K, nodes))


def _error(fine_value, coarse_values) -> np.ndarray:
    """Quadrature error estimate of the fine value: the largest difference to the coarser
    rules. Two of them, because a single difference can vanish by accident in the
    pre-asymptotic regime (measured: up to 12x too small for tanh(z1 + He3(z2)) at 160 nodes);
    it overestimates the fine rule's error once the rules converge."""
    return np.max([np.abs(fine_value - c) for c in coarse_values], axis=0)


def _expect_pair(target: Target, nodes, fn) -> tuple[np.ndarray, np.ndarray]:
    """E[fn(z, y)] on the fine rule and its quadrature error estimate (:func:`_error`)."""
    fine, *coarse = _grids(target, nodes)
    val = fine.expect(fn(fine.z, fine.y))
    return val, _error(val, [g.expect(fn(g.z, g.y)) for g in coarse])


def _unit(v, K: int, name: str = "v") -> np.ndarray:
    u = np.asarray(v, dtype=np.float64).reshape(-1)
    if u.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},), got {np.shape(v)}")
    norm = float(np.linalg.norm(u))
    if not (np.isfinite(norm) and norm > 0):
        raise ValueError(f"{name} must be a finite non-zero vector, got {v!r}")
    return u / norm


def _target_of(spec) -> Target:
    if isinstance(spec, Problem):
        return spec.target
    return get_target(spec)


def _norm_He_all(degree: int, x: np.ndarray) -> list[np.ndarray]:
    """[He_k(x) / sqrt(k!) for k = 0..degree] by the three-term recurrence of the orthonormal
    polynomials: h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k + 1)."""
    x = np.asarray(x, dtype=np.float64)
    out = [np.ones_like(x)]
    if degree >= 1:
        out.append(x.copy())
    for k in range(1, degree):
        out.append((x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1))
    return out


def _tolerance(err, scale=1.0):
    """Threshold above which a quadrature value counts as non-zero (see module docstring)."""
    return SAFETY * np.asarray(err) + ROUNDING_FLOOR * np.asarray(scale)


# ============================================================================ Hermite analysis
def hermite_coefficients(target, v, degree: int = 6, nodes: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Hermite coefficients of g* along a direction.

    Parameters
    ----------
    target : str, Target or Problem
    v : array of shape (K,)
        Direction (normalised internally).
    degree : int
        Largest k, 0 <= degree <= 20.
    nodes : int, optional
        Nodes per axis of the fine rule (default :data:`DEFAULT_NODES`).

    Returns
    -------
    coef : ndarray, shape (degree + 1,)
        c_k = E[g*(z) He_k(<v,z>)] / sqrt(k!), k = 0..degree.
    error : ndarray, shape (degree + 1,)
        Quadrature error estimate: largest |c_k(n nodes) - c_k(m nodes)|, m ~ 3n/4, n/2.
    """
    target = _target_of(target)
    degree = _check_degree(degree, "degree", 20)
    u = _unit(v, target.K)

    def fn(z, y):
        s = u @ z
        return np.stack([y * h for h in _norm_He_all(degree, s)])

    return _expect_pair(target, nodes, fn)


def _check_degree(value, name: str, hi: int, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class HermiteExpansion:
    """Multi-index Hermite coefficients of g* in an orthonormal basis of R^K.

    Attributes
    ----------
    indices : ndarray of int, shape (m, K)
        Multi-indices alpha with |alpha| <= degree (graded order, alpha = 0 first).
    coef : ndarray, shape (m,)
        c_alpha = E[g*(z) prod_i He_{alpha_i}(<b_i, z>)] / sqrt(prod_i alpha_i!).
    error : ndarray, shape (m,)
        Quadrature error estimates (largest difference to the two coarser rules).
    basis : ndarray, shape (K, K)
        Orthonormal basis, columns b_i.
    norm : float
        sqrt(E[g*^2]) (by Parseval the coefficients' squares sum to at most its square).
    """

    indices: np.ndarray
    coef: np.ndarray
    error: np.ndarray
    basis: np.ndarray
    norm: float

    @property
    def tolerance(self) -> np.ndarray:
        """Per-coefficient threshold for "non-zero", shape (m,)."""
        return _tolerance(self.error, self.norm)

    def support(self) -> list[tuple[int, ...]]:
        """Multi-indices alpha != 0 with |c_alpha| above the tolerance."""
        keep = (np.abs(self.coef) > self.tolerance) & (self.indices.sum(axis=1) > 0)
        return [tuple(int(a) for a in alpha) for alpha in self.indices[keep]]

    def truncated(self, degree: int) -> HermiteExpansion:
        """The coefficients with |alpha| <= degree."""
        keep = self.indices.sum(axis=1) <= degree
        return HermiteExpansion(self.indices[keep], self.coef[keep], self.error[keep],
                                self.basis, self.norm)

    def along(self, v) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients c_k(v), k = 0..degree, along a direction, from the multi-index ones.

        Uses He_k(<v,z>) = sum_{|alpha| = k} (k! / alpha!) u^alpha He_alpha(b^T z) for a unit v
        with coordinates u = B^T v (generating function exp(t s - t^2/2) factorises), so
        c_k(v) = sum_{|alpha| = k} sqrt(k! / alpha!) u^alpha c_alpha. The error is propagated
        by the triangle inequality.

        Returns
        -------
        coef, error : ndarray, shape (degree + 1,)
        """
        u = self.basis.T @ _unit(v, self.basis.shape[0])
        deg = self.indices.sum(axis=1)
        out, err = np.zeros(deg.max() + 1), np.zeros(deg.max() + 1)
        for alpha, c, e, k in zip(self.indices, self.coef, self.error, deg, strict=True):
            fact = math.factorial(int(k)) / math.prod(math.factorial(int(a)) for a in alpha)
            weight = math.sqrt(fact) * float(np.prod(u**alpha))
            out[k] += weight * c
            err[k] += abs(weight) * e
        return out, err


def _multi_indices(K: int, degree: int) -> np.ndarray:
    out = [a for a in itertools.product(range(degree + 1), repeat=K) if sum(a) <= degree]
    out.sort(key=lambda a: (sum(a), tuple(-x for x in a)))
    return np.array(out, dtype=np.int64).reshape(len(out), K)


def _check_basis(basis, K: int) -> np.ndarray:
    if basis is None:
        return np.eye(K)
    B = np.asarray(basis, dtype=np.float64)
    if B.shape != (K, K) or not np.all(np.isfinite(B)):
        raise ValueError(f"basis must be a finite ({K}, {K}) array (columns = directions), got "
                         f"shape {B.shape}")
    if not np.allclose(B.T @ B, np.eye(K), atol=1e-8):
        raise ValueError("basis must be orthonormal (B^T B = I)")
    return B


def hermite_tensor_coefficients(target, degree: int = 4, basis=None, nodes: int | None = None
                                ) -> HermiteExpansion:
    """Multi-index Hermite expansion of g* up to total degree ``degree``.

    Parameters
    ----------
    target : str, Target or Problem
    degree : int
        Largest total degree |alpha|, 0 <= degree <= 8.
    basis : array of shape (K, K), optional
        Orthonormal basis (columns); default the standard basis of the teacher's z.
    nodes : int, optional
        Nodes per axis of the fine rule.

    Returns
    -------
    HermiteExpansion
    """
    target = _target_of(target)
    degree = _check_degree(degree, "degree", 8)
    K = target.K
    B = _check_basis(basis, K)
    idx = _multi_indices(K, degree)

    def coefficients(grid: _Grid) -> np.ndarray:
        out = np.zeros(len(idx))
        for z, w, y in grid.chunks():
            s = B.T @ z
            he = [_norm_He_all(degree, s[i]) for i in range(K)]
            # graded order: alpha minus its last non-zero coordinate comes earlier, so each
            # product costs one multiplication
            prods: dict[tuple, np.ndarray] = {}
            for m, alpha in enumerate(idx):
                key = tuple(int(a) for a in alpha)
                nz = [i for i, a in enumerate(key) if a]
                if not nz:
                    prods[key] = y * w
                else:
                    i = nz[-1]
                    prev = key[:i] + (0,) + key[i + 1:]
                    prods[key] = prods[prev] * he[i][key[i]]
                out[m] += prods[key].sum()
        return out

    def separable(grid: _Grid) -> np.ndarray:
        # standard basis on a tensor grid: contract (y w) with He_k(x) / sqrt(k!) axis by axis
        x, _ = _gauss_hermite(grid.n)
        H = np.stack(_norm_He_all(degree, x))  # (degree + 1, n)
        T = (grid.y * grid.w).reshape((grid.n,) * K)
        for _ in range(K):
            # contracting the leading axis appends its degree axis last: after K contractions
            # the axes are (alpha_1, ..., alpha_K) in order
            T = np.tensordot(T, H, axes=([0], [1]))
        return T[tuple(idx.T)]

    fine, *coarse = _grids(target, nodes)
    method = separable if basis is None else coefficients
    coef = method(fine)
    err = _error(coef, [method(g) for g in coarse])
    return HermiteExpansion(idx, coef, err, B, fine.norm)


def information_exponent(target, v, max_degree: int = 6, nodes: int | None = None
                         ) -> int | None:
    """Information exponent of g* along v: min{k >= 1 : E[g* He_k(<v,z>)] != 0}.

    Parameters
    ----------
    target : str, Target or Problem
    v : array of shape (K,)
    max_degree : int
        Largest k examined (1..20).
    nodes : int, optional

    Returns
    -------
    int or None
        The exponent, or None when every coefficient up to ``max_degree`` is zero within the
        quadrature tolerance (the exponent is then > max_degree, or infinite).
    """
    target = _target_of(target)
    max_degree = _check_degree(max_degree, "max_degree", 20, lo=1)
    coef, err = hermite_coefficients(target, v, max_degree, nodes)
    nonzero = np.abs(coef) > _tolerance(err, _grids(target, nodes)[0].norm)
    for k in range(1, max_degree + 1):
        if nonzero[k]:
            return k
    return None


# ============================================================================ leap exponent
def leap_of_support(support) -> tuple[int | None, list[tuple[int, ...]]]:
    """Leap complexity of a set of multi-indices (Abbe, Boix-Adsera, Misiakiewicz 2023).

    Definition implemented: for the support S (multi-indices alpha != 0 with a non-zero Hermite
    coefficient), Leap(S) = min over orderings alpha^1, ..., alpha^m of S of
    max_i sum_{k not in supp(alpha^1) u ... u supp(alpha^{i-1})} alpha^i_k, i.e. the largest
    total degree an element puts on coordinates not yet reached. For a fixed L the reachable set
    only grows as elements are added, so the minimum is the smallest L for which the greedy
    closure (add any element whose new degree is <= L) exhausts S.

    Parameters
    ----------
    support : iterable of tuples of non-negative ints, all of the same length K

    Returns
    -------
    leap : int or None
        None for an empty support.
    ordering : list of tuples
        An optimal ordering (greedy, smallest new degree first).
    """
    S = sorted({tuple(int(a) for a in alpha) for alpha in support})
    S = [alpha for alpha in S if sum(alpha) > 0]
    if any(a < 0 for alpha in S for a in alpha) or len({len(a) for a in S}) > 1:
        raise ValueError("support must contain multi-indices of non-negative ints of one length")
    if not S:
        return None, []

    def new_degree(alpha, reached):
        return sum(a for k, a in enumerate(alpha) if a and k not in reached)

    for L in range(1, max(sum(a) for a in S) + 1):
        reached: set[int] = set()
        remaining = list(S)
        order = []
        while remaining:
            remaining.sort(key=lambda a: (new_degree(a, reached), sum(a), a))
            best = remaining[0]
            if new_degree(best, reached) > L:
                break
            order.append(best)
            remaining.pop(0)
            reached |= {k for k, a in enumerate(best) if a}
        if not remaining:
            return L, order
    raise AssertionError("unreachable: L = max degree always exhausts the support")


@dataclass(frozen=True)
class LeapResult:
    """Leap exponent of a target in a given basis, from its Hermite support up to a degree.

    Attributes
    ----------
    leap : int or None
        Leap of the detected support (None if no coefficient up to ``degree`` is non-zero).
    ordering : list of tuples
        An optimal ordering of the support.
    support : list of tuples
        Multi-indices with a non-zero coefficient, |alpha| <= degree.
    degree : int
        Truncation degree of the expansion.
    basis : ndarray, shape (K, K)
    undetected : tuple of int
        Basis coordinates g* depends on (checked on random points) that appear in no detected
        multi-index: the truncation hides them, so the true leap may be larger.
    """

    leap: int | None
    ordering: list
    support: list
    degree: int
    basis: np.ndarray
    undetected: tuple

    @property
    def complete(self) -> bool:
        """True when every coordinate g* depends on is reached within ``degree``."""
        return not self.undetected


def _depends_on(target: Target, direction: np.ndarray, seed: int = 0, points: int = 512) -> bool:
    """Does g* change when z moves along ``direction``? (random points, finite shift)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((target.K, points))
    y = target(z)
    shifted = target(z + 0.37 * direction[:, None])
    return bool(np.any(np.abs(shifted - y) > 1e-9 * (1.0 + np.abs(y))))


def leap_exponent(target, degree: int = 4, basis=None, nodes: int | None = None) -> LeapResult:
    """Leap exponent of g* in an orthonormal basis, from its Hermite expansion up to ``degree``.

    The leap depends on the basis (Abbe et al.'s isoLeap minimises over rotations; that
    minimisation is not attempted here): pass ``basis`` to use another frame, e.g. the
    learning basis of :func:`analyze`.

    Parameters
    ----------
    target : str, Target or Problem
    degree : int
        Truncation degree of the expansion (1..8).
    basis : array of shape (K, K), optional
    nodes : int, optional

    Returns
    -------
    LeapResult
    """
    target = _target_of(target)
    degree = _check_degree(degree, "degree", 8, lo=1)
    return _leap_from(target, hermite_tensor_coefficients(target, degree, basis, nodes), degree)


def _leap_from(target: Target, expansion: HermiteExpansion, degree: int) -> LeapResult:
    expansion = expansion.truncated(degree)
    support = expansion.support()
    leap, order = leap_of_support(support)
    reached = {k for alpha in support for k, a in enumerate(alpha) if a}
    undetected = tuple(
        k for k in range(target.K)
        if k not in reached and _depends_on(target, expansion.basis[:, k])
    )
    return LeapResult(leap, order, support, degree, expansion.basis, undetected)


# ============================================================================ step-1 overlap
def mean_activation_derivative(activation, variance: float) -> float:
    """E[sigma'(h)] for h ~ N(0, variance), by adaptive 1-D quadrature split at 0.

    Parameters
    ----------
    activation : str or Activation
    variance : float
        >= 0; for 0 the value sigma'(0) is returned.

    Returns
    -------
    float
    """
    act = get_activation(activation)
    var = float(variance)
    if not (np.isfinite(var) and var >= 0):
        raise ValueError(f"variance must be finite and >= 0, got {variance!r}")
    if var == 0.0:
        return float(act.dsigma(0.0))
    sd = math.sqrt(var)

    def integrand(x):
        return act.dsigma(sd * x) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    # splitting at 0 keeps the kink / jump of ReLU-like sigma' on an interval boundary
    lower = integrate.quad(integrand, -np.inf, 0.0, epsabs=1e-13, epsrel=1e-12)[0]
    upper = integrate.quad(integrand, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    return lower + upper


def _first_hermite(target: Target, nodes=None) -> tuple[np.ndarray, np.ndarray]:
    """C_1 = E[g*(z) z] (K,) and its quadrature error (K,) on this module's rules (the report
    shows these, with their error; :func:`step1_overlap` uses dmft.gaussian's C_1)."""
    return _expect_pair(target, nodes, lambda z, y: z * y)


def step1_overlap(target, activation=None, a=None, alpha: float | None = None,
                  eta: float | None = None, Q0=None) -> np.ndarray:
    """Closed-form overlap after one GD step from M_0 = 0 (SPEC 7).

    M_1 = eta alpha (a * E[sigma'(h0)]) C_1^T with h0_j ~ N(0, Q0_jj) and C_1 = E[g*(z) z].
    (z is independent of h0 when M_0 = 0, so the f(h0) part of the residual and label noise
    drop out; weight decay multiplies M_0 = 0 and does not enter.) Identical for one-pass and
    multi-pass GD. C_1 comes from :func:`dmft.gaussian.first_hermite` (the package's shared
    quadrature), E[sigma'] from :func:`mean_activation_derivative`.

    Parameters
    ----------
    target : str, Target or Problem
        With a Problem, the remaining arguments must be omitted (they are read from it) and
        ``problem.M0`` must be 0.
    activation : str or Activation
    a : array of shape (P,)
        Second layer.
    alpha, eta : float
        Sample ratio n/d and learning rate (> 0).
    Q0 : array of shape (P, P), optional
        Initial student Gram matrix; default I_P (only its diagonal enters).

    Returns
    -------
    ndarray, shape (P, K)
    """
    if isinstance(target, Problem):
        if any(x is not None for x in (activation, a, alpha, eta, Q0)):
            raise TypeError("step1_overlap(problem) takes no other model arguments")
        prob = target
        if np.any(prob.M0 != 0):
            raise ValueError("the closed form needs problem.M0 = 0, got M0 with "
                             f"max |entry| {np.abs(prob.M0).max():.3g}")
        tgt, act, a_vec = prob.target, prob.activation, prob.a
        alpha_v, eta_v, q0 = prob.alpha, prob.eta, prob.Q0
    else:
        if activation is None or a is None or alpha is None or eta is None:
            raise TypeError("step1_overlap(target, activation, a, alpha, eta) needs all four "
                            "model arguments (or pass a dmft.Problem)")
        tgt = get_target(target)
        act = get_activation(activation)
        a_vec = np.asarray(a, dtype=np.float64).reshape(-1)
        if a_vec.ndim != 1 or a_vec.size < 1 or not np.all(np.isfinite(a_vec)):
            raise ValueError(f"a must be a finite 1-D array of length P >= 1, got {a!r}")
        for name, val in (("alpha", alpha), ("eta", eta)):
            if not (np.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be finite and > 0, got {val!r}")
        alpha_v, eta_v = float(alpha), float(eta)
        P = a_vec.size
        q0 = np.eye(P) if Q0 is None else np.asarray(Q0, dtype=np.float64)
        if q0.shape != (P, P) or np.any(np.diag(q0) < 0) or not np.all(np.isfinite(q0)):
            raise ValueError(f"Q0 must be a finite ({P}, {P}) array with diagonal >= 0")
    dsig = np.array([mean_activation_derivative(act, q) for q in np.diag(q0)])
    C1 = np.asarray(first_hermite(tgt), dtype=np.float64)
    return eta_v * alpha_v * np.outer(a_vec * dsig, C1)


# ============================================================================ subspaces
def moment_vectors(target, k_max: int = 4, nodes: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment vectors E[g*(z)^k z], k = 1..k_max.

    Returns
    -------
    moments : ndarray, shape (k_max, K)
    error : ndarray, shape (k_max, K)
        Quadrature error estimates.
    scale : ndarray, shape (k_max,)
        sqrt(E[g*^(2k)]), the Cauchy-Schwarz bound on |E[g*^k <v,z>]| for unit v.
    """
    target = _target_of(target)
    k_max = _check_degree(k_max, "k_max", 12, lo=1)

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

    def first_step(self, v, tol: float = 1e-6) -> int | None:
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


def _fix_signs(basis: np.ndarray) -> np.ndarray:
    """Deterministic signs: the largest-magnitude entry of each column is positive."""
    basis = basis.copy()
    for j in range(basis.shape[1]):
        i = int(np.argmax(np.abs(basis[:, j])))
        if basis[i, j] < 0:
            basis[:, j] *= -1
    return basis


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


def student_symmetry(activation) -> StudentSymmetry:
    """Parities of sigma and sigma', checked numerically on x in [0.05, 4] against -x.

    Parameters
    ----------
    activation : str or Activation

    Returns
    -------
    StudentSymmetry
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


def _allowed(kind: str, step: int, sym: StudentSymmetry):
    """(y powers, predicate(i, j) on the y power i and the z_U degree j) of the features
    phi = y^i He_J(z_U) that E[F(t) | y, z_U] can contain at this step (module docstring)."""
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


def moment_subspace(target, k_max: int = 4, nodes: int | None = None) -> Subspace:
    """The two-step test of SPEC 7: span{E[g*(z)^k z] : k = 1..k_max}.

    These are the directions v with some moment E[g*^k <v,z>] != 0; for a generic student,
    multi-pass GD learns them by step 2 (M_0 = 0). Computed as the range of the
    explained-variance matrix of the features (y/rms)^k, k = 1..k_max (same span as the raw
    moments; the Gram-matrix orthonormalisation handles their conditioning), with rank
    tolerance SAFETY x quadrature error + ROUNDING_FLOOR.

    Returns
    -------
    Subspace
    """
    target = _target_of(target)
    k_max = _check_degree(k_max, "k_max", 12, lo=1)
    U0 = np.zeros((target.K, 0))
    factory, key = _feature_factory("multi-pass", 2, k_max, 0, U0, GENERIC_STUDENT)
    return _subspace_from(target, nodes, factory, U0, key)


def learned_subspaces(target, kind: str = "multi-pass", k_max: int = 4, cond_degree: int = 2,
                      nodes: int | None = None, activation=None) -> SubspaceSequence:
    """Subspaces learned at steps 1, 2, ... from M_0 = 0 (see the module docstring).

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
    """
    if activation is None and isinstance(target, Problem):
        activation = target.activation
    target = _target_of(target)
    sym = GENERIC_STUDENT if activation is None else student_symmetry(activation)
    if kind not in ("multi-pass", "one-pass"):
        raise ValueError(f"kind must be 'multi-pass' or 'one-pass', got {kind!r}")
    k_max = _check_degree(k_max, "k_max", 12, lo=1)
    cond_degree = _check_degree(cond_degree, "cond_degree", 4)
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


# ============================================================================ symmetries
def _reflect(z: np.ndarray, v: np.ndarray) -> np.ndarray:
    return z - 2.0 * np.outer(v, v @ z)


def _invariant(target: Target, transform, points: int, seed: int) -> bool:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((target.K, points))
    y = target(z)
    y2 = target(transform(z))
    # relative tolerance far above rounding of the transform, far below any real asymmetry
    return bool(np.all(np.abs(y2 - y) <= 1e-8 * (1.0 + np.abs(y) + np.abs(y2))))


def is_even_symmetric(target, v, points: int = 2000, seed: int = 0) -> bool:
    """Is g*(R_v z) = g*(z) with R_v = I - 2 v v^T the reflection along v?

    Checked on ``points`` random z ~ N(0, I_K) (seeded) with relative tolerance 1e-8.
    Even-symmetric directions are never learned in O(1) steps from M_0 = 0 (SPEC 7): the law
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
    """
    target = _target_of(target)
    u = _unit(v, target.K)
    return _invariant(target, lambda z: _reflect(z, u), points, seed)


def orthogonal_even_partner(target, v, within=None, points: int = 2000, seed: int = 0
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


# ============================================================================ report
@dataclass
class DirectionVerdict:
    """Verdicts for one direction v of R^K.

    Attributes
    ----------
    name : str
    v : ndarray, shape (K,)
        Unit vector.
    information_exponent : int or None
        Along v, up to the report's ``max_degree`` (None = none found).
    hermite : ndarray, shape (max_degree + 1,)
        c_k(v) = E[g* He_k(<v,z>)] / sqrt(k!).
    first_moment : int or None
        Smallest k <= k_max with E[g*^k <v,z>] != 0.
    one_pass_step, multi_pass_step : int or None
        First GD step with a non-zero overlap along v (None: not in O(1) steps), for the
        report's student.
    hard_fraction : float
        |component of v in the hard subspace|^2 (1 = entirely hard, 0 = entirely learned).
    even_symmetric : bool
    partner : ndarray of shape (K,) or None
        w making v orthogonally-even-symmetric (see :func:`orthogonal_even_partner`).
    one_pass_reason, multi_pass_reason : str
    generic_one_pass_step, generic_multi_pass_step : int or None
        The same steps for a generic student (equal to the above without a Problem).
    """

    name: str
    v: np.ndarray
    information_exponent: int | None
    hermite: np.ndarray
    first_moment: int | None
    one_pass_step: int | None
    multi_pass_step: int | None
    hard_fraction: float
    even_symmetric: bool
    partner: np.ndarray | None
    one_pass_reason: str = ""
    multi_pass_reason: str = ""
    generic_one_pass_step: int | None = None
    generic_multi_pass_step: int | None = None

    @property
    def one_pass(self) -> str:
        """Short one-pass verdict."""
        return _verdict(self.one_pass_step, "not in O(1) steps")

    @property
    def multi_pass(self) -> str:
        """Short multi-pass verdict."""
        return _verdict(self.multi_pass_step, "never (hard)")


def _verdict(step, never: str) -> str:
    return never if step is None else f"learned, step {step}"


@dataclass
class LearnabilityReport:
    """Everything :func:`analyze` finds about one target; ``print(report)`` shows a table.

    Attributes
    ----------
    target : Target
    k_max, cond_degree, max_degree, leap_degree : int
        Truncation degrees used (moments in y, conditioning polynomials in z_U, Hermite
        degree for information exponents, Hermite degree for the leap).
    nodes : tuple of int
        (fine, coarse, coarser) Gauss-Hermite nodes per axis.
    C1, C1_error : ndarray, shape (K,)
        First Hermite vector E[g* z] and its quadrature error.
    moments : Subspace
        Two-step test: span{E[g*^k z], k <= k_max}.
    one_pass, multi_pass : SubspaceSequence
        Learned subspaces step by step, for the report's student.
    hard : ndarray, shape (K, h)
        Orthonormal basis of the hard subspace (complement of the final multi-pass one).
    leap_standard, leap_learning : LeapResult
        Leap in the standard basis and in the learning basis (columns: generic multi-pass
        directions in the order learned, then the target's hard directions).
    directions : list of DirectionVerdict
    problem : Problem or None
    M1 : ndarray of shape (P, K) or None
        Closed-form step-1 overlap when a Problem (with M0 = 0) was given.
    mean_dsigma : ndarray of shape (P,) or None
        E[sigma'(h0_j)] entering M1.
    student : StudentSymmetry
        Student parities used for ``one_pass``, ``multi_pass`` and ``hard``.
    generic_one_pass, generic_multi_pass : SubspaceSequence
        The same for a generic student (target properties only).
    target_hard : ndarray, shape (K, h')
        Hard subspace for a generic student (contained in ``hard``).
    """

    target: Target
    k_max: int
    cond_degree: int
    max_degree: int
    leap_degree: int
    nodes: tuple
    C1: np.ndarray
    C1_error: np.ndarray
    moments: Subspace
    one_pass: SubspaceSequence
    multi_pass: SubspaceSequence
    hard: np.ndarray
    leap_standard: LeapResult
    leap_learning: LeapResult
    directions: list = field(default_factory=list)
    problem: Problem | None = None
    M1: np.ndarray | None = None
    mean_dsigma: np.ndarray | None = None
    student: StudentSymmetry = GENERIC_STUDENT
    generic_one_pass: SubspaceSequence | None = None
    generic_multi_pass: SubspaceSequence | None = None
    target_hard: np.ndarray | None = None

    def direction(self, name: str) -> DirectionVerdict:
        """The verdict for a named direction ("e1", "C1", "C1_perp", "multi-pass step 2 #1"...)."""
        for d in self.directions:
            if d.name == name:
                return d
        raise KeyError(f"no direction named {name!r}; have {[d.name for d in self.directions]}")

    def verdict(self, v) -> tuple[int | None, int | None]:
        """(one-pass step, multi-pass step) at which the overlap along an arbitrary v starts."""
        return (self.one_pass.first_step(v, self.one_pass.direction_tol),
                self.multi_pass.first_step(v, self.multi_pass.direction_tol))

    def __str__(self) -> str:
        return _format_report(self)


def _vec(v, digits: int = 3) -> str:
    return "[" + ", ".join(f"{x:+.{digits}f}" for x in np.asarray(v).ravel()) + "]"


def _leap_str(res: LeapResult) -> str:
    if res.leap is None:
        s = f"undetermined (no non-zero coefficient up to degree {res.degree})"
    else:
        s = str(res.leap)
    if res.undetected:
        s += (f"; coordinates {[k + 1 for k in res.undetected]} appear only beyond degree "
              f"{res.degree}, so the true leap may be larger")
    return s


def _format_report(rep: LearnabilityReport) -> str:
    K = rep.target.K
    lines = [
        f"Learnability of target {rep.target.name!r} (K = {K}); student: "
        f"{_student_text(rep.student)}",
        f"  truncation: moments in y up to k_max = {rep.k_max}, conditioning polynomials in "
        f"z_U up to degree {rep.cond_degree}, Hermite degree {rep.max_degree}; "
        f"Gauss-Hermite nodes per axis {rep.nodes[0]} (error = largest difference to "
        f"{rep.nodes[1]} and {rep.nodes[2]})",
        f"  C_1 = E[g* z] = {_vec(rep.C1, 5)}  (quadrature error {rep.C1_error.max():.1e})",
        f"  leap exponent (standard basis, degree <= {rep.leap_degree}): "
        f"{_leap_str(rep.leap_standard)}",
        f"  leap exponent (learning basis, degree <= {rep.leap_degree}): "
        f"{_leap_str(rep.leap_learning)}",
        f"  two-step test span{{E[g*^k z], k <= {rep.k_max}}}: dimension {rep.moments.dim}"
        + (f", strengths {_vec(rep.moments.strength, 4)}" if rep.moments.dim else "")
        + f" (rank tolerance {rep.moments.tol:.1e})",
    ]
    for seq in (rep.one_pass, rep.multi_pass):
        parts = []
        for t, sub in enumerate(seq.new, start=1):
            if sub.dim:
                dirs = ", ".join(_vec(sub.basis[:, j], 3) for j in range(sub.dim))
                parts.append(f"step {t}: +{sub.dim} ({dirs}; strength "
                             f"{_vec(sub.strength, 4)})")
        dim = seq.basis().shape[1]
        lines.append(f"  {seq.kind} subspaces: " + ("; ".join(parts) if parts else "none")
                     + f"  -> final dimension {dim} of {K}")
    if rep.hard.shape[1]:
        lines.append("  hard subspace (never learned in O(1) steps): "
                     + ", ".join(_vec(rep.hard[:, j]) for j in range(rep.hard.shape[1])))
    else:
        lines.append("  hard subspace: none")
    if rep.M1 is not None:
        lines.append(f"  step-1 overlap for {rep.problem!r}: E[sigma'(h0)] = "
                     f"{_vec(rep.mean_dsigma, 4)}; M_1 rows:")
        for j, row in enumerate(rep.M1):
            lines.append(f"    unit {j}: {_vec(row, 5)}  (|row| = {np.linalg.norm(row):.4f})")
    header = f"  {'direction':<24} {'v':<{9 * K + 2}} {'IE':>4}  {'one-pass':<20} multi-pass"
    lines += ["", header, "  " + "-" * (len(header) - 2)]
    for d in rep.directions:
        ie = "-" if d.information_exponent is None else str(d.information_exponent)
        lines.append(f"  {d.name:<24} {_vec(d.v):<{9 * K + 2}} {ie:>4}  {d.one_pass:<20} "
                     f"{d.multi_pass}")
    lines.append("")
    lines.append("  reasons:")
    for d in rep.directions:
        lines.append(f"  {d.name}:")
        lines.append(f"    one-pass:   {d.one_pass_reason}")
        lines.append(f"    multi-pass: {d.multi_pass_reason}")
    return "\n".join(lines)


def _first_nonzero_moment(v, moments, errors, scales) -> int | None:
    proj = moments @ v
    err = np.abs(errors) @ np.abs(v)
    nonzero = np.abs(proj) > _tolerance(err, scales)
    hits = np.flatnonzero(nonzero)
    return int(hits[0]) + 1 if hits.size else None


def _direction_list(K, C1, C1_tol, multi: SubspaceSequence, hard: np.ndarray):
    """Basis directions, C_1 and its complement (K = 2), principal learned/hard directions."""
    named: list[tuple[str, np.ndarray]] = [(f"e{i + 1}", np.eye(K)[i]) for i in range(K)]
    if np.linalg.norm(C1) > C1_tol:
        c = C1 / np.linalg.norm(C1)
        named.append(("C1", c))
        if K == 2:
            named.append(("C1_perp", _fix_signs(np.array([[-c[1]], [c[0]]]))[:, 0]))
    for t, sub in enumerate(multi.new, start=1):
        for j in range(sub.dim):
            named.append((f"multi-pass step {t} #{j + 1}", sub.basis[:, j]))
    for j in range(hard.shape[1]):
        named.append((f"hard #{j + 1}", hard[:, j]))
    out: list[tuple[str, np.ndarray]] = []
    for name, v in named:
        if all(abs(v @ w) < 1 - 1e-9 for _, w in out):
            out.append((name, v))
    return out


def _hard_basis(K: int, learned: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the complement of ``learned``, aligned with coordinate axes when
    possible (projected axes, Gram-Schmidt) so that e.g. span(e1, e2, e3) reads as such."""
    P = np.eye(K) - learned @ learned.T
    cols: list[np.ndarray] = []
    for i in range(K):
        c = P[:, i].copy()
        for b in cols:
            c -= b * (b @ c)
        if np.linalg.norm(c) > 1e-6:
            cols.append(c / np.linalg.norm(c))
        if len(cols) == K - learned.shape[1]:
            break
    return _fix_signs(np.array(cols).T) if cols else np.zeros((K, 0))


def analyze(target, *, activation=None, k_max: int = 4, cond_degree: int = 2,
            max_degree: int = 6, leap_degree: int = 4, nodes: int | None = None,
            seed: int = 0) -> LearnabilityReport:
    """Learnability analysis of a target (SPEC 7).

    Parameters
    ----------
    target : str, Target or Problem
        With a Problem the verdicts are for its student (activation parities, see
        :func:`student_symmetry`) and, if M0 = 0, the report contains the closed-form M_1.
    activation : str or Activation, optional
        Student activation when ``target`` is not a Problem; default a generic student.
    k_max : int
        Largest power of y in the moments / multi-pass features (1..12).
    cond_degree : int
        Largest degree of the polynomials in the learned coordinates z_U (0..4).
    max_degree : int
        Largest Hermite degree for information exponents (1..20).
    leap_degree : int
        Truncation degree of the multi-index expansion for the leap (1..8).
    nodes : int, optional
        Gauss-Hermite nodes per axis of the fine rule (default :data:`DEFAULT_NODES`).
    seed : int
        Seed of the random points used by the symmetry checks.

    Returns
    -------
    LearnabilityReport
    """
    problem = target if isinstance(target, Problem) else None
    if problem is not None:
        if activation is not None:
            raise TypeError("pass either a Problem or an activation, not both")
        activation = problem.activation
    tgt = _target_of(target)
    K = _check_K(tgt.K)
    k_max = _check_degree(k_max, "k_max", 12, lo=1)
    cond_degree = _check_degree(cond_degree, "cond_degree", 4)
    max_degree = _check_degree(max_degree, "max_degree", 20, lo=1)
    leap_degree = _check_degree(leap_degree, "leap_degree", 8, lo=1)
    node_counts = _node_counts(K, nodes)
    student = GENERIC_STUDENT if activation is None else student_symmetry(activation)

    C1, C1_err = _first_hermite(tgt, nodes)
    norm = _grids(tgt, nodes)[0].norm
    C1_tol = float(np.linalg.norm(_tolerance(C1_err, norm)))
    moments_sub = moment_subspace(tgt, k_max, nodes)
    closures = {}
    for kind in ("one-pass", "multi-pass"):
        closures[kind, "generic"] = learned_subspaces(tgt, kind, k_max, cond_degree, nodes)
        closures[kind, "student"] = (
            closures[kind, "generic"] if activation is None else
            learned_subspaces(tgt, kind, k_max, cond_degree, nodes, activation=activation))
    target_hard = _hard_basis(K, closures["multi-pass", "generic"].basis())
    hard = _hard_basis(K, closures["multi-pass", "student"].basis())
    # one multi-index expansion serves the leap and (by the Hermite addition formula) the
    # coefficients along every reported direction, when it is not too large
    along_degree = max(max_degree, leap_degree)
    if math.comb(along_degree + K, K) <= 300:
        expansion = hermite_tensor_coefficients(tgt, along_degree, None, nodes)
    else:
        expansion = hermite_tensor_coefficients(tgt, leap_degree, None, nodes)
    leap_std = _leap_from(tgt, expansion, leap_degree)
    learning_basis = np.concatenate([closures["multi-pass", "generic"].basis(), target_hard],
                                    axis=1)
    leap_learn = leap_exponent(tgt, leap_degree, learning_basis, nodes)
    moments = moment_vectors(tgt, k_max, nodes)

    directions = []
    for name, v in _direction_list(K, C1, C1_tol, closures["multi-pass", "generic"], hard):
        directions.append(_judge(tgt, name, v, C1, norm, closures, student, target_hard, hard,
                                 moments, max_degree, nodes, seed, expansion))

    M1 = dsig = None
    if problem is not None and not np.any(problem.M0 != 0):
        dsig = np.array([mean_activation_derivative(problem.activation, q)
                         for q in np.diag(problem.Q0)])
        M1 = step1_overlap(problem)
    return LearnabilityReport(
        tgt, k_max, cond_degree, max_degree, leap_degree, node_counts, C1, C1_err, moments_sub,
        closures["one-pass", "student"], closures["multi-pass", "student"], hard, leap_std,
        leap_learn, directions, problem, M1, dsig, student,
        closures["one-pass", "generic"], closures["multi-pass", "generic"], target_hard)


def _student_text(sym: StudentSymmetry) -> str:
    parts = {"odd": "sigma odd", "even": "sigma even", None: "sigma neither odd nor even"}
    dpart = {"constant": "sigma' constant", "const+odd": "sigma' = constant + odd",
             "odd": "sigma' odd", "even": "sigma' even", "mixed": "sigma' of mixed parity"}
    return f"{sym.name} ({parts[sym.sigma]}, {dpart[sym.dsigma]})"


def _judge(tgt, name, v, C1, norm, closures, student, target_hard, hard, moments, max_degree,
           nodes, seed, expansion) -> DirectionVerdict:
    if expansion.indices.sum(axis=1).max() >= max_degree:
        coef, err = expansion.along(v)
        coef, err = coef[: max_degree + 1], err[: max_degree + 1]
    else:
        coef, err = hermite_coefficients(tgt, v, max_degree, nodes)
    nonzero = np.abs(coef) > _tolerance(err, norm)
    ie = next((k for k in range(1, max_degree + 1) if nonzero[k]), None)
    k_mom = _first_nonzero_moment(v, *moments)
    steps = {key: seq.first_step(v, seq.direction_tol) for key, seq in closures.items()}
    t_one, t_multi = steps["one-pass", "student"], steps["multi-pass", "student"]
    g_one, g_multi = steps["one-pass", "generic"], steps["multi-pass", "generic"]
    hard_frac = float(np.linalg.norm(hard.T @ v) ** 2) if hard.shape[1] else 0.0
    target_hard_frac = (float(np.linalg.norm(target_hard.T @ v) ** 2)
                        if target_hard.shape[1] else 0.0)
    even = is_even_symmetric(tgt, v, seed=seed)
    partner = None
    if target_hard_frac > 1 - 1e-9 and not even:
        partner = orthogonal_even_partner(tgt, v, within=target_hard, seed=seed)
    c1_along = float(C1 @ v)
    ie_txt = f"none up to degree {max_degree}" if ie is None else str(ie)
    stu = _student_text(student)

    # ---- one-pass reason
    if t_one == 1:
        r1 = (f"C_1 = E[g* z] has a component {c1_along:+.4f} along v (IE = 1): the first "
              "gradient step moves along v")
    elif t_one is not None:
        r1 = (f"E[g* <v,z>] = {c1_along:+.1e} (IE {ie_txt}); reached at step {t_one} through "
              "the staircase E[y q(z_U) <v,z>] != 0, U = subspace learned before")
    elif g_one is not None:
        r1 = (f"a generic student reaches v at step {g_one} through the staircase "
              f"E[y q(z_U) <v,z>] != 0, but for {stu} q = E[sigma'(h) | z_U] has a parity "
              "for which these moments vanish: not in O(1) steps")
    else:
        r1 = (f"IE {ie_txt} along v and no staircase from the learned directions: "
              "one-pass SGD (n = O(d) per step) does not move along v in O(1) steps")
    # ---- multi-pass reason
    if t_multi == 1:
        r2 = f"C_1 has a component {c1_along:+.4f} along v: learned at the first step"
    elif t_multi is not None:
        why = (f"E[g*^{k_mom} <v,z>] != 0 (k = {k_mom}): reusing the batch makes the "
               "gradient a non-linear function of y" if k_mom is not None and k_mom > 1 else
               "a conditional moment E[p(y, z_U) <v,z>] != 0 given the learned coordinates "
               "z_U (staircase)")
        r2 = f"C_1 . v = {c1_along:+.1e} but {why}; overlap appears at step {t_multi}"
        if hard_frac > 1e-9:
            r2 += f"; a fraction {hard_frac:.3f} of |v|^2 lies in the hard subspace"
    elif g_multi is not None:
        r2 = (f"a generic student learns v at step {g_multi}, but for {stu} E[F | y, z_U] has "
              "a parity for which every E[F <v,z>] vanishes (symmetry of the whole process "
              "from M_0 = 0): never learned with this activation")
    elif even:
        r2 = ("even-symmetric: g*(R_v z) = g*(z), so every E[phi(y, z_U) <v,z>] vanishes: "
              "never learned in O(1) steps (M_0 = 0)")
    elif partner is not None:
        r2 = (f"orthogonally-even-symmetric: g*(R_w R_v z) = g*(z) with w = {_vec(partner)} "
              "orthogonal to v and to the learned subspace: never learned in O(1) steps")
    else:
        r2 = ("in the hard subspace: no polynomial moment E[p(y, z_U) <v,z>] (degrees "
              "k_max / cond_degree) is non-zero; no reflection symmetry found along this "
              "particular v (a combination of symmetric directions)")
    return DirectionVerdict(name, v, ie, coef, k_mom, t_one, t_multi, hard_frac, even, partner,
                            r1, r2, g_one, g_multi)
