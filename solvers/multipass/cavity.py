"""The equal-time cavity covariance Qperp(t, t) from the kernels (deterministic recursion)."""

from __future__ import annotations

import numpy as np

__all__ = ["cavity_covariance"]


def cavity_covariance(Lam: np.ndarray, R: np.ndarray, C: np.ndarray, qperp0: np.ndarray,
                      eta: float, langevin: float = 0.0) -> np.ndarray:
    """Equal-time cavity covariance Qperp(t, t) (docs/theory/dmft.md).

    Phi(0) = I, Phi(t+1) = (I - eta Lam(t)) Phi(t) + eta sum_{u<t} R(t, u) Phi(u);
    G(s+1, s) = eta I, G(t+1, s) = (I - eta Lam(t)) G(t, s) + eta sum_{s<u<t} R(t, u) G(u, s);
    Qperp(t, t) = Phi(t) Qperp0 Phi(t)^T + sum_{s, s' < t} G(t, s) C(s, s') G(t, s')^T.

    Parameters
    ----------
    Lam : ndarray, shape (..., T, P, P)
    R : ndarray, shape (..., T, T, P, P)
        R[t, s] for s < t.
    C : ndarray, shape (..., T, T, P, P)
        Full and symmetric.
    qperp0 : ndarray, shape (P, P)
        Q0 - M0 M0^T.
    eta : float
        Learning rate. Leading dimensions (e.g. replicas) are a batch, computed together.
    langevin : float
        2 tau / eta at temperature tau: the Langevin noise is white noise of this variance
        added to C's equal-time blocks (docs/theory/flow.md).

    Returns
    -------
    Qperp : ndarray, shape (..., T, P, P)
        With Q_t = Qperp[t] + M_t M_t^T.

    Examples
    --------
    >>> T, P = 3, 1
    >>> Lam, R, C = np.ones((T, P, P)), np.zeros((T, T, P, P)), np.zeros((T, T, P, P))
    >>> cavity_covariance(Lam, R, C, np.eye(P), eta=0.5)[:, 0, 0]  # (1 - eta)^(2t)
    array([1.    , 0.25  , 0.0625])
    """
    Lam, R, C = (np.asarray(x, dtype=np.float64) for x in (Lam, R, C))
    batch = Lam.shape[:-3]
    T, P = Lam.shape[-3], Lam.shape[-1]
    Lam = Lam.reshape(-1, T, P, P)
    R = R.reshape(-1, T, T, P, P)
    C = C.reshape(-1, T, T, P, P)
    B = Lam.shape[0]
    eye = np.eye(P)
    Phi = np.zeros((B, T, P, P))
    G = np.zeros((B, T, T, P, P))  # G[:, t, s], s < t
    Phi[:, 0] = eye
    for t in range(T - 1):
        prop = eye - eta * Lam[:, t]
        R_t = R[:, t, :t]
        Phi[:, t + 1] = prop @ Phi[:, t] + eta * np.einsum("bujl,bulq->bjq", R_t, Phi[:, :t])
        # all s < t at once (G[u, s] = 0 for s >= u, so summing over every u < t is exact)
        G[:, t + 1, :t] = (prop[:, None] @ G[:, t, :t]
                           + eta * np.einsum("bujl,buslq->bsjq", R_t, G[:, :t, :t]))
        G[:, t + 1, t] = eta * eye
    Cmat = C.transpose(0, 1, 3, 2, 4).reshape(B, T * P, T * P)
    if langevin:
        Cmat = Cmat + langevin * np.eye(T * P)
    q = Phi @ qperp0 @ Phi.transpose(0, 1, 3, 2)
    for t in range(1, T):
        Gmat = G[:, t, :t].transpose(0, 2, 1, 3).reshape(B, P, t * P)
        q[:, t] += Gmat @ Cmat[:, : t * P, : t * P] @ Gmat.transpose(0, 2, 1)
    return (0.5 * (q + q.transpose(0, 1, 3, 2))).reshape(*batch, T, P, P)
