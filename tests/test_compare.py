"""compare (z-scores, Student-t tails, chi2, verdict, table, plot), extrapolate (1/d fits) and
`dmft compare`.

Trajectories are built by hand from known means and standard errors, so every expectation
below comes from the construction, not from the code under test.
"""

from __future__ import annotations

import math
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from scipy import stats

import dmft
from dmft.cli import main as cli_main
from dmft.compare import Report
from dmft.stats import critical_value, welch_dof

matplotlib.use("Agg")


def _sym(x):
    """Symmetrise the last two axes by copying the upper triangle (Q is symmetric)."""
    upper = np.triu(x)
    return upper + np.swapaxes(np.triu(x, 1), -1, -2)


def _traj(M, Q, M_se, Q_se, problem=None, e=None, e_se=None, **provenance):
    T = M.shape[0]
    problem = problem or dmft.Problem(T=T, P=M.shape[1])
    e = np.zeros(T) if e is None else e
    e_se = np.zeros(T) if e_se is None else e_se
    return dmft.Trajectory(problem, M=M, Q=Q, e_train=e, e_gen=e, M_se=M_se, Q_se=Q_se,
                           e_train_se=e_se, e_gen_se=e_se,
                           provenance={"method": "synthetic", **provenance})


def _noisy_pair(rng, T=5, P=2, K=2, shift_M=0.0):
    """Two trajectories around the same mean, with random standard errors."""
    mu_M, mu_Q = rng.normal(size=(T, P, K)), _sym(rng.normal(size=(T, P, P)))
    out = []
    for shift in (0.0, shift_M):
        M_se = rng.uniform(0.01, 0.05, size=(T, P, K))
        Q_se = _sym(rng.uniform(0.01, 0.05, size=(T, P, P)))
        M = mu_M + shift + M_se * rng.normal(size=M_se.shape)
        Q = mu_Q + Q_se * _sym(rng.normal(size=Q_se.shape))
        out.append(_traj(M, Q, M_se, Q_se))
    return out


# ============================================================================== z and chi2
def test_z_chi2_and_p_value_by_hand():
    T, P = 2, 1
    problem = dmft.Problem(target="tanh", P=P, T=T)
    a = _traj(np.array([[[1.0]], [[2.0]]]), np.array([[[1.0]], [[1.5]]]),
              np.array([[[0.3]], [[0.0]]]), np.array([[[0.0]], [[0.6]]]), problem=problem)
    b = _traj(np.array([[[0.6]], [[2.5]]]), np.array([[[1.0]], [[1.5]]]),
              np.array([[[0.4]], [[0.1]]]), np.array([[[0.0]], [[0.8]]]), problem=problem)
    rep = dmft.compare(a, b)
    np.testing.assert_allclose(rep.z["M"][:, 0, 0], [0.4 / 0.5, -0.5 / 0.1])
    np.testing.assert_allclose(rep.z["Q"][:, 0, 0], [0.0, 0.0])
    # Q at t = 0 has no error on either side and equal values: exact, not counted
    assert rep.n_exact == 1 and rep.dof == 3
    assert rep.chi2 == pytest.approx(0.8**2 + 5.0**2)
    assert rep.p_value == pytest.approx(stats.chi2.sf(0.8**2 + 25.0, 3))
    assert rep.max_abs_z == pytest.approx(5.0) and rep.argmax == ("M", 1, (0, 0))
    assert rep.z_crit == pytest.approx(stats.norm.isf(stats.norm.sf(3.0) / 3))
    assert not rep.passed and rep.verdict == "disagree"


def test_Q_counts_only_its_upper_triangle():
    rng = np.random.default_rng(0)
    a, b = _noisy_pair(rng, T=4, P=3, K=2)
    rep = dmft.compare(a, b, observables=("Q",))
    assert rep.dof == 4 * 6
    assert np.all(rep.counted["Q"] == np.triu(np.ones((3, 3), bool)))
    # the lower triangle repeats the upper one
    np.testing.assert_array_equal(rep.z["Q"], np.swapaxes(rep.z["Q"], 1, 2))
    assert dmft.compare(a, b, observables=("M", "Q")).dof == 4 * 6 + 4 * 6


def test_entries_without_standard_errors():
    problem = dmft.Problem(target="tanh", P=1, T=3)
    zeros = np.zeros((3, 1, 1))
    a = _traj(np.array([0.0, 0.5, 0.7]).reshape(3, 1, 1), np.ones((3, 1, 1)), zeros, zeros,
              problem=problem)
    # equal within atol: exact; different: infinite z
    b = _traj(np.array([1e-17, 0.5, 0.6]).reshape(3, 1, 1), np.ones((3, 1, 1)), zeros, zeros,
              problem=problem)
    rep = dmft.compare(a, b)
    np.testing.assert_array_equal(rep.z["M"][:, 0, 0], [0.0, 0.0, np.inf])
    assert rep.n_exact == 5 and rep.dof == 1 and rep.max_abs_z == np.inf
    assert rep.p_value == 0.0 and not rep.passed and rep.argmax == ("M", 2, (0, 0))
    # identical deterministic trajectories agree with nothing to test
    same = dmft.compare(a, a)
    assert same.passed and same.dof == 0 and same.p_value == 1.0 and same.max_abs_z == 0.0
    # a looser atol makes the 0.1 difference "exact"
    assert dmft.compare(a, b, atol=0.2).passed


def test_non_finite_values_fail_with_a_note():
    rng = np.random.default_rng(1)
    a, b = _noisy_pair(rng)
    a.M[2, 1, 0] = np.nan
    rep = dmft.compare(a, b)
    assert np.isnan(rep.z["M"][2, 1, 0]) and rep.n_nonfinite == 1
    assert not rep.passed and any("non-finite" in n for n in rep.notes)
    assert np.isfinite(rep.chi2)  # the other entries still give a chi2


# ============================================================================ verdict rate
def _false_alarm_rate(rng, reps, threshold, correlated=False):
    flagged = small_p = 0
    zs = []
    for _ in range(reps):
        if correlated:
            # every entry carries the same noise at all times: strongly correlated z's
            T, P, K = 5, 2, 2
            mu = rng.normal(size=(T, P, K))
            se_a, se_b = rng.uniform(0.01, 0.05, (2, 1, P, K))
            a_M = mu + se_a * rng.normal(size=(1, P, K))
            b_M = mu + se_b * rng.normal(size=(1, P, K))
            Q = np.broadcast_to(np.eye(P), (T, P, P))
            a = _traj(a_M, Q, np.broadcast_to(se_a, (T, P, K)), np.zeros((T, P, P)))
            b = _traj(b_M, Q, np.broadcast_to(se_b, (T, P, K)), np.zeros((T, P, P)))
        else:
            a, b = _noisy_pair(rng)
        rep = dmft.compare(a, b, threshold=threshold)
        flagged += not rep.passed
        small_p += rep.p_value < 0.01
        zs.append(rep.z["M"].ravel())
    return flagged / reps, small_p / reps, np.concatenate(zs), rep


def test_same_mean_pairs_pass_at_the_advertised_rate():
    # independent entries: the Bonferroni rule flags with probability 1 - (1 - 2 sf(z_crit))^N,
    # just under the advertised 2 sf(threshold); threshold 2 makes the rate measurable
    rng = np.random.default_rng(2)
    reps = 1200
    rate, small_p, z, rep = _false_alarm_rate(rng, reps, threshold=2.0)
    n = rep.n_tests
    assert n == 5 * 4 + 5 * 3
    expected = 1 - (1 - 2 * stats.norm.sf(rep.z_crit)) ** n
    assert expected == pytest.approx(1 - (1 - 2 * stats.norm.sf(2.0) / n) ** n)
    assert expected <= 2 * stats.norm.sf(2.0)
    tol = 4 * np.sqrt(expected * (1 - expected) / reps)
    assert abs(rate - expected) < tol, (rate, expected, tol)
    # z is standard normal; chi2 p-values are uniform (independent entries)
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    assert abs(small_p - 0.01) < 4 * np.sqrt(0.01 * 0.99 / reps)


def test_default_threshold_rarely_flags_same_mean_pairs():
    rng = np.random.default_rng(3)
    reps = 600
    rate = _false_alarm_rate(rng, reps, threshold=3.0)[0]
    level = 2 * stats.norm.sf(3.0)  # 0.27 %
    assert rate <= stats.binom.ppf(0.9999, reps, level) / reps


def test_verdict_stays_calibrated_for_correlated_entries_where_chi2_does_not():
    rng = np.random.default_rng(4)
    reps = 600
    rate, small_p, _, _ = _false_alarm_rate(rng, reps, threshold=2.0, correlated=True)
    level = 2 * stats.norm.sf(2.0)
    assert rate <= level + 4 * np.sqrt(level * (1 - level) / reps)
    # the chi2 p-value assumes independence: here p < 1 % happens ~12 % of the time
    # (sum z^2 = 5 chi2_4 against chi2_20), which is why it is not part of the verdict
    assert small_p > 0.05


def test_a_shifted_entry_is_flagged_and_located():
    rng = np.random.default_rng(5)
    a, b = _noisy_pair(rng, T=6)
    se = np.hypot(a.M_se[4, 1, 0], b.M_se[4, 1, 0])
    b.M[4, 1, 0] = a.M[4, 1, 0] - 10 * se
    rep = dmft.compare(a, b)
    assert not rep.passed and rep.argmax == ("M", 4, (1, 0))
    assert rep.max_abs_z == pytest.approx(10.0)


def test_a_shifted_trajectory_is_flagged():
    rng = np.random.default_rng(6)
    flagged = 0
    for _ in range(50):
        a, b = _noisy_pair(rng, shift_M=0.3)  # 0.3 >= 4 combined SE in every M entry
        flagged += not dmft.compare(a, b).passed
    assert flagged == 50


def test_diffuse_tension_adds_a_chi2_note():
    rng = np.random.default_rng(7)
    T, P, K = 10, 2, 2
    M_se = np.full((T, P, K), 0.01)
    M = rng.normal(size=(T, P, K))
    Q = np.broadcast_to(np.eye(P), (T, P, P))
    a = _traj(M, Q, M_se, np.zeros((T, P, P)))
    # every entry 1.5 combined SE away: no single |z| reaches the critical value
    b = _traj(M + 1.5 * np.sqrt(2) * 0.01, Q, M_se, np.zeros((T, P, P)))
    rep = dmft.compare(a, b)
    assert rep.passed and rep.chi2_per_dof == pytest.approx(2.25)
    assert any("diffuse tension" in n for n in rep.notes)
    assert "diffuse tension" in str(rep)


# ============================================================================ Student-t tails
def _pair_from_runs(rng, runs_a, runs_b, T=4, P=2, K=2, key_a="replicas", key_b="seeds"):
    """Two trajectories around one mean, each the mean and SE over its own runs."""
    mu_M, mu_Q = rng.normal(size=(T, P, K)), _sym(rng.normal(size=(T, P, P)))
    out = []
    for runs, key, scale in ((runs_a, key_a, 1.0), (runs_b, key_b, 2.0)):
        spread = scale * rng.uniform(0.5, 2.0, size=(T, P, K))
        M = mu_M + spread * rng.normal(size=(runs, T, P, K))
        Q = mu_Q + _sym(rng.normal(size=(runs, T, P, P)))
        out.append(dmft.Trajectory.from_runs(dmft.Problem(T=T, P=P), {"M": M, "Q": Q},
                                             {"method": "synthetic"}, count=key))
    return out


def test_degrees_of_freedom_come_from_provenance():
    rng = np.random.default_rng(40)
    a, b = _pair_from_runs(rng, 16, 32)
    rep = dmft.compare(a, b)
    assert (rep.dof_a, rep.dof_b, rep.tails) == (15.0, 31.0, "Student-t")
    for name in ("M", "Q"):
        np.testing.assert_allclose(rep.se_dof[name],
                                   welch_dof(rep.se_a[name], 15, rep.se_b[name], 31))
        assert np.all(np.abs(rep.z_equiv[name]) < np.abs(rep.z[name]))
        np.testing.assert_array_equal(np.sign(rep.z_equiv[name]), np.sign(rep.z[name]))
        np.testing.assert_allclose(rep.crit[name],
                                   critical_value(3.0, rep.n_tests, rep.se_dof[name]))
    assert np.all(rep.crit["M"] > rep.z_crit)
    # an exact side: Welch reduces to the other side's dof
    exact = _traj(a.M, a.Q, np.zeros_like(a.M), np.zeros_like(a.Q))
    rep = dmft.compare(b, exact)
    assert rep.dof_b == np.inf and np.allclose(rep.se_dof["M"], 31, rtol=1e-12)
    # an extrapolation: the smallest seeds - 1 of its inputs
    a0, b0 = _line(rng)
    ex = dmft.extrapolate(_sims_from_line(rng, a0, b0, [1000, 2000, 4000], 1e-3))
    assert dmft.compare(exact, ex).dof_b == 9.0


def test_dof_override_and_normal_tails():
    rng = np.random.default_rng(41)
    a, b = _pair_from_runs(rng, 16, 32)
    rep = dmft.compare(a, b, dof_a=math.inf, dof_b=math.inf)
    assert rep.tails == "normal" and (rep.dof_a, rep.dof_b) == (math.inf, math.inf)
    for name in ("M", "Q"):
        np.testing.assert_array_equal(rep.z_equiv[name], rep.z[name])
        assert np.all(rep.crit[name] == rep.z_crit)
    assert rep.max_abs_z_equiv == rep.max_abs_z
    assert dmft.compare(a, b, dof_a=3).dof_a == 3.0
    # a hand-made trajectory without provenance: normal tails unless told otherwise
    plain = _noisy_pair(rng)
    assert dmft.compare(*plain).tails == "normal"
    assert dmft.compare(*plain, dof_b=7).tails == "Student-t"
    for bad in (0, -1.0, True, "15"):
        with pytest.raises(ValueError, match="dof_a must be a number > 0"):
            dmft.compare(a, b, dof_a=bad)


def test_student_t_verdict_and_report_text():
    # one entry at 4.5 combined SE among 12 counted: beyond the normal critical value (3.7)
    # but within Student-t with 15 dof (4.6)
    T, P = 3, 2
    M = np.zeros((T, P, 2))
    se = np.full((T, P, 2), 0.1)
    Q = np.broadcast_to(np.eye(P), (T, P, P))
    a = _traj(M, Q, se, np.zeros((T, P, P)), replicas=16)
    M_b = M.copy()
    M_b[2, 1, 0] = 0.45
    b = _traj(M_b, Q, np.zeros_like(se), np.zeros((T, P, P)))
    rep = dmft.compare(a, b)
    assert rep.n_tests == 12 and rep.tails == "Student-t"
    assert rep.z_crit < 4.5 < rep.crit["M"][2, 1, 0]
    assert rep.passed and rep.max_abs_z == pytest.approx(4.5)
    assert rep.max_abs_z_equiv < rep.z_crit and rep.argmax == ("M", 2, (1, 0))
    normal = dmft.compare(a, b, dof_a=math.inf)
    assert not normal.passed and normal.max_abs_z_equiv == pytest.approx(4.5)
    summary = rep.summary()
    assert "Student-t" in summary and "dof A 15, B inf" in summary
    assert "normal-equivalent" in summary and "12 entries" in summary
    assert "normal tails" in normal.summary()
    rows = rep.table("all").splitlines()
    assert rows[2].split()[-3:] == ["dof", "crit", "z"]
    row = [ln for ln in rows if ln.split()[:3] == ["2", "M", "[1,0]"]][0]
    assert row.split()[-3:] == ["15", f"{rep.crit['M'][2, 1, 0]:.2f}", "-4.50"]


def test_few_replicas_pass_at_the_advertised_rate_only_with_student_t_tails():
    # SEs from 4 runs on each side: normal tails flag same-mean pairs far more often than the
    # advertised 2 Phi(-threshold); Student-t tails with Welch dof stay at or below it
    rng = np.random.default_rng(42)
    reps, threshold = 300, 2.0
    level = 2 * stats.norm.sf(threshold)
    flagged = flagged_normal = 0
    for _ in range(reps):
        a, b = _pair_from_runs(rng, 4, 4)
        flagged += not dmft.compare(a, b, threshold=threshold).passed
        flagged_normal += not dmft.compare(a, b, threshold=threshold, dof_a=math.inf,
                                           dof_b=math.inf).passed
    assert flagged / reps <= level + 4 * math.sqrt(level * (1 - level) / reps), flagged
    assert flagged_normal / reps > 3 * level, flagged_normal


# ============================================================================ options
def test_common_prefix_and_time_selection():
    rng = np.random.default_rng(8)
    a, b = _noisy_pair(rng, T=6)
    rep = dmft.compare(a, b.truncated(4))
    assert list(rep.times) == [0, 1, 2, 3] and rep.z["M"].shape == (4, 2, 2)
    assert any("common prefix" in n for n in rep.notes)
    np.testing.assert_array_equal(rep.z["M"], dmft.compare(a.truncated(4), b.truncated(4)).z["M"])
    one = dmft.compare(a, b, t=5)
    assert list(one.times) == [5] and one.dof == 4 + 3
    np.testing.assert_array_equal(one.z["M"][0], dmft.compare(a, b).z["M"][5])
    assert list(dmft.compare(a, b, t=[1, 3]).times) == [1, 3]


def test_scalar_observables():
    rng = np.random.default_rng(9)
    a, b = _noisy_pair(rng, T=3)
    a.e_gen[:], a.e_gen_se[:] = [0.5, 0.4, 0.3], 0.01
    b.e_gen[:], b.e_gen_se[:] = [0.5, 0.4, 0.2], 0.01
    rep = dmft.compare(a, b, observables=("e_gen",))
    np.testing.assert_allclose(rep.z["e_gen"], [0, 0, 0.1 / np.hypot(0.01, 0.01)], atol=1e-12)
    assert rep.dof == 3 and not rep.passed and rep.argmax == ("e_gen", 2, ())
    assert "e_gen" in str(rep)


@pytest.mark.parametrize("kwargs,exc,pattern", [
    ({"threshold": 0}, ValueError, r"threshold must be a number > 0, got 0"),
    ({"threshold": np.inf}, ValueError, r"threshold must be finite"),
    ({"observables": ("M", "C")}, ValueError, r"observables=\('M', 'C'\) is not valid"),
    ({"observables": ()}, ValueError, r"observables=\(\) is not valid"),
    ({"t": 7}, ValueError, r"t=7 out of range: times must be in \[0, 4\]"),
    ({"t": -1}, ValueError, r"t=-1 out of range"),
    ({"t": 1.5}, ValueError, r"t must be an integer or a non-empty sequence of integers"),
    ({"atol": -1.0}, ValueError, r"atol must be a number >= 0"),
])
def test_invalid_options(kwargs, exc, pattern):
    a, b = _noisy_pair(np.random.default_rng(10))
    with pytest.raises(exc, match=pattern):
        dmft.compare(a, b, **kwargs)


def test_inputs_are_checked():
    a, b = _noisy_pair(np.random.default_rng(11))
    with pytest.raises(TypeError, match="b must be a dmft.Trajectory, got dict"):
        dmft.compare(a, {})
    big = _noisy_pair(np.random.default_rng(11), P=3)[0]
    with pytest.raises(ValueError, match=r"different sizes: \(P, K\) = \(2, 2\) vs \(3, 2\)"):
        dmft.compare(a, big)


def test_different_problems_are_compared_with_a_note():
    a, b = _noisy_pair(np.random.default_rng(12))
    b.problem = b.problem.replace(eta=0.22)
    rep = dmft.compare(a, b)
    assert any("eta: 0.2 vs 0.22" in n for n in rep.notes)


# ============================================================================ output
def test_table_rows_and_verdict_line():
    a, b = _noisy_pair(np.random.default_rng(13), T=3)
    rep = dmft.compare(a, b)
    text = str(rep)
    lines = text.splitlines()
    assert lines[0].startswith("A: synthetic") and lines[1].startswith("B: synthetic")
    assert len([ln for ln in lines if ln.split()[:2] in (["0", "M"], ["1", "Q"])]) == 2
    assert lines[-1].startswith("verdict: AGREE") and f"{rep.n_tests} entries" in lines[-1]
    full = rep.table("all").splitlines()
    assert len(full) == 3 + 3 * (4 + 3) + 1
    with pytest.raises(ValueError, match="entries must be 'worst' or 'all'"):
        rep.table("some")
    assert "verdict: AGREE" in repr(rep)


def test_table_marks_exact_and_flagged_entries():
    problem = dmft.Problem(target="tanh", P=1, T=2)
    zeros = np.zeros((2, 1, 1))
    a = _traj(np.array([0.0, 1.0]).reshape(2, 1, 1), np.ones((2, 1, 1)), zeros + 0.0,
              zeros, problem=problem)
    b = _traj(np.array([0.0, 2.0]).reshape(2, 1, 1), np.ones((2, 1, 1)), zeros + 0.0,
              zeros, problem=problem)
    b.M_se[1] = 0.1
    text = dmft.compare(a, b).table("all")
    assert "exact" in text.splitlines()[3]
    assert text.splitlines()[5].rstrip().endswith("-10.00 *")
    assert "DISAGREE" in text


def test_plot_returns_a_figure_with_values_and_z_panels():
    import matplotlib.pyplot as plt

    a, b = _noisy_pair(np.random.default_rng(14))
    rep = dmft.compare(a, b, observables=("M", "Q", "e_gen"))
    fig = rep.plot()
    try:
        assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 6
        z_lines = fig.axes[3].get_lines()  # bottom row, column 0 (M): 4 entries + 4 guides
        assert len(z_lines) == 4 + 4
        np.testing.assert_allclose(z_lines[0].get_ydata(), rep.z["M"][:, 0, 0])
    finally:
        plt.close(fig)


def test_report_type_is_exported_from_the_module():
    a, b = _noisy_pair(np.random.default_rng(15))
    assert isinstance(dmft.compare(a, b), Report)


# ============================================================================ extrapolate
def _sims_from_line(rng, a0, b0, ds, se_scale, T=3, P=2, K=2, noise=True, seeds=None):
    """Simulations whose means follow a0 + b0/d exactly, plus Gaussian noise of the stated SE."""
    problem = dmft.Problem(T=T, P=P)
    sims = []
    for i, d in enumerate(ds):
        se = {k: se_scale * rng.uniform(0.5, 2.0, size=np.shape(v)) for k, v in a0.items()}
        vals = {k: a0[k] + b0[k] / d + (se[k] * rng.normal(size=se[k].shape) if noise else 0)
                for k in a0}
        sims.append(dmft.Trajectory(
            problem, M=vals["M"], Q=vals["Q"], e_train=vals["e"], e_gen=vals["e"],
            M_se=se["M"], Q_se=se["Q"], e_train_se=se["e"], e_gen_se=se["e"],
            provenance={"method": "finite-d", "d": d, "seeds": 10 + i if seeds is None else seeds,
                        "seed": i}))
    return sims


def _line(rng, T=3, P=2, K=2):
    a0 = {"M": rng.normal(size=(T, P, K)), "Q": rng.normal(size=(T, P, P)),
          "e": rng.random(T)}
    b0 = {k: 50 * rng.normal(size=np.shape(v)) for k, v in a0.items()}
    return a0, b0


def test_extrapolate_recovers_an_exact_line():
    rng = np.random.default_rng(20)
    a0, b0 = _line(rng)
    ex = dmft.extrapolate(_sims_from_line(rng, a0, b0, [500, 1000, 4000], 1e-3, noise=False))
    np.testing.assert_allclose(ex.M, a0["M"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ex.Q, a0["Q"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ex.e_gen, a0["e"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(ex.diagnostics["fit_chi2_M"], 0, atol=1e-12)
    assert ex.diagnostics["fit_dof"] == 1
    assert ex.provenance["method"] == "extrapolated" and ex.method == "extrapolated"
    assert ex.provenance["d"] == [500, 1000, 4000] and ex.provenance["seeds"] == [10, 11, 12]
    assert ex.provenance["seed"] == [0, 1, 2] and ex.C is None


def test_two_point_intercept_and_error_by_hand():
    # a = (x2 y1 - x1 y2) / (x2 - x1), Var a = (x2^2 s1^2 + x1^2 s2^2) / (x1 - x2)^2, x = 1/d
    rng = np.random.default_rng(21)
    a0, b0 = _line(rng)
    sims = _sims_from_line(rng, a0, b0, [1000, 3000], 1e-3)
    x1, x2 = 1 / 1000, 1 / 3000
    y1, y2 = sims[0].M, sims[1].M
    s1, s2 = sims[0].M_se, sims[1].M_se
    ex = dmft.extrapolate(sims)
    np.testing.assert_allclose(ex.M, (x2 * y1 - x1 * y2) / (x2 - x1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ex.M_se, np.sqrt(x2**2 * s1**2 + x1**2 * s2**2) / (x1 - x2),
                               rtol=1e-10)


def test_equal_d_are_averaged_like_a_weighted_mean():
    # four runs, two at each d: the fit equals the fit to the two inverse-variance means
    rng = np.random.default_rng(22)
    a0, b0 = _line(rng)
    sims = _sims_from_line(rng, a0, b0, [1000, 1000, 2000, 2000], 1e-3)
    pooled = []
    for i in (0, 2):
        w = [1 / s.Q_se**2 for s in sims[i:i + 2]]
        mean = (w[0] * sims[i].Q + w[1] * sims[i + 1].Q) / (w[0] + w[1])
        pooled.append((mean, 1 / np.sqrt(w[0] + w[1])))
    x1, x2 = 1 / 1000, 1 / 2000
    ex = dmft.extrapolate(sims)
    (y1, s1), (y2, s2) = pooled
    np.testing.assert_allclose(ex.Q, (x2 * y1 - x1 * y2) / (x2 - x1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.Q_se, np.sqrt(x2**2 * s1**2 + x1**2 * s2**2) / (x1 - x2),
                               rtol=1e-9)


def test_extrapolation_error_bars_have_nominal_coverage():
    rng = np.random.default_rng(23)
    zs, chi2 = [], []
    for _ in range(300):
        a0, b0 = _line(rng)
        ex = dmft.extrapolate(_sims_from_line(rng, a0, b0, [1000, 2000, 4000], 2e-3))
        zs.append(((ex.M - a0["M"]) / ex.M_se).ravel())
        zs.append((ex.e_train - a0["e"]) / ex.e_train_se)
        chi2.append(ex.diagnostics["fit_chi2_M"].ravel())
    z, chi2 = np.concatenate(zs), np.concatenate(chi2)
    p = 2 * stats.norm.cdf(2) - 1  # 95.45 %
    rate = np.mean(np.abs(z) <= 2)
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / z.size), rate
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / z.size)
    # one residual degree of freedom per entry: chi2_1 has mean 1 and variance 2
    assert abs(chi2.mean() - 1) < 4 * np.sqrt(2 / chi2.size)


def test_deterministic_entries_extrapolate_to_themselves():
    rng = np.random.default_rng(24)
    sims = _sims_from_line(rng, *_line(rng), [1000, 2000], 1e-3)
    for s in sims:
        s.Q[0], s.Q_se[0] = np.eye(2), 0.0
    ex = dmft.extrapolate(sims)
    np.testing.assert_allclose(ex.Q[0], np.eye(2), rtol=0, atol=1e-13)
    assert np.all(ex.Q_se[0] < 1e-12) and np.all(np.isfinite(ex.Q_se))


def test_extrapolate_uses_the_common_prefix():
    rng = np.random.default_rng(25)
    sims = _sims_from_line(rng, *_line(rng, T=4), [1000, 2000], 1e-3, T=4)
    ex = dmft.extrapolate([sims[0], sims[1].truncated(3)])
    assert ex.T == 3 and ex.problem.T == 3
    np.testing.assert_allclose(ex.M, dmft.extrapolate([s.truncated(3) for s in sims]).M)


@pytest.mark.parametrize("case,exc,pattern", [
    ("one", ValueError, r">= 2 distinct d to fit a \+ b/d, got d = \[1000\]"),
    ("same-d", ValueError, r">= 2 distinct d to fit a \+ b/d, got d = \[1000, 1000\]"),
    ("no-d", ValueError, r"simulations\[1\] \(method 'dmft'\) has provenance\['d'\] = None"),
    ("bad-d", ValueError, r"provenance\['d'\] = -5"),
    ("problem", ValueError, r"simulations\[1\] is for a different problem.*eta: 0.2 vs 0.3"),
    ("type", TypeError, r"simulations\[1\] must be a dmft.Trajectory, got str"),
])
def test_extrapolate_errors(case, exc, pattern):
    rng = np.random.default_rng(26)
    sims = _sims_from_line(rng, *_line(rng), [1000, 2000], 1e-3)
    if case == "one":
        sims = sims[:1]
    elif case == "same-d":
        sims[1].provenance["d"] = 1000
    elif case == "no-d":
        sims[1].provenance = {"method": "dmft"}
    elif case == "bad-d":
        sims[1].provenance["d"] = -5
    elif case == "problem":
        sims[1].problem = sims[1].problem.replace(eta=0.3)
    else:
        sims[1] = "sim.h5"
    with pytest.raises(exc, match=pattern):
        dmft.extrapolate(sims)


def test_extrapolated_trajectory_saves_and_loads(tmp_path):
    rng = np.random.default_rng(27)
    sims = _sims_from_line(rng, *_line(rng), [1000, 2000, 4000], 1e-3, seeds=np.int64(8))
    ex = dmft.extrapolate(sims)
    ex.save(tmp_path / "ex.h5")
    back = dmft.load(tmp_path / "ex.h5")
    np.testing.assert_array_equal(back.M_se, ex.M_se)
    assert back.provenance["d"] == [1000, 2000, 4000] and back.provenance["seeds"] == [8, 8, 8]
    np.testing.assert_array_equal(back.diagnostics["fit_chi2_Q"], ex.diagnostics["fit_chi2_Q"])


def test_extrapolating_the_sharp_reference_simulations(sharp_simulations):
    # an earlier, independent set of simulations of this case (same sizes, other seeds) gave
    # M_00 at t = 11 = 0.3656 +- 0.0015 extrapolated in 1/d (docs/validation.md)
    sims = sharp_simulations
    assert [s.provenance["seeds"] for s in sims] == [400, 200, 80]
    ex = dmft.extrapolate(sims)
    assert abs(ex.M[11, 0, 0] - 0.3656) < 3 * math.hypot(ex.M_se[11, 0, 0], 0.0015)
    assert 0.0010 < ex.M_se[11, 0, 0] < 0.0020  # 400, 200, 80 seeds as before
    # the extrapolation is consistent with each input within the 1/d model
    assert np.all(ex.diagnostics["fit_chi2_M"][1:] < stats.chi2.isf(1e-3 / 44, 1))


# ============================================================================ CLI
@pytest.fixture()
def h5_pair(tmp_path):
    a, b = _noisy_pair(np.random.default_rng(30))
    a.save(tmp_path / "a.h5")
    b.save(tmp_path / "b.h5")
    shifted = _noisy_pair(np.random.default_rng(30), shift_M=0.5)[1]
    shifted.save(tmp_path / "c.h5")
    return tmp_path


def test_cli_compare_agree_and_disagree(h5_pair, capsys):
    d = h5_pair
    assert cli_main(["compare", str(d / "a.h5"), str(d / "b.h5")]) == 0
    out = capsys.readouterr().out
    assert "verdict: AGREE" in out and out.count("\n") == 3 + 5 * 2 + 1
    assert cli_main(["compare", str(d / "a.h5"), str(d / "c.h5"), "--threshold", "5"]) == 1
    out = capsys.readouterr().out
    assert "verdict: DISAGREE" in out and "threshold 5" in out


def test_cli_compare_options(h5_pair, capsys):
    d = h5_pair
    png = d / "cmp.png"
    code = cli_main(["compare", str(d / "a.h5"), str(d / "b.h5"), "--observables", "e_gen",
                     "M", "--all-entries", "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0 and png.stat().st_size > 0 and "figure saved" in out
    assert out.count("e_gen") == 5 and out.count(" M ") == 5 * 4


def test_cli_compare_extrapolates_several_B_files(tmp_path, capsys):
    rng = np.random.default_rng(31)
    a0, b0 = _line(rng)
    for s in _sims_from_line(rng, a0, b0, [1000, 2000, 4000], 1e-3):
        s.save(tmp_path / f"sim{s.provenance['d']}.h5")
    exact = _traj(a0["M"], a0["Q"], np.zeros((3, 2, 2)), np.zeros((3, 2, 2)))
    exact.save(tmp_path / "theory.h5")
    code = cli_main(["compare", str(tmp_path / "theory.h5")]
                    + [str(tmp_path / f"sim{d}.h5") for d in (1000, 2000, 4000)])
    out = capsys.readouterr().out
    assert "B: extrapolated (d=[1000, 2000, 4000]" in out
    assert code == (0 if "AGREE" in out.splitlines()[-1] else 1)


def test_cli_compare_reports_unreadable_files(h5_pair, capsys):
    code = cli_main(["compare", str(h5_pair / "a.h5"), str(h5_pair / "missing.h5")])
    err = capsys.readouterr().err
    assert code == 2 and "missing.h5" in err and err.startswith("dmft: error:")


@pytest.mark.slow  # a fresh interpreter importing numba: ~3-5 s
def test_dmft_compare_console_entry_point(h5_pair):
    proc = subprocess.run([sys.executable, "-m", "dmft.cli", "compare", str(h5_pair / "a.h5"),
                           str(h5_pair / "c.h5")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "verdict: DISAGREE" in proc.stdout
