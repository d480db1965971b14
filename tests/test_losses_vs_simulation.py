"""Classification losses against the package's own simulator (slow: the acceptance grid).

Multi-pass DMFT against simulations at d = 1000, 2000, 4000 extrapolated in 1/d, and the
one-pass theory against one-pass simulations, both with ``dmft.compare`` at threshold 3
(Bonferroni over the entries of M, Q, e_train and e_gen compared). The CI-sized versions are in
``tests/test_losses.py``.
"""

from __future__ import annotations

import pytest

import dmft

FULL_D = {1000: 48, 2000: 24, 4000: 12}
OBSERVABLES = ("M", "Q", "e_train", "e_gen")

CASES = {
    # a two-direction sign target with logistic loss (ReLU: Stein estimator)
    "logistic-sign-he1-he3": dict(target="sign-he1-he3", P=2, activation="relu", alpha=3.0,
                                  eta=1.0, T=10, loss="logistic"),
    # a single-index sign target with hinge loss
    "hinge-sign": dict(target="sign", P=2, activation="tanh", alpha=3.0, eta=0.5, T=10,
                       loss="hinge"),
}


def _sims(problem: dmft.Problem, d_seeds: dict[int, int], seed: int = 0) -> list:
    return [dmft.simulate(problem, d=d, seeds=n, seed=seed + d, progress=False)
            for d, n in d_seeds.items()]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_dmft_matches_extrapolated_simulations(name):
    prob = dmft.Problem(**CASES[name])
    ext = dmft.extrapolate(_sims(prob, FULL_D))
    traj = dmft.solve(prob, samples=1_000_000, seed=1, progress=False)
    report = dmft.compare(traj, ext, threshold=3.0, observables=OBSERVABLES)
    print(report.summary())
    assert report.passed, str(report)
    # the network learns: the misclassification rate falls well below chance
    assert traj.class_error[-1] < 0.45 and traj.class_error[0] == pytest.approx(0.5, abs=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_pass_theory_matches_one_pass_simulations(name):
    prob = dmft.Problem(**{**CASES[name], "schedule": "one-pass", "T": 8})
    ext = dmft.extrapolate(_sims(prob, {1000: 24, 2000: 12, 4000: 6}, seed=7))
    one = dmft.solve(prob, method="one-pass")
    report = dmft.compare(one, ext, threshold=3.0, observables=OBSERVABLES)
    print(report.summary())
    assert report.passed, str(report)
