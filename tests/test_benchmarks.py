"""The benchmark suite catches broken solvers, passes the shipped one, and its references are right.

The quick accuracy benchmark runs in-process three times: with the shipped solver (must pass and
show no regression against ``benchmarks/baseline.json``) and with two deliberately broken solvers
(SPEC 8 errors (1) and (4); each must be flagged by a wide margin, > 5 sigma). The references
are checked against values quoted in SPEC 7 and 9, which do not come from this code.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

import dmft
from benchmarks import cases as bench_cases
from benchmarks.accuracy import normal_equivalent
from benchmarks.report import compare_with_baseline, markdown, merge_baseline
from benchmarks.runner import BASELINE, main
from benchmarks.variants import TANH_GAUSS_NEWTON


@pytest.fixture(scope="module")
def baseline():
    return json.loads(BASELINE.read_text())


def _run_quick_accuracy(variant: str, out) -> tuple[int, dict]:
    status = main(["--quick", "--only", "accuracy", "--variant", variant, "--out", str(out),
                   "--no-plot"])
    suffix = "" if variant == "correct" else f"_{variant}"
    return status, json.loads((out / f"latest_quick{suffix}.json").read_text())


# ----------------------------------------------------------------------------- acceptance
def test_shipped_solver_passes_quick_accuracy(tmp_path, baseline):
    status, result = _run_quick_accuracy("correct", tmp_path)
    assert status == 0, result["regressions"]
    records = result["accuracy"]
    # every case and every valid estimator ran, each against its reference
    assert {(r["case"], r["estimator"]) for r in records} == {
        ("linear", "stein"), ("linear", "pathwise"), ("tanh", "stein"), ("tanh", "pathwise"),
        ("relu", "stein"), ("sharp", "stein")}
    assert all(r["passed"] for r in records), [(r["id"], r["max_abs_z"]) for r in records]
    # the quick sizes are in the baseline, so the comparison is not vacuous
    assert all(r["id"] in baseline["accuracy"] for r in records)


def test_independent_noise_is_caught(tmp_path):
    status, result = _run_quick_accuracy("broken-noise", tmp_path)
    assert status == 1
    by_case = {}
    for r in result["accuracy"]:
        by_case[r["case"]] = max(by_case.get(r["case"], 0.0), r["max_abs_z_equiv"])
    # the error is visible in every case, robustly (SPEC 9: 0.8660 instead of 0.8934 at t=5
    # in the tanh case; late-time M and Q in the sharp eta = 0.5 case)
    assert min(by_case.values()) > 5.0, by_case
    assert any("fails" in x for x in result["regressions"])


def test_dropped_sigma_second_derivative_is_caught(tmp_path):
    status, result = _run_quick_accuracy("broken-hessian", tmp_path)
    assert status == 1
    rows = {(r["case"], r["estimator"]): r for r in result["accuracy"]}
    # only the pathwise estimator uses sigma''; Stein rows are unaffected and must still pass
    assert rows[("tanh", "pathwise")]["max_abs_z_equiv"] > 5.0
    assert not rows[("tanh", "pathwise")]["passed"]
    assert rows[("tanh", "stein")]["passed"]
    assert [x for x in result["regressions"] if "tanh/pathwise" in x]


def test_gauss_newton_activation_really_drops_sigma_second_derivative():
    x = np.linspace(-2.0, 2.0, 9)
    np.testing.assert_allclose(TANH_GAUSS_NEWTON(x), np.tanh(x), rtol=1e-14)
    np.testing.assert_allclose(TANH_GAUSS_NEWTON.d1(x), 1.0 / np.cosh(x) ** 2, rtol=1e-12)
    assert np.all(TANH_GAUSS_NEWTON.d2(x) == 0.0)


# ----------------------------------------------------------------------------- references
def test_linear_reference_matches_spec_quoted_values():
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=0.2, T=7,
                        a=[1.0])
    ref = bench_cases.linear_exact_reference(prob)
    quoted_mse = [2, 0.32, 0.1184, 0.0577, 0.0320, 0.0191, 0.0120]  # SPEC 9, = 2 e_train
    np.testing.assert_allclose(2 * ref["e_train"], quoted_mse, atol=6e-5)
    # SPEC 7: M_1 = eta alpha (a E[sigma']) E[g* z] = 0.6 here; Q_0 = 1, M_0 = 0
    assert ref["M"][0, 0, 0] == 0.0 and ref["Q"][0, 0, 0] == 1.0
    assert math.isclose(ref["M"][1, 0, 0], 0.6, rel_tol=1e-14)
    # M_t -> 1 monotonically (GD on a well-posed linear problem, n > d)
    assert np.all(np.diff(ref["M"][:, 0, 0]) > 0) and ref["M"][-1, 0, 0] < 1


def test_relu_first_step_matches_spec_and_simulations(paper_sims_d5000):
    prob = dmft.Problem()  # paper setting: alpha 3, eta 0.2, tanh-he1-he3, P = 2 ReLU
    M1, Q1 = bench_cases.relu_first_step(prob)
    # docs/theory/learnability.md: |M_1 row| = 0.0988 in the paper setting
    np.testing.assert_allclose(np.linalg.norm(M1, axis=1), 0.0988, atol=1e-4)
    runs = paper_sims_d5000["Q_d5000"][:, 1]
    mean, se = runs.mean(0), runs.std(0, ddof=1) / math.sqrt(runs.shape[0])
    assert np.all(np.abs(Q1 - mean) <= 3 * se), (Q1 - mean) / se


def test_sharp_case_uses_the_exact_first_step():
    (sharp,) = bench_cases.get_cases(("sharp",))
    M1, Q1 = bench_cases.relu_first_step(sharp.problem)
    np.testing.assert_array_equal(sharp.reference.Q[1], Q1)
    assert np.all(sharp.reference.Q_se[1] == 0) and np.all(sharp.reference.M_se[1] == 0)
    # the extrapolated simulations it replaces agree with it (3 entries, SEs from >= 80 seeds:
    # 3.5 is above the Bonferroni 3-sigma critical value of Student's t with 79 dof)
    z = sharp.reference.diagnostics["extrapolated_Q1_minus_exact_z"]
    assert np.all(np.abs(z) < 3.5), z


def test_normal_equivalent_score():
    # exact standard errors on both sides: the plain z
    np.testing.assert_allclose(normal_equivalent(np.array([-3.0, 0.5]), np.ones(2), np.zeros(2),
                                                 math.inf, math.inf), [3.0, 0.5])
    # one degree of freedom is a Cauchy variable: P(|T| > 1) = 1/2, the normal quantile of
    # a two-sided 1/2 is 0.6745 (closed forms, independent of scipy's t distribution)
    np.testing.assert_allclose(normal_equivalent(np.array([1.0]), np.ones(1), np.zeros(1), 1.0,
                                                 math.inf), [0.6744897501960817], rtol=1e-9)
    # Welch: two equal SEs with 1 dof each behave like a t with 2 dof:
    # P(|T_2| > z) = 1 - z / sqrt(2 + z^2) (closed form)
    tail = 1 - 2 / math.sqrt(6)
    np.testing.assert_allclose(normal_equivalent(np.array([2.0]), np.ones(1), np.ones(1), 1.0,
                                                 1.0), [stats.norm.isf(tail / 2)], rtol=1e-9)
    # far tails stay finite and ordered
    big = normal_equivalent(np.array([50.0, 500.0]), np.ones(2), np.zeros(2), 15.0, math.inf)
    assert np.all(np.isfinite(big)) and big[1] > big[0] > 5


# ----------------------------------------------------------------------------- bookkeeping
def _speed_record(ratio: float, completed: bool = True) -> dict:
    return {"id": "speed/x", "completed": completed, "ratio_wall": ratio,
            "package": {"completed": completed, "error": None}}


@pytest.mark.parametrize("ratio, factor, flagged", [(10.0, 3.0, False), (3.5, 3.0, False),
                                                    (3.2, 3.0, True), (9.0, 1.0, True)])
def test_speed_ratio_regression_rule(ratio, factor, flagged):
    base = {"speed": {"speed/x": {"completed": True, "ratio_wall": 10.0}}}
    regs, _ = compare_with_baseline({"speed": [_speed_record(ratio)]}, base, factor)
    assert bool(regs) == flagged, regs


def test_accuracy_and_floor_regression_rules():
    base = {"accuracy": {"accuracy/a": {"passed": True}, "accuracy/b": {"passed": False}},
            "floors": {"memory": True}, "speed": {"speed/x": {"completed": True,
                                                              "ratio_wall": 2.0}}}
    result = {
        "accuracy": [{"id": "accuracy/a", "passed": False, "max_abs_z": 7.0, "z_crit": 4.0},
                     {"id": "accuracy/b", "passed": False, "max_abs_z": 9.0, "z_crit": 4.0},
                     {"id": "accuracy/new", "passed": False, "max_abs_z": 5.0, "z_crit": 4.0},
                     {"id": "accuracy/c", "passed": True, "max_abs_z": 1.0, "z_crit": 4.0}],
        "speed": [_speed_record(None, completed=False)],
        "floors": [{"name": "memory", "met": False, "gate": True, "value": 2.5}],
    }
    regs, notes = compare_with_baseline(result, base)
    text = "\n".join(regs)
    assert "accuracy/a" in text and "accuracy/new" in text and "accuracy/b" not in text
    assert "did not complete" in text and "floor missed" in text
    assert any("accuracy/b" in n for n in notes)


def test_baseline_merge_keeps_other_mode_and_markdown_renders():
    meta = {"mode": "quick", "variant": "correct", "date": "d", "commit": "c", "cpu_count": 2,
            "numba_threads": 2, "numpy": "n", "numba": "b", "load_start": 1.0, "load_end": 1.0,
            "total_wall_s": 1.0}
    result = {"meta": meta, "accuracy": [{"id": "accuracy/q", "passed": True, "max_abs_z": 1.0,
                                          "z_crit": 3.5}], "speed": [], "floors": []}
    old = {"accuracy": {"accuracy/full-only": {"passed": True}}, "speed": {}, "floors": {}}
    merged = merge_baseline(old, result)
    assert set(merged["accuracy"]) == {"accuracy/full-only", "accuracy/q"}
    assert "quick" in merged["sources"]
    result.update(accuracy=[], regressions=[], baseline_notes=["note"])
    assert "no regression" in markdown(result)
    result["regressions"] = ["accuracy/q: fails"]
    assert "**REGRESSION** accuracy/q: fails" in markdown(result)
