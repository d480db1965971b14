"""The conditional rule over the student's own noise: u = M z + S eps given z.

:func:`student_noise_factor` splits the student into its teacher part M z and its orthogonal
noise S eps; :func:`inner_mode` and :func:`inner_rule_arrays` choose and build the rule over
eps | z whose numba kernel is :func:`solvers.numerics.quadrature_inner.inner_nodes`. Why it
is exact for ReLU: ``docs/quadrature.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.numerics.quadrature import gauss_legendre, trapezoid_normal
from solvers.numerics.quadrature_inner import (
    INNER_KINKED,
    INNER_PIECEWISE_LINEAR,
    INNER_SMOOTH,
    N_GRADED_BREAKS,
)

from ..activations import ACTIVATIONS, Activation
from .options import QuadratureOptions

__all__ = [
    "INNER_SMOOTH", "INNER_PIECEWISE_LINEAR", "INNER_KINKED", "N_GRADED_BREAKS",
    "SMOOTHING_RATIO_MIN", "inner_mode", "is_registry_activation", "student_noise_factor",
    "InnerRule", "inner_rule_arrays",
]

# A unit whose orthogonal part s_j is below this fraction of |M_j| has an (almost) sharp kink in
# z-space, which the trapezoid z-grid resolves slowly: callers switch to a rotated z-grid or the
# kink-polar engine for it. Measured (h = 0.125, kink along a grid axis, which is the worst
# case: oblique kinks average out): error 1e-13 at s/|M| = 0.2, 1e-9 at 0.1, 8e-6 at 0.05, 3e-4
# at 0.
SMOOTHING_RATIO_MIN = 0.15


def inner_mode(activation: Activation) -> int:
    """Which inner rule an activation needs.

    ``INNER_SMOOTH`` (trapezoid), ``INNER_PIECEWISE_LINEAR`` (ReLU: exact 2-node truncated
    normal rules between kinks) or ``INNER_KINKED`` (other activations with a Dirac sigma'':
    composite Gauss-Legendre split at the kinks in every coordinate).

    Examples
    --------
    >>> inner_mode(ACTIVATIONS["relu"]) == INNER_PIECEWISE_LINEAR
    True
    >>> inner_mode(ACTIVATIONS["tanh"]) == INNER_SMOOTH
    True
    """
    if is_registry_activation(activation, "relu"):
        return INNER_PIECEWISE_LINEAR
    if activation.d2_dirac_at_zero != 0.0:
        return INNER_KINKED
    return INNER_SMOOTH


def is_registry_activation(act: Activation, name: str) -> bool:
    """Whether ``act`` is the registry activation ``name`` (or an equal copy of it, e.g. after
    pickling), so that its closed forms apply.

    Examples
    --------
    >>> is_registry_activation(ACTIVATIONS["relu"], "relu")
    True
    """
    ref = ACTIVATIONS[name]
    return act is ref or (act.code == ref.code and act.name == name
                          and act.d2_dirac_at_zero == ref.d2_dirac_at_zero)


def student_noise_factor(M: np.ndarray, Q: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """S with S S^T = Q - M M^T, u = M z + S eps (eps ~ N(0, I_r), r = numerical rank).

    For full rank S is lower triangular with a positive diagonal (so unit j only sees
    eps_0..eps_j, which the inner rule uses); otherwise an eigenvalue square root with rank r
    columns (r = 0 gives shape (P, 0)).

    Parameters
    ----------
    M : ndarray, shape (P, K)
    Q : ndarray, shape (P, P)

    Returns
    -------
    ndarray, shape (P, r)

    Examples
    --------
    >>> M = np.array([[0.6], [0.0]])
    >>> S = student_noise_factor(M, np.eye(2))  # Q - M M^T = diag(0.64, 1)
    >>> S.round(12)
    array([[0.8, 0. ],
           [0. , 1. ]])
    """
    perp = Q - M @ M.T
    perp = 0.5 * (perp + perp.T)
    if not np.all(np.isfinite(perp)):
        raise ValueError("Q - M M^T is not finite")
    lam, V = np.linalg.eigh(perp)
    scale = max(1.0, float(np.abs(np.diagonal(Q)).max()))
    if lam.min() < -1e-8 * scale:
        raise ValueError(
            "Q - M M^T must be positive semi-definite; smallest eigenvalue "
            f"{lam.min():.3g} (Q={Q.tolist()}, M={M.tolist()})"
        )
    keep = lam > rtol * scale
    S = V[:, keep] * np.sqrt(lam[keep])
    if keep.all():
        # lower-triangular factor L = R^T from S^T = Q_o R (no Cholesky breakdown near
        # singularity), diagonal made positive
        _, R = np.linalg.qr(S.T)
        S = R.T * np.where(np.diagonal(R) < 0, -1.0, 1.0)[None, :]
    return np.ascontiguousarray(S)


@dataclass(frozen=True)
class InnerRule:
    """Fixed arrays the numba inner rule needs
    (:func:`solvers.numerics.quadrature_inner.inner_nodes`).

    Attributes
    ----------
    mode : int
        :func:`inner_mode` of the activation.
    edges : ndarray (n_panels + 1,)
        Fixed panel edges of the composite Gauss-Legendre coordinate.
    glx, glw : ndarray (n_mid,)
        Gauss-Legendre nodes and weights on [-1, 1].
    smx, smw : ndarray (n_smooth,)
        Normalised trapezoid rule for N(0, 1) with step ``inner_h`` (smooth activations).
    capacity : int
        Upper bound on the nodes produced for one z (buffer size), for P <= 2.
    """

    mode: int
    edges: np.ndarray
    glx: np.ndarray
    glw: np.ndarray
    smx: np.ndarray
    smw: np.ndarray
    capacity: int

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """``(edges, glx, glw, smx, smw)``: the ``rule`` argument of the numba kernels."""
        return (self.edges, self.glx, self.glw, self.smx, self.smw)


def inner_rule_arrays(activation: Activation, options: QuadratureOptions | None = None
                      ) -> InnerRule:
    """The :class:`InnerRule` for an activation and options.

    Examples
    --------
    >>> rule = inner_rule_arrays(ACTIVATIONS["relu"])
    >>> rule.mode == INNER_PIECEWISE_LINEAR, rule.edges.shape, rule.capacity
    (True, (7,), 160000)
    """
    opts = options or QuadratureOptions()
    mode = inner_mode(activation)
    edges = np.linspace(-opts.inner_R, opts.inner_R, opts.n_panels + 1)
    glx, glw = gauss_legendre(opts.n_mid)
    smx, smw = trapezoid_normal(float(opts.inner_h), float(opts.inner_R))
    # panels + kinks + graded breaks, per coordinate
    level = (opts.n_panels + N_GRADED_BREAKS + 2) * opts.n_mid
    capacity = max(smx.shape[0] ** 2, 4 * level, level * level, 6)
    return InnerRule(mode, edges, np.array(glx), np.array(glw), np.array(smx), np.array(smw),
                     int(capacity))
