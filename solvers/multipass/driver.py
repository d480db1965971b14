"""Multi-pass DMFT driver: causal Monte Carlo solution (docs/theory/dmft.md).

The S samples are split into ``replicas`` fully independent sub-solves (each with its own
kernels), solved side by side on worker threads (:mod:`.replicas`), each by one causal forward
pass over t: at step t its samples are advanced to t with the kernels already fixed, the
step-t expectations are accumulated, and from them the step-t kernels and the coefficients of
step t + 1 are computed (:mod:`solvers.numerics.step`). Per-sample histories are either
stored (memory O(T P) per sample of the replicas being solved) or, when they would not fit in
``max_memory``, replayed from t = 0 out of the counter-seeded random streams (memory O(chunk),
arithmetic ~T/2 times more; identical results). A solve can save its state in a checkpoint
directory and resume from it (:mod:`.checkpoint`).
"""

from __future__ import annotations

import threading
import time

import numba
import numpy as np

from dmft.gaussian import sqrt_psd
from dmft.problem import Problem
from dmft.progress import Progress, compile_notice
from dmft.schedules import Bernoulli, Cyclic, Full
from dmft.stats import mean_se
from dmft.trajectory import Trajectory, base_provenance
from dmft.validation import integer, real
from solvers.divergence import diverged
from solvers.numerics import precompile
from solvers.numerics.blocks import n_workers as n_workers_available
from solvers.numerics.dmft_state import BLOCK, Diagnostics, Results, make_params, zero_results
from solvers.numerics.passes import multipass_kernels
from solvers.numerics.table import USER

from .buffers import bytes_per_sample, keep_samples, samples_for
from .checkpoint import Checkpoint
from .e_gen import gen_error_mean_se, population_mean_se
from .replicas import Outcome, ReplicaPool, Setup, Worker

__all__ = ["solve_multipass", "ESTIMATORS"]

ESTIMATORS = ("stein", "pathwise")
_CHOL_TOL = 1e-12  # relative pivot below which a noise component is taken as degenerate
_CW_RCOND = 1e-12  # relative eigenvalue cutoff when inverting the cavity covariance Cw
# cold compilation of the kernels of a solve on two cores, quoted while it happens
_COMPILE_SECONDS = 20.0


# ------------------------------------------------------------------------------ validation
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
    if estimator == "pathwise" and not problem.loss.smooth:
        raise ValueError(
            f"estimator='pathwise' needs d^2L/df^2 pointwise, but loss {problem.loss.name!r} "
            "has a Dirac mass in it (a kink of the loss); use estimator='stein', which is "
            "exact for it"
        )
    replicas = integer("replicas", replicas, low=2)
    samples = integer("samples", samples, low=1)
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
    chunk_size = integer("chunk_size", chunk_size, low=256)
    return samples, replicas, per_replica, chunk_size


# ------------------------------------------------------------------------------ driver
def solve_multipass(problem: Problem, samples: int = 10**6, seed: int = 0,
                    estimator: str = "stein", replicas: int = 16, storage: str = "auto",
                    chunk_size: int = 2**16, max_memory: float = 1.5 * 2**30,
                    noise_memory: bool = True, progress: bool | None = None,
                    checkpoint=None, checkpoint_every: float = 10.0) -> Trajectory:
    """Solve the multi-pass DMFT by causal Monte Carlo (docs/theory/dmft.md).

    Parameters
    ----------
    problem : Problem
        Schedule full, Cyclic or Bernoulli.
    samples : int
        Total number S of effective samples, split over ``replicas`` independent sub-solves
        (Monte Carlo samples of the effective process, not training samples n).
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
        Independent sub-solves used for the standard errors (>= 2; default 16). They are
        solved side by side, one per thread (results do not depend on the thread count).
    storage : {"auto", "stored", "replay"}
        Keep per-sample histories of the replicas being solved, or regenerate and replay
        chunks from t = 0 at every step. "auto" stores when the histories of the replicas
        solved at once fit in ``max_memory`` bytes (solving fewer at once if needed). Both
        give identical results.
    chunk_size : int
        Samples per replayed chunk (rounded up to whole blocks of 1024; results do not depend
        on it).
    max_memory : float
        Bytes of per-sample histories above which "auto" storage replays.
    noise_memory : bool
        True (correct): zeta is one Gaussian process with the full cross-time covariance C(t, s).
        False reproduces error (1) of the authors' script (docs/theory/authors-script.md): noise
        drawn afresh at every step with covariance C(t, t) only. For demonstrations and tests
        that must catch it.
    progress : bool, optional
        None: a bar over (replica, step) on a terminal, a plain line every few seconds
        otherwise; True: always a bar; False: silent (also no compilation notice).
    checkpoint : str or path, optional
        Directory where the solve saves its state: each replica's results when it finishes,
        and the replicas in flight every ``checkpoint_every`` seconds (atomic writes). A solve
        killed at any moment and called again with the same arguments resumes from it and
        returns a bit-identical Trajectory; the directory is deleted when the solve returns.
        A checkpoint of another solve raises ValueError.
    checkpoint_every : float
        Seconds between snapshots of the replicas in flight (at least 10 times the time the
        last one took to write, so that writing costs at most ~10% of the solve).

    Returns
    -------
    Trajectory
        M (T,P,K), Q (T,P,P), e_train (T,), e_gen (T,), kernels C (T,T,P,P), R (T,T,P,P),
        Lam (T,P,P), all with standard errors; diagnostics ``cond_Cw`` (T,) (Stein: largest
        over replicas of 1 / the smallest relative Cholesky pivot of the cavity covariance, a
        conditioning indicator; the exact condition number when the pseudo-inverse was needed)
        and ``chol_dropped`` (T,) (degenerate noise components). Provenance adds, over all
        steps and replicas, the smallest relative pivot L_jj^2 / A_jj of the Cholesky factors
        of the noise covariance C (``noise_min_relative_pivot``) and of the cavity covariance
        Cw of the Stein solves (``cw_min_relative_pivot``), max / min squared pivot (a lower
        bound on their condition numbers: ``noise_cond_lower_bound``,
        ``cw_cond_lower_bound``) and ``chol_dropped_total``.

    Raises
    ------
    DivergenceError
        When a kernel or overlap becomes non-finite or grows without bound (``e_train`` or a
        diagonal entry of Q beyond 10^6 times its scale at t = 0, see
        :mod:`solvers.divergence`); ``partial`` holds the steps before, the message names eta
        and estimates the largest stable one.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="he3", P=1, activation="tanh", alpha=2.0, eta=0.3, T=3)
    >>> traj = solve_multipass(prob, samples=2**14, seed=0, progress=False)
    >>> traj.M.shape, traj.Q.shape
    ((3, 1, 1), (3, 1, 1))
    """
    wall0 = time.perf_counter()
    if isinstance(problem, Problem) and problem.is_flow:
        raise ValueError("solve_multipass is discrete-time GD; gradient flow problems are "
                         "solved by dmft.solve (solvers.flow_dmft.solve_flow_dmft)")
    S, B, Sb, chunk_size = _validate(problem, samples, replicas, estimator, storage, chunk_size)
    seed = integer("seed", seed, low=0)
    checkpoint_every = real("checkpoint_every", checkpoint_every, low=0.0)
    pathwise = estimator == "pathwise"
    T, P, K = problem.T, problem.P, problem.K
    history = Sb * bytes_per_sample(problem, pathwise)  # bytes of one replica's histories
    n_workers = min(n_workers_available(), B)
    if storage == "auto":
        storage = "stored" if history <= max_memory else "replay"
    if storage == "stored":  # only as many replicas at once as their histories fit
        n_workers = max(1, min(n_workers, int(max_memory // max(history, 1))))

    key = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
    n_blk = -(-Sb // BLOCK)  # blocks per replica; block k of replica b is stream b*n_blk+k
    starts = np.minimum(np.arange(n_blk + 1, dtype=np.int64) * BLOCK, Sb)
    act, loss = problem.activation, problem.loss
    # spans of whole blocks processed together: the replica, or its replayed chunks
    per = n_blk if storage == "stored" else -(-min(chunk_size, Sb) // BLOCK)
    spans = [(k0, min(k0 + per, n_blk)) for k0 in range(0, n_blk, per)]
    setup = Setup(
        problem=problem, pathwise=pathwise, B=B, Sb=Sb, key=key, starts=starts,
        kernels=multipass_kernels(act.code if act.code >= 0 else USER, pathwise,
                                  loss.code if loss.code >= 0 else USER),
        # registry activations and losses are compiled into the kernels: no cfunc arguments
        # to type per call
        user_fns=act.cfuncs() if act.code < 0 else (None, None, None),
        loss_args=(loss.kernel_args() if loss.code < 0
                   else (float(loss.param), loss.half_square, None, None, None)),
        par=make_params(Sb, problem.alpha, problem.eta, problem.lam, problem.a, noise_memory,
                        _CHOL_TOL, _CW_RCOND, 2.0 * problem.temperature / problem.eta),
        storage=storage, spans=spans, sqrt_q0=sqrt_psd(problem.Qperp0))
    outcome = Outcome.zeros(zero_results(B, T, P, K))
    outcome.res.M[:, 0] = problem.M0
    meta = {"seed": seed, "estimator": estimator, "storage": storage, "chunk_size": chunk_size,
            "noise_memory": noise_memory}
    ckpt, resume = None, {}
    if checkpoint is not None:
        ckpt = Checkpoint(checkpoint, {"problem": problem.to_dict(), "samples": S,
                                       "replicas": B, "seed": seed, "estimator": estimator,
                                       "chunk_size": chunk_size, "noise_memory": noise_memory},
                          every=checkpoint_every)
        resume = ckpt.load(outcome)
        meta["checkpoint"] = str(checkpoint)
    todo = ([b for b in range(B) if b in resume]
            + [b for b in range(B) if outcome.done[b] < 0 and b not in resume])

    # sample count -> arrays (at most two sizes: full chunks and the last one), per worker
    sizes = {int(starts[k1] - starts[k0]) for k0, k1 in spans}
    chunks = [samples_for(problem, sizes, pathwise, w) for w in range(n_workers)]

    # On a cold cache (a first run) the update and the per-block sums are compiled by a helper
    # process while this one compiles the draw and the field sums; the entry kernels then find
    # them all ready (the helper's in numba's disk cache): ~19 s instead of ~28 on two cores.
    helper_tasks = [f"{precompile.__name__}:compile_finish:{estimator}",
                    f"{precompile.__name__}:compile_sums:{estimator}"]
    compiled_forward = []  # not empty once this solve compiled the forward kernels ahead
    compile_lock = threading.Lock()

    def first_compile() -> None:
        """Before the first entry kernel: on a first run, compile the forward kernels here and
        wait for the helper's (at once otherwise)."""
        with compile_lock:
            if precompile.started(helper_tasks[0]) and not compiled_forward:
                precompile.compile_forward(estimator)
                compiled_forward.append(True)
        for task in helper_tasks:
            precompile.wait(task)

    with compile_notice("the multi-pass DMFT", _COMPILE_SECONDS, enabled=progress,
                        on_start=lambda: precompile.start(helper_tasks)), \
            Progress(B * T, f"DMFT S={S:.0e}", "step", enabled=progress,
                     total_work=B * _step_work(0, T)) as bar:
        for b in range(B):  # replicas finished before a checkpoint's resume
            if outcome.done[b] >= 0:
                bar.update(int(outcome.done[b]), work=_step_work(0, int(outcome.done[b])))
        pool = ReplicaPool(
            setup, outcome, [Worker.new(setup, ch) for ch in chunks], todo, _LockedBar(bar),
            before_kernels=first_compile, resume=resume,
            on_done=None if ckpt is None else (lambda b: ckpt.save_done(outcome, b)),
            restore=None if ckpt is None else ckpt.restore(outcome),
            snapshot_due=None if ckpt is None else ckpt.due,
            snapshot=None if ckpt is None else (lambda fl: ckpt.save_in_flight(outcome, fl)))
        try:
            pool.run()
        finally:
            keep_samples(problem, chunks, pathwise)
        n_t = int(outcome.done.min())  # steps every replica completed with finite values
        res = outcome.res
        Q = outcome.Q[:, :n_t]
        diag = Diagnostics(outcome.cond_cw.max(axis=0), outcome.chol_dropped.sum(axis=0), None)
        stop = diverged(res.e_train[:, :n_t], Q, n_t < T)
        if stop is not None:
            raise stop.error(problem, "DMFT", Lam0=res.Lam[:, 0] if n_t > 0 else None,
                             partial=(_assemble(problem, res, Q, stop.step, B, Sb, meta, wall0,
                                                diag, compute_egen=False)
                                      if stop.step > 0 else None))
        piv = outcome.pivots  # NaN where a factor has no kept pivot (or none: pathwise)
        meta.update(noise_min_relative_pivot=_nan_reduce(np.nanmin, piv[:, 0]),
                    noise_cond_lower_bound=_nan_reduce(np.nanmax, piv[:, 1]),
                    cw_min_relative_pivot=_nan_reduce(np.nanmin, piv[:, 2]),
                    cw_cond_lower_bound=_nan_reduce(np.nanmax, piv[:, 3]),
                    chol_dropped_total=int(outcome.chol_dropped.sum()))
        traj = _assemble(problem, res, Q, T, B, Sb, meta, wall0, diag, compute_egen=True)
    if ckpt is not None:
        ckpt.remove()
    return traj


def _nan_reduce(fn, values: np.ndarray) -> float:
    """fn (np.nanmin or np.nanmax) of the values that are not NaN; NaN if none is."""
    return float(fn(values)) if np.isfinite(values).any() or np.isinf(values).any() else np.nan


def _step_work(t0: int, t1: int) -> float:
    """Relative cost of steps t0 <= t < t1 of a replica: step t reads a history of t + 1 times
    (the update's O(t^2) part is smaller up to T in the thousands)."""
    return float((t1 - t0) * (t0 + t1 + 1) / 2)


class _LockedBar:
    """A Progress updated from several worker threads, steps t0 <= t < t1 at a time."""

    def __init__(self, bar: Progress) -> None:
        self._bar, self._lock = bar, threading.Lock()

    def steps(self, t0: int, t1: int) -> None:
        if t1 > t0:
            with self._lock:
                self._bar.update(t1 - t0, work=_step_work(t0, t1))


def _assemble(problem: Problem, reps: Results, Q: np.ndarray, n_t: int, B: int, Sb: int,
              meta: dict, wall0: float, diag: Diagnostics, compute_egen: bool) -> Trajectory:
    """Trajectory of the first n_t time points from the replicas' state and overlaps Q."""
    prob = problem if n_t == problem.T else problem.replace(T=n_t)
    M, Q = reps.M[:, :n_t], Q[:, :n_t]
    runs = {"M": M, "Q": Q, "e_train": reps.e_train[:, :n_t], "Lam": reps.Lam[:, :n_t]}
    kernels = {}
    for name in ("C", "R"):  # by rows: temporaries of a few rows, not of the B T^2 P^2 stack
        kernels[name], kernels[name + "_se"] = _mean_se_rows(getattr(reps, name), n_t)
    classes = {}
    if compute_egen and (prob.binary_labels or not prob.loss.half_square):
        pop = population_mean_se(prob, M, Q)
        e_gen, e_gen_se = pop["e_gen"], pop["e_gen_se"]
        if prob.binary_labels:
            classes = {"class_error": pop["class_error"],
                       "class_error_se": pop["class_error_se"]}
    if compute_egen and prob.loss.half_square:
        e_gen, e_gen_se = gen_error_mean_se(prob, M, Q)
    elif not compute_egen:
        e_gen = e_gen_se = np.full(n_t, np.nan)
    prov = base_provenance(
        "dmft", samples=B * Sb, replicas=B, threads=numba.get_num_threads(),
        wall_time=time.perf_counter() - wall0,
        error_bars=f"std over {B} independent sub-solves / sqrt({B})", **meta,
    )
    diagnostics = {"cond_Cw": diag.cond_cw[:n_t].copy(),
                   "chol_dropped": diag.chol_dropped[:n_t].copy(), **classes}
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged partial may hold huge values
        return Trajectory.from_runs(prob, runs, prov, count="replicas", diagnostics=diagnostics,
                                    e_gen=e_gen, e_gen_se=e_gen_se, **kernels)


def _mean_se_rows(runs: np.ndarray, n_t: int, rows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``mean_se(runs[:, :n_t, :n_t])`` computed a block of rows at a time (the same
    elementwise arithmetic over axis 0: bit-identical)."""
    B = runs.shape[0]
    mean = np.empty((n_t, n_t) + runs.shape[3:])
    se = np.empty_like(mean)
    for t0 in range(0, n_t, rows):
        t1 = min(n_t, t0 + rows)
        mean[t0:t1], se[t0:t1] = mean_se(runs[:, t0:t1, :n_t]) if B else (0.0, 0.0)
    return mean, se
