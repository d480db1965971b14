"""DMFT against the package's own finite-d simulator, extrapolated to d -> infinity in 1/d.

For each case: simulations at three d (seeds scaled so each d has a similar standard error),
a weighted a + b/d fit per entry (``dmft.extrapolate``), and ``dmft.compare`` on M and Q at
threshold 3 (family-wise: the per-entry critical |z| is Bonferroni-corrected for the number of
entries compared, so the check stays a 3-sigma test however many entries there are). The full
grid is slow-marked; CI runs one reduced case.
"""

from __future__ import annotations

import numpy as np
import pytest

import dmft

FULL_D = {1000: 48, 2000: 24, 4000: 12}


def _check(problem: dmft.Problem, d_seeds: dict[int, int], samples: int, seed: int = 0):
    sims = [dmft.simulate(problem, d=d, seeds=n, seed=seed + d) for d, n in d_seeds.items()]
    ext = dmft.extrapolate(sims)
    traj = dmft.solve(problem, samples=samples, seed=seed)
    report = dmft.compare(traj, ext, threshold=3.0, observables=("M", "Q"))
    assert report.passed, str(report)
    return traj, ext


def test_he3_single_unit_reduced():
    """CI-sized: he3 (P = 1, eta 0.2): the overlap appears at t = 2 and matches simulations."""
    prob = dmft.Problem(target="he3", P=1, activation="relu", alpha=3.0, eta=0.2, T=6)
    traj, _ = _check(prob, {500: 32, 1000: 16, 2000: 8}, samples=1_000_000)
    m, se = np.abs(traj.M[:, 0, 0]), traj.M_se[:, 0, 0]
    assert m[1] <= 3 * se[1]  # no first Hermite component: nothing at step 1
    assert np.all(m[2:] > 5 * se[2:])


CASES = [
    ("staircase", 2, 0.2, "full"),
    ("staircase", 2, 0.5, "full"),
    ("tanh-sum", 2, 0.2, "full"),
    ("tanh-sum", 2, 0.5, "full"),
    ("he3", 1, 0.2, "full"),
    ("he3", 2, 0.2, "full"),
    ("he3", 2, 0.5, "full"),
    ("he2", 1, 0.5, "full"),
    ("tanh-he1-he3", 2, 0.4, dmft.Cyclic(2)),
    ("tanh-he1-he3", 2, 0.4, dmft.Bernoulli(0.5)),
]


@pytest.mark.slow
@pytest.mark.parametrize("target, P, eta, schedule", CASES)
def test_dmft_matches_extrapolated_simulations(target, P, eta, schedule):
    prob = dmft.Problem(target=target, P=P, activation="relu", alpha=3.0, eta=eta, T=10,
                        schedule=schedule)
    traj, _ = _check(prob, FULL_D, samples=1_000_000)
    if target == "he3" and eta == 0.2:  # at eta 0.5 the step-2 signal is ~5 SE at S = 1e6
        norms = np.linalg.norm(traj.M, axis=(1, 2))
        assert norms[2] > 5 * np.linalg.norm(traj.M_se[2])
    if target == "he2":  # even target: never learned
        assert np.all(np.abs(traj.M) <= 3 * traj.M_se + 1e-15)
