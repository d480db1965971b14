"""Multi-pass DMFT driver: causal Monte Carlo solution (docs/theory/dmft.md).

The S samples are split into ``replicas`` fully independent sub-solves (each with its own
kernels), solved one after the other (their data stays in cache across steps), each by one
causal forward pass over t: at step t its samples are advanced to t with the kernels already
fixed, the step-t expectations are accumulated, and from them the step-t kernels and the
coefficients of step t + 1 are computed (:mod:`solvers.numerics.step`). Per-sample histories
are either stored (memory O(T P) per sample of one replica) or, when they would not fit in
``max_memory``, replayed from t = 0 out of the counter-seeded random streams (memory O(chunk),
arithmetic ~T/2 times more; identical results).
"""

from __future__ import annotations

import time

import numba
import numpy as np

from dmft.gaussian import sqrt_psd
from dmft.problem import Problem
from dmft.progress import Progress, compile_notice
from dmft.schedules import Bernoulli, Cyclic, Full
from dmft.trajectory import Trajectory, base_provenance
from dmft.validation import integer
from solvers.divergence import diverged
from solvers.numerics import precompile
from solvers.numerics.dmft_state import (
    BLOCK,
    DIVERGED,
    NEEDS_PSEUDO_INVERSE,
    OK,
    Blocks,
    Diagnostics,
    Replica,
    Sums,
    make_params,
    zero_diagnostics,
    zero_replicas,
    zero_sums,
)
from solvers.numerics.passes import multipass_kernels
from solvers.numerics.step import finish_step_pseudo_inverse
from solvers.numerics.table import USER

from .buffers import bytes_per_sample, draw_statics, keep_samples, samples_for
from .cavity import cavity_covariance
from .e_gen import gen_error_mean_se, population_mean_se

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


# ------------------------------------------------------------------------------ state
def _replicas(problem: Problem, B: int) -> Replica:
    """State of B replicas, stacked (leading axis B), with M(0) and Wg(0) set."""
    reps = zero_replicas(B, problem.T, problem.P, problem.K)
    reps.M[:, 0] = problem.M0
    sqrt_q0 = sqrt_psd(problem.Qperp0)  # (P, rank) factor of Qperp0
    reps.Wg[:, 0, :, :sqrt_q0.shape[1]] = sqrt_q0
    return reps


def _rows(sums: Sums, k0: int, k1: int, pathwise: bool) -> Sums:
    """The sums of blocks k0..k1-1 (views); without pathwise sums their single rows."""
    p0, p1 = (k0, k1) if pathwise else (0, 1)
    return Sums(sums.C[k0:k1], sums.Fg[k0:k1], sums.gram[k0:k1], sums.Fz[k0:k1],
                sums.loss[k0:k1], sums.J[p0:p1], sums.R[p0:p1])


# ------------------------------------------------------------------------------ driver
def solve_multipass(problem: Problem, samples: int = 10**6, seed: int = 0,
                    estimator: str = "stein", replicas: int = 16, storage: str = "auto",
                    chunk_size: int = 2**16, max_memory: float = 1.5 * 2**30,
                    noise_memory: bool = True, progress: bool | None = None) -> Trajectory:
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
        False reproduces error (1) of the authors' script (docs/theory/authors-script.md): noise
        drawn afresh at every step with covariance C(t, t) only. For demonstrations and tests
        that must catch it.
    progress : bool, optional
        None: a bar over (replica, step) on a terminal, a plain line every few seconds
        otherwise; True: always a bar; False: silent (also no compilation notice).

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
    pathwise = estimator == "pathwise"
    T, P, K = problem.T, problem.P, problem.K
    if storage == "auto":
        storage = "stored" if Sb * bytes_per_sample(problem, pathwise) <= max_memory else "replay"

    key = np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0]
    n_blk = -(-Sb // BLOCK)  # blocks per replica; block k of replica b is stream b*n_blk+k
    starts = np.minimum(np.arange(n_blk + 1, dtype=np.int64) * BLOCK, Sb)
    act = problem.activation
    loss = problem.loss
    kernels = multipass_kernels(act.code if act.code >= 0 else USER, pathwise,
                                loss.code if loss.code >= 0 else USER)
    # registry activations and losses are compiled into the kernels: no cfunc arguments to
    # type per call
    user_fns = act.cfuncs() if act.code < 0 else (None, None, None)
    loss_args = (loss.kernel_args() if loss.code < 0
                 else (float(loss.param), loss.half_square, None, None, None))
    par = make_params(Sb, problem.alpha, problem.eta, problem.lam, problem.a, noise_memory,
                      _CHOL_TOL, _CW_RCOND, 2.0 * problem.temperature / problem.eta)
    reps = _replicas(problem, B)
    diag = zero_diagnostics(T, P)
    sums = zero_sums(n_blk, T, P, K, pathwise)
    # spans of whole blocks processed together: the replica, or its replayed chunks
    per = n_blk if storage == "stored" else -(-min(chunk_size, Sb) // BLOCK)
    spans = [(k0, min(k0 + per, n_blk)) for k0 in range(0, n_blk, per)]
    # sample count -> arrays (at most two sizes: full chunks and the last one)
    chunks = samples_for(problem, {int(starts[k1] - starts[k0]) for k0, k1 in spans}, pathwise)

    # On a cold cache (a first run) the update and the per-block sums are compiled by a helper
    # process while this one compiles the draw and the field sums; the entry kernels then find
    # them all ready (the helper's in numba's disk cache): ~19 s instead of ~28 on two cores.
    helper_tasks = [f"{precompile.__name__}:compile_finish:{estimator}",
                    f"{precompile.__name__}:compile_sums:{estimator}"]
    compiled_forward = []  # not empty once this solve compiled the forward kernels ahead

    def first_compile() -> None:
        """Before the first entry kernel: on a first run, compile the forward kernels here and
        wait for the helper's (at once otherwise)."""
        if precompile.started(helper_tasks[0]) and not compiled_forward:
            precompile.compile_forward(estimator)
            compiled_forward.append(True)
        for task in helper_tasks:
            precompile.wait(task)

    def finish(t: int, status: int, rep: Replica) -> bool:
        """Complete step t's update (pseudo-inverse if needed); True if it stayed finite."""
        if status == NEEDS_PSEUDO_INVERSE:
            status = finish_step_pseudo_inverse(t, par, sums, rep, diag)
        return status == OK

    def replica_stored(b: int, n_steps: int) -> int:
        """Steps of replica b on stored histories; returns the steps that stayed finite."""
        smp = chunks[Sb]
        blocks = Blocks(key, starts, b * n_blk + np.arange(n_blk, dtype=np.int64))
        draw_statics(problem, smp, blocks)
        rep = Replica._make(arr[b] for arr in reps)
        first_compile()
        t = 0
        while t < n_steps:
            t, status = kernels.stored_steps((t, n_steps), par, blocks, smp, sums, rep, diag,
                                             *user_fns, loss_args)
            if status == OK:
                break
            if status == DIVERGED or not finish(t, status, rep):
                return t
            t += 1  # step t was finished by the pseudo-inverse: resume after it
        return n_steps

    def step_replayed(b: int, t: int) -> bool:
        """Step t of replica b, regenerating every chunk from t = 0; True if finite."""
        for arr in sums:
            arr[...] = 0.0
        rep = Replica._make(arr[b] for arr in reps)
        for k0, k1 in spans:
            smp = chunks[int(starts[k1] - starts[k0])]
            blocks = Blocks(key, starts[k0:k1 + 1] - starts[k0],
                            b * n_blk + np.arange(k0, k1, dtype=np.int64))
            draw_statics(problem, smp, blocks)
            first_compile()
            kernels.replay_pass(t, par, blocks, smp, _rows(sums, k0, k1, pathwise), rep,
                                *user_fns, loss_args)
        return finish(t, kernels.finish_step(t, par, sums, rep, diag), rep)

    meta = {"seed": seed, "estimator": estimator, "storage": storage, "chunk_size": chunk_size,
            "noise_memory": noise_memory}
    n_t = T  # steps every replica completed with finite values
    with compile_notice("the multi-pass DMFT", _COMPILE_SECONDS, enabled=progress,
                        on_start=lambda: precompile.start(helper_tasks)), \
            Progress(B * T, f"DMFT S={S:.0e}", "step", enabled=progress) as bar:
        try:
            for b in range(B):
                if storage == "stored":
                    done = replica_stored(b, n_t)
                    bar.update(done)
                else:
                    done = n_t
                    for t in range(n_t):
                        if not step_replayed(b, t):
                            done = t
                            break
                        bar.update()
                n_t = min(n_t, done)  # later replicas stop here too: the partial has n_t steps
        finally:
            keep_samples(problem, chunks, pathwise)
        Q = np.zeros((B, 0, P, P))
        if n_t > 0:
            Q = (cavity_covariance(reps.Lam[:, :n_t], reps.R[:, :n_t, :n_t],
                                   reps.C[:, :n_t, :n_t], problem.Qperp0, problem.eta,
                                   langevin=2.0 * problem.temperature / problem.eta)
                 + reps.M[:, :n_t] @ reps.M[:, :n_t].transpose(0, 1, 3, 2))
        stop = diverged(reps.e_train[:, :n_t], Q, n_t < T)
        if stop is not None:
            raise stop.error(problem, "DMFT", Lam0=reps.Lam[:, 0] if n_t > 0 else None,
                             partial=(_assemble(problem, reps, Q, stop.step, B, Sb, meta, wall0,
                                                diag, compute_egen=False)
                                      if stop.step > 0 else None))
        return _assemble(problem, reps, Q, T, B, Sb, meta, wall0, diag, compute_egen=True)


def _assemble(problem: Problem, reps: Replica, Q: np.ndarray, n_t: int, B: int, Sb: int,
              meta: dict, wall0: float, diag: Diagnostics, compute_egen: bool) -> Trajectory:
    """Trajectory of the first n_t time points from the replicas' state and overlaps Q."""
    prob = problem if n_t == problem.T else problem.replace(T=n_t)
    M, Q = reps.M[:, :n_t], Q[:, :n_t]
    runs = {"M": M, "Q": Q, "e_train": reps.e_train[:, :n_t], "C": reps.C[:, :n_t, :n_t],
            "R": reps.R[:, :n_t, :n_t], "Lam": reps.Lam[:, :n_t]}
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
                                    e_gen=e_gen, e_gen_se=e_gen_se)
