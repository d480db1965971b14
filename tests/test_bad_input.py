"""Bad input and divergence: each case gets an early error that names its cause.

Most cases are tested next to the code they concern; this file holds the rest and is the index:

- runaway growth raises DivergenceError with the step, the partial trajectory and eta:
  ``test_multipass.py`` (``test_divergence_raises_with_partial_trajectory``,
  ``test_runaway_growth_at_a_large_step_names_eta_and_the_largest_stable_one``,
  ``test_largest_stable_eta_is_exact_for_the_linear_model``), ``test_finite_d.py`` and
  ``test_onepass.py`` (same names; one-pass also ``test_geometric_growth_raises_before_the_bound``);
  the bound itself and the messages: below;
- a non-finite target value is the target's fault: ``test_problem.py``
  (``test_non_finite_target_value_names_the_target_and_the_input``,
  ``test_non_finite_target_is_reported_as_the_targets_fault_by_the_solvers``), and the
  ``non_finite`` tests of ``test_multipass.py``, ``test_finite_d.py``, ``test_onepass.py``; a
  non-finite activation at t = 0 is not blamed on eta: below;
- a non-vectorised target, or one of the wrong shape: ``test_problem.py``
  (``test_non_vectorised_target_is_refused_at_problem_construction``,
  ``test_target_of_the_wrong_shape_is_refused_at_problem_construction``);
- an activation numba cannot compile: ``test_problem.py``
  (``test_activation_numba_cannot_compile_gives_one_clear_line``);
- a truncated or non-HDF5 file, a sweep store given to ``dmft.load``: ``test_io.py``;
- integral floats accepted, others refused: ``test_problem.py``
  (``test_integral_floats_are_accepted_as_integers``), ``test_finite_d.py``
  (``test_integral_floats_accepted_for_counts``), the solver options: below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import dmft
from solvers.divergence import GROWTH, Divergence, diverged


# ------------------------------------------------------------------ integral floats, options
def test_dmft_options_accept_integral_floats_with_the_same_result():
    prob = dmft.Problem(T=3)
    ints = dmft.solve(prob, samples=8192, replicas=4, seed=2, progress=False)
    floats = dmft.solve(prob, samples=8192.0, replicas=4.0, seed=2.0, progress=False)
    np.testing.assert_array_equal(floats.M, ints.M)
    np.testing.assert_array_equal(floats.Q_se, ints.Q_se)
    assert floats.provenance["seed"] == 2 and type(floats.provenance["seed"]) is int


@pytest.mark.parametrize("option, value, message", [
    ("samples", 8192.5, r"samples must be an integer >= 1, got 8192.5"),
    ("replicas", 1, r"replicas must be an integer >= 2, got 1"),
    ("seed", 1.5, r"seed must be an integer >= 0, got 1.5"),
    ("seed", -1, r"seed must be an integer >= 0, got -1"),
])
def test_dmft_options_out_of_range_are_refused_naming_them(option, value, message):
    options = {"samples": 8192, "seed": 0, option: value}
    with pytest.raises(ValueError, match=message):
        dmft.solve(dmft.Problem(T=3), progress=False, **options)


@pytest.mark.parametrize("options, message", [
    ({"d": 100.5}, r"d must be an integer >= 4, got 100.5"),
    ({"seeds": 2.5}, r"seeds must be an integer >= 1, got 2.5"),
    ({"seed": 0.5}, r"seed must be an integer >= 0, got 0.5"),
])
def test_simulator_options_that_are_not_integers_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        dmft.simulate(dmft.Problem(T=3), **{"d": 100, **options})


@pytest.mark.parametrize("field, value", [("P", 2.5), ("T", 7.5), ("P", True), ("T", "7")])
def test_problem_sizes_that_are_not_integers_are_refused(field, value):
    with pytest.raises((TypeError, ValueError), match=field):
        dmft.Problem(**{field: value})


# ------------------------------------------------------------------------- divergence bound
def _run(e_train, q_diag):
    """(R=1, n) histories from per-step training losses and a P=1 Q."""
    e = np.array([e_train], dtype=float)
    Q = np.array(q_diag, dtype=float)[None, :, None, None]
    return e, Q


def test_bound_on_the_training_loss_and_on_q():
    e, Q = _run([1.0, 10.0, 2e6], [1.0, 1.0, 1.0])
    stop = diverged(e, Q, stopped=False)
    assert stop.step == 2 and "training loss grew past" in stop.reason
    e, Q = _run([1.0, 1.0, 1.0], [1.0, 1e3, 3e6])  # scale max(1, Q_0, 2 e_train(0)) = 2
    stop = diverged(e, Q, stopped=False)
    assert stop.step == 2 and "diagonal entry of Q" in stop.reason
    e, Q = _run([1.0, 1.0, 1.0], [1.0, np.inf, np.nan])
    assert diverged(e, Q, stopped=False) == Divergence(1, "non-finite overlaps")
    # finite so far but the computation stopped on non-finite values at the next step
    e, Q = _run([1.0, 1.0], [1.0, 2.0])
    assert diverged(e, Q, stopped=True) == Divergence(2, "non-finite kernels or overlaps")
    assert diverged(e, Q, stopped=False) is None


def test_bound_scales_with_the_start_so_large_targets_are_not_divergences():
    # a student that must grow to fit a target of loss 1e4 at t = 0: Q may reach ~2e4 x 1e6
    e, Q = _run([1e4, 5e3, 1e3], [1.0, 1e9, 1.5e10])
    assert diverged(e, Q, stopped=False) is None
    e, Q = _run([1e4, 5e3, 1e3], [1.0, 1e9, 3 * GROWTH * 1e4])
    assert diverged(e, Q, stopped=False).step == 2
    # labels so large that the loss at t = 0 overflows: finiteness only
    e, Q = _run([np.inf, np.inf, np.inf], [1.0, 1e200, 1e300])
    assert diverged(e, Q, stopped=False) is None
    e, Q = _run([np.nan, 1.0], [1.0, 1.0])  # NaN at t = 0 (always measured): broken inputs
    assert diverged(e, Q, stopped=False) == Divergence(0, "the training loss is NaN")
    e, Q = _run([1.0, np.nan, 1.0], [1.0, 1.0, 1.0])  # later NaN: a step not measured
    assert diverged(e, Q, stopped=False) is None


def test_divergence_messages_name_eta_and_the_largest_stable_one():
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=2.0, T=5)
    edge = 2 / (1 + math.sqrt(3.0)) ** 2  # exact for the linear model (Lambda(0) = alpha)
    err = Divergence(3, "a diagonal entry of Q grew").error(prob, "DMFT", np.full((4, 1, 1), 3.0))
    text = str(err)
    assert err.step == 3 and "DMFT diverged at step t=3 with eta=2:" in text
    assert f"largest stable eta at t = 0 is about {edge:.3g}" in text and "Reduce eta below" in text
    # below the estimate: the curvature grew during training
    err = Divergence(3, "x").error(prob.replace(eta=0.1), "DMFT", np.full((4, 1, 1), 3.0))
    assert "eta is below it, so the curvature grew during training" in str(err)
    assert str(Divergence(3, "x").error(prob, "finite-d GD")).endswith("Reduce eta.")
    # at t = 0 no step was taken: the functions are at fault, not eta
    text = str(Divergence(0, "the training loss is NaN").error(prob, "finite-d GD"))
    assert "not a step-size problem" in text and "'linear'" in text and "eta" not in text


def _log(x):
    return math.log(x)  # NaN for x < 0: half of the student's pre-activations


def _log_d1(x):
    return 1.0 / x


def _log_d2(x):
    return -1.0 / (x * x)


@pytest.mark.parametrize("run", [
    lambda p: dmft.simulate(p, d=50, seeds=2, seed=0, progress=False),
    lambda p: dmft.solve(p, samples=4096, replicas=2, seed=0, progress=False),
], ids=["simulate", "dmft"])
def test_activation_returning_nan_is_not_blamed_on_eta(run):
    act = dmft.Activation(_log, _log_d1, _log_d2, name="log")
    prob = dmft.Problem(target="tanh", P=1, activation=act, a=[1.0], T=3)
    with pytest.raises(dmft.DivergenceError, match="not a step-size problem") as info:
        run(prob)
    assert info.value.step == 0 and "'log'" in str(info.value)
    assert "reduce eta" not in str(info.value).lower()
