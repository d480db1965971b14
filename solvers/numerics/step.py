"""The multi-pass DMFT's update after the forward pass of step t, in named steps.

The forward pass of step t leaves per-block partial sums (``Sums``); :func:`finish_step_stein`
and :func:`finish_step_pathwise` turn them into the replica's kernels at t and the coefficients
of step t + 1, in this order:

1. :func:`measured_kernels`: C(t, s), E[g(t) g(s)^T] (s <= t) and e_train(t);
2. Lambda(t) and R(t, s < t): :func:`pathwise_lambda_R` (response propagation) or
   :func:`stein_lambda_R` (Gaussian integration by parts over the cavity field);
3. :func:`noise_factor_row`: block row t of the Cholesky factor of C (the noise path);
4. :func:`next_overlaps`: M(t + 1);
5. :func:`cavity_coefficients`: Wg(t + 1), Gf(t + 1, .) of the forward pass's linear identity
   (``fields``);
6. :func:`step_is_finite`.

Shapes are those of :mod:`.dmft_state`; n = (t + 1) P throughout. (Each step is compiled on
its own: inlining them into the entry functions made compiling slower, 9.2 s instead of 8.5.)
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .dmft_state import DIVERGED, NEEDS_PSEUDO_INVERSE, OK
from .linalg import (
    all_finite,
    cholesky_extend,
    stein_by_pseudo_inverse,
    stein_solve,
)

__all__ = ["measured_kernels", "pathwise_lambda_R", "stein_moments", "stein_lambda_R",
           "noise_factor_row", "next_overlaps", "cavity_coefficients", "step_is_finite",
           "complete_step", "finish_step_stein", "finish_step_pathwise",
           "finish_step_pseudo_inverse"]


@numba.njit
def measured_kernels(t, par, sums, rep):
    """C(t, s) = alpha E[F(t) F(s)^T] (and C(s, t)), E[g(t) g(s)^T] for s <= t, e_train(t).

    Reads ``sums.C``, ``sums.gram`` (nb, T, P, P) and ``sums.loss`` (nb,); writes ``rep.C``,
    ``rep.gram`` (T P, T P) and ``rep.e_train[t]``.
    """
    P = rep.M.shape[1]
    nb = sums.C.shape[0]
    inv_S = 1.0 / par.samples
    for s in range(t + 1):
        for j in range(P):
            for q in range(P):
                c = 0.0
                g = 0.0
                for k in range(nb):
                    c += sums.C[k, s, j, q]
                    g += sums.gram[k, s, j, q]
                rep.C[t, s, j, q] = par.alpha * c * inv_S
                rep.C[s, t, q, j] = rep.C[t, s, j, q]
                rep.gram[t * P + j, s * P + q] = g * inv_S
                rep.gram[s * P + q, t * P + j] = g * inv_S
    loss = 0.0
    for k in range(nb):
        loss += sums.loss[k]
    rep.e_train[t] = loss * inv_S


@numba.njit
def pathwise_lambda_R(t, par, sums, rep):
    """Lambda(t) = lam I + alpha E[J(t)] and R(t, s) = alpha E[J(t) chi(t, s)] (s < t) from
    ``sums.J`` (nb, P, P) and ``sums.R`` (nb, T, P, P)."""
    P = rep.M.shape[1]
    nb = sums.J.shape[0]
    inv_S = 1.0 / par.samples
    for j in range(P):
        for q in range(P):
            acc = 0.0
            for k in range(nb):
                acc += sums.J[k, j, q]
            rep.Lam[t, j, q] = (par.lam if j == q else 0.0) + par.alpha * acc * inv_S
            for s in range(t):
                acc = 0.0
                for k in range(nb):
                    acc += sums.R[k, s, j, q]
                rep.R[t, s, j, q] = par.alpha * acc * inv_S


@numba.njit
def _rows_times_gram(Wt, gram, n):
    """Wt[:, :n] @ gram[:n, :n] (P, n), products summed over l = 0, 1, ... for every entry
    (rows of gram, C-contiguous: vectorised)."""
    P = Wt.shape[0]
    out = np.zeros((P, n))
    for l in range(n):
        g = gram[l]
        for i in range(P):
            a = Wt[i, l]
            o = out[i]
            for j in range(n):
                o[j] += a * g[j]
    return out


@numba.njit
def _times_wt(X, WgT, n, P):
    """X @ W.T (m, n) for X (m, n) and W (n, n) = Wg seen as a matrix (row s P + j = Wg[s, j]),
    block lower triangular (row r zero from column (r // P + 1) P on), read as rows of its
    transpose ``WgT``: out[i, r] = sum_c X[i, c] W[r, c] over c = 0, 1, ... (zero products
    skipped), for all r at once (vectorised)."""
    m = X.shape[0]
    out = np.zeros((m, n))
    for c in range(n):
        w = WgT[c]
        for i in range(m):
            x = X[i, c]
            o = out[i]
            for r in range((c // P) * P, n):
                o[r] += x * w[r]
    return out


@numba.njit
def stein_moments(t, par, sums, rep):
    """Row t of cw = E[w w^T] = W gram W^T (written into ``rep.cw``), and A = alpha E[F(t)
    w(0..t)^T] (P, n), with W (n, n) the rows (s, j) of Wg: w(s)_j = Wg[s, j] . g."""
    P = rep.M.shape[1]
    n = (t + 1) * P
    nb = sums.Fg.shape[0]
    inv_S = 1.0 / par.samples
    cw_row = _times_wt(_rows_times_gram(rep.Wg[t], rep.gram, n), rep.WgT, n, P)
    for j in range(P):
        for c in range(n):
            rep.cw[t * P + j, c] = cw_row[j, c]
            rep.cw[c, t * P + j] = cw_row[j, c]
    Fg = np.empty((P, n))  # alpha E[F(t) g^T]
    for s in range(t + 1):
        for j in range(P):
            for q in range(P):
                acc = 0.0
                for k in range(nb):
                    acc += sums.Fg[k, s, j, q]
                Fg[j, s * P + q] = par.alpha * acc * inv_S
    return _times_wt(Fg, rep.WgT, n, P)


@numba.njit
def _write_gamma(t, par, rep, gamma):
    """Lambda(t) = lam I + Gamma(t, t), R(t, s) = -Gamma(t, s) for s < t; gamma (P, n)."""
    P = rep.M.shape[1]
    for j in range(P):
        for q in range(P):
            rep.Lam[t, j, q] = (par.lam if j == q else 0.0) + gamma[j, t * P + q]
            for s in range(t):
                rep.R[t, s, j, q] = -gamma[j, s * P + q]


@numba.njit
def stein_lambda_R(t, par, sums, rep, diag):
    """Lambda(t), R(t, .) by Stein's lemma: Gamma = A cw^{-1} (``stein_moments``), solved with
    cw's Cholesky factor grown by its row t; ``diag.cond_cw[t]`` gets the conditioning
    indicator (1 / smallest relative pivot). Non-finite moments give NaN kernels (so that they
    surface as divergence, not as Gamma = 0). Returns OK, or NEEDS_PSEUDO_INVERSE when a pivot
    was dropped (a cavity component is a linear function of earlier ones): then Lambda and R
    are left for :func:`finish_step_pseudo_inverse`."""
    n = (t + 1) * rep.M.shape[1]
    A = stein_moments(t, par, sums, rep)
    gamma, cond, solved = stein_solve(A, rep.cw[:n, :n], rep.lw[:n, :n], rep.lwt[:n, :n],
                                      n - rep.M.shape[1], rep.cw_info, par.cw_rcond)
    if not solved:
        return NEEDS_PSEUDO_INVERSE
    _write_gamma(t, par, rep, gamma)
    diag.cond_cw[t] = max(diag.cond_cw[t], cond)
    return OK


@numba.njit
def noise_factor_row(t, par, rep, diag):
    """Block row t of lmat, the Cholesky factor of C (reading C's row t only); degenerate
    components are counted in ``diag.chol_dropped[t]``. Without noise memory (the authors'
    script's error) C's off-diagonal times are dropped. Langevin noise sqrt(2 eta tau) nu(t)
    in r and w is eta times white noise of variance 2 tau / eta, so it enters as
    ``par.langevin`` = 2 tau / eta on the diagonal of C(t, t)."""
    P = rep.M.shape[1]
    n = (t + 1) * P
    scratch = diag.scratch
    for j in range(P):
        for s in range(t + 1):
            keep = par.noise_memory or s == t
            for q in range(P):
                scratch[t * P + j, s * P + q] = rep.C[t, s, j, q] if keep else 0.0
        if par.langevin != 0.0:
            scratch[t * P + j, t * P + j] += par.langevin
    diag.chol_dropped[t] += cholesky_extend(scratch[:n, :n], rep.lmat[:n, :n],
                                            rep.lmatt[:n, :n], t * P, par.chol_tol)


@numba.njit
def next_overlaps(t, par, sums, rep):
    """M(t + 1) = (1 - eta lam) M(t) - eta alpha E[F(t) z^T] from ``sums.Fz`` (nb, P, K)."""
    P, K = rep.M.shape[1], rep.M.shape[2]
    nb = sums.Fz.shape[0]
    inv_S = 1.0 / par.samples
    eta, lam, alpha = par.eta, par.lam, par.alpha
    for j in range(P):
        for q in range(K):
            acc = 0.0
            for k in range(nb):
                acc += sums.Fz[k, j, q]
            rep.M[t + 1, j, q] = (1.0 - eta * lam) * rep.M[t, j, q] - eta * alpha * acc * inv_S


@numba.njit
def _propagate(X, t, width, prop, R, eta, out):
    """out (P, width) = prop X[t] + eta sum_{u<t} R(t, u) X[u] for coefficient rows X (T, P, .)
    whose row u is zero from column (u + 1) P on (Wg) or u P on (Gf): the memory sum runs
    over u (then l) in increasing order for every entry, the entries in the inner loop."""
    P = prop.shape[0]
    mem = np.zeros((P, width))
    for u in range(t):
        for l in range(P):
            row = X[u, l]
            for j in range(P):
                c_ = R[t, u, j, l]
                o = mem[j]
                for c in range(min(width, (u + 1) * P)):
                    o[c] += c_ * row[c]
    for j in range(P):
        for c in range(width):
            acc = 0.0
            for l in range(P):
                acc += prop[j, l] * X[t, l, c]
            out[j, c] = acc + eta * mem[j, c]


@numba.njit
def cavity_coefficients(t, par, rep):
    """Wg(t + 1) (P, T P) (and its columns of WgT) and Gf(t + 1) (P, T P): G(t + 1, s), s <= t.

    A cavity field x obeys x(t+1) = (1 - eta Lam(t)) x(t) + eta sum_{u<t} R(t, u) x(u) + ...,
    driven by eta zeta(t) = eta sum_{v<=t} L(t, v) g(v+1) for w (L the noise path's Cholesky
    factor ``rep.lmat``) and by -eta F(t) for r. Wg(u) is zero from column (u + 1) P on and
    G(u, s) for s >= u: those products are skipped.
    """
    P = rep.M.shape[1]
    n = (t + 1) * P
    eta = par.eta
    Wg, Gf, R = rep.Wg, rep.Gf, rep.R
    prop = np.eye(P) - eta * rep.Lam[t]
    _propagate(Wg, t, n + P, prop, R, eta, Wg[t + 1])  # zero from column (t + 2) P on
    for j in range(P):
        for c in range(n):
            Wg[t + 1, j, P + c] += eta * rep.lmat[t * P + j, c]
    for j in range(P):
        for c in range(n + P):
            rep.WgT[c, (t + 1) * P + j] = Wg[t + 1, j, c]
    _propagate(Gf, t, n - P, prop, R, eta, Gf[t + 1])  # G(t + 1, s) for s < t
    for j in range(P):
        for q in range(P):
            Gf[t + 1, j, t * P + q] = eta if j == q else 0.0


@numba.njit
def step_is_finite(t, rep):
    """True if everything step t wrote (kernels at t, M, Wg, Gf at t + 1) is finite."""
    T = rep.M.shape[0]
    ok = (all_finite(rep.C[t]) and all_finite(rep.Lam[t]) and all_finite(rep.R[t])
          and math.isfinite(rep.e_train[t]) and all_finite(rep.Wg[t]))
    if ok and t + 1 < T:
        ok = all_finite(rep.M[t + 1]) and all_finite(rep.Wg[t + 1]) and all_finite(rep.Gf[t + 1])
    return ok


@numba.njit
def complete_step(t, par, sums, rep, diag):
    """Steps 3-6 (after Lambda(t) and R(t, .) are known); OK or DIVERGED."""
    noise_factor_row(t, par, rep, diag)
    if t + 1 < rep.M.shape[0]:
        next_overlaps(t, par, sums, rep)
        cavity_coefficients(t, par, rep)
    return OK if step_is_finite(t, rep) else DIVERGED


@numba.njit(cache=True, nogil=True)
def finish_step_stein(t, par, sums, rep, diag):
    """The update of step t (module docstring) with the Stein estimator. Returns OK, DIVERGED
    or NEEDS_PSEUDO_INVERSE (then call :func:`finish_step_pseudo_inverse`)."""
    measured_kernels(t, par, sums, rep)
    if stein_lambda_R(t, par, sums, rep, diag) == NEEDS_PSEUDO_INVERSE:
        return NEEDS_PSEUDO_INVERSE
    return complete_step(t, par, sums, rep, diag)


@numba.njit(cache=True, nogil=True)
def finish_step_pathwise(t, par, sums, rep, diag):
    """The update of step t (module docstring) with the pathwise estimator; OK or DIVERGED."""
    measured_kernels(t, par, sums, rep)
    pathwise_lambda_R(t, par, sums, rep)
    return complete_step(t, par, sums, rep, diag)


@numba.njit(cache=True, nogil=True)
def finish_step_pseudo_inverse(t, par, sums, rep, diag):
    """The rest of step t's update after :func:`finish_step_stein` returned
    NEEDS_PSEUDO_INVERSE: Lambda(t), R(t, .) with the pseudo-inverse of cw on its range
    (``diag.cond_cw[t]`` gets the condition number there), then steps 3-6. Returns OK or
    DIVERGED."""
    n = (t + 1) * rep.M.shape[1]
    A = stein_moments(t, par, sums, rep)
    gamma, cond = stein_by_pseudo_inverse(A, rep.cw[:n, :n], par.cw_rcond)
    _write_gamma(t, par, rep, gamma)
    diag.cond_cw[t] = max(diag.cond_cw[t], cond)
    return complete_step(t, par, sums, rep, diag)
