"""The benchmark suite catches broken solvers, passes the shipped one, and its references are right.

The quick accuracy benchmark runs in-process three times: with the shipped solver (must pass and
show no regression against ``benchmarks/baseline.json``) and with two deliberately broken solvers
(errors (1) and (4) of the authors' script, docs/theory/authors-script.md; each must be flagged
by a wide margin, > 5 sigma). The references are checked against values quoted in
docs/theory/learnability.md and docs/validation.md, which do not come from this code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import dmft
from benchmarks import cases as bench_cases
from benchmarks.report import compare_with_baseline, markdown, merge_baseline
from benchmarks.runner import BASELINE, main
from benchmarks.variants import TANH_GAUSS_NEWTON
from dmft.stats import agree, critical_value, dof_from_provenance, mean_se


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
    # the error is visible in every case, robustly (docs/validation.md: 0.8660 instead of
    # 0.8934 at t=5 in the tanh case; late-time M and Q in the sharp eta = 0.5 case)
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
def test_relu_first_step_matches_the_theory_page_and_simulations(paper_sims_d5000):
    prob = dmft.Problem()  # paper setting: alpha 3, eta 0.2, tanh-he1-he3, P = 2 ReLU
    M1, Q1 = bench_cases.relu_first_step(prob)
    # docs/theory/learnability.md: |M_1 row| = 0.0988 in the paper setting
    np.testing.assert_allclose(np.linalg.norm(M1, axis=1), 0.0988, atol=1e-4)
    runs = paper_sims_d5000["Q_d5000"][:, 1]
    mean, se = mean_se(runs)
    # 3 entries (Q is symmetric), SEs from the seeds: family-wise 3 sigma, Student-t tails
    ok = agree(Q1, 0.0, np.inf, mean, se, runs.shape[0] - 1, n_tests=3)
    assert ok.all(), (Q1 - mean) / se


def test_sharp_case_uses_the_exact_first_step():
    (sharp,) = bench_cases.get_cases(("sharp",))
    M1, Q1 = bench_cases.relu_first_step(sharp.problem)
    np.testing.assert_array_equal(sharp.reference.Q[1], Q1)
    assert np.all(sharp.reference.Q_se[1] == 0) and np.all(sharp.reference.M_se[1] == 0)
    # the extrapolated simulations it replaces agree with it: 3 entries (Q is symmetric), SEs
    # from >= 80 seeds, family-wise 3 sigma with Student-t tails
    z = sharp.reference.diagnostics["extrapolated_Q1_minus_exact_z"]
    dof = dof_from_provenance(sharp.reference.provenance)
    assert dof == 79 and np.all(np.abs(z) <= critical_value(3.0, 3, dof)), z


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


@pytest.mark.parametrize("load, flagged", [(None, True), (3.9, True), (4.1, False)])
def test_speed_ratio_is_not_judged_on_an_overloaded_machine(load, flagged):
    base = {"speed": {"speed/x": {"completed": True, "ratio_wall": 10.0}}}
    record = dict(_speed_record(2.0), load_before=1.0, load_after=load)
    regs, notes = compare_with_baseline({"speed": [record], "meta": {"cpu_count": 2}}, base)
    assert bool(regs) == flagged, regs
    assert flagged or any("not judged: load average 4.1 on 2 cores" in n for n in notes)


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
