"""Runaway growth of a solution: the bound the solvers apply and the error they raise.

A run has diverged at the first step t where an overlap is not finite (or, at t = 0, the
training loss is NaN: the activation or target is at fault), or where the training
loss or a diagonal entry of Q exceeds ``GROWTH`` = 10^6 times its scale at t = 0 (the scale of
e_train is max(1, e_train(0)); that of Q is max(1, Q_jj(0), 2 e_train(0)), so that a student
that must grow to fit a large target is not taken for a diverging one; with labels so large
that e_train(0) overflows, only finiteness is checked). Gradient descent with
a stable step never comes near this; an unstable one passes it within a few steps (|M_jk| <=
sqrt(Q_jj), so the overlaps are bounded with Q).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dmft.problem import Problem
from dmft.trajectory import DivergenceError, Trajectory

__all__ = ["GROWTH", "Divergence", "diverged", "stable_eta"]

GROWTH = 1e6


@dataclass(frozen=True)
class Divergence:
    """Where and why a run diverged."""

    step: int
    reason: str

    def error(self, problem: Problem, method: str, Lam0: np.ndarray | None = None,
              partial: Trajectory | None = None) -> DivergenceError:
        """The DivergenceError to raise, naming eta and, from the replicas' Lambda(0)
        (R, P, P) if given, an estimate of the largest stable eta."""
        if self.step == 0:
            return DivergenceError(
                f"{method}: {self.reason} at t = 0, before any gradient step, so not a step-size "
                f"problem: check that the activation {problem.activation.name!r} (and its "
                f"derivatives) and the target {problem.target.name!r} return finite values",
                step=0, partial=partial)
        if problem.is_flow:  # the time step dt of an integrator, not a learning rate
            return DivergenceError(
                f"{method} diverged at time step {self.step} of gradient flow: {self.reason}; "
                f"the partial trajectory is attached as .partial. Reduce dt.",
                step=self.step, partial=partial)
        text = (f"{method} diverged at step t={self.step} with eta={problem.eta:g}: "
                f"{self.reason}; the partial trajectory (t < {self.step}) is attached as "
                f".partial. ")
        eta_max = None if Lam0 is None else stable_eta(Lam0, problem.alpha, problem.lam)
        if eta_max is None:
            text += "Reduce eta."
        else:
            text += (f"The largest stable eta at t = 0 is about {eta_max:.3g}: 2 / (lam + "
                     f"lambda_max (1 + sqrt(alpha))^2 / alpha), lambda_max the largest "
                     f"eigenvalue of Lambda(0) - lam I (the mean curvature, times alpha) and "
                     f"(1 + sqrt(alpha))^2 the Marchenko-Pastur edge of the data's covariance. ")
            text += ("Reduce eta below it." if problem.eta > eta_max else
                     "eta is below it, so the curvature grew during training; reduce eta.")
        return DivergenceError(text, step=self.step, partial=partial)


def diverged(e_train: np.ndarray, Q: np.ndarray, stopped: bool) -> Divergence | None:
    """The first step at which some run diverged (module docstring), or None.

    Parameters
    ----------
    e_train : ndarray, shape (R, n)
        Training loss of R runs at the n steps computed (NaN where not measured; it is always
        measured at t = 0).
    Q : ndarray, shape (R, n, P, P)
    stopped : bool
        Whether the computation stopped at step n on non-finite values.

    Examples
    --------
    >>> Q = np.ones((1, 3, 1, 1)) * np.array([1.0, 10.0, 1e7])[None, :, None, None]
    >>> diverged(np.ones((1, 3)), Q, stopped=False).step
    2
    """
    R, n = e_train.shape
    if n > 0:
        q_diag = np.diagonal(Q, axis1=-2, axis2=-1)  # (R, n, P)
        with np.errstate(invalid="ignore", over="ignore"):
            # an overflowing (inf) loss at t = 0 leaves only the finiteness check: no scale
            e0 = e_train[:, 0]
            scale_e = np.maximum(1.0, e0)
            scale_q = np.maximum(np.maximum(1.0, q_diag[:, 0].max(axis=-1)), 2.0 * e0)
            loss = e_train > GROWTH * scale_e[:, None]
            grown = q_diag.max(axis=-1) > GROWTH * scale_q[:, None]
        broken = ~np.isfinite(q_diag).all(axis=-1)
        for t in range(n):
            if broken[:, t].any():
                return Divergence(t, "non-finite overlaps")
            if t == 0 and np.isnan(e_train[:, 0]).any():  # always measured at t = 0
                return Divergence(0, "the training loss is NaN")
            if loss[:, t].any():
                return Divergence(t, f"the training loss grew past {GROWTH:.0e} times its "
                                     "scale at t = 0")
            if grown[:, t].any():
                return Divergence(t, f"a diagonal entry of Q grew past {GROWTH:.0e} times its "
                                     "scale at t = 0")
    if stopped:
        return Divergence(n, "non-finite kernels or overlaps")
    return None


def stable_eta(Lam0: np.ndarray, alpha: float, lam: float) -> float | None:
    """Largest stable learning rate estimated from Lambda(0) (R, P, P) of R runs, or None.

    GD on the summed square loss is stable while eta (lam + h_max) < 2, h_max the largest
    eigenvalue of the data part of the Hessian; in the DMFT Lambda(0) - lam I = alpha E[J] is
    its mean curvature and the data's covariance stretches it up to the Marchenko-Pastur edge:
    h_max ~ lambda_max(Lambda(0) - lam I) (1 + sqrt(alpha))^2 / alpha. Exact for a linear
    student; an estimate otherwise (the curvature also changes during training).

    Examples
    --------
    >>> round(stable_eta(np.full((1, 1, 1), 3.0), alpha=3.0, lam=0.0), 4)  # 2 / 7.46
    0.2679
    """
    L = np.asarray(Lam0, dtype=np.float64).mean(axis=0)
    if not np.all(np.isfinite(L)):
        return None
    P = L.shape[0]
    top = float(np.linalg.eigvalsh(0.5 * (L + L.T) - lam * np.eye(P))[-1])
    if top <= 0.0:
        return None
    return 2.0 / (lam + top * (1.0 + math.sqrt(alpha)) ** 2 / alpha)
