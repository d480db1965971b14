"""Gradient flow and Langevin dynamics: Problem fields, Trajectory.time, the exact linear case,
the simulator's integrators, temperature in the discrete DMFT and the one-pass theory, the
flow DMFT (Richardson) and population flow."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import dmft
from dmft.exact import (
    linear_exact,
    linear_flow_overlaps,
    linear_overlaps,
    marchenko_pastur_expect,
    marchenko_pastur_moment,
)
from solvers.flow_dmft import richardson


def linear(**kw) -> dmft.Problem:
    return dmft.Problem(target="linear", P=1, activation="linear", **kw)


# ---------------------------------------------------------------------------- Problem fields
@pytest.mark.parametrize("kw, words", [
    (dict(dynamics="flow", t_max=1.0, eta=0.1), ["eta"]),
    (dict(dynamics="flow", t_max=1.0, T=4), ["T"]),
    (dict(dynamics="flow"), ["t_max"]),
    (dict(dynamics="flow", t_max=0.0), ["t_max", "> 0"]),
    (dict(t_max=2.0), ["t_max", "flow"]),
    (dict(dynamics="sgd"), ["dynamics", "gd", "flow"]),
    (dict(temperature=-0.1), ["temperature", ">= 0"]),
    (dict(dynamics="flow", t_max=1.0, schedule=dmft.Cyclic(2)), ["schedule", "flow"]),
])
def test_bad_dynamics_fields_name_the_parameter(kw, words):
    with pytest.raises(ValueError) as err:
        dmft.Problem(**kw)
    for word in words:
        assert word in str(err.value)


def test_gd_problems_keep_their_dictionary_and_flow_round_trips():
    gd = dmft.Problem()
    assert "dynamics" not in gd.to_dict() and "temperature" not in gd.to_dict()
    assert (gd.eta, gd.T) == (0.2, 7)
    flow = dmft.Problem(dynamics="flow", t_max=3.0, temperature=0.1)
    assert dmft.Problem.from_dict(flow.to_dict()) == flow
    assert (flow.eta, flow.T) == (None, None)
    assert gd.replace(dynamics="flow", t_max=2.0).is_flow  # eta and T dropped
    assert flow.replace(dynamics="gd").eta == 0.2
    np.testing.assert_allclose(flow.times(0.5), [0, 0.5, 1, 1.5, 2, 2.5, 3])
    with pytest.raises(ValueError, match="dt"):
        flow.times(0.7)
    with pytest.raises(ValueError, match="dt"):
        gd.times(0.1)


# ---------------------------------------------------------------------------- Trajectory.time
def _traj(problem, T, **kw):
    P, K = problem.P, problem.K
    return dmft.Trajectory(problem, M=np.arange(T * P * K, dtype=float).reshape(T, P, K),
                           Q=np.ones((T, P, P)), e_train=np.zeros(T), e_gen=np.ones(T), **kw)


def test_time_round_trips_and_old_files_get_eta_step(tmp_path):
    gd = _traj(dmft.Problem(eta=0.5, T=4), 4)
    np.testing.assert_allclose(gd.time, [0, 0.5, 1, 1.5])
    flow = _traj(dmft.Problem(dynamics="flow", t_max=1.0), 5, provenance={"dt": 0.25})
    np.testing.assert_allclose(flow.time, [0, 0.25, 0.5, 0.75, 1.0])
    for traj in (gd, flow):
        traj.save(tmp_path / "t.h5")
        back = dmft.load(tmp_path / "t.h5")
        np.testing.assert_array_equal(back.time, traj.time)
        assert back.problem == traj.problem
    gd.save(tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "a") as f:  # a file written before the time field
        del f["physical_time"]
    np.testing.assert_allclose(dmft.load(tmp_path / "old.h5").time, gd.time)
    cut = flow.truncated(3)
    assert cut.problem.t_max == 0.5 and cut.T == 3
    with pytest.raises(ValueError, match="increasing"):
        _traj(dmft.Problem(), 7, time=np.zeros(7))


def test_compare_aligns_flow_grids_and_extrapolate_refuses_mixed_grids():
    prob = dmft.Problem(dynamics="flow", t_max=1.0)
    fine = _traj(prob, 5, provenance={"dt": 0.25})
    coarse = fine.at_times([0.0, 0.5, 1.0])
    np.testing.assert_array_equal(coarse.M, fine.M[[0, 2, 4]])
    report = dmft.compare(fine, coarse)
    assert report.passed and len(report.times) == 3
    assert any("time grids differ" in note for note in report.notes)
    a = _traj(prob, 5, provenance={"dt": 0.25, "d": 100, "method": "simulate"})
    b = _traj(prob, 3, provenance={"dt": 0.5, "d": 200, "method": "simulate"})
    with pytest.raises(ValueError, match="time grid"):
        dmft.extrapolate([a, b])


# ---------------------------------------------------------------------------- exact linear case
def test_marchenko_pastur_quadrature_matches_the_moments():
    for alpha in (3.0, 0.5):
        for k in range(6):
            got = float(marchenko_pastur_expect(lambda x, k=k: x**k, alpha))
            assert got == pytest.approx(float(marchenko_pastur_moment(k, alpha)), rel=1e-12)


def test_exact_flow_is_the_small_eta_limit_of_exact_gd():
    """GD at eta -> Euler-Maruyama of the flow: the gap at t = 1 halves with eta."""
    flow = linear_flow_overlaps(3.0, [1.0], temperature=0.2)
    gaps = []
    for eta in (0.04, 0.02):
        gd = linear_overlaps(3.0, eta, int(round(1 / eta)) + 1, temperature=0.2)
        gaps.append([abs(gd[k][-1] - flow[k][-1]) for k in ("M", "Q")])
    ratio = np.array(gaps[0]) / np.array(gaps[1])
    assert np.all((ratio > 1.8) & (ratio < 2.2))


def test_langevin_without_data_is_a_random_walk():
    """alpha -> 0: no gradient, Q grows by 2 tau t (flow) and 2 eta tau per step (GD)."""
    flow = linear_flow_overlaps(1e-9, [0.0, 1.0, 2.0], temperature=0.3)
    np.testing.assert_allclose(flow["Q"], [1.0, 1.6, 2.2], atol=1e-6)
    gd = linear_overlaps(1e-9, 0.1, 3, temperature=0.3)
    np.testing.assert_allclose(gd["Q"], [1.0, 1.06, 1.12], atol=1e-6)


def test_richardson_is_second_order_on_the_exact_case():
    """Measured order of 2 X(dt/2) - X(dt) at dt = 0.05, 0.025, 0.0125 (t = 1, tau = 0.2)."""
    prob = linear(dynamics="flow", t_max=1.0, temperature=0.2)
    errors = []
    for dt in (0.05, 0.025, 0.0125):
        n = int(round(1 / dt))
        coarse = linear_exact(prob.replace(dynamics="gd", eta=dt, T=n + 1))
        fine = linear_exact(prob.replace(dynamics="gd", eta=dt / 2, T=2 * n + 1))
        exact = linear_exact(prob, dt=dt)
        rich = richardson(coarse, fine, prob)
        errors.append([abs(rich.M[-1, 0, 0] - exact.M[-1, 0, 0]),
                       abs(rich.Q[-1, 0, 0] - exact.Q[-1, 0, 0])])
    errors = np.array(errors)
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all((orders > 1.8) & (orders < 2.2)), orders


# ---------------------------------------------------------------------------- simulator
def test_rk4_flow_simulation_converges_when_dt_is_halved():
    prob = dmft.Problem(target="tanh", P=1, activation="tanh", dynamics="flow", t_max=1.0)
    a = dmft.simulate(prob, d=200, seeds=1, dt=0.25, progress=False)
    b = dmft.simulate(prob, d=200, seeds=1, dt=0.125, progress=False).at_times(a.time)
    c = dmft.simulate(prob, d=200, seeds=1, dt=0.0625, progress=False).at_times(a.time)
    err_ab, err_bc = np.abs(a.M - b.M).max(), np.abs(b.M - c.M).max()
    assert err_ab < 1e-3 and err_bc < err_ab / 8  # fourth order: / 16 asymptotically


@pytest.mark.parametrize("dynamics", ["gd", "flow"])
def test_linear_simulation_at_temperature_matches_the_exact_case(dynamics):
    kw = dict(eta=0.2, T=5) if dynamics == "gd" else dict(dynamics="flow", t_max=1.0)
    prob = linear(temperature=0.3, **kw)
    dt = None if dynamics == "gd" else 0.25
    # the simulator at its default dt (stochastic Heun), compared on the exact case's grid
    sims = [dmft.simulate(prob, d=d, seeds=6, seed=3, progress=False) for d in (300, 600)]
    exact = linear_exact(prob, dt=dt)
    sims = [s.at_times(exact.time) for s in sims]
    report = dmft.compare(exact, dmft.extrapolate(sims))
    assert report.passed, str(report)
    # the noise is there: Q above its tau = 0 value by more than the error bars
    cold = linear_exact(prob.replace(temperature=0.0), dt=dt)
    assert np.all(sims[1].Q[-1, 0, 0] - cold.Q[-1, 0, 0] > 5 * sims[1].Q_se[-1, 0, 0])


def test_flow_simulation_refuses_population_flow():
    prob = dmft.Problem(target="he3", P=1, dynamics="flow", t_max=1.0, schedule="one-pass")
    with pytest.raises(ValueError, match="one-pass"):
        dmft.simulate(prob, d=100, seeds=1)


# ---------------------------------------------------------------------------- DMFT
def test_discrete_dmft_at_temperature_matches_the_exact_case():
    prob = linear(eta=0.2, T=5, temperature=0.3)
    traj = dmft.solve(prob, samples=2**15, seed=0, progress=False)
    assert dmft.compare(traj, linear_exact(prob)).passed


def test_flow_dmft_matches_the_exact_case():
    prob = linear(dynamics="flow", t_max=0.5, temperature=0.3)
    traj = dmft.solve(prob, samples=2**16, seed=0, dt=0.05, progress=False)
    assert traj.provenance["dt"] == 0.05 and traj.method == "dmft"
    np.testing.assert_allclose(traj.time, 0.05 * np.arange(11))
    report = dmft.compare(traj, linear_exact(prob, dt=0.05))
    # Richardson's own error at dt = 0.05 (at most 1.5e-3 here, at early times where
    # dt lambda_max = 0.37) is below the SE
    assert report.passed, str(report)


# ---------------------------------------------------------------------------- one-pass
def test_onepass_temperature_adds_2_eta_tau_to_Q():
    prob = dmft.Problem(target="he3", P=1, activation="tanh", T=3, schedule="one-pass")
    cold = dmft.solve(prob, method="one-pass")
    warm = dmft.solve(prob.replace(temperature=0.5), method="one-pass")
    np.testing.assert_allclose(warm.Q[1] - cold.Q[1], [[2 * 0.2 * 0.5]], rtol=1e-12)


def test_population_flow_is_the_small_eta_limit_of_the_onepass_recursion():
    flow = dmft.Problem(target="tanh", P=1, activation="tanh", dynamics="flow", t_max=1.0,
                        schedule="one-pass", temperature=0.1)
    ode = dmft.solve(flow, method="one-pass", dt=0.25)
    assert ode.provenance["integrator"] == "RK4"
    gaps = []
    for eta in (0.05, 0.025):
        gd = dmft.solve(flow.replace(dynamics="gd", eta=eta, T=int(round(1 / eta)) + 1),
                        method="one-pass")
        gaps.append(np.abs(gd.at_times(ode.time).M - ode.M).max())
    assert 1.7 < gaps[0] / gaps[1] < 2.3  # first order in eta: the ODE is the limit


# ---------------------------------------------------------------------------- command line
def test_cli_simulates_flow_and_names_a_wrong_eta(tmp_path, capsys):
    from dmft.cli import main

    out = tmp_path / "flow.h5"
    code = main(["simulate", "--target", "he3", "--P", "1", "--dynamics", "flow", "--t-max",
                 "0.5", "--dt", "0.25", "--temperature", "0.1", "--d", "100", "--seeds", "2",
                 "--out", str(out), "--quiet"])
    assert code == 0 and "t=0.25" in capsys.readouterr().out
    traj = dmft.load(out)
    np.testing.assert_allclose(traj.time, [0.0, 0.25, 0.5])
    assert traj.problem.temperature == 0.1 and traj.provenance["integrator"] == "stochastic Heun"
    code = main(["solve", "--dynamics", "flow", "--t-max", "1", "--eta", "0.1", "--quiet",
                 "--out", str(tmp_path / "x.h5")])
    assert code != 0 and "eta" in capsys.readouterr().err
