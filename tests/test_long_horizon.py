"""The multi-pass DMFT at long horizons: against simulations extrapolated in 1/d, and its error
bars over independent seeds (docs/guide/long-horizons.md).

The fast test runs the paper's problem to T = 30 with small simulations; the slow ones are the
issue's checks at T = 1000 (d = 1000, 2000, 4000) and the calibration at T = 400.
"""

from __future__ import annotations

import numpy as np
import pytest

import dmft

PAPER = dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2)


def _against_simulations(T: int, d_seeds: dict[int, int], samples: int, times):
    prob = dmft.Problem(**PAPER, T=T)
    sims = [dmft.simulate(prob, d=d, seeds=n, seed=7 + d, progress=False)
            for d, n in d_seeds.items()]
    ext = dmft.extrapolate(sims)
    traj = dmft.solve(prob, samples=samples, seed=1, progress=False)
    # family-wise 3 sigma (Bonferroni over the entries compared), combined SE
    report = dmft.compare(traj, ext, threshold=3.0, observables=("M", "Q"), t=list(times))
    assert report.passed, str(report)
    return traj


def test_paper_problem_at_T30_matches_extrapolated_simulations():
    traj = _against_simulations(30, {250: 16, 500: 8, 1000: 4}, samples=10**5,
                                times=(5, 10, 20, 29))
    assert np.all(np.isfinite(traj.Q)) and traj.provenance["chol_dropped_total"] >= 0


@pytest.mark.slow
def test_paper_problem_at_T1000_matches_extrapolated_simulations():
    _against_simulations(1000, {1000: 16, 2000: 8, 4000: 4}, samples=10**5,
                         times=(100, 200, 500, 999))


@pytest.mark.slow
def test_error_bars_calibrated_over_20_seeds_at_T400():
    """Spread over 20 seeds within 30% of the mean reported SE, for M, Q and e_gen at
    t = 100, 200, 399 (pooled over entries)."""
    prob = dmft.Problem(**PAPER, T=400)
    times = [100, 200, 399]
    runs = [dmft.solve(prob, samples=10**5, seed=300 + k, progress=False) for k in range(20)]
    for name in ("M", "Q", "e_gen"):
        value = np.stack([getattr(r, name)[times] for r in runs])
        se = np.stack([getattr(r, name + "_se")[times] for r in runs])
        if name == "Q":  # distinct entries only
            iu = np.triu_indices(prob.P)
            value, se = value[..., iu[0], iu[1]], se[..., iu[0], iu[1]]
        observed = value.std(axis=0, ddof=1)
        reported = np.sqrt(np.mean(se**2, axis=0))
        ratio = np.sqrt(np.mean(observed**2) / np.mean(reported**2))
        assert 0.7 < ratio < 1.3, (name, ratio)
