"""One-pass theory: the deterministic recursion of (M, Q) for a fresh batch every step.

Equations: docs/theory/one-pass.md. How the Gaussian expectations of a step are computed (which
rule for which problem, accuracy, the B Omega^+ B^T term without an inverse): the section "The
one-pass step" of docs/quadrature.md. The numba sums are in :mod:`solvers.numerics.onepass_moments`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from dmft import gaussian as G
from dmft.problem import Problem
from dmft.stats import mean_se
from dmft.trajectory import DivergenceError, Trajectory, base_provenance, problem_until
from dmft.validation import integer
from solvers.numerics.blocks import run_blocks
from solvers.numerics.onepass_moments import explicit_moments, structured_moments
from solvers.numerics.quadrature import read_only

__all__ = ["solve_onepass", "onepass_expectations", "onepass_step", "N_BLOCKS"]

# fixed partition of the outer nodes into blocks (summed in order), so results do not depend
# on the number of threads
N_BLOCKS = 16

# Runaway growth (docs/quadrature.md, "Divergence"): the largest student norm max_j Q_jj above
# _RUNAWAY_BOUND x scale, scale = max(1, max_j Q0_jj, 2 e_train(0)) (so that a student that must
# grow to fit a large target is not taken for a diverging one), or e_train above _RUNAWAY_BOUND x
# max(1, e_train(0)); also max_j Q_jj above _GROWTH_FLOOR x scale while it grew by
# _GROWTH_FACTOR or more at each of the last _GROWTH_STEPS steps (which stops a clearly unstable
# eta within a few steps). A converging run never comes near these.
_RUNAWAY_BOUND = 1e6
_GROWTH_FLOOR = 1e2
_GROWTH_FACTOR = 1.5
_GROWTH_STEPS = 3


def _kink_polar_fits(M: np.ndarray, S: np.ndarray, opts: G.QuadratureOptions) -> bool:
    """Whether the units' kink normals span 2 dimensions and a kink-polar rule fits max_nodes."""
    L = _noise_factor_L(M, S)
    if np.linalg.matrix_rank(L[:2], tol=1e-6 * float(np.abs(L[:2]).max())) < 2:
        return False  # parallel kinks: the rotated z-grid handles both
    try:
        G.plan_rules(L, (0, 1), G.QuadratureOptions.from_kwargs(opts, method="quadrature"))
    except ValueError:
        return False
    return True


def _smoothing_ratios(M: np.ndarray, S: np.ndarray) -> np.ndarray:
    """|S_j| / |M_j| per unit (inf for units without teacher part): the width, in z-space, of
    the Gaussian smoothing of unit j's kink."""
    s_norm = np.linalg.norm(S, axis=1) if S.shape[1] else np.zeros(M.shape[0])
    m_norm = np.linalg.norm(M, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m_norm > 0, s_norm / np.where(m_norm > 0, m_norm, 1.0), np.inf)


def _quadrature_available(problem: Problem, opts: G.QuadratureOptions) -> bool:
    """Structured quadrature (P <= 2) or, for smooth activations, a generic Gauss-Hermite rule
    in the largest dimension K + P that fits ``max_nodes`` with >= n_min nodes per axis; the
    square loss only (the inner rules assume its polynomial dependence on the residual, see
    ``solvers.population``)."""
    if not problem.loss.half_square:
        return False
    if problem.P <= 2:
        return True
    if G.inner_mode(problem.activation) != G.INNER_SMOOTH:
        return False  # kinks of > 2 units span > 2 dimensions: no kink-polar rule
    D = problem.K + problem.P
    n = min(opts.n_gh, int(math.floor(opts.max_nodes ** (1.0 / D) + 1e-9)))
    return n >= min(opts.n_min, opts.n_gh)


def _noise_factor_L(M: np.ndarray, S: np.ndarray) -> np.ndarray:
    """L = [[M, S], [I_K, 0]] (P+K, K+r): (h, z) = L (z, eps)."""
    P, K = M.shape
    r = S.shape[1]
    L = np.zeros((P + K, K + r))
    L[:P, :K] = M
    L[:P, K:] = S
    L[P:, :K] = np.eye(K)
    return L


def onepass_expectations(problem: Problem, M: np.ndarray, Q: np.ndarray,
                         options: G.QuadratureOptions | None = None,
                         qmc_rule: G.Rule | None = None) -> dict:
    """The Gaussian expectations of one one-pass step at (M, Q).

    Parameters
    ----------
    problem : Problem
        Target, activation, a, noise.
    M : ndarray, shape (P, K)
    Q : ndarray, shape (P, P)
    options : dmft.gaussian.QuadratureOptions, optional
    qmc_rule : Rule, optional
        Use this QMC rule (dimension >= K + P; the first K + r coordinates are used) instead
        of quadrature; ``solve_onepass`` passes one per randomization.

    Returns
    -------
    dict
        ``EFz`` (P, K) = E[F z^T], ``EFh`` (P, P) = E[F h^T], ``EFF`` (P, P) = E[F F^T],
        ``A`` (P, D) = E[F xi^T] in whitened coordinates, ``BOB`` (P, P) = B Omega^+ B^T
        = A A^T, ``loss`` = E[L], ``class_error`` = P(y f < 0) (+ P(f = 0) / 2; meaningful
        for +-1 labels), ``rule`` (str), ``nodes`` (int).
    """
    opts = options or G.QuadratureOptions()
    P = problem.P
    M = np.ascontiguousarray(M, dtype=np.float64)
    Q = np.ascontiguousarray(0.5 * (Q + Q.T), dtype=np.float64)
    S = np.ascontiguousarray(G.student_noise_factor(M, Q))
    r = S.shape[1]
    act = problem.activation
    sig, dsig, _ = act.cfuncs()
    loss_fns = problem.loss.kernel_args()
    a = np.ascontiguousarray(problem.a)
    noise_sd = math.sqrt(problem.noise)
    structured = qmc_rule is None and opts.method != "qmc" and P <= 2
    near = np.zeros(P, dtype=bool)
    if structured and G.inner_mode(act) != G.INNER_SMOOTH:
        ratio = _smoothing_ratios(M, S)
        near = ratio < G.SMOOTHING_RATIO_MIN
        if near.all() and P == 2 and _kink_polar_fits(M, S, opts):
            # two units nearly inside the teacher span with different directions: two sharp
            # kinks in z-space, both through the origin: the generic kink-polar rule
            structured = False
    if structured:
        if not near.any():
            Z, wz, y, zdesc = G.target_on_rule(problem.target, opts)
        else:
            # a unit nearly inside the teacher span has a (nearly) sharp kink in z-space:
            # outer grid rotated along it, graded towards its kink
            j = int(np.argmin(ratio))
            nj = float(np.linalg.norm(M[j]))
            Z, wz = G.rotated_z_rule(problem.K, M[j], float(np.linalg.norm(S[j])) / nj, opts)
            y = np.ascontiguousarray(problem.target(Z.T))
            Z, wz, y = read_only(Z, wz, y)  # the array types of the cached rule: no recompile
            zdesc = f"rotated along unit {j} ({Z.shape[0]} nodes)"
        ir = G.inner_rule_arrays(act, opts)
        outer, student = (Z, wz, y), (M, S, a)
        parts = run_blocks(
            lambda i0, i1: structured_moments(i0, i1, outer, student, noise_sd, ir.mode,
                                              ir.arrays, ir.capacity, sig, dsig, loss_fns),
            Z.shape[0], N_BLOCKS)
        EFz, EFh, EFF, EFe, loss, err = (sum(p[i] for p in parts) for i in range(6))
        EFe = EFe[:, :r]
        A = np.concatenate([EFz, EFe], axis=1)
        inner = {G.INNER_SMOOTH: f"trapezoid h={opts.inner_h:g} ({ir.smx.shape[0]}^{r})",
                 G.INNER_PIECEWISE_LINEAR: "exact piecewise (2-node truncated normal)",
                 G.INNER_KINKED: f"composite gauss-legendre {opts.n_panels}x{opts.n_mid}"}[ir.mode]
        if r == 2 and ir.mode != G.INNER_SMOOTH:
            inner = f"composite gauss-legendre {opts.n_panels}x{opts.n_mid} x {inner}"
        desc = f"structured: z {zdesc} x eps|z {inner} (r = {r})"
        return _pack(EFz, EFh, EFF, A, (float(loss[0]), float(err[0])), desc, int(Z.shape[0]))
    L = _noise_factor_L(M, S)
    D = L.shape[1]
    if qmc_rule is None:
        kinks = tuple(range(P)) if G.inner_mode(act) != G.INNER_SMOOTH else ()
        rules = G.plan_rules(L, kinks, G.QuadratureOptions.from_kwargs(opts, method="quadrature")
                             if opts.method != "qmc" else opts)
        if len(rules) != 1:
            raise ValueError("onepass_expectations: pass qmc_rule for QMC (one per randomization)")
        rule = rules[0]
        xi = rule.xi
    else:
        if qmc_rule.xi.shape[1] < D:
            raise ValueError(f"qmc_rule has dimension {qmc_rule.xi.shape[1]} < K + r = {D}")
        rule = qmc_rule
        xi = np.ascontiguousarray(qmc_rule.xi[:, :D])
    X = np.ascontiguousarray(xi @ L.T)
    y = np.ascontiguousarray(problem.target(X[:, P:].T))
    nodes = read_only(X, np.ascontiguousarray(xi), y, np.ascontiguousarray(rule.w))
    parts = run_blocks(
        lambda i0, i1: explicit_moments(i0, i1, nodes, P, a, noise_sd, sig, dsig, loss_fns),
        X.shape[0], N_BLOCKS, 4096)
    Fz, Fh, FF, Fx, loss, err = (sum(p[i] for p in parts) for i in range(6))
    return _pack(Fz, Fh, FF, Fx, (float(loss[0]), float(err[0])), rule.description,
                 rule.n_nodes)


def _pack(EFz, EFh, EFF, A, population, desc, nodes) -> dict:
    return {"EFz": EFz, "EFh": EFh, "EFF": EFF, "A": A, "BOB": A @ A.T, "loss": population[0],
            "class_error": population[1], "rule": desc, "nodes": nodes}


def onepass_step(problem: Problem, M: np.ndarray, Q: np.ndarray, E: dict
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(M', Q') from (M, Q) and the expectations ``E`` of :func:`onepass_expectations`."""
    eta, alpha, lam = problem.eta, problem.alpha, problem.lam
    c = 1.0 - eta * lam
    M_new = c * M - eta * alpha * E["EFz"]
    cross = E["EFh"] + E["EFh"].T
    Q_new = (c * c * Q - eta * alpha * c * cross + eta * eta * alpha * E["EFF"]
             + eta * eta * alpha * alpha * E["BOB"])
    if problem.temperature:  # Langevin noise sqrt(2 eta tau) Xi after the step
        Q_new = Q_new + 2.0 * eta * problem.temperature * np.eye(Q.shape[0])
    return M_new, 0.5 * (Q_new + Q_new.T)


def _runaway(Q: np.ndarray, t: int, scale: float) -> str:
    """Why the overlaps Q[0..t] count as runaway growth, or "" if they do not."""
    norms = np.max(np.diagonal(Q[:t + 1], axis1=1, axis2=2), axis=1)
    if norms[t] > _RUNAWAY_BOUND * scale:
        return f"max_j Q_jj = {norms[t]:.3g} > {_RUNAWAY_BOUND:g} x {scale:.3g}"
    if t >= _GROWTH_STEPS and norms[t] > _GROWTH_FLOOR * scale:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = norms[t - _GROWTH_STEPS + 1:t + 1] / norms[t - _GROWTH_STEPS:t]
        if np.all(ratios >= _GROWTH_FACTOR):
            return (f"max_j Q_jj = {norms[t]:.3g} > {_GROWTH_FLOOR:g} x {scale:.3g} and growing "
                    f"geometrically (x{ratios.min():.3g} or more at each of the last "
                    f"{_GROWTH_STEPS} steps)")
    return ""


def _recursion(problem: Problem, opts: G.QuadratureOptions, qmc_rule: G.Rule | None,
               progress) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, int, int | None, str]:
    """Run the recursion; return M, Q, joint-rule (loss, misclassification) (T, 2), rule,
    nodes, failing step, message.

    Errors at step 0 are the input's (e.g. a target that is not finite on the grid) and are
    raised; later ones, non-finite overlaps and runaway growth end the recursion at that step.
    """
    T, P, K = problem.T, problem.P, problem.K
    M = np.zeros((T, P, K))
    Q = np.zeros((T, P, P))
    loss = np.full((T, 2), np.nan)
    M[0], Q[0] = problem.M0, problem.Q0
    desc, nodes = "", 0
    for t in range(T):
        try:
            E = onepass_expectations(problem, M[t], Q[t], opts, qmc_rule)
        except (ValueError, np.linalg.LinAlgError) as exc:
            if t == 0:
                raise
            return M, Q, loss, desc, nodes, t, f"the expectations failed ({exc})"
        desc, nodes = E["rule"], E["nodes"]
        loss[t] = E["loss"], E["class_error"]
        if t == 0:
            scale = max(1.0, float(np.max(np.diagonal(Q[0]))), 2.0 * loss[0, 0])
            loss_bound = _RUNAWAY_BOUND * max(1.0, loss[0, 0])
        elif not loss[t, 0] <= loss_bound:
            return M, Q, loss, desc, nodes, t, (f"runaway growth, e_train = {loss[t, 0]:.3g} > "
                                                f"{_RUNAWAY_BOUND:g} x max(1, e_train(0))")
        if progress is not None:
            progress.update(1)
        if t == T - 1:
            break
        with np.errstate(over="ignore", invalid="ignore"):
            M[t + 1], Q[t + 1] = onepass_step(problem, M[t], Q[t], E)
        if not (np.all(np.isfinite(M[t + 1])) and np.all(np.isfinite(Q[t + 1]))):
            return M, Q, loss, desc, nodes, t + 1, "the overlaps are no longer finite"
        why = _runaway(Q, t + 1, scale)
        if why:
            return M, Q, loss, desc, nodes, t + 1, f"runaway growth, {why}"
    return M, Q, loss, desc, nodes, None, ""


def solve_onepass(problem: Problem, *, options: G.QuadratureOptions | None = None,
                  seed: int | None = None, progress: bool = False, dt: float | None = None,
                  substeps: int = 1, **quadrature) -> Trajectory:
    """Solve the deterministic one-pass recursion (docs/theory/one-pass.md) for ``problem``.

    Parameters
    ----------
    problem : Problem
        Any schedule is accepted; the trajectory's problem has ``schedule="one-pass"``.
    options : dmft.gaussian.QuadratureOptions, optional
        Quadrature resolution and method (``"auto"``: structured quadrature for P <= 2,
        Gauss-Hermite for P >= 3 with a smooth activation when it fits ``max_nodes``, QMC
        otherwise and for losses other than the square one; ``"qmc"`` forces QMC,
        ``"quadrature"`` forbids it).
    seed : int, optional
        Seed of the QMC randomizations (overrides ``options.seed``).
    progress : bool
        Show a tqdm progress bar over steps.
    dt : float, optional
        For ``dynamics="flow"`` only: reporting step of population gradient flow
        (:mod:`solvers.onepass_flow`, RK4 at dt / substeps); default 0.1.
    substeps : int
        RK4 steps per reporting step of population flow, >= 1.
    **quadrature
        Overrides of QuadratureOptions fields (e.g. ``qmc_replicas=32``, ``z_h=0.1``).

    Returns
    -------
    Trajectory
        M (T, P, K), Q (T, P, P), e_gen (T,) and e_train = e_gen (the expected loss on the fresh
        batch before each step), standard errors 0 for quadrature and from the spread of
        independent QMC recursions otherwise. ``diagnostics``: ``loss_joint_rule`` (T,) and,
        for QMC, ``M_runs`` (R, T, P, K), ``Q_runs``, ``e_gen_runs``.

    Raises
    ------
    dmft.DivergenceError
        Non-finite overlaps, expectations that fail after step 0, or runaway growth (max_j Q_jj
        or e_train above 1e6 times its scale at t = 0, or max_j Q_jj above 100 times it while
        growing by 1.5x or more per step for 3 steps; docs/quadrature.md). ``step`` is the
        first invalid step, ``partial`` holds the steps before it; the message names eta.
    ValueError
        Invalid input met at step 0, e.g. a target that is not finite on the quadrature grid.

    Examples
    --------
    >>> import dmft
    >>> traj = solve_onepass(dmft.Problem(T=3))  # the paper's setting
    >>> traj.M.shape, traj.provenance["method"]
    ((3, 2, 2), 'one-pass')
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a dmft.Problem, got {type(problem).__name__}")
    opts = G.QuadratureOptions.from_kwargs(options, **quadrature)
    if seed is not None:
        opts = G.QuadratureOptions.from_kwargs(opts, seed=integer("seed", seed, low=0))
    prob = problem if problem.schedule.name == "one-pass" else problem.replace(schedule="one-pass")
    if prob.is_flow:
        from solvers.onepass_flow import DEFAULT_DT, population_flow

        substeps = integer("substeps", substeps, low=1)
        dt = DEFAULT_DT if dt is None else dt
        times = prob.times(dt)

        def recursion(p, o, rule, bar):
            return population_flow(p, dt, substeps, o, rule, onepass_expectations, bar)
    else:
        times = prob.times(dt)  # dt given for GD: an error naming it
        recursion = _recursion
    t_start = time.perf_counter()
    use_qmc = opts.method == "qmc" or not _quadrature_available(prob, opts)
    if use_qmc and opts.method == "quadrature":
        raise ValueError(
            f"method='quadrature' is not available for losses other than the square one "
            f"(loss={problem.loss.name!r}), for P = {problem.P} > 2 with a kinked "
            f"activation, or a Gauss-Hermite rule in dimension P + K = {problem.P + problem.K} "
            f"larger than max_nodes = {opts.max_nodes}"
        )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(times) * (opts.qmc_replicas if use_qmc else 1), desc="one-pass")
    try:
        if not use_qmc:
            M, Q, loss, desc, nodes, fail, msg = recursion(prob, opts, None, bar)
            runs = None
        else:
            rules = G.qmc_rules(prob.K + prob.P, opts.qmc_log2, opts.qmc_replicas, opts.seed)
            outs = [recursion(prob, opts, rule, bar) for rule in rules]
            fails = [o[5] for o in outs if o[5] is not None]
            fail = min(fails) if fails else None
            msg = next((o[6] for o in outs if o[5] == fail), "") if fails else ""
            runs = (np.array([o[0] for o in outs]), np.array([o[1] for o in outs]),
                    np.array([o[2] for o in outs]))
            desc = f"{outs[0][3]} x {len(rules)} independent randomized recursions"
            nodes = outs[0][4]
    finally:
        if bar is not None:
            bar.close()
    T_ok = len(times) if fail is None else fail  # >= 1: step 0 errors were raised
    traj = _assemble(prob, opts, runs, M if runs is None else None, Q if runs is None else None,
                     loss if runs is None else None, T_ok, desc, nodes, t_start, times)
    if fail is not None and prob.is_flow:
        raise DivergenceError(f"population gradient flow diverged at time {times[fail]:g}: "
                              f"{msg}; reduce dt or raise substeps. The partial trajectory is "
                              "attached as .partial.", fail, traj)
    if fail is not None:
        raise DivergenceError(
            f"one-pass recursion diverged at step {fail} with eta = {prob.eta:g}: {msg}. The "
            "overlaps grow without bound at this learning rate; try a smaller eta. "
            f"The partial trajectory (steps 0..{fail - 1}) is attached as .partial.",
            fail, traj)
    return traj


def _gen_error_or_nan(p, M, Q, opts):
    """gen_error, or NaN where it cannot be evaluated (overflowing partial trajectories)."""
    try:
        with np.errstate(all="ignore"):
            return G.gen_error(p, M, Q, opts)
    except (ValueError, np.linalg.LinAlgError):
        e, se = np.full(M.shape[0], np.nan), np.full(M.shape[0], np.nan)
        for t in range(M.shape[0]):
            try:
                with np.errstate(all="ignore"):
                    e[t:t + 1], se[t:t + 1] = G.gen_error(p, M[t:t + 1], Q[t:t + 1], opts)
            except (ValueError, np.linalg.LinAlgError):
                pass
        return e, se


def _assemble(prob, opts, runs, M, Q, loss, T_ok, desc, nodes, t_start, times) -> Trajectory:
    p = problem_until(prob, times, T_ok)
    diagnostics = {}
    # the square loss's e_gen by gen_error (an independent computation); other losses'
    # population values are the joint rule's
    square = prob.loss.half_square
    if runs is None:
        M, Q, loss = M[:T_ok], Q[:T_ok], loss[:T_ok]
        if square:
            e, e_se = _gen_error_or_nan(p, M, Q, opts)
        else:
            e, e_se = loss[:, 0].copy(), np.zeros(T_ok)
        cls, cls_se = loss[:, 1].copy(), np.zeros(T_ok)
        M_se, Q_se = np.zeros_like(M), np.zeros_like(Q)
        diagnostics["loss_joint_rule"] = loss[:, 0].copy()
    else:
        M_runs, Q_runs, loss_runs = (x[:, :T_ok] for x in runs)
        R = M_runs.shape[0]
        e_runs = (np.stack([_gen_error_or_nan(p, M_runs[i], Q_runs[i], opts)[0]
                            for i in range(R)]) if square else loss_runs[..., 0])
        (M, M_se), (Q, Q_se), (e, e_se) = mean_se(M_runs), mean_se(Q_runs), mean_se(e_runs)
        cls, cls_se = mean_se(loss_runs[..., 1])
        diagnostics.update(M_runs=M_runs, Q_runs=Q_runs, e_gen_runs=e_runs,
                           loss_joint_rule=loss_runs[..., 0].mean(0))
    if p.binary_labels:
        diagnostics.update(class_error=cls, class_error_se=cls_se)
    prov = base_provenance(
        "one-pass", quadrature=desc, nodes=int(nodes),
        qmc_replicas=int(opts.qmc_replicas) if runs is not None else 0,
        seed=int(opts.seed) if runs is not None else None,
        wall_time=time.perf_counter() - t_start,
        e_train="expected loss on the fresh batch before each step (= e_gen)",
        **({"dt": float(times[1] - times[0]) if len(times) > 1 else prob.t_max,
            "integrator": "RK4"} if prob.is_flow else {}),
    )
    return Trajectory(problem=p, M=M, Q=Q, e_train=e.copy(), e_gen=e, M_se=M_se, Q_se=Q_se,
                      e_train_se=e_se.copy(), e_gen_se=e_se, provenance=prov,
                      diagnostics=diagnostics, time=times[:T_ok])
