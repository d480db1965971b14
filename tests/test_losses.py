"""Training losses: the registry's formulas and derivatives, dmft.Loss, Problem(loss=...)
validation, and the losses in the three engines (t = 1 equals the one-pass theory, Stein
equals pathwise, a user square loss reproduces the registry one, misclassification rate)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import dmft
from dmft.gaussian import QuadratureOptions
from dmft.losses import LOSSES, get_loss, huber
from dmft.stats import mean_se
from solvers.numerics.committee import committee_F, committee_J


def _square(f, y):
    return 0.5 * (y - f) ** 2


def _square_d1(f, y):
    return f - y


def _square_d2(f, y):
    return 1.0


USER_SQUARE = dmft.Loss(_square, _square_d1, _square_d2, name="user-square")

_FORMULAS = {  # L(f, y) in plain numpy, for the registry entries
    "square": lambda f, y: 0.5 * (y - f) ** 2,
    "logistic": lambda f, y: np.log1p(np.exp(-y * f)),
    "hinge": lambda f, y: np.maximum(0.0, 1.0 - y * f),
    "huber": lambda f, y: np.where(np.abs(y - f) <= 1.0, 0.5 * (y - f) ** 2,
                                   np.abs(y - f) - 0.5),
}


def test_registry_lists_the_losses():
    assert set(LOSSES) == set(_FORMULAS)
    assert [LOSSES[n].code for n in ("square", "logistic", "hinge", "huber")] == [0, 1, 2, 3]
    assert dmft.Problem().loss is LOSSES["square"]


@pytest.mark.parametrize("name", sorted(_FORMULAS))
def test_values_and_derivatives_match_formulas_and_finite_differences(name):
    loss = LOSSES[name]
    rng = np.random.default_rng(0)
    f = 3 * rng.standard_normal(2000)
    y = np.where(rng.random(2000) < 0.5, -1.0, 1.0) if name in ("logistic", "hinge") \
        else rng.standard_normal(2000)
    np.testing.assert_allclose(loss(f, y), _FORMULAS[name](f, y), rtol=1e-12, atol=1e-14)
    eps = 1e-6
    fd1 = (loss(f + eps, y) - loss(f - eps, y)) / (2 * eps)
    fd2 = (loss.d1(f + eps, y) - loss.d1(f - eps, y)) / (2 * eps)
    # away from kinks (hinge at y f = 1, Huber at |y - f| = 1)
    smooth = (np.abs(y * f - 1) > 1e-3) & (np.abs(np.abs(y - f) - 1) > 1e-3)
    np.testing.assert_allclose(loss.d1(f, y)[smooth], fd1[smooth], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(loss.d2(f, y)[smooth], fd2[smooth], rtol=1e-5, atol=1e-7)
    assert loss.smooth == (name != "hinge")


def test_logistic_is_stable_at_large_margins():
    loss = LOSSES["logistic"]
    f = np.array([-800.0, -40.0, 40.0, 800.0])
    y = np.ones(4)
    np.testing.assert_allclose(loss(f, y), [800.0, 40.0, math.exp(-40.0), 0.0], rtol=1e-12)
    np.testing.assert_allclose(loss.d1(f, y), [-1.0, -1.0, -math.exp(-40.0), 0.0], rtol=1e-12)
    assert np.all(np.isfinite(loss.d2(f, y))) and np.all(loss.d2(f, y) >= 0)


def test_huber_threshold_and_names():
    h = get_loss("huber(0.5)")
    assert h.name == "huber(0.5)" and h.param == 0.5 and h == huber(0.5)
    assert get_loss("huber") is LOSSES["huber"] and LOSSES["huber"].param == 1.0
    np.testing.assert_allclose(h(np.array([0.0, 2.0]), 0.0), [0.0, 0.5 * (2.0 - 0.25)])
    p = dmft.Problem(loss="huber(0.5)")
    assert p.to_dict()["loss"] == "huber(0.5)"
    assert dmft.Problem.from_dict(p.to_dict()) == p
    assert "loss" not in dmft.Problem().to_dict()  # the default leaves files as they were


@pytest.mark.parametrize("name", ["logistic", "huber"])
def test_F_and_J_are_gradient_and_hessian_of_the_committee_loss(name):
    loss = LOSSES[name]
    act = dmft.ACTIVATIONS["tanh"]
    sig, dsig, d2sig = act.cfuncs()
    args = loss.kernel_args()
    rng = np.random.default_rng(2)
    P = 3
    a, u, y = rng.standard_normal(P), 0.5 * rng.standard_normal(P), 1.0

    def total(v):
        return float(loss(a @ act(v), y))

    F = np.empty(P)
    r = committee_F(u, y, a, sig, dsig, args, F)
    J = np.empty((P, P))
    committee_J(u, float(loss.d1(y - r, y)), float(loss.d2(y - r, y)), a, dsig, d2sig, J)
    eps, eye = 1e-5, np.eye(P)
    F_fd = np.array([(total(u + eps * e) - total(u - eps * e)) / (2 * eps) for e in eye])
    J_fd = np.array([[(total(u + eps * (e + g)) - total(u + eps * (e - g))
                       - total(u - eps * (e - g)) + total(u - eps * (e + g))) / (4 * eps**2)
                      for g in eye] for e in eye])
    np.testing.assert_allclose(F, F_fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(J, J_fd, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ validation
def test_bad_input_names_the_field():
    with pytest.raises(TypeError, match=r"Loss.dloss \(dL/df\) is required"):
        dmft.Loss(_square)
    with pytest.raises(TypeError, match=r"Loss.d2loss"):
        dmft.Loss(_square, _square_d1)
    with pytest.raises(TypeError, match="Loss.loss must be callable"):
        dmft.Loss("square", _square_d1, _square_d2)
    with pytest.raises(ValueError, match="not a registered loss"):
        dmft.Problem(loss="cross-entropy")
    with pytest.raises(TypeError, match="loss must be a registry name"):
        dmft.Problem(loss=2)
    with pytest.raises(ValueError, match=r"huber threshold must be"):
        dmft.Problem(loss="huber(-1)")
    with pytest.raises(ValueError, match=r"needs labels in \[-1, 1\].*'he2'"):
        dmft.Problem(target="he2", loss="logistic")
    with pytest.raises(ValueError, match="noise=0.1 with loss='logistic'"):
        dmft.Problem(target="sign", loss="logistic", noise=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dmft.Problem(target="he3", loss="hinge")
    assert any("meant for +-1 labels" in str(w.message) for w in caught)
    prob = dmft.Problem(target="sign", P=1, activation="tanh", loss="hinge", T=2)
    with pytest.raises(ValueError, match="estimator='pathwise'.*loss 'hinge'.*Dirac"):
        dmft.solve(prob, samples=2**12, estimator="pathwise", progress=False)


def test_user_loss_that_numba_cannot_compile_names_the_function():
    def bad(f, y):
        return {"f": f}

    loss = dmft.Loss(bad, _square_d1, _square_d2, name="bad")
    with pytest.raises(TypeError, match="Loss.loss of 'bad'.*cannot be compiled by numba"):
        loss(np.zeros(1), np.zeros(1))


def test_binary_labels_and_misclassification_of_a_linear_student():
    """P = 1 linear student, sign target: P(sign(u) != sign(z)) = arccos(rho) / pi."""
    from solvers.population import population_values

    prob = dmft.Problem(target="sign", P=1, activation="linear", a=[1.0], loss="logistic")
    assert prob.binary_labels and not dmft.Problem(target="tanh").binary_labels
    M = np.array([0.0, 0.3, 0.8, 1.5]).reshape(4, 1, 1)
    Q = np.array([1.0, 1.0, 1.2, 2.5]).reshape(4, 1, 1)
    out = population_values(prob, M, Q)
    exact = np.arccos(M[:, 0, 0] / np.sqrt(Q[:, 0, 0])) / np.pi
    assert np.all(np.abs(out["class_error"] - exact) < 4 * out["class_error_se"] + 1e-12)
    assert np.all(out["class_error_se"] < 1e-3)


# ------------------------------------------------------------------------------ engines
_SMALL = dict(P=1, activation="tanh", alpha=2.0, eta=0.5, T=4)


def test_user_square_loss_reproduces_the_registry_to_rounding():
    reg = dmft.Problem(target="tanh", **_SMALL)
    usr = reg.replace(loss=USER_SQUARE)
    solvers = (lambda p: dmft.solve(p, samples=2**13, seed=1, progress=False),
               # QMC for both: the structured quadrature is for the registry square loss only
               lambda p: dmft.solve(p, method="one-pass", options=QuadratureOptions(
                   method="qmc", qmc_replicas=2, qmc_log2=10)),
               lambda p: dmft.simulate(p, d=200, seeds=2, seed=3, progress=False))
    for i, solve in enumerate(solvers):
        a, b = solve(reg), solve(usr)
        # the one-pass theory's e_train is e_gen: by quadrature (registry) or QMC (user)
        for name in ("M", "Q") + (("e_train",) if i != 1 else ()):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-12,
                                       atol=1e-13, err_msg=name)


def test_population_loss_of_a_user_square_loss_equals_gen_error():
    """e_gen of losses other than the registry square one is a QMC population average: for
    a user square loss it equals the square loss's quadrature within 4 SE."""
    from dmft.gaussian import gen_error
    from solvers.population import population_values

    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", loss=USER_SQUARE)
    M = np.array([[[0.3, -0.2], [-0.25, 0.1]], [[0.6, 0.1], [0.0, 0.4]]])
    Q = M @ M.transpose(0, 2, 1) + np.array([[0.8, 0.1], [0.1, 0.7]])
    out = population_values(prob, M, Q)
    exact, _ = gen_error(prob.replace(loss="square"), M, Q)
    assert np.all(np.abs(out["e_gen"] - exact) < 4 * out["e_gen_se"]), (out, exact)
    assert np.all(out["e_gen_se"] < 1e-3)
    with pytest.raises(ValueError, match="gen_error computes the square loss"):
        gen_error(prob, M, Q)


@pytest.mark.parametrize("loss, target", [("logistic", "sign"), ("hinge", "sign"),
                                          ("huber(0.5)", "tanh"), ("square", "sign")])
def test_first_step_equals_the_one_pass_theory(loss, target):
    """Step 0 -> 1 is the same in the multi-pass DMFT and the one-pass theory, for every loss
    (M, Q and e_train(0) within 4 combined SE, Bonferroni over entries is loose here)."""
    prob = dmft.Problem(target=target, loss=loss, **{**_SMALL, "T": 2})
    traj = dmft.solve(prob, samples=2**16, seed=5, progress=False)
    one = dmft.solve(prob, method="one-pass")
    for name in ("M", "Q"):
        a, b = getattr(traj, name)[1], getattr(one, name)[1]
        se = np.hypot(getattr(traj, name + "_se")[1], getattr(one, name + "_se")[1])
        assert np.all(np.abs(a - b) <= 4 * se), (name, a, b, se)
    se = math.hypot(traj.e_train_se[0], one.e_gen_se[0])
    assert abs(traj.e_train[0] - one.e_gen[0]) <= 4 * se
    if prob.binary_labels:
        assert traj.class_error is not None and one.class_error is not None
        assert abs(traj.class_error[0] - 0.5) < 1e-3  # an untrained odd student guesses


def test_stein_and_pathwise_agree_for_logistic_loss_with_tanh():
    prob = dmft.Problem(target="sign-he1-he3", P=2, activation="tanh", alpha=2.0, eta=1.0,
                        T=5, loss="logistic")
    stein = dmft.solve(prob, samples=2**16, seed=2, progress=False)
    path = dmft.solve(prob, samples=2**16, seed=2, estimator="pathwise", progress=False)
    report = dmft.compare(stein, path, threshold=3.0, observables=("M", "Q"))
    assert report.passed, str(report)
    assert np.linalg.norm(stein.M[-1]) > 10 * np.linalg.norm(stein.M_se[-1])  # it learns


def test_dmft_matches_small_simulations_logistic():
    """CI-sized DMFT against simulations (extrapolated from d = 400, 800) for logistic loss."""
    prob = dmft.Problem(target="sign", P=1, activation="tanh", alpha=2.0, eta=1.0, T=5,
                        loss="logistic")
    sims = [dmft.simulate(prob, d=d, seeds=n, seed=d, progress=False)
            for d, n in ((400, 24), (800, 12))]
    traj = dmft.solve(prob, samples=2**17, seed=0, progress=False)
    report = dmft.compare(traj, dmft.extrapolate(sims), threshold=3.0,
                          observables=("M", "Q", "e_train", "e_gen"))
    assert report.passed, str(report)
    assert sims[0].class_error is not None and traj.class_error is not None
    e_ref, e_se = mean_se(sims[1].diagnostics["class_error_runs"])
    assert np.all(np.abs(traj.class_error - e_ref) < 4 * np.hypot(e_se, traj.class_error_se)
                  + 0.02)  # finite d = 800: loose


def test_hdf5_round_trip_with_losses(tmp_path):
    prob = dmft.Problem(target="sign", P=1, activation="tanh", loss="huber(0.5)", T=2)
    traj = dmft.Trajectory(prob, M=np.zeros((2, 1, 1)), Q=np.ones((2, 1, 1)),
                           e_train=np.zeros(2), e_gen=np.ones(2),
                           diagnostics={"class_error": np.array([0.5, 0.4]),
                                        "class_error_se": np.zeros(2)})
    traj.save(tmp_path / "a.h5")
    back = dmft.load(tmp_path / "a.h5")
    assert back.problem == prob and back.problem.loss.param == 0.5
    np.testing.assert_array_equal(back.class_error, [0.5, 0.4])
    user = traj.problem.replace(loss=USER_SQUARE, target="tanh")
    dmft.Trajectory(user, M=traj.M, Q=traj.Q, e_train=traj.e_train,
                    e_gen=traj.e_gen).save(tmp_path / "b.h5")
    with pytest.raises(ValueError, match="loss 'user-square' is user-defined; pass loss="):
        dmft.load(tmp_path / "b.h5")
    assert dmft.load(tmp_path / "b.h5", loss=USER_SQUARE).problem.loss is USER_SQUARE


def test_cli_loss_option(tmp_path):
    from dmft.cli import main

    main(["solve", "--target", "sign", "--P", "1", "--activation", "tanh", "--loss",
          "logistic", "--T", "2", "--samples", "4096", "--quiet", "--out", str(tmp_path / "s.h5")])
