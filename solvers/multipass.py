"""Multi-pass DMFT driver: causal Monte Carlo solution of SPEC sections 3-5.

Error bars: the S samples are split into ``replicas`` fully independent sub-solves (each with
its own kernels). The reported value is their mean and the standard error their standard
deviation over sqrt(replicas), which includes the kernels' own Monte Carlo noise fed forward
through later steps (SPEC 4b). e_gen is evaluated at the mean overlaps, its standard error by
the delta method (``_gen_error_mean_se``).

Replicas are solved one after the other (their data stays in cache across steps), each by one
causal forward pass over t: at step t its samples are advanced to t with the kernels already
fixed (``_kernels.dmft_pass``), the step-t expectations are accumulated, and from them the
step-t kernels C(t, .), Lambda(t), R(t, .), the next Cholesky block row of the noise
covariance, M(t+1) and the cavity coefficients Wg(t+1), Gf(t+1, .) are computed here. Per-sample
histories are either stored (memory O(T P) per sample of one replica) or, when they would not
fit in ``max_memory``, replayed from t = 0 out of the counter-seeded random streams (memory
O(chunk), arithmetic ~T/2 times more; identical results).
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numba
import numpy as np

from dmft.gaussian import QuadratureOptions, cross_moments, gen_error, pair_moments, sqrt_psd
from dmft.problem import Problem
from dmft.schedules import Bernoulli, Cyclic, Full
from dmft.targets import registry_code
from dmft.trajectory import DivergenceError, Trajectory, base_provenance

from ._kernels import (
    SCHED_BERNOULLI,
    SCHED_CYCLIC,
    SCHED_FULL,
    dmft_pass,
    draw_static,
    scratch_size,
)
from ._update import finish_step, stored_steps

__all__ = ["solve_multipass", "cavity_covariance", "release_buffers", "ESTIMATORS"]

ESTIMATORS = ("stein", "pathwise")
_BLOCK = 1024  # samples per accumulation block: L2-sized, fixed (thread-count independent)
_CHOL_TOL = 1e-12  # relative pivot below which a noise component is taken as degenerate
_CW_RCOND = 1e-12  # relative eigenvalue cutoff when inverting the cavity covariance Cw
# White inputs (r0 and noise normals) are stored in float64 like everything else (DESIGN:
# no silent downcasts). The kernels accept float32 too: that measured 108 -> 87 ns/sample per
# replica at T = 7, P = 2, at the price of float32 rounding in the Gram of the white inputs.
_GW_DTYPE = np.float64
_TARGET_PIECE = 16384  # samples per call of the (numpy) target


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
    """Bytes of stored per-sample state (z, y, label noise, white inputs, F, pathwise chi, J)."""
    T, P, K = problem.T, problem.P, problem.K
    floats = K + 2 + T * P + ((T * T + 1) * P * P if pathwise else 0)
    return 8 * floats + np.dtype(_GW_DTYPE).itemsize * T * P + T  # + white inputs, mask (uint8)


# ------------------------------------------------------------------------------ randomness
def _schedule_code(schedule) -> tuple[int, float]:
    if isinstance(schedule, Full):
        return SCHED_FULL, 0.0
    if isinstance(schedule, Cyclic):
        return SCHED_CYCLIC, float(schedule.n_blocks)
    return SCHED_BERNOULLI, float(schedule.b)


_ALIGN = 64  # bytes: one cache line, one AVX-512 vector


def _aligned_empty(shape: tuple, dtype=np.float64) -> np.ndarray:
    """Uninitialised C-contiguous array whose rows (last axis) all start on a cache line.

    The last axis is padded to whole cache lines (callers index only its first ``shape[-1]``
    entries; the kernels never read the padding). Vector loads that straddle two lines cost
    up to twice as much: unaligned rows made the field sums 1.5-2x slower (numpy puts large
    arrays 16 bytes past a page start, and 62500-sample rows are 64-byte multiples only every
    other row).
    """
    itemsize = np.dtype(dtype).itemsize
    per_line = _ALIGN // itemsize
    padded = shape[:-1] + (-(-shape[-1] // per_line) * per_line,)
    count = math.prod(padded)
    raw = np.empty(count * itemsize + _ALIGN, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGN
    return raw[offset:offset + count * itemsize].view(dtype).reshape(padded)


class _Chunk:
    """Per-sample arrays of a run of consecutive blocks of one replica (samples last; rows
    padded to whole cache lines, see ``_aligned_empty``)."""

    def __init__(self, problem: Problem, m: int, pathwise: bool):
        T, P, K = problem.T, problem.P, problem.K
        self.m = m
        self.z = _aligned_empty((K, m))
        self.y = _aligned_empty((m,))
        self.y_noise = _aligned_empty((m,))
        self.mask = _aligned_empty((T, m), dtype=np.uint8)
        # every entry is written before it is read (tested by poisoning kept buffers)
        self.gw = _aligned_empty((T, P, m), dtype=_GW_DTYPE)
        self.F_h = _aligned_empty((T, P, m))
        self.chi_h = _aligned_empty((T, T, P, P, m) if pathwise else (1, 1, 1, 1, 1))
        self.J_h = _aligned_empty((P, P, m) if pathwise else (1, 1, 1))
        n_blocks = -(-m // _BLOCK)
        self.work = _aligned_empty((n_blocks, scratch_size(P, _BLOCK)))
        self.flags = np.empty((n_blocks, _BLOCK), dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return sum(arr.nbytes for arr in vars(self).values() if isinstance(arr, np.ndarray))

    def draw(self, problem: Problem, key: np.uint64, starts: np.ndarray, gids: np.ndarray) -> None:
        """Fill z, labels, white r0 inputs gw[0] and the mask from the blocks' streams."""
        kind, param = _schedule_code(problem.schedule)
        noise_sd = math.sqrt(problem.noise)
        code = registry_code(problem.target)
        draw_static(key, starts, gids, kind, param, noise_sd, problem.T, code, self.z,
                    self.gw[0], self.mask, self.y_noise, self.y)
        if code >= 0:
            return  # registry target: labels computed in the kernel
        m = self.m
        # in pieces: numpy's temporaries then stay in cache and are recycled by malloc instead
        # of being fresh pages (measured 1.16 -> 0.28 ms per 62500 samples for the paper target)
        for lo in range(0, m, _TARGET_PIECE):
            hi = min(lo + _TARGET_PIECE, m)
            self.y[lo:hi] = problem.target(self.z[:, lo:hi])
        if noise_sd > 0.0:
            self.y[:m] += self.y_noise[:m]


# Per-sample buffers of a thread's last solve are kept when they total at most _KEEP_BYTES, and
# reused by its next solve of the same shapes: first-touching fresh memory (page faults,
# huge-page compaction) cost 5-15 ms of a ~70 ms solve at S = 1e6, for every solve.
_KEEP_BYTES = 64 * 2**20
_kept = threading.local()


def _chunks_for(problem: Problem, sizes: set, pathwise: bool) -> dict:
    """Chunk arrays for each sample count in ``sizes``: kept ones where shapes match."""
    kept = getattr(_kept, "chunks", {})
    dims = (problem.T, problem.P, problem.K, pathwise)
    return {m: kept.get(dims + (m,)) or _Chunk(problem, m, pathwise) for m in sizes}


def _keep_chunks(problem: Problem, chunks: dict, pathwise: bool) -> None:
    dims = (problem.T, problem.P, problem.K, pathwise)
    small = sum(ch.nbytes for ch in chunks.values()) <= _KEEP_BYTES
    _kept.chunks = {dims + (m,): ch for m, ch in chunks.items()} if small else {}


def release_buffers() -> None:
    """Drop the per-sample buffers this thread keeps between solves (at most 64 MiB)."""
    _kept.chunks = {}


# ------------------------------------------------------------------------------ algebra
def cavity_covariance(Lam: np.ndarray, R: np.ndarray, C: np.ndarray, qperp0: np.ndarray,
                      eta: float) -> np.ndarray:
    """Equal-time cavity covariance Qperp(t, t) from the deterministic recursion of SPEC 3.

    Parameters
    ----------
    Lam : (..., T, P, P); R : (..., T, T, P, P) with R[t, s] for s < t; C : (..., T, T, P, P)
    full symmetric; qperp0 : (P, P) = Q0 - M0 M0^T; eta : learning rate. Leading dimensions
    (e.g. replicas) are a batch, computed together.

    Returns
    -------
    Qperp : (..., T, P, P), with Q_t = Qperp[t] + M_t M_t^T.
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
    q = Phi @ qperp0 @ Phi.transpose(0, 1, 3, 2)
    for t in range(1, T):
        Gmat = G[:, t, :t].transpose(0, 2, 1, 3).reshape(B, P, t * P)
        q[:, t] += Gmat @ Cmat[:, : t * P, : t * P] @ Gmat.transpose(0, 2, 1)
    return (0.5 * (q + q.transpose(0, 1, 3, 2))).reshape(*batch, T, P, P)


# ------------------------------------------------------------------------------ driver
class _State:
    """Per-replica kernels, cavity coefficients and order parameters, filled causally."""

    def __init__(self, problem: Problem, B: int, sqrt_q0: np.ndarray):
        T, P, K = problem.T, problem.P, problem.K
        self.M = np.zeros((B, T, P, K))
        self.M[:, 0] = problem.M0
        self.Lam = np.zeros((B, T, P, P))
        self.R = np.zeros((B, T, T, P, P))
        self.C = np.zeros((B, T, T, P, P))
        self.gram = np.zeros((B, T * P, T * P))  # E[g g^T] of the white inputs
        self.cw = np.zeros((B, T * P, T * P))  # E[w w^T] = Wg gram Wg^T, time-major
        self.lw = np.zeros((B, T * P, T * P))  # its Cholesky factor, grown with it
        self.cw_info = np.zeros((B, 2))  # (pivots of cw dropped, smallest pivot ratio)
        self.cw_info[:, 1] = 1.0
        self.scratch = np.zeros((T * P, T * P))
        self.Lmat = np.zeros((B, T * P, T * P))
        self.Lc = np.zeros((B, T, T, P, P))
        self.Wg = np.zeros((B, T, P, T * P))  # w(t) = Wg[t] g
        self.Wg[:, 0, :, : sqrt_q0.shape[1]] = sqrt_q0  # (P, rank) factor of Qperp0
        self.Gf = np.zeros((B, T, T, P, P))  # r(t) = w(t) - sum_s Gf[t, s] F(s)
        self.e_train = np.zeros((B, T))
        self.cond_cw = np.zeros(T)
        self.chol_dropped = np.zeros(T, dtype=np.int64)


class _Accumulators:
    """Per-block partial sums of one replica (rows summed in block order: deterministic)."""

    def __init__(self, n_blocks: int, T: int, P: int, K: int, pathwise: bool):
        self.C = np.zeros((n_blocks, T, P, P))
        self.Fg = np.zeros((n_blocks, T, P, P))
        self.gram = np.zeros((n_blocks, T, P, P))
        self.Fz = np.zeros((n_blocks, P, K))
        self.loss = np.zeros(n_blocks)
        nb_p = n_blocks if pathwise else 1
        self.J = np.zeros((nb_p, P, P))
        self.R = np.zeros((nb_p, T, P, P))

    def rows(self, k0: int, k1: int, pathwise: bool) -> tuple:
        p0, p1 = (k0, k1) if pathwise else (0, 1)
        return (self.C[k0:k1], self.Fg[k0:k1], self.gram[k0:k1], self.Fz[k0:k1],
                self.loss[k0:k1], self.J[p0:p1], self.R[p0:p1])

    def zero(self) -> None:
        for arr in self.__dict__.values():
            arr[...] = 0.0

    def all(self) -> tuple:
        return (self.C, self.Fg, self.gram, self.Fz, self.loss, self.J, self.R)


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
        Master seed. All randomness comes from counter streams keyed by
        ``SeedSequence(seed)`` and named by (replica, block of 1024 samples, step, purpose).
    estimator : {"stein", "pathwise"}
        How Lambda and R are estimated: Gaussian integration by parts over the cavity field
        (exact for ReLU, memory O(T P) per sample) or response propagation (smooth
        activations only, memory O(T^2 P^2) per sample). Stein sees the response only along
        directions the cavity field explores: with a rank-deficient Qperp0 = Q0 - M0 M0^T it
        reports R(t, 0) = 0 on Qperp0's null space (where r(0) = 0, so M and Q are unaffected).
    replicas : int
        Independent sub-solves used for the standard errors (>= 2; default 16).
    storage : {"auto", "stored", "replay"}
        Keep per-sample histories of the replica being solved, or regenerate and replay chunks
        from t = 0 at every step. "auto" stores when one replica's histories fit in
        ``max_memory`` bytes. Both give identical results.
    chunk_size : int
        Samples per replayed chunk (rounded up to whole blocks of 1024; results do not depend
        on it).
    max_memory : float
        Bytes of per-sample histories above which "auto" storage replays.
    noise_memory : bool
        True (correct): zeta is one Gaussian process with the full cross-time covariance C(t, s).
        False reproduces error (1) of the authors' script (SPEC 8): noise drawn afresh at every
        step with covariance C(t, t) only. For demonstrations and tests that must catch it.
    progress : bool, optional
        Progress bar over (replica, step); default: on when stderr is a terminal.

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
    if storage == "auto":
        storage = "stored" if Sb * _bytes_per_sample(problem, pathwise) <= max_memory else "replay"

    key = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
    n_blk = -(-Sb // _BLOCK)  # blocks per replica; block k of replica b is stream b*n_blk+k
    starts = np.minimum(np.arange(n_blk + 1, dtype=np.int64) * _BLOCK, Sb)
    # registry activations are inlined in the kernel: no cfunc arguments to type per call
    sig, dsig, d2sig = problem.activation.cfuncs() if problem.activation.code < 0 else (None,) * 3
    a = np.ascontiguousarray(problem.a)
    st = _State(problem, B, sqrt_psd(problem.Qperp0))
    acc = _Accumulators(n_blk, T, P, K, pathwise)
    # spans of whole blocks processed together: the replica, or its replayed chunks
    per = n_blk if storage == "stored" else -(-min(chunk_size, Sb) // _BLOCK)
    spans = [(k0, min(k0 + per, n_blk)) for k0 in range(0, n_blk, per)]
    # sample count -> arrays (at most two sizes: full chunks and the last one)
    chunks = _chunks_for(problem, {int(starts[k1] - starts[k0]) for k0, k1 in spans}, pathwise)

    params = (Sb, problem.alpha, problem.eta, problem.lam, pathwise, noise_memory, _CHOL_TOL,
              _CW_RCOND)
    act = (a, sig, dsig, d2sig, problem.activation.code)

    def kern(b: int) -> tuple:
        return (st.M[b], st.Lam[b], st.R[b], st.C[b], st.gram[b], st.cw[b], st.lw[b],
                st.Lmat[b], st.Lc[b], st.Wg[b], st.Gf[b], st.e_train[b], st.cw_info[b],
                st.cond_cw, st.chol_dropped, st.scratch)

    def replica_stored(b: int, n_steps: int) -> int:
        """All steps of replica b in one numba call; returns the steps that stayed finite."""
        ch = chunks[Sb]
        gids = b * n_blk + np.arange(n_blk, dtype=np.int64)
        ch.draw(problem, key, starts, gids)
        return stored_steps(n_steps, *params, key, starts, gids, ch.z, ch.y, ch.mask, ch.gw,
                            ch.F_h, ch.chi_h, ch.J_h, ch.work, ch.flags, *act, *acc.all(),
                            *kern(b))

    def step_replayed(b: int, t: int) -> bool:
        """Step t of replica b, regenerating every chunk from t = 0; True if finite."""
        acc.zero()
        for k0, k1 in spans:
            ch = chunks[int(starts[k1] - starts[k0])]
            loc = starts[k0:k1 + 1] - starts[k0]
            gids = b * n_blk + np.arange(k0, k1, dtype=np.int64)
            ch.draw(problem, key, loc, gids)
            dmft_pass(0, t, True, pathwise, key, loc, gids, ch.z, ch.y, ch.mask, ch.gw,
                      ch.F_h, ch.chi_h, ch.J_h, ch.work, ch.flags, st.M[b], st.Lam[b], st.R[b],
                      st.Wg[b], st.Gf[b], a, problem.eta, sig, dsig, d2sig, problem.activation.code,
                      *acc.rows(k0, k1, pathwise))
        return finish_step(t, *params, *acc.all(), *kern(b))

    meta = {"seed": seed, "estimator": estimator, "storage": storage, "chunk_size": chunk_size,
            "noise_memory": noise_memory}
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=B * T, desc=f"DMFT S={S:.0e}", unit="step")
    n_t = T  # steps every replica completed with finite values
    try:
        for b in range(B):
            if storage == "stored":
                done = replica_stored(b, n_t)
            else:
                done = n_t
                for t in range(n_t):
                    if not step_replayed(b, t):
                        done = t
                        break
                    if bar is not None:
                        bar.update()
            if bar is not None and storage == "stored":
                bar.update(done)
            n_t = min(n_t, done)  # later replicas stop here too: the partial has n_t steps
    finally:
        if bar is not None:
            bar.close()
        _keep_chunks(problem, chunks, pathwise)
    if n_t < T:
        partial = (_assemble(problem, st, n_t, B, Sb, meta, wall0, compute_egen=False)
                   if n_t > 0 else None)
        raise DivergenceError(
            f"DMFT diverged at step t={n_t} (non-finite kernels or overlaps); "
            f"the partial trajectory (t < {n_t}) is attached as .partial",
            step=n_t, partial=partial)
    return _assemble(problem, st, T, B, Sb, meta, wall0, compute_egen=True)


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B = x.shape[0]
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(B)


# coarse rule for the gradient of e_gen behind its delta-method SE: that SE matched the one by
# the accurate rule to 1e-4 (tanh students) and 3e-3 (relu, paper target)
_EGEN_SPREAD_RULE = QuadratureOptions(z_h=0.4, z_R=7.0, inner_h=0.5)
_EGEN_FD_STEP = 1e-6  # forward-difference step in M and Q_jj for the cross terms' gradient


def _gen_error_mean_se(problem: Problem, M: np.ndarray, Q: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """e_gen (T,) at the replica-mean overlaps, and its standard error (T,).

    e_gen is a smooth function f of (M, Q). The value is f at the mean overlaps by the accurate
    rule (its bias from the overlaps' noise is B times smaller than the mean of f over
    replicas). The error bar is the delta method's: the replicas' spread of
    grad f(mean) . (theta_b - mean), theta = (M, Q). With
    f = (E[y^2] - 2 sum_j a_j c_j(M_j, Q_jj) + sum_jk a_j a_k p_jk(Q)) / 2 the gradient takes
    K + 1 shifted evaluations of the cross terms (c_j depends on unit j's M_j and Q_jj only:
    all units move at once) and P (P + 1) / 2 of the pair terms, by forward differences with a
    coarse rule (its rule error is a smooth function of the overlaps: the resulting SE agreed
    with the accurate rule's to 1e-4 for tanh students, 3e-3 for relu). Evaluating f once per
    replica by the accurate rule (16 x T) was a fifth of a 1e6-sample solve, by the coarse
    rule a tenth.
    """
    B, n_t, P, K = M.shape
    a = problem.a
    M_mean, Q_mean = M.mean(axis=0), Q.mean(axis=0)
    e_mean, _ = gen_error(problem, M_mean, Q_mean)
    step = _EGEN_FD_STEP
    # cross terms at the mean and K + 1 shifted points: M_jk towards 0 (keeps
    # Q_jj - |M_j|^2 >= 0), then Q_jj up
    shift = np.where(M_mean >= 0.0, -step, step)
    M_pts = np.repeat(M_mean[None], K + 2, axis=0)
    Q_pts = np.repeat(Q_mean[None], K + 2, axis=0)
    for k in range(K):
        M_pts[1 + k, :, :, k] += shift[:, :, k]
    units = np.arange(P)
    Q_pts[K + 1][:, units, units] += step
    cross, _ = cross_moments(problem, M_pts.reshape(-1, P, K), Q_pts.reshape(-1, P, P),
                             _EGEN_SPREAD_RULE)
    cross = cross.reshape(K + 2, n_t, P)
    grad_M = (cross[1:K + 1] - cross[0]).transpose(1, 2, 0) / shift  # (n_t, P, K)
    grad_q = (cross[K + 1] - cross[0]) / step  # (n_t, P)
    d_cross = (np.einsum("btjk,tjk->btj", M - M_mean, grad_M)
               + (np.diagonal(Q, axis1=-2, axis2=-1)
                  - np.diagonal(Q_mean, axis1=-2, axis2=-1)) * grad_q)
    # pair term a.p(Q).a at the mean and with each Q_jk = Q_kj moved up
    upper = list(zip(*np.triu_indices(P), strict=True))
    Q_pts = np.repeat(Q_mean[None], len(upper) + 1, axis=0)
    for i, (j, k) in enumerate(upper):
        Q_pts[1 + i, :, j, k] += step
        if k != j:
            Q_pts[1 + i, :, k, j] += step
    pairs = pair_moments(problem.activation, Q_pts.reshape(-1, P, P), _EGEN_SPREAD_RULE)
    pair_term = (pairs.reshape(len(upper) + 1, n_t, P, P) @ a) @ a  # (1 + pairs, n_t)
    d_pairs = sum((pair_term[1 + i] - pair_term[0]) / step * (Q[:, :, j, k] - Q_mean[:, j, k])
                  for i, (j, k) in enumerate(upper))
    d_e = -(d_cross @ a) + 0.5 * d_pairs
    return e_mean, d_e.std(axis=0, ddof=1) / math.sqrt(B)


def _assemble(problem: Problem, st: _State, n_t: int, B: int, Sb: int, meta: dict,
              wall0: float, compute_egen: bool) -> Trajectory:
    """Trajectory of the first n_t time points from the per-replica state."""
    prob = problem if n_t == problem.T else problem.replace(T=n_t)
    M = st.M[:, :n_t]
    Lam, R, C = st.Lam[:, :n_t], st.R[:, :n_t, :n_t], st.C[:, :n_t, :n_t]
    Q = cavity_covariance(Lam, R, C, problem.Qperp0, problem.eta) + M @ M.transpose(0, 1, 3, 2)
    out = {}
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged partial may hold huge values
        for name, arr in (("M", M), ("Q", Q), ("e_train", st.e_train[:, :n_t]), ("C", C),
                          ("R", R), ("Lam", Lam)):
            out[name], out[name + "_se"] = _mean_se(arr)
    if compute_egen:
        out["e_gen"], out["e_gen_se"] = _gen_error_mean_se(prob, M, Q)
    else:
        out["e_gen"] = out["e_gen_se"] = np.full(n_t, np.nan)
    prov = base_provenance(
        "dmft", samples=B * Sb, replicas=B, threads=numba.get_num_threads(),
        wall_time=time.perf_counter() - wall0,
        error_bars=f"std over {B} independent sub-solves / sqrt({B})", **meta,
    )
    diagnostics = {"cond_Cw": st.cond_cw[:n_t].copy(), "chol_dropped": st.chol_dropped[:n_t].copy()}
    return Trajectory(problem=prob, provenance=prov, diagnostics=diagnostics, **out)
