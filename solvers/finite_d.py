"""Finite-dimensional gradient descent: the simulator the theory is checked against.

Exactly the algorithm of docs/theory/model.md: n = round(alpha d) samples x_mu ~ N(0, I_d), teacher
W* (K, d) with W* W*^T / d = I_K, labels y = g*(W* x / sqrt(d)) (+ sqrt(Delta) N(0, 1)), a
committee student W (P, d) with fixed second layer a, and

    W <- (1 - eta lam) W - eta * sum_{mu in batch} F_mu x_mu^T / sqrt(d),

the loss summed over the batch and F taken from :mod:`solvers.numerics.committee` (the one
definition shared with the DMFT). Observables are recorded at t = 0..T-1, before the t-th update.

Schedules
---------
- ``Full``: all n samples at every step.
- ``Cyclic(n_blocks)``: the n samples are cut once into n_blocks consecutive blocks (sizes differ
  by at most one); step t uses block ``t mod n_blocks``. **A step is one block update**: T counts
  block updates, so one epoch is n_blocks steps. ``n_blocks = n`` is minibatch size 1; blocks of
  at most ``SMALL_BLOCK`` samples run in a sequential numba loop (no Python per step).
- ``Bernoulli(b)``: each sample enters the step-t gradient independently with probability b.
- ``OnePass``: a fresh batch of n samples at every step, generated in place (never stored for all
  steps); e_train(t) is the loss on the step-t batch.

Randomness
----------
Run i uses ``run_ss = SeedSequence(seed).spawn(seeds)[i]``. ``default_rng(run_ss)`` draws, in this
order, the teacher/student basis, the label noise and the Bernoulli masks. The data matrix is cut
into chunks of a fixed number of rows (independent of the machine), each filled from its own
stream ``run_ss.spawn(n_chunks)`` by a small thread pool; for one-pass every step spawns fresh
chunk streams. Nothing depends on the number of threads (numba or generation), which a test checks.

Memory
------
One (n, d) data buffer is allocated for the whole call and refilled for each seed (5e8 float64 =
4 GB at d = 1e4, alpha = 5). Products go through BLAS (``X @ W.T``, ``F.T @ X``) without copies of
X. ``dtype="float32"`` stores the same Gaussian numbers rounded to float32 (half the memory); its
effect on M and Q is measured in ``benchmarks/bench_simulator.py``.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from dmft.problem import Problem
from dmft.progress import Progress, compile_notice
from dmft.schedules import Bernoulli, Cyclic, OnePass
from dmft.stats import mean_se
from dmft.trajectory import Trajectory, base_provenance, problem_until
from dmft.validation import integer
from solvers.divergence import Divergence, diverged
from solvers.finite_d_flow import DEFAULT_DT, langevin_rng, run_flow
from solvers.numerics.committee import batch_F, batch_loss
from solvers.numerics.gd import small_block_steps

__all__ = ["simulate_finite_d", "SMALL_BLOCK", "AUTO_EVERY_MAX_BLOCKS"]

# Cyclic blocks of at most this many samples are run by the sequential numba loop: for them the
# Python and BLAS call overhead per step would exceed the arithmetic (2 * block * P * d flops).
SMALL_BLOCK = 16
# e_train(t) needs all n residuals, O(n d P) per step, i.e. n_blocks / 2 times the cost of one
# cyclic block update. With train_loss="auto" it is computed at every step for at most this many
# blocks and only at epoch starts (t = 0 mod n_blocks, NaN elsewhere) beyond.
AUTO_EVERY_MAX_BLOCKS = 8
# Rows per data chunk are chosen so a chunk holds about this many numbers (fixed, so the random
# stream of every chunk is the same on every machine and for any thread count).
_CHUNK_ELEMENTS = 1 << 22
# cold compilation of the simulator's kernels on two cores, quoted while it happens
_COMPILE_SECONDS = 5.0


# ------------------------------------------------------------------------------ validation
def _validate(problem: Problem, d, seeds, seed, dtype, train_loss, cyclic_kernel):
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")
    if problem.is_flow and isinstance(problem.schedule, OnePass):
        raise ValueError("simulate: one-pass gradient flow (population flow) has no finite-d "
                         "simulation; simulate the one-pass schedule with GD at a small eta")
    P, K = problem.P, problem.K
    # the student's part orthogonal to the teacher is built from P orthonormal vectors
    # orthogonal to the K teacher rows, which needs d >= P + K
    d = integer("d", d, low=P + K)
    n = int(round(problem.alpha * d))
    if n < 1:
        raise ValueError(
            f"n = round(alpha d) must be >= 1, got n={n} (alpha={problem.alpha}, d={d}); "
            "increase d"
        )
    if isinstance(problem.schedule, Cyclic) and n < problem.schedule.n_blocks:
        raise ValueError(
            f"Cyclic(n_blocks={problem.schedule.n_blocks}) needs n = round(alpha d) >= n_blocks, "
            f"got n={n} (alpha={problem.alpha}, d={d})"
        )
    seeds = integer("seeds", seeds, low=1)
    seed = integer("seed", seed, low=0)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if train_loss not in ("auto", "every", "epoch"):
        raise ValueError(f"train_loss must be 'auto', 'every' or 'epoch', got {train_loss!r}")
    if cyclic_kernel not in ("auto", "numba", "blas"):
        raise ValueError(f"cyclic_kernel must be 'auto', 'numba' or 'blas', got {cyclic_kernel!r}")
    return d, n, seeds, seed, dt


# ------------------------------------------------------------------------------ building blocks
def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix via eigh (tiny negative eigenvalues clipped)."""
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def _initial_weights(problem: Problem, d: int, rng: np.random.Generator):
    """Teacher W* (K, d) and student W0 (P, d) with W* W*^T/d = I, W0 W*^T/d = M0, W0 W0^T/d = Q0.

    W* and an orthonormal complement Wperp (P, d) are the (scaled) Q factor of a Gaussian
    (d, K + P) matrix, so W0 = M0 W* + L Wperp with L L^T = Q0 - M0 M0^T has the required
    overlaps up to rounding.
    """
    P, K = problem.P, problem.K
    G = rng.standard_normal((d, K + P))
    basis, R = np.linalg.qr(G)
    basis *= np.sign(np.diag(R))  # Haar-distributed frame
    frame = math.sqrt(d) * basis.T  # (K + P, d), rows orthogonal with norm sqrt(d)
    Wstar = np.ascontiguousarray(frame[:K])
    L = _psd_sqrt(problem.Qperp0)
    W0 = problem.M0 @ Wstar + L @ frame[K:]
    return Wstar, np.ascontiguousarray(W0)


def _chunk_rows(n: int, d: int) -> np.ndarray:
    """Row boundaries of the fixed data chunks, shape (n_chunks + 1,)."""
    rows = max(1, _CHUNK_ELEMENTS // d)
    return np.append(np.arange(0, n, rows), n)


def _fill_gaussian(X: np.ndarray, run_ss: np.random.SeedSequence, threads: int) -> None:
    """Fill X (n, d) with iid N(0, 1), chunk c from its own stream run_ss.spawn(...)[c].

    float32 buffers get the float64 draws rounded, so a float32 run sees the same data.
    """
    n, d = X.shape
    bounds = _chunk_rows(n, d)
    streams = run_ss.spawn(len(bounds) - 1)

    def fill(c: int) -> None:
        rng = np.random.default_rng(streams[c])
        block = X[bounds[c]:bounds[c + 1]]
        if X.dtype == np.float64:
            rng.standard_normal(out=block)
        else:
            block[...] = rng.standard_normal(block.shape)

    if threads <= 1 or len(streams) == 1:
        for c in range(len(streams)):
            fill(c)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(fill, range(len(streams))))


def _project(X: np.ndarray, W: np.ndarray, sqrt_d: float) -> np.ndarray:
    """X W^T / sqrt(d) in float64, (n, P); BLAS in X's precision, no copy of X."""
    return (X @ W.astype(X.dtype, copy=False).T).astype(np.float64, copy=False) / sqrt_d


def _labels(problem: Problem, X, Wstar, sqrt_d, rng) -> np.ndarray:
    """y = g*(W* x / sqrt(d)) (+ sqrt(noise) N(0, 1)), shape (n,)."""
    Z = _project(X, Wstar, sqrt_d)
    y = problem.target(Z.T)
    if problem.noise > 0:
        y = y + math.sqrt(problem.noise) * rng.standard_normal(y.shape[0])
    return np.ascontiguousarray(y)


def _gd_update(W, F, X_batch, eta, lam, sqrt_d) -> np.ndarray:
    """(1 - eta lam) W - eta F^T X_batch / sqrt(d); F (b, P) already masked."""
    # X^T F rather than F^T X: the same gemm, measured up to 2x faster here (OpenBLAS 0.3.31)
    grad = (X_batch.T @ F.astype(X_batch.dtype, copy=False)).T.astype(np.float64, copy=False)
    return (1.0 - eta * lam) * W - (eta / sqrt_d) * grad


def _mean_loss(loss_args: tuple, resid: np.ndarray, y: np.ndarray) -> float:
    """Mean training loss from the residuals y - f (n,) and labels (n,); the square loss as
    0.5 mean(resid^2), as it has always been computed."""
    if loss_args[1]:
        return 0.5 * np.mean(resid**2)
    return 0.5 * np.mean(batch_loss(resid, y, loss_args))


def _overlaps(W, Wstar, d):
    return W @ Wstar.T / d, W @ W.T / d


# ------------------------------------------------------------------------------ one run
def _run(problem: Problem, X: np.ndarray, run_ss, threads: int, train_at: np.ndarray,
         cyclic_kernel: str, M, Q, e_train) -> tuple[int, bool]:
    """One GD run; fills M (T, P, K), Q (T, P, P), e_train (T,) in place.

    Returns the number of steps whose M_t, Q_t are finite (T unless they stopped being: the
    arrays are then filled up to that step) and, when they did, whether the labels were finite.
    """
    n, d = X.shape
    T = len(train_at)
    sqrt_d = math.sqrt(d)
    eta, lam, a = problem.eta, problem.lam, problem.a
    sig, dsig, _ = problem.activation.cfuncs()
    loss = problem.loss.kernel_args()
    schedule = problem.schedule
    rng = np.random.default_rng(run_ss)
    Wstar, W = _initial_weights(problem, d, rng)
    _fill_gaussian(X, run_ss, threads)
    y = _labels(problem, X, Wstar, sqrt_d, rng)
    ones = np.ones(n)
    if problem.is_flow:
        done = run_flow(problem, (problem.t_max / (T - 1)) if T > 1 else problem.t_max, X, y,
                        Wstar, W, run_ss, _project, M, Q, e_train)
        return done, done == T or bool(np.all(np.isfinite(y)))
    # Langevin noise sqrt(2 eta tau) Xi after each step, from the run's own noise stream
    noise_rng = langevin_rng(run_ss) if problem.temperature > 0 else None

    if isinstance(schedule, Cyclic):
        starts = (np.arange(schedule.n_blocks + 1, dtype=np.int64) * n) // schedule.n_blocks
        small = int(np.max(np.diff(starts))) <= SMALL_BLOCK
        if noise_rng is None and (cyclic_kernel == "numba" or (cyclic_kernel == "auto" and small)):
            done = _run_cyclic_numba(problem, X, y, Wstar, W, starts, train_at, M, Q, e_train)
            return done, done == T or bool(np.all(np.isfinite(y)))

    for t in range(T):
        M[t], Q[t] = _overlaps(W, Wstar, d)
        if not (np.all(np.isfinite(M[t])) and np.all(np.isfinite(Q[t]))):
            return t, bool(np.all(np.isfinite(y)))
        if isinstance(schedule, Cyclic):
            b = t % schedule.n_blocks
            lo, hi = starts[b], starts[b + 1]
            if train_at[t]:
                F_all, resid = batch_F(_project(X, W, sqrt_d), y, a, sig, dsig, ones, loss)
                e_train[t] = _mean_loss(loss, resid, y)
                F = F_all[lo:hi]
            else:
                F, _ = batch_F(_project(X[lo:hi], W, sqrt_d), y[lo:hi], a, sig, dsig,
                               ones[lo:hi], loss)
            X_batch = X[lo:hi]
        else:
            if isinstance(schedule, OnePass) and t > 0:
                _fill_gaussian(X, run_ss, threads)  # fresh batch; run_ss.spawn gives new streams
                y = _labels(problem, X, Wstar, sqrt_d, rng)
            weight = ones
            if isinstance(schedule, Bernoulli) and t < T - 1:
                weight = (rng.random(n) < schedule.b).astype(np.float64)
            F, resid = batch_F(_project(X, W, sqrt_d), y, a, sig, dsig, weight, loss)
            e_train[t] = _mean_loss(loss, resid, y)
            X_batch = X
        if t < T - 1:
            W = _gd_update(W, F, X_batch, eta, lam, sqrt_d)
            if noise_rng is not None:
                W += math.sqrt(2.0 * eta * problem.temperature) * noise_rng.standard_normal(W.shape)
    return T, True


def _run_cyclic_numba(problem, X, y, Wstar, W, starts, train_at, M, Q, e_train) -> int:
    """Cyclic schedule with small blocks: numba loop between the steps that record e_train.
    Returns the number of steps with finite overlaps (T unless they stopped being)."""
    n, d = X.shape
    T = problem.T
    sig, dsig, _ = problem.activation.cfuncs()
    loss = problem.loss.kernel_args()
    ones = np.ones(n)
    marks = list(np.flatnonzero(train_at)) + [T]
    if marks[0] != 0:
        marks.insert(0, 0)
    Z = _project(X, Wstar, math.sqrt(d))
    for t0, t1 in zip(marks[:-1], marks[1:], strict=True):
        if train_at[t0]:
            _, resid = batch_F(_project(X, W, math.sqrt(d)), y, problem.a, sig, dsig, ones,
                               loss)
            e_train[t0] = _mean_loss(loss, resid, y)
        stop = small_block_steps((X, y, Z, Wstar), W, problem.a, sig, dsig,
                                 (problem.eta, problem.lam), starts, (t0, t1), (M, Q), loss)
        if stop < t1:
            return stop
    return T


def _train_times(problem: Problem, train_loss: str, T: int) -> np.ndarray:
    """Boolean (T,): steps at which e_train is computed."""
    schedule = problem.schedule
    if not isinstance(schedule, Cyclic):
        return np.ones(T, dtype=bool)
    if train_loss == "auto":
        train_loss = "every" if schedule.n_blocks <= AUTO_EVERY_MAX_BLOCKS else "epoch"
    if train_loss == "every":
        return np.ones(T, dtype=bool)
    return np.arange(T) % schedule.n_blocks == 0


# ------------------------------------------------------------------------------ e_gen
def _gen_error_runs(problem: Problem, M_runs: np.ndarray, Q_runs: np.ndarray):
    """e_gen per run and its integration error, each (runs, T), by Gaussian integration, and
    for +-1 labels the misclassification rate per run and its integration error (else None).

    One call of :func:`dmft.gaussian.gen_error` on all (run, t) pairs stacked (the square
    loss), or of :func:`solvers.population.population_values` (other losses, binary labels).
    """
    from dmft.gaussian import gen_error
    from solvers.population import population_values

    runs, T = M_runs.shape[:2]
    M_all = M_runs.reshape(runs * T, *M_runs.shape[2:])
    Q_all = Q_runs.reshape(runs * T, *Q_runs.shape[2:])
    classes = None
    if problem.loss.half_square:
        e, se = gen_error(problem, M_all, Q_all)
    if not problem.loss.half_square or problem.binary_labels:
        out = population_values(problem, M_all, Q_all)
        if not problem.loss.half_square:
            e, se = out["e_gen"], out["e_gen_se"]
        if problem.binary_labels:
            classes = (np.reshape(out["class_error"], (runs, T)),
                       np.reshape(out["class_error_se"], (runs, T)))
    return np.reshape(e, (runs, T)), np.reshape(se, (runs, T)), classes


# ------------------------------------------------------------------------------ assembly
def _assemble(problem, M_runs, Q_runs, e_train_runs, provenance, *,
              partial: bool = False, time=None) -> Trajectory:
    classes = None
    try:
        e_gen_runs, e_gen_int_se, classes = _gen_error_runs(problem, M_runs, Q_runs)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        if not partial:
            raise
        # overlaps just before a divergence can be too large to integrate; keep M, Q, e_train
        e_gen_runs = e_gen_int_se = np.full(e_train_runs.shape, np.nan)
    diagnostics = {
        "M_runs": M_runs,
        "Q_runs": Q_runs,
        "e_train_runs": e_train_runs,
        "e_gen_runs": e_gen_runs,
        "e_gen_integration_se": e_gen_int_se,
    }
    if classes is not None:
        # misclassification rate at each run's overlaps: mean and SE over runs (the
        # integration error added as for e_gen)
        cls, cls_se = mean_se(classes[0])
        diagnostics.update(class_error=cls, class_error_runs=classes[0],
                           class_error_se=np.sqrt(cls_se**2 + np.mean(classes[1]**2, axis=0)))
    # the integration error may be common to all runs (same quadrature or random numbers), so
    # the spread over runs need not contain it: add its mean square (conservative)
    return Trajectory.from_runs(
        problem, {"M": M_runs, "Q": Q_runs, "e_train": e_train_runs, "e_gen": e_gen_runs},
        provenance, count="seeds", added_variance={"e_gen": np.mean(e_gen_int_se**2, axis=0)},
        diagnostics=diagnostics, **({} if time is None else {"time": time[:M_runs.shape[1]]}))


def _raise_divergence(problem: Problem, stop: Divergence, labels_finite: bool, where: str,
                      runs: tuple, provenance: dict) -> None:
    """Raise for a run that diverged at ``stop.step``: the target's fault if its labels were
    not finite, else a DivergenceError naming eta with the runs (M, Q, e_train) so far up to
    the step before as the partial trajectory."""
    if not labels_finite:
        raise ValueError(
            f"target {problem.target.name!r} returned non-finite values (NaN or inf) on the "
            f"training data ({where}): the simulation cannot proceed from them (not a step-size "
            "problem); the target function must return finite values"
        )
    partial, t = None, stop.step
    if t >= 1:
        with np.errstate(all="ignore"):  # the last finite values can be huge
            times = problem.times(provenance.get("dt"))
            partial = _assemble(problem_until(problem, times, t), *(arr[:, :t] for arr in runs),
                                provenance, partial=True)
    raise stop.error(problem, f"finite-d GD ({where})", partial=partial)


# ------------------------------------------------------------------------------ public
def simulate_finite_d(problem: Problem, d: int, seeds: int = 8, seed: int = 0, *,
                      progress: bool | None = None, dtype: str = "float64",
                      train_loss: str = "auto", cyclic_kernel: str = "auto",
                      dt: float | None = None) -> Trajectory:
    """Run finite-d GD ``seeds`` times; mean and standard error over runs of every observable.

    Parameters
    ----------
    problem : Problem
        Target, student, alpha, eta, lam, T (T - 1 GD steps), M0, Q0, schedule, noise.
    d : int
        Input dimension, d >= P + K; n = round(alpha d) >= 1 samples (n >= n_blocks for
        ``Cyclic``).
    seeds : int
        Independent runs (teacher, initialisation and data redrawn), >= 1. With seeds = 1 all
        standard errors are NaN (no spread to estimate them from).
    seed : int
        Master seed >= 0; run i uses ``SeedSequence(seed).spawn(seeds)[i]``.
    progress : bool or None
        None: a bar over runs on a terminal, a plain line every few seconds otherwise; True:
        always a bar; False: silent (also no compilation notice).
    dtype : {"float64", "float32"}
        Storage and BLAS precision of the data (float64 default). float32 halves the memory of
        the (n, d) data matrix; labels, F, W and the overlaps stay float64.
    train_loss : {"auto", "every", "epoch"}
        When to compute e_train for ``Cyclic`` schedules (it needs all n residuals, O(n d P)):
        at every step, or only at epoch starts t = 0 mod n_blocks (NaN, with NaN standard error,
        elsewhere). "auto": "every" for n_blocks <= AUTO_EVERY_MAX_BLOCKS, else "epoch". Other
        schedules always record e_train at every step.
    cyclic_kernel : {"auto", "numba", "blas"}
        Cyclic blocks of <= SMALL_BLOCK samples use the sequential numba loop, larger ones BLAS;
        forcing one is for tests and benchmarks.
    dt : float, optional
        Time step of a ``dynamics="flow"`` problem (only for flow; t_max / dt an integer):
        RK4 at temperature 0, stochastic Heun (weak order 2) at temperature > 0
        (:mod:`solvers.finite_d_flow`); default ``DEFAULT_DT`` = 0.05. Values are reported at
        t = k dt. GD problems with ``temperature`` > 0 add sqrt(2 eta tau) Xi after each step.

    Returns
    -------
    Trajectory
        ``M`` (T, P, K), ``Q`` (T, P, P), ``e_train`` (T,), ``e_gen`` (T,) averaged over runs,
        standard errors std(ddof=1) / sqrt(seeds) (e_gen's also includes the Gaussian
        integration error). ``diagnostics``: ``M_runs`` (seeds, T, P, K), ``Q_runs``
        (seeds, T, P, P), ``e_train_runs`` (seeds, T), ``e_gen_runs`` (seeds, T),
        ``e_gen_integration_se`` (seeds, T).

    Raises
    ------
    DivergenceError
        If M_t or Q_t is not finite or grows without bound (``e_train`` or a diagonal entry of
        Q beyond 10^6 times its scale at t = 0, see :mod:`solvers.divergence`); ``partial``
        holds the runs so far up to step - 1 and the message names eta.
    ValueError
        If the target returned non-finite labels.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(target="he3", P=1, activation="relu", alpha=2.0, eta=0.2, T=3)
    >>> sims = simulate_finite_d(prob, d=200, seeds=2, seed=0, progress=False)
    >>> sims.M.shape, sims.diagnostics["M_runs"].shape
    ((3, 1, 1), (2, 3, 1, 1))
    """
    d, n, seeds, seed, dtype = _validate(problem, d, seeds, seed, dtype, train_loss,
                                         cyclic_kernel)
    times = problem.times(DEFAULT_DT if dt is None and problem.is_flow else dt)
    T, P, K = len(times), problem.P, problem.K
    train_at = _train_times(problem, train_loss, T)
    threads = max(1, numba.get_num_threads())
    M_runs = np.full((seeds, T, P, K), np.nan)
    Q_runs = np.full((seeds, T, P, P), np.nan)
    e_train_runs = np.full((seeds, T), np.nan)
    X = np.empty((n, d), dtype=dtype)
    start = time.perf_counter()

    def provenance(runs: int) -> dict:
        flow = {"dt": float(times[1] - times[0]) if T > 1 else problem.t_max,
                "integrator": "stochastic Heun" if problem.temperature > 0 else "RK4"} \
            if problem.is_flow else {}
        return base_provenance(
            "simulate", d=d, n=n, seeds=runs, seed=seed, wall_time=time.perf_counter() - start,
            dtype=dtype.name, schedule=str(problem.schedule), train_loss=train_loss, **flow,
        )

    run_seeds = np.random.SeedSequence(seed).spawn(seeds)
    with compile_notice("the finite-d simulator", _COMPILE_SECONDS, enabled=progress), \
            Progress(seeds, f"simulate d={d}", "run", enabled=progress) as bar:
        for i in range(seeds):
            with np.errstate(over="ignore", invalid="ignore"):
                done, labels_finite = _run(problem, X, run_seeds[i], threads, train_at,
                                           cyclic_kernel, M_runs[i], Q_runs[i], e_train_runs[i])
            stop = diverged(e_train_runs[i:i + 1, :done], Q_runs[i:i + 1, :done], done < T)
            if stop is not None:
                runs = (M_runs[:i + 1], Q_runs[:i + 1], e_train_runs[:i + 1])
                _raise_divergence(problem, stop, labels_finite, f"d={d}, run {i}", runs,
                                  provenance(i + 1))
            bar.update()
    del X
    return _assemble(problem, M_runs, Q_runs, e_train_runs, provenance(seeds), time=times)
