"""dmft.stats (Student-t/Welch tails, family-wise critical values, normal-equivalent scores) and
Trajectory.from_runs (mean and standard error over runs).

Expected values come from closed forms (Cauchy and t_2 tails, Welch-Satterthwaite by hand) or
from scipy.stats, an implementation independent of the scipy.special functions used.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import dmft
from dmft.stats import (
    agree,
    critical_value,
    dof_from_provenance,
    family_tail,
    mean_se,
    normal_equivalent,
    tail_probability,
    welch_dof,
    z_scores,
)


# ============================================================================ tails
def test_critical_value_normal_and_student():
    assert critical_value(3.0, 1) == pytest.approx(3.0)
    assert critical_value(3.0, 20) == pytest.approx(3.82, abs=0.01)
    assert critical_value(3.0, 20, dof=10**7) == pytest.approx(critical_value(3.0, 20), rel=1e-5)
    # the same family-wise tail probability: 20 P(|t_15| > crit) = P(|N| > 3)
    assert 20 * 2 * stats.t.sf(critical_value(3.0, 20, dof=15), 15) == pytest.approx(
        2 * stats.norm.sf(3.0))
    assert critical_value(3.0, 20, dof=15) > 4.8
    # one critical value per entry for an array of dof, falling towards the normal one
    crit = critical_value(3.0, 48, dof=np.array([15.0, 79.0, np.inf]))
    assert crit.shape == (3,) and crit[0] > crit[1] > crit[2]
    assert crit[2] == pytest.approx(stats.norm.isf(stats.norm.sf(3.0) / 48))


def test_family_tail_is_bonferroni():
    assert family_tail(3.0, 1) == pytest.approx(2 * stats.norm.sf(3.0))
    assert family_tail(2.0, 10) == pytest.approx(2 * stats.norm.sf(2.0) / 10)
    assert family_tail(3.0, 0) == family_tail(3.0, 1)
    with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
        family_tail(0.0, 3)


def test_tail_probability_closed_forms():
    # Cauchy (1 dof): P(|T| > 1) = 1/2; t_2: P(|T| > z) = 1 - z / sqrt(2 + z^2)
    assert tail_probability(1.0, dof=1) == pytest.approx(0.5, rel=1e-12)
    z = np.array([0.5, 2.0, 10.0])
    np.testing.assert_allclose(tail_probability(-z, dof=2), 1 - z / np.sqrt(2 + z**2),
                               rtol=1e-10)
    assert tail_probability(3.0) == pytest.approx(2 * stats.norm.sf(3.0), rel=1e-12)
    with pytest.raises(ValueError, match="degrees of freedom must be > 0"):
        tail_probability(1.0, dof=0)


def test_welch_dof_by_hand():
    # equal SEs with nu each: 2 nu; an exact side (SE 0 or inf dof) adds nothing
    np.testing.assert_array_equal(welch_dof([1.0, 1.0, 1.0, 2.0], 15, [1.0, 0.0, 1.0, 1.0],
                                            [15, 15, np.inf, 3]),
                                  [30.0, 15.0, 60.0, 5.0**2 / (16 / 15 + 1 / 3)])
    assert welch_dof(0.0, 15, 0.0, 15) == np.inf
    assert welch_dof(0.5, np.inf, 0.2, np.inf) == np.inf
    assert np.isnan(welch_dof(np.nan, 15, 1.0, 15))
    # between min(dof) and the sum
    rng = np.random.default_rng(0)
    sa, sb = rng.random(100), rng.random(100)
    nu = welch_dof(sa, 7, sb, 31)
    assert np.all((nu >= 7 - 1e-12) & (nu <= 38 + 1e-12))


def test_normal_equivalent_score():
    # exact standard errors on both sides: the plain |z|, bit for bit
    np.testing.assert_array_equal(normal_equivalent(np.array([-3.0, 0.5])), [3.0, 0.5])
    # one degree of freedom is a Cauchy variable: P(|T| > 1) = 1/2, the normal quantile of a
    # two-sided 1/2 is 0.6745 (closed forms, independent of scipy's t distribution)
    assert normal_equivalent(1.0, dof=1.0) == pytest.approx(0.6744897501960817, rel=1e-9)
    # Welch: two equal SEs with 1 dof each behave like a t with 2 dof:
    # P(|T_2| > z) = 1 - z / sqrt(2 + z^2) (closed form)
    tail = 1 - 2 / math.sqrt(6)
    nu = welch_dof(1.0, 1.0, 1.0, 1.0)
    assert normal_equivalent(2.0, nu) == pytest.approx(stats.norm.isf(tail / 2), rel=1e-9)
    # far tails stay finite and ordered; never above |z|
    big = normal_equivalent(np.array([50.0, 500.0]), 15.0)
    assert np.all(np.isfinite(big)) and big[1] > big[0] > 5
    z = np.linspace(0.1, 8, 50)
    assert np.all(normal_equivalent(z, 4.0) <= z) and np.all(np.diff(normal_equivalent(z, 4.0)) > 0)
    assert normal_equivalent(np.inf, 15.0) == np.inf and np.isnan(normal_equivalent(np.nan, 3.0))
    # per-entry dof, and the decision it makes equals the one of the Student-t critical value
    dof = np.array([3.0, 15.0, 79.0, np.inf])
    crit = critical_value(3.0, 10, dof)
    for factor, inside in ((0.999, True), (1.001, False)):
        z_eq = normal_equivalent(factor * crit, dof)
        assert np.all((z_eq <= critical_value(3.0, 10)) == inside)


def test_agree_is_a_family_wise_student_t_test():
    # 20 entries, SEs from 16 runs on one side, exact on the other: critical 5.08 SE
    crit = critical_value(3.0, 20, dof=15)
    a_se = np.full(20, 0.1)
    ok = agree(np.r_[np.zeros(19), 0.1 * crit * 0.999], a_se, 15, np.zeros(20), 0.0, np.inf,
               n_tests=20)
    assert ok.all()
    ok = agree(np.r_[np.zeros(19), 0.1 * crit * 1.001], a_se, 15, np.zeros(20), 0.0, np.inf,
               n_tests=20)
    assert not ok[-1] and ok[:-1].all()
    # exact values on both sides must be equal
    assert agree(1.0, 0.0, np.inf, 1.0, 0.0, np.inf, n_tests=1)
    assert not agree(1.0, 0.0, np.inf, 1.0 + 1e-15, 0.0, np.inf, n_tests=1)


def test_agree_false_alarm_rate_with_few_runs():
    # SEs from 4 runs on each side, 30 entries, threshold 2: with Student-t tails the family
    # is flagged at most 2 Phi(-2) = 4.6 % of the time; normal tails would flag ~40 %
    rng = np.random.default_rng(1)
    reps, n, runs = 400, 30, 4
    level = 2 * stats.norm.sf(2.0)
    flagged = flagged_normal = 0
    for _ in range(reps):
        a, a_se = mean_se(rng.normal(size=(runs, n)))
        b, b_se = mean_se(rng.normal(size=(runs, n)) * rng.uniform(0.5, 2.0, n))
        flagged += not agree(a, a_se, runs - 1, b, b_se, runs - 1, n, threshold=2.0).all()
        flagged_normal += not agree(a, a_se, np.inf, b, b_se, np.inf, n, threshold=2.0).all()
    assert flagged / reps <= level + 4 * math.sqrt(level * (1 - level) / reps), flagged
    assert flagged_normal / reps > 0.2


def test_z_scores():
    z = z_scores([1.0, 0.5, 0.7, np.nan, 0.5], [0.3, 0.0, 0.0, 0.1, 0.0],
                 [0.6, 0.5, 0.6, 0.1, 0.5 + 1e-13], [0.4, 0.0, 0.0, 0.1, 0.0], atol=1e-12)
    np.testing.assert_array_equal(z[[1, 2, 4]], [0.0, np.inf, 0.0])
    assert z[0] == pytest.approx(0.8) and np.isnan(z[3])
    assert z_scores(0.5, 0.0, 0.5 + 1e-13, 0.0)[()] == -np.inf  # atol 0: strict


def test_dof_from_provenance():
    assert dof_from_provenance({"method": "dmft", "replicas": 16, "samples": 10**6}) == 15
    assert dof_from_provenance({"method": "simulate", "seeds": 32}) == 31
    assert dof_from_provenance({"method": "extrapolated", "seeds": [400, 200, 80]}) == 79
    assert dof_from_provenance({"method": "extrapolated", "seeds": [None, 12]}) == 11
    assert dof_from_provenance({"method": "one-pass"}) == math.inf
    assert dof_from_provenance({"method": "one-pass", "qmc_replicas": 0}) == math.inf
    assert dof_from_provenance({"method": "one-pass", "qmc_replicas": 8}) == 7
    assert dof_from_provenance({"method": "extrapolated", "seeds": [None, None]}) == math.inf
    assert math.isnan(dof_from_provenance({"method": "simulate", "seeds": 1}))


def test_mean_se():
    mean, se = mean_se(np.array([[1.0, 0.0], [3.0, 0.0]]))
    np.testing.assert_array_equal(mean, [2.0, 0.0])
    np.testing.assert_allclose(se, [1.0, 0.0])
    assert np.isnan(mean_se(np.ones((1, 3)))[1]).all()


def test_importing_stats_and_compare_does_not_load_scipy_stats():
    code = ("import sys, dmft.stats, dmft.compare, dmft.exact; "
            "print(any(m.startswith(('scipy.stats', 'scipy.special')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


# ============================================================================ from_runs
def _runs(rng, R=5, T=3, P=2, K=2):
    return {"M": rng.normal(size=(R, T, P, K)), "Q": rng.normal(size=(R, T, P, P)),
            "e_train": rng.random((R, T)), "e_gen": rng.random((R, T))}


def test_from_runs_means_errors_and_provenance():
    rng = np.random.default_rng(2)
    runs = _runs(rng)
    prob = dmft.Problem(T=3)
    traj = dmft.Trajectory.from_runs(prob, runs, {"method": "simulate", "d": 100})
    for name, arr in runs.items():
        np.testing.assert_array_equal(getattr(traj, name), arr.mean(0))
        np.testing.assert_array_equal(getattr(traj, name + "_se"),
                                      arr.std(0, ddof=1) / math.sqrt(5))
    assert traj.provenance["seeds"] == 5 and dof_from_provenance(traj.provenance) == 4
    dm = dmft.Trajectory.from_runs(prob, {"M": runs["M"], "Lam": rng.normal(size=(5, 3, 2, 2))},
                                   {"method": "dmft", "replicas": 5}, count="replicas")
    assert dm.Lam.shape == (3, 2, 2) and dm.Lam_se.shape == (3, 2, 2)
    assert np.isnan(dm.Q).all() and np.isnan(dm.e_gen_se).all()  # not measured
    assert dof_from_provenance(dm.provenance) == 4


def test_from_runs_added_variance_and_fields():
    rng = np.random.default_rng(3)
    runs = _runs(rng)
    extra = rng.random(3)
    traj = dmft.Trajectory.from_runs(dmft.Problem(T=3), runs, {"method": "x"},
                                     added_variance={"e_gen": extra**2},
                                     e_train=np.zeros(3), e_train_se=np.zeros(3),
                                     diagnostics={"M_runs": runs["M"]})
    se = runs["e_gen"].std(0, ddof=1) / math.sqrt(5)
    np.testing.assert_array_equal(traj.e_gen_se, np.sqrt(se**2 + extra**2))
    assert np.all(traj.e_train == 0) and traj.diagnostics["M_runs"] is runs["M"]


def test_from_runs_errors():
    rng = np.random.default_rng(4)
    runs = _runs(rng)
    prob = dmft.Problem(T=3)
    with pytest.raises(ValueError, match=r"provenance\['seeds'\] = 4 but runs hold 5 runs"):
        dmft.Trajectory.from_runs(prob, runs, {"seeds": 4})
    with pytest.raises(ValueError, match="one common number of runs"):
        dmft.Trajectory.from_runs(prob, {"M": runs["M"], "Q": runs["Q"][:3]}, {})
    with pytest.raises(ValueError, match=r"runs\['W'\]: not an observable or kernel"):
        dmft.Trajectory.from_runs(prob, {"W": runs["M"]}, {})


def test_simulator_trajectory_is_from_runs_of_its_runs():
    prob = dmft.Problem(target="he3", P=2, activation="relu", T=3)
    sim = dmft.simulate(prob, d=60, seeds=3, seed=1)
    diag = sim.diagnostics
    again = dmft.Trajectory.from_runs(
        prob, {n: diag[n + "_runs"] for n in ("M", "Q", "e_train", "e_gen")}, sim.provenance,
        added_variance={"e_gen": np.mean(diag["e_gen_integration_se"] ** 2, axis=0)})
    for name in ("M", "Q", "e_train", "e_gen"):
        np.testing.assert_array_equal(getattr(again, name), getattr(sim, name))
        np.testing.assert_array_equal(getattr(again, name + "_se"), getattr(sim, name + "_se"))
    assert sim.provenance["seeds"] == 3
