"""Multi-pass DMFT driver: causal Monte Carlo solution of SPEC sections 3-5.

One forward pass over t. At step t every effective sample is advanced to t with the kernels
already fixed (``_kernels.dmft_pass``), the step-t expectations are accumulated, and from them
the step-t kernels C(t, .), Lambda(t), R(t, .), the next Cholesky block row of the noise
covariance and M(t+1) are computed here. Histories are either stored (memory O(T P) per sample)
or, when they would not fit in ``max_memory``, replayed from t = 0 out of counter-seeded chunk
randomness (memory O(chunk), arithmetic ~T/2 times more).

Error bars: the S samples are split into ``replicas`` fully independent sub-solves (each with
its own kernels). The reported value is their mean and the standard error their standard
deviation over sqrt(replicas), which includes the kernels' own Monte Carlo noise fed forward
through later steps (SPEC 4b).
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from dmft.problem import Problem
from dmft.schedules import Bernoulli, Cyclic, Full
from dmft.trajectory import DivergenceError, Trajectory, base_provenance

from ._kernels import cholesky_extend, dmft_pass, spd_solve_right

__all__ = ["solve_multipass", "cavity_covariance", "ESTIMATORS"]

ESTIMATORS = ("stein", "pathwise")
_BLOCK = 1024  # samples per accumulation block: L2-sized, fixed (thread-count independent)
_CHOL_TOL = 1e-12  # relative pivot below which a noise component is taken as degenerate
_CW_RCOND = 1e-12  # relative eigenvalue cutoff when inverting the cavity covariance Cw


# ------------------------------------------------------------------------------ validation
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _validate(problem: Problem, samples, replicas, estimator, storage, chunk_size) -> tuple:
    if not isinstance(problem.schedule, (Full, Cyclic, Bernoulli)):
        raise ValueError(
            f"the multi-pass DMFT handles schedules full, cyclic and bernoulli, got "
            f"{problem.schedule}; use method='one-pass' for fresh batches"
        )
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not valid; allowed: {ESTIMATORS}")
    if estimator == "pathwise" and not problem.activation.smooth:
        raise ValueError(
            f"estimator='pathwise' needs sigma'' pointwise, but activation "
            f"{problem.activation.name!r} has a Dirac mass in sigma'' (weight "
            f"{problem.activation.d2_dirac_at_zero}); use estimator='stein', which is exact for it"
        )
    replicas = _check_int("replicas", replicas, 2)
    samples = _check_int("samples", samples, 1)
    per_replica = samples // replicas
    # the Stein regression has (t+1) P unknowns per output: ask for a comfortable margin
    need = max(64, 4 * problem.T * problem.P)
    if per_replica < need:
        raise ValueError(
            f"samples={samples} gives {per_replica} per replica (replicas={replicas}); need at "
            f"least {need} per replica (samples >= {need * replicas}) for T={problem.T}, "
            f"P={problem.P}"
        )
    if storage not in ("auto", "stored", "replay"):
        raise ValueError(f"storage={storage!r} is not valid; allowed: 'auto', 'stored', 'replay'")
    chunk_size = _check_int("chunk_size", chunk_size, 256)
    return samples, replicas, per_replica, chunk_size


def _bytes_per_sample(problem: Problem, pathwise: bool) -> int:
    T, P, K = problem.T, problem.P, problem.K
    floats = K + 1 + P + T * P + 3 * T * P + (T * T * P * P if pathwise else 0)
    return 8 * floats + T


# ------------------------------------------------------------------------------ randomness
def _alloc_draws(problem: Problem, m: int) -> dict:
    """Per-sample randomness of m samples, samples last (the kernels' layout)."""
    T, P, K = problem.T, problem.P, problem.K
    return {"z": np.empty((K, m)), "y": np.empty(m), "r0": np.empty((P, m)),
            "xi": np.empty((T, P, m)), "mask": np.empty((T, m), dtype=np.uint8)}


def _draw_chunk(problem: Problem, seedseq: np.random.SeedSequence, sqrt_qperp0: np.ndarray,
                out: dict) -> None:
    """All randomness of one chunk of effective samples, from its own seed, written into ``out``
    (column slices of the preallocated arrays)."""
    T, P, K = problem.T, problem.P, problem.K
    m = out["y"].shape[0]
    rng = np.random.default_rng(seedseq)
    z = rng.standard_normal((K, m))
    out["z"][:] = z
    y = problem.target(z)
    if problem.noise > 0:
        y = y + math.sqrt(problem.noise) * rng.standard_normal(m)
    out["y"][:] = y
    out["r0"][:] = sqrt_qperp0 @ rng.standard_normal((P, m))
    out["xi"][:] = rng.standard_normal((T, P, m))
    sched = problem.schedule
    if isinstance(sched, Full):
        out["mask"][:] = 1
    elif isinstance(sched, Cyclic):
        block = rng.integers(0, sched.n_blocks, size=m)
        out["mask"][:] = (np.arange(T)[:, None] % sched.n_blocks) == block[None, :]
    else:  # Bernoulli
        out["mask"][:] = rng.random((T, m)) < sched.b


def _sqrt_psd(A: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (A + A.T))
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


# ------------------------------------------------------------------------------ algebra
def _blocks_to_matrix(blocks: np.ndarray, n: int) -> np.ndarray:
    """(n, n, P, Q) time blocks -> (n P, n Q) time-major matrix."""
    _, _, P, Q = blocks.shape
    return blocks[:n, :n].transpose(0, 2, 1, 3).reshape(n * P, n * Q)


def _stein_gamma(A_row: np.ndarray, Cw_blocks: np.ndarray, t: int) -> tuple[np.ndarray, float]:
    """Gamma(t, 0..t) = A(t, 0..t) Cw[0..t, 0..t]^{-1}.

    A_row (t+1, P, P) holds alpha E[F(t) w(s)^T]; returns Gamma as (t+1, P, P) blocks and a
    conditioning indicator of Cw (1 / smallest relative Cholesky pivot). A numerically singular
    Cw (a cavity component that is a linear function of earlier ones) falls back to the
    pseudo-inverse on Cw's range.
    """
    P = A_row.shape[1]
    n = t + 1
    Cw = _blocks_to_matrix(Cw_blocks, n)
    Cw = np.ascontiguousarray(0.5 * (Cw + Cw.T))
    A = np.ascontiguousarray(A_row.transpose(1, 0, 2).reshape(P, n * P))
    gamma, ok, ratio = spd_solve_right(A, Cw, _CW_RCOND)
    if ok:
        cond = 1.0 / ratio if ratio > 0 else math.inf
    else:
        vals, vecs = np.linalg.eigh(Cw)
        top = vals[-1] if vals.size else 0.0
        keep = vals > _CW_RCOND * max(top, 1e-300)
        cond = float(top / vals[keep][0]) if keep.any() else math.inf
        gamma = A @ ((vecs[:, keep] / vals[keep]) @ vecs[:, keep].T)
    return gamma.reshape(P, n, P).transpose(1, 0, 2), cond


def cavity_covariance(Lam: np.ndarray, R: np.ndarray, C: np.ndarray, qperp0: np.ndarray,
                      eta: float) -> np.ndarray:
    """Equal-time cavity covariance Qperp(t, t) from the deterministic recursion of SPEC 3.

    Parameters
    ----------
    Lam : (T, P, P); R : (T, T, P, P) with R[t, s] for s < t; C : (T, T, P, P) full symmetric;
    qperp0 : (P, P) = Q0 - M0 M0^T; eta : learning rate.

    Returns
    -------
    Qperp : (T, P, P), with Q_t = Qperp[t] + M_t M_t^T.
    """
    T, P = Lam.shape[0], Lam.shape[1]
    eye = np.eye(P)
    Phi = np.zeros((T, P, P))
    G = np.zeros((T, T, P, P))  # G[t, s], s < t
    Phi[0] = eye
    for t in range(T - 1):
        prop = eye - eta * Lam[t]
        Phi[t + 1] = prop @ Phi[t] + eta * np.einsum("upq,uqr->pr", R[t, :t], Phi[:t])
        for s in range(t):
            mem = np.einsum("upq,uqr->pr", R[t, s + 1:t], G[s + 1:t, s]) if t > s + 1 else 0.0
            G[t + 1, s] = prop @ G[t, s] + eta * mem
        G[t + 1, t] = eta * eye
    Cmat = _blocks_to_matrix(C, T)
    out = np.empty((T, P, P))
    for t in range(T):
        q = Phi[t] @ qperp0 @ Phi[t].T
        if t > 0:
            Gmat = G[t, :t].transpose(1, 0, 2).reshape(P, t * P)
            q = q + Gmat @ Cmat[: t * P, : t * P] @ Gmat.T
        out[t] = 0.5 * (q + q.T)
    return out


# ------------------------------------------------------------------------------ driver
class _State:
    """Per-replica kernels and order parameters, filled causally."""

    def __init__(self, problem: Problem, B: int):
        T, P, K = problem.T, problem.P, problem.K
        self.M = np.zeros((B, T, P, K))
        self.M[:, 0] = problem.M0
        self.Lam = np.zeros((B, T, P, P))
        self.R = np.zeros((B, T, T, P, P))
        self.C = np.zeros((B, T, T, P, P))
        self.Cw = np.zeros((B, T, T, P, P))
        self.Lmat = np.zeros((B, T * P, T * P))
        self.Lc = np.zeros((B, T, T, P, P))
        self.e_train = np.zeros((B, T))
        self.cond_cw = np.zeros(T)
        self.chol_dropped = np.zeros(T, dtype=np.int64)


class _Accumulators:
    def __init__(self, n_blocks: int, T: int, P: int, K: int, pathwise: bool):
        self.C = np.zeros((n_blocks, T, P, P))
        self.A = np.zeros((n_blocks, T, P, P))
        self.Cw = np.zeros((n_blocks, T, P, P))
        self.Fz = np.zeros((n_blocks, P, K))
        self.loss = np.zeros(n_blocks)
        nb_p = n_blocks if pathwise else 1
        self.J = np.zeros((nb_p, P, P))
        self.R = np.zeros((nb_p, T, P, P))

    def zero(self) -> None:
        for arr in self.__dict__.values():
            arr[...] = 0.0

    def arrays(self) -> tuple:
        return self.C, self.A, self.Cw, self.Fz, self.loss, self.J, self.R


def _blocks_for(sizes: list[int], reps: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Split consecutive segments (sizes, replica of each) into blocks of at most _BLOCK."""
    starts, owner = [0], []
    pos = 0
    for size, rep in zip(sizes, reps, strict=True):
        end = pos + size
        while pos < end:
            pos = min(pos + _BLOCK, end)
            starts.append(pos)
            owner.append(rep)
    return np.asarray(starts, dtype=np.int64), np.asarray(owner, dtype=np.int64)


def _sum_by_replica(acc: np.ndarray, owner: np.ndarray, B: int) -> np.ndarray:
    out = np.zeros((B,) + acc.shape[1:])
    np.add.at(out, owner, acc)  # sequential in block order: deterministic
    return out


def solve_multipass(problem: Problem, samples: int = 10**6, seed: int = 0,
                    estimator: str = "stein", replicas: int = 16, storage: str = "auto",
                    chunk_size: int = 2**16, max_memory: float = 1.5 * 2**30,
                    noise_memory: bool = True, progress: bool | None = None) -> Trajectory:
    """Solve the multi-pass DMFT by causal Monte Carlo (SPEC 3-5).

    Parameters
    ----------
    problem : Problem
        Schedule full, Cyclic or Bernoulli.
    samples : int
        Total number S of effective samples, split over ``replicas`` independent sub-solves.
    seed : int
        Master seed; replica b, chunk c draw from ``SeedSequence(seed).spawn(B)[b].spawn(nc)[c]``.
    estimator : {"stein", "pathwise"}
        How Lambda and R are estimated: Gaussian integration by parts over the cavity field
        (exact for ReLU, memory O(T P) per sample) or response propagation (smooth
        activations only, memory O(T^2 P^2) per sample).
    replicas : int
        Independent sub-solves used for the standard errors (>= 2; default 16).
    storage : {"auto", "stored", "replay"}
        Keep per-sample histories, or regenerate and replay chunks from t = 0 at every step.
        "auto" stores when the histories fit in ``max_memory`` bytes.
    chunk_size : int
        Samples per random-number chunk (results depend on it; keep the default to compare runs).
    max_memory : float
        Bytes of per-sample histories above which "auto" storage replays.
    noise_memory : bool
        True (correct): zeta is one Gaussian process with the full cross-time covariance C(t, s).
        False reproduces error (1) of the authors' script (SPEC 8): noise drawn afresh at every
        step with covariance C(t, t) only. For demonstrations and tests that must catch it.
    progress : bool, optional
        Progress bar over t; default: on when stderr is a terminal.

    Returns
    -------
    Trajectory
        M (T,P,K), Q (T,P,P), e_train (T,), e_gen (T,), kernels C (T,T,P,P), R (T,T,P,P),
        Lam (T,P,P), all with standard errors; diagnostics ``cond_Cw`` (T,) (Stein: largest
        over replicas of 1 / the smallest relative Cholesky pivot of the cavity covariance, a
        conditioning indicator; the exact condition number when the pseudo-inverse was needed)
        and ``chol_dropped`` (T,) (degenerate noise components).

    Raises
    ------
    DivergenceError
        When a kernel or overlap becomes non-finite; ``partial`` holds the steps before.
    """
    wall0 = time.perf_counter()
    S, B, Sb, chunk_size = _validate(problem, samples, replicas, estimator, storage, chunk_size)
    pathwise = estimator == "pathwise"
    T, P, K = problem.T, problem.P, problem.K
    eta = problem.eta
    bps = _bytes_per_sample(problem, pathwise)
    if storage == "auto":
        storage = "stored" if B * Sb * bps <= max_memory else "replay"

    # chunks: (replica, seed, size); each chunk lies in one replica
    n_chunks = -(-Sb // chunk_size)
    chunk_list = []
    for b, rep_ss in enumerate(np.random.SeedSequence(seed).spawn(B)):
        for c, ch_ss in enumerate(rep_ss.spawn(n_chunks)):
            chunk_list.append((b, ch_ss, min(chunk_size, Sb - c * chunk_size)))
    sqrt_q0 = _sqrt_psd(problem.Qperp0)
    sig, dsig, d2sig = problem.activation.cfuncs()
    a = np.ascontiguousarray(problem.a)
    st = _State(problem, B)

    def alloc_hist(m: int) -> dict:
        return {
            "r_h": np.zeros((T, P, m)), "w_h": np.zeros((T, P, m)), "F_h": np.zeros((T, P, m)),
            "chi_h": np.zeros((T, T, P, P, m)) if pathwise else np.zeros((1, 1, 1, 1, 1)),
        }

    if storage == "stored":
        data = _alloc_draws(problem, B * Sb)
        offsets = np.cumsum([0] + [m for *_, m in chunk_list])

        def fill(c: int) -> None:
            lo, hi = offsets[c], offsets[c + 1]
            _draw_chunk(problem, chunk_list[c][1], sqrt_q0,
                        {k: v[..., lo:hi] for k, v in data.items()})

        # numpy's generators release the GIL: chunks (own seeds, own slices) fill in parallel
        with ThreadPoolExecutor(max_workers=numba.get_num_threads()) as pool:
            list(pool.map(fill, range(len(chunk_list))))
        hist = alloc_hist(B * Sb)
        starts, owner = _blocks_for([m for *_, m in chunk_list], [b for b, *_ in chunk_list])
        acc = _Accumulators(len(owner), T, P, K, pathwise)
    else:
        hist = alloc_hist(min(chunk_size, Sb))
        draws = _alloc_draws(problem, min(chunk_size, Sb))

    def run(t_from: int, t: int, data_: dict, hist_: dict, starts_, owner_, acc_) -> None:
        acc_.zero()
        dmft_pass(t_from, t, True, pathwise,
                  data_["z"], data_["y"], data_["r0"], data_["xi"], data_["mask"],
                  hist_["r_h"], hist_["w_h"], hist_["F_h"], hist_["chi_h"],
                  st.M, st.Lam, st.R, st.Lc, a, eta, starts_, owner_, sig, dsig, d2sig,
                  problem.activation.code, *acc_.arrays())

    meta = {"seed": seed, "estimator": estimator, "storage": storage, "chunk_size": chunk_size,
            "noise_memory": noise_memory}
    show = sys.stderr.isatty() if progress is None else bool(progress)
    steps = range(T)
    if show:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"DMFT S={S:.0e}", unit="step")
    t_done = -1
    try:
        for t in steps:
            tot = {k: np.zeros((B,) + shape) for k, shape in (
                ("C", (T, P, P)), ("A", (T, P, P)), ("Cw", (T, P, P)), ("Fz", (P, K)),
                ("loss", ()), ("J", (P, P)), ("R", (T, P, P)))}
            if storage == "stored":
                run(t, t, data, hist, starts, owner, acc)
                _add_totals(tot, acc, owner, B, pathwise)
            else:
                for b, ss, m in chunk_list:
                    d = draws if m == draws["y"].shape[0] else _alloc_draws(problem, m)
                    _draw_chunk(problem, ss, sqrt_q0, d)
                    h = hist if m == hist["r_h"].shape[-1] else alloc_hist(m)
                    starts_c, owner_c = _blocks_for([m], [b])
                    acc_c = _Accumulators(len(owner_c), T, P, K, pathwise)
                    run(0, t, d, h, starts_c, owner_c, acc_c)
                    _add_totals(tot, acc_c, owner_c, B, pathwise)
            _update_kernels(st, tot, t, problem, Sb, pathwise, noise_memory)
            if not _finite_step(st, t):
                raise _Diverged(t)
            t_done = t
    except _Diverged as exc:
        partial = _assemble(problem, st, exc.step, B, Sb, meta, wall0,
                            compute_egen=False) if exc.step > 0 else None
        raise DivergenceError(
            f"DMFT diverged at step t={exc.step} (non-finite kernels or overlaps); "
            f"the partial trajectory (t < {exc.step}) is attached as .partial",
            step=exc.step, partial=partial) from None
    return _assemble(problem, st, t_done + 1, B, Sb, meta, wall0, compute_egen=True)


class _Diverged(Exception):
    def __init__(self, step: int):
        self.step = step


def _add_totals(tot: dict, acc: _Accumulators, owner: np.ndarray, B: int, pathwise: bool):
    tot["C"] += _sum_by_replica(acc.C, owner, B)
    tot["A"] += _sum_by_replica(acc.A, owner, B)
    tot["Cw"] += _sum_by_replica(acc.Cw, owner, B)
    tot["Fz"] += _sum_by_replica(acc.Fz, owner, B)
    tot["loss"] += _sum_by_replica(acc.loss, owner, B)
    if pathwise:
        tot["J"] += _sum_by_replica(acc.J, owner, B)
        tot["R"] += _sum_by_replica(acc.R, owner, B)


def _update_kernels(st: _State, tot: dict, t: int, problem: Problem, Sb: int,
                    pathwise: bool, noise_memory: bool = True) -> None:
    """From the step-t sums: C(t, .), Cw(t, .), Lambda(t), R(t, .), noise factor row, M(t+1)."""
    T, P = problem.T, problem.P
    alpha, eta, lam = problem.alpha, problem.eta, problem.lam
    B = st.M.shape[0]
    eye = np.eye(P)
    for b in range(B):
        st.C[b, t, : t + 1] = alpha * tot["C"][b, : t + 1] / Sb
        st.C[b, : t + 1, t] = st.C[b, t, : t + 1].transpose(0, 2, 1)
        st.Cw[b, t, : t + 1] = tot["Cw"][b, : t + 1] / Sb
        st.Cw[b, : t + 1, t] = st.Cw[b, t, : t + 1].transpose(0, 2, 1)
        st.e_train[b, t] = tot["loss"][b] / Sb
        if pathwise:
            st.Lam[b, t] = lam * eye + alpha * tot["J"][b] / Sb
            st.R[b, t, :t] = alpha * tot["R"][b, :t] / Sb
        else:
            gamma, cond = _stein_gamma(alpha * tot["A"][b, : t + 1] / Sb, st.Cw[b], t)
            st.Lam[b, t] = lam * eye + gamma[t]
            st.R[b, t, :t] = -gamma[:t]
            st.cond_cw[t] = max(st.cond_cw[t], cond)
        n = (t + 1) * P
        Cmat = np.ascontiguousarray(_blocks_to_matrix(st.C[b], t + 1))
        Lsub = np.ascontiguousarray(st.Lmat[b, :n, :n])
        if not noise_memory:  # SPEC 8 error (1): forget the cross-time covariance
            Cmat[t * P:, : t * P] = 0.0
            Cmat[: t * P, t * P:] = 0.0
        st.chol_dropped[t] += cholesky_extend(Cmat, Lsub, t * P, _CHOL_TOL)
        st.Lmat[b, :n, :n] = Lsub
        st.Lc[b, t, : t + 1] = Lsub[t * P:, :].reshape(P, t + 1, P).transpose(1, 0, 2)
        if t + 1 < T:
            st.M[b, t + 1] = (1.0 - eta * lam) * st.M[b, t] - eta * alpha * tot["Fz"][b] / Sb


def _finite_step(st: _State, t: int) -> bool:
    T = st.M.shape[1]
    arrays = [st.C[:, t], st.Lam[:, t], st.R[:, t], st.e_train[:, t]]
    if t + 1 < T:
        arrays.append(st.M[:, t + 1])
    return all(np.all(np.isfinite(x)) for x in arrays)


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B = x.shape[0]
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(B)


def _assemble(problem: Problem, st: _State, n_t: int, B: int, Sb: int, meta: dict,
              wall0: float, compute_egen: bool) -> Trajectory:
    """Trajectory of the first n_t time points from the per-replica state."""
    P = problem.P
    prob = problem if n_t == problem.T else problem.replace(T=n_t)
    M = st.M[:, :n_t]
    Lam, R, C = st.Lam[:, :n_t], st.R[:, :n_t, :n_t], st.C[:, :n_t, :n_t]
    Q = np.empty((B, n_t, P, P))
    for b in range(B):
        qperp = cavity_covariance(Lam[b], R[b], C[b], problem.Qperp0, problem.eta)
        Q[b] = qperp + M[b] @ M[b].transpose(0, 2, 1)
    if compute_egen:
        from dmft.gaussian import gen_error

        eg, _ = gen_error(prob, M.reshape(B * n_t, P, -1), Q.reshape(B * n_t, P, P))
        e_gen = eg.reshape(B, n_t)
    else:
        e_gen = np.full((B, n_t), np.nan)
    out = {}
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged partial may hold huge values
        for name, arr in (("M", M), ("Q", Q), ("e_train", st.e_train[:, :n_t]), ("e_gen", e_gen),
                          ("C", C), ("R", R), ("Lam", Lam)):
            out[name], out[name + "_se"] = _mean_se(arr)
    prov = base_provenance(
        "dmft", samples=B * Sb, replicas=B, threads=numba.get_num_threads(),
        wall_time=time.perf_counter() - wall0,
        error_bars=f"std over {B} independent sub-solves / sqrt({B})", **meta,
    )
    diagnostics = {"cond_Cw": st.cond_cw[:n_t].copy(), "chol_dropped": st.chol_dropped[:n_t].copy()}
    return Trajectory(problem=prob, provenance=prov, diagnostics=diagnostics, **out)
