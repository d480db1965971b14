"""Accuracy benchmark: DMFT error against the validation references as a function of S and cost.

For every case (``benchmarks.cases``), valid estimator and sample size S, one solve is timed
(wall clock and process CPU time, which counts all numba threads) and compared with the
case's reference by :func:`dmft.compare`: z = (DMFT - reference) / combined SE per entry.

Standard errors estimated from a few runs make z heavier-tailed than a normal variable: the
DMFT's SE comes from B = 16 replicas (B - 1 = 15 degrees of freedom), a simulation's from its
seeds. ``dmft.compare`` reads these degrees of freedom from the provenance and converts each z
into a *normal-equivalent* score with the same tail probability under Student's t with the
Welch-Satterthwaite degrees of freedom. (Measured: at S = 3e4 the plain normal rule rejected
the correct solver in 2 of 34 rows of the full table, while 24 seeds showed z spreads of
1.0-1.1, i.e. correct error bars with t tails.) A row *passes* when the comparison passes: the
largest normal-equivalent |z| is below the Bonferroni-corrected critical value of a 3-sigma
family-wise test over its entries (e.g. 4.0 for 48 entries). Seeds are fixed per result id, so
a run is reproducible bit for bit (results do not depend on the thread count).
"""

from __future__ import annotations

import math
import time
import traceback
import zlib

import numpy as np

import dmft

from .cases import Case, get_cases
from .variants import SolveFn, solve_correct

__all__ = ["run_accuracy", "result_id", "THRESHOLD"]

THRESHOLD = 3.0  # family-wise significance of one case, in standard deviations
_WARMUP_PER_REPLICA = 256  # samples per replica of the untimed warm-up solve (numba caches)


def result_id(case: str, estimator: str, samples: int) -> str:
    """Key of one accuracy result in the JSON output and the baseline."""
    return f"accuracy/{case}/{estimator}/S={samples}"


def _seed(rid: str) -> int:
    """Fixed seed per result id (independent streams for different S, cases, estimators)."""
    return zlib.crc32(rid.encode())


def _evaluate(case: Case, traj: dmft.Trajectory) -> dict:
    rep = dmft.compare(traj, case.reference, threshold=THRESHOLD,
                       observables=case.observables, t=list(case.times))
    diffs, ses, ref_ses = [], [], []
    for name in case.observables:
        mask = rep.counted[name]
        diffs.append((rep.values_a[name] - rep.values_b[name])[mask])
        ses.append(rep.se_a[name][mask])
        ref_ses.append(rep.se_b[name][mask])
    diff, se, ref_se = (np.concatenate(x) for x in (diffs, ses, ref_ses))
    worst = None
    if rep.argmax is not None:
        name, t, idx = rep.argmax
        worst = _entry(name, t, idx)
    return {
        "max_abs_z": rep.max_abs_z, "max_abs_z_equiv": rep.max_abs_z_equiv,
        "z_crit": rep.z_crit, "n_entries": rep.n_tests, "chi2_per_dof": rep.chi2_per_dof,
        "passed": rep.passed, "worst_entry": worst,
        "dof_dmft": rep.dof_a, "dof_reference": rep.dof_b,
        "max_abs_err": float(np.max(np.abs(diff))) if diff.size else 0.0,
        "rms_err": float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0,
        "rms_se": float(np.sqrt(np.mean(se**2))) if se.size else 0.0,
        "ref_rms_se": float(np.sqrt(np.mean(ref_se**2))) if ref_se.size else 0.0,
    }


def _entry(name: str, t: int, idx: tuple) -> str:
    return f"{name}[{','.join(map(str, idx))}] t={t}" if idx else f"{name} t={t}"


def run_accuracy(mode: str = "quick", solve: SolveFn = solve_correct,
                 cases: list[Case] | None = None, log=print) -> list[dict]:
    """Run the accuracy benchmark.

    Parameters
    ----------
    mode : {"quick", "full"}
        Quick: one sample size per case (``Case.quick_samples``). Full: the S grid of each case.
    solve : callable
        Solver hook ``solve(problem, samples, seed, estimator) -> Trajectory``
        (``benchmarks.variants``); lets tests inject deliberately broken solvers.
    cases : list of Case, optional
        Default: all of ``benchmarks.cases.CASES``.
    log : callable or None
        Receives one progress line per solve.

    Returns
    -------
    list of dict
        One record per (case, estimator, S): ``id``, ``case``, ``estimator``, ``samples``,
        ``seed``, ``wall_s``, ``cpu_s``, and from the comparison ``max_abs_z`` (plain),
        ``max_abs_z_equiv`` (normal-equivalent, decides ``passed``), ``z_crit``, ``passed``,
        ``worst_entry`` (by the normal-equivalent score), ``n_entries``, ``chi2_per_dof``,
        ``dof_dmft``, ``dof_reference``, ``max_abs_err``,
        ``rms_err`` (over compared entries), ``rms_se`` (the DMFT's own reported SE),
        ``ref_rms_se`` (the reference's SE); ``error`` (a message) if the solve raised.
    """
    if mode not in ("quick", "full"):
        raise ValueError(f"mode={mode!r} is not valid; allowed: 'quick', 'full'")
    cases = get_cases() if cases is None else cases
    records = []
    for case in cases:
        for est in case.estimators:
            _warm_up(solve, case, est)
            for S in case.samples(mode, est):
                rid = result_id(case.name, est, S)
                rec = {"id": rid, "case": case.name, "estimator": est, "samples": S,
                       "seed": _seed(rid)}
                c0, w0 = time.process_time(), time.perf_counter()
                try:
                    traj = solve(case.problem, S, rec["seed"], est)
                except Exception as exc:  # a crash is a failed case, reported, not fatal
                    rec.update(passed=False, max_abs_z=math.inf, error=_short(exc))
                else:
                    rec.update(wall_s=time.perf_counter() - w0, cpu_s=time.process_time() - c0)
                    rec.update(_evaluate(case, traj))
                    rec["storage"] = traj.provenance.get("storage")
                records.append(rec)
                if log is not None:
                    log(_line(rec))
    return records


def _warm_up(solve: SolveFn, case: Case, estimator: str) -> None:
    """Untimed small solve: loads numba's cached kernels and compiles user activations."""
    samples = 16 * max(_WARMUP_PER_REPLICA, 4 * case.problem.T * case.problem.P)
    try:
        solve(case.problem, samples, 0, estimator)
    except Exception:  # the timed run reports the error
        pass


def _short(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last[:300]


def _line(rec: dict) -> str:
    if "error" in rec:
        return f"  {rec['id']:<36} ERROR {rec['error']}"
    flag = "ok  " if rec["passed"] else "FAIL"
    return (f"  {rec['id']:<36} {flag} max|z| {rec['max_abs_z']:6.2f} "
            f"(normal-equiv. {rec['max_abs_z_equiv']:5.2f}, crit {rec['z_crit']:.2f}) "
            f"rms err {rec['rms_err']:.2e}  wall {rec['wall_s']:6.2f} s  cpu {rec['cpu_s']:6.2f} s")
