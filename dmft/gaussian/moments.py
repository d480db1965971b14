"""Student moments: E[sigma(u_j) sigma(u_k)] (:func:`pair_moments`) and the teacher-student
cross moments E[g*(z) sigma(u_j)] (:func:`cross_moments`), the pieces of ``gen_error``.

Closed forms where they exist, else the outer z-rule times the conditional inner rule (numba
kernels in :mod:`solvers.numerics.quadrature_cross`). Accuracy: ``docs/quadrature.md``.
"""

from __future__ import annotations

import math

import numpy as np

from solvers.numerics.blocks import n_workers, run_blocks
from solvers.numerics.quadrature import trapezoid_normal
from solvers.numerics.quadrature_cross import (
    CLOSED_ERF,
    CLOSED_QUADRATIC,
    CLOSED_RELU,
    cross_closed_kernel,
    cross_kernel,
)

from ..activations import Activation
from ..targets import Target
from .conditional import (
    INNER_SMOOTH,
    SMOOTHING_RATIO_MIN,
    inner_mode,
    inner_rule_arrays,
    is_registry_activation,
)
from .generic import expect
from .options import QuadratureOptions
from .teacher import rotated_z_rule, target_on_rule

__all__ = ["pair_moments", "cross_moments"]

_ISQ2PI = 1.0 / math.sqrt(2.0 * math.pi)

# below this many (item x z-node) evaluations threads cost more than they save (wake-up, and
# much more on a loaded machine)
_PARALLEL_MIN_WORK = 200_000


def pair_moments(activation: Activation, Q: np.ndarray,
                 options: QuadratureOptions | None = None) -> np.ndarray:
    """E[sigma(u_j) sigma(u_k)] for u ~ N(0, Q), for every (j, k) and every leading index.

    Closed forms for relu (arc-cosine kernel), erf (arcsine kernel), linear and quadratic;
    otherwise a 2-D trapezoid grid of step inner_h / 3 per pair (kink-polar rule for kinked
    user activations).

    Parameters
    ----------
    activation : Activation
    Q : ndarray, shape (T, P, P)

    options : QuadratureOptions, optional

    Returns
    -------
    ndarray, shape (T, P, P)

    Examples
    --------
    >>> from dmft import ACTIVATIONS
    >>> pair_moments(ACTIVATIONS["relu"], np.eye(2)[None]).round(6)  # 1/2 and 1/(2 pi)
    array([[[0.5     , 0.159155],
            [0.159155, 0.5     ]]])
    """
    Q = np.asarray(Q, dtype=np.float64)
    qd = np.diagonal(Q, axis1=-2, axis2=-1)
    qq = np.sqrt(np.maximum(qd[..., :, None] * qd[..., None, :], 0.0))
    if is_registry_activation(activation, "relu"):
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = np.where(qq > 0, Q / np.where(qq > 0, qq, 1.0), 1.0)
        th = np.arccos(np.clip(cos, -1.0, 1.0))
        return qq / (2 * math.pi) * (np.sin(th) + (math.pi - th) * np.cos(th))
    if is_registry_activation(activation, "linear"):
        return Q.copy()
    if is_registry_activation(activation, "quadratic"):
        return qd[..., :, None] * qd[..., None, :] + 2.0 * Q * Q
    if is_registry_activation(activation, "erf"):
        den = np.sqrt((1 + 2 * qd[..., :, None]) * (1 + 2 * qd[..., None, :]))
        return 2.0 / math.pi * np.arcsin(np.clip(2 * Q / den, -1.0, 1.0))
    opts = options or QuadratureOptions()
    T, P = Q.shape[0], Q.shape[-1]
    out = np.empty_like(Q)
    if inner_mode(activation) != INNER_SMOOTH:
        # kinks at u_j = 0 and u_k = 0: kink-polar rule per pair (user activations only)
        popts = QuadratureOptions.from_kwargs(opts, method="quadrature")
        for t in range(T):
            for j in range(P):
                for k in range(j, P):
                    cov = Q[t][np.ix_([j, k], [j, k])]
                    val, _, _ = expect(lambda x: activation(x[:, 0]) * activation(x[:, 1]),
                                       cov, (0, 1), popts)
                    out[t, j, k] = out[t, k, j] = val
        return out
    # smooth: u_j = sqrt(q_j) e1, u_k = sqrt(q_k) (rho e1 + sqrt(1 - rho^2) e2) on a 2-D trapezoid
    # grid (Gauss-Hermite converges slowly here: erf(2x)^2 needs 200 nodes for 1e-12)
    x, w1 = trapezoid_normal(float(opts.inner_h) / 3.0, float(opts.inner_R))
    sig_x = None
    jj, kk = np.triu_indices(P)
    sq = np.sqrt(np.maximum(qd, 0.0))  # (T, P)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(qq > 0, Q / np.where(qq > 0, qq, 1.0), 0.0)
    rho = np.clip(rho, -1.0, 1.0)
    for t in range(T):
        for j, k in zip(jj, kk, strict=True):
            if j == k:
                if sig_x is None or sig_x[0] != sq[t, j]:
                    sig_x = (sq[t, j], activation(sq[t, j] * x))
                out[t, j, j] = w1 @ (sig_x[1] ** 2)
                continue
            a_j = activation(sq[t, j] * x)  # (n,) in e1
            r = rho[t, j, k]
            b = activation(sq[t, k] * (r * x[:, None] + math.sqrt(1 - r * r) * x[None, :]))
            out[t, j, k] = out[t, k, j] = (w1 * a_j) @ b @ w1
    return out


def cross_moments(problem, M: np.ndarray, Q: np.ndarray,
                  options: QuadratureOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
    """E[g*(z) sigma(u_j)] for (u_j, z) ~ N(0, [[Q_jj, M_j], [M_j^T, I_K]]).

    Outer z-rule times E[sigma(u_j) | z], u_j | z ~ N(M_j . z, s_j^2), s_j^2 = Q_jj - |M_j|^2:
    in closed form for relu, erf and quadratic, by the exact-for-ReLU or trapezoid inner rule
    of :mod:`dmft.gaussian.conditional` otherwise; M_j . C_1 for the linear activation. Units
    with little orthogonal part (s_j < 0.15 |M_j|, kinked activations) have a nearly sharp kink
    in z-space, where the trapezoid grid converges slowly: ReLU then uses its closed-form
    smoothing on a z-grid rotated along M_j, other kinked activations the kink-polar engine in
    K + 1 dimensions.

    Parameters
    ----------
    problem : Problem
    M : ndarray, shape (T, P, K)
    Q : ndarray, shape (T, P, P)

    Returns
    -------
    value, se : ndarray, shape (T, P) (se = 0 unless the generic engine fell back to QMC)

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="linear", P=1, activation="relu")
    >>> value, se = cross_moments(prob, np.array([[[0.6]]]), np.array([[[1.0]]]))
    >>> round(float(value[0, 0]), 10)  # E[z relu(u)] = Cov(z, u) E[relu'(u)] = 0.6 / 2
    0.3
    """
    act, tgt = problem.activation, problem.target
    opts = options or QuadratureOptions()
    T, P, K = M.shape
    Z, wz, y, _ = target_on_rule(tgt, opts)
    if is_registry_activation(act, "linear"):
        c1 = (wz * y) @ Z
        return M @ c1, np.zeros((T, P))
    Mrows = np.ascontiguousarray(M.reshape(T * P, K))
    qd = np.diagonal(Q, axis1=-2, axis2=-1).reshape(T * P)
    s2 = qd - np.einsum("ik,ik->i", Mrows, Mrows)
    scale = np.maximum(1.0, np.abs(qd))
    if np.any(s2 < -1e-8 * scale):
        i = int(np.argmin(s2 / scale))
        raise ValueError(
            f"Q_jj - |M_j|^2 = {s2[i]:.3g} < 0 at (t, j) = {divmod(i, P)}: not a valid overlap"
        )
    s = np.sqrt(np.maximum(s2, 0.0))
    s[s2 <= 1e-12 * scale] = 0.0
    mode = inner_mode(act)
    rule = inner_rule_arrays(act, opts)
    fallback = np.zeros(T * P, dtype=bool)
    if mode != INNER_SMOOTH:
        fallback = s < SMOOTHING_RATIO_MIN * np.linalg.norm(Mrows, axis=1)
    sig = act.cfuncs()[0]
    val = np.zeros(T * P)
    se = np.zeros(T * P)
    idx = np.flatnonzero(~fallback)
    if idx.size:
        Mi, si = np.ascontiguousarray(Mrows[idx]), np.ascontiguousarray(s[idx])

        closed = next((c for name, c in (("relu", CLOSED_RELU), ("erf", CLOSED_ERF),
                                         ("quadratic", CLOSED_QUADRATIC))
                       if is_registry_activation(act, name)), None)
        # rows in blocks on threads (the kernels release the GIL); every row is summed
        # serially, so the values do not depend on the blocks
        if closed is not None:
            def block(a: int, b: int) -> np.ndarray:
                return cross_closed_kernel((Z, wz, y), Mi[a:b], si[a:b], closed)
        else:
            def block(a: int, b: int) -> np.ndarray:
                return cross_kernel((Z, wz, y), Mi[a:b], si[a:b], rule.mode, rule.arrays,
                                    rule.capacity, sig)

        per_block = max(1, _PARALLEL_MIN_WORK // Z.shape[0])
        val[idx] = np.concatenate(run_blocks(block, idx.size, 2 * n_workers(), per_block))
    for i in np.flatnonzero(fallback):
        if is_registry_activation(act, "relu"):
            val[i] = _relu_cross_rotated(tgt, Mrows[i], s[i], opts)
            continue
        cov = np.empty((K + 1, K + 1))
        cov[0, 0] = qd[i]
        cov[0, 1:] = cov[1:, 0] = Mrows[i]
        cov[1:, 1:] = np.eye(K)
        v, e, _ = expect(lambda x: tgt(x[:, 1:].T) * act(x[:, 0]), cov, (0,), opts)
        val[i], se[i] = v, e
    return val.reshape(T, P), se.reshape(T, P)


def _relu_cross_rotated(tgt: Target, m_row: np.ndarray, s: float,
                        opts: QuadratureOptions) -> float:
    """E[g*(z) relu(m . z + s eps)] for a (nearly) sharp kink, s < 0.15 |m|: closed-form
    smoothing |m| t Phi(|m| t / s) + s phi(|m| t / s) on :func:`rotated_z_rule`. Error ~1e-11
    for the paper target at s = 0 (tests/test_gaussian.py)."""
    norm = float(np.linalg.norm(m_row))
    Z, w = rotated_z_rule(m_row.shape[0], m_row, s / norm, opts)
    m = Z @ m_row
    if s > 0:
        from scipy.special import ndtr

        smooth = m * ndtr(m / s) + s * _ISQ2PI * np.exp(-0.5 * (m / s) ** 2)
    else:
        smooth = np.maximum(m, 0.0)
    return float(w @ (tgt(Z.T) * smooth))
