"""Long statistical checks of gradient flow and Langevin dynamics (``-m slow``): the flow DMFT
against the eta -> 0 limit of the discrete DMFT and against finite-d simulations extrapolated in
1/d, with family-wise tolerances from the standard errors (dmft.compare)."""

from __future__ import annotations

import numpy as np
import pytest

import dmft
from dmft.trajectory import OBSERVABLES

pytestmark = pytest.mark.slow

HE3 = dict(target="he3", P=1, activation="relu")
PAPER = dict(target="tanh-he1-he3", P=2, activation="relu")


def _combine(trajs, weights, problem, times):
    """sum_i w_i X_i at ``times`` with standard errors in quadrature (independent runs)."""
    out = {}
    for name in OBSERVABLES:
        vals = [getattr(t.at_times(times), name) for t in trajs]
        ses = [getattr(t.at_times(times), name + "_se") for t in trajs]
        out[name] = sum(w * v for w, v in zip(weights, vals, strict=True))
        out[name + "_se"] = np.sqrt(sum((w * s) ** 2 for w, s in zip(weights, ses,
                                                                      strict=True)))
    prov = {"method": "richardson", "replicas": min(t.provenance["replicas"] for t in trajs)}
    return dmft.Trajectory(problem=problem, provenance=prov, time=np.asarray(times), **out)


@pytest.mark.parametrize("temperature", [0.0, 0.05])
def test_discrete_dmft_at_small_eta_extrapolates_to_the_flow_solver(temperature):
    """Quadratic Richardson over eta = 0.04, 0.02, 0.01 against the flow DMFT at t = 1, 2, 4."""
    flow = dmft.Problem(**HE3, dynamics="flow", t_max=4.0, temperature=temperature)
    times = [0.0, 1.0, 2.0, 4.0]
    discrete = [dmft.solve(flow.replace(dynamics="gd", eta=eta, T=int(round(4 / eta)) + 1),
                           samples=2**16, seed=10 + i, progress=False)
                for i, eta in enumerate((0.04, 0.02, 0.01))]
    # X(eta) = X0 + a eta + b eta^2 through the three points: X0 = (X4 - 6 X2 + 8 X1) / 3
    limit = _combine(discrete, (1 / 3, -2.0, 8 / 3), flow, times)
    traj = dmft.solve(flow, samples=2**16, seed=0, dt=0.05, progress=False).at_times(times)
    report = dmft.compare(traj, limit, observables=("M", "Q", "e_train"))
    print(f"max |z| (normal-equivalent) {report.max_abs_z_equiv:.2f} <= {report.z_crit:.2f}")
    assert report.passed, str(report)


@pytest.mark.parametrize("case, temperature", [(HE3, 0.0), (HE3, 0.05), (PAPER, 0.0)])
def test_flow_dmft_matches_simulations_extrapolated_in_1_over_d(case, temperature):
    flow = dmft.Problem(**case, dynamics="flow", t_max=2.0, temperature=temperature)
    traj = dmft.solve(flow, samples=2**17, seed=0, dt=0.1, progress=False)
    sims = [dmft.simulate(flow, d=d, seeds=seeds, seed=1, dt=0.1, progress=False)
            for d, seeds in ((1000, 16), (2000, 8), (4000, 4))]
    report = dmft.compare(traj, dmft.extrapolate(sims), observables=("M", "Q"))
    print(f"max |z| (normal-equivalent) {report.max_abs_z_equiv:.2f} <= {report.z_crit:.2f}")
    assert report.passed, str(report)


def test_flow_dmft_stein_and_pathwise_agree_for_tanh_at_temperature():
    flow = dmft.Problem(target="tanh-he1-he3", P=2, activation="tanh", dynamics="flow",
                        t_max=1.0, temperature=0.05)
    stein = dmft.solve(flow, samples=2**16, seed=0, dt=0.1, progress=False)
    pathwise = dmft.solve(flow, samples=2**16, seed=1, dt=0.1, estimator="pathwise",
                          progress=False)
    report = dmft.compare(stein, pathwise, observables=("M", "Q", "e_train"))
    print(f"max |z| (normal-equivalent) {report.max_abs_z_equiv:.2f} <= {report.z_crit:.2f}")
    assert report.passed, str(report)
