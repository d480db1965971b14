"""The paper's figures (docs/reproducing-the-paper.md) at reduced size: their claims, and the
comparison layer's verdict on the sharp reference case (docs/validation.md).

Claims are checked on the individual overlaps ``Series.parts`` with their own standard errors.
"Within k SE of 0" over many entries uses the Bonferroni-corrected critical value of a family-wise
k-sigma test (as dmft.compare does); deterministic quadrature results (standard error 0) get an
absolute floor of 1e-8, far above the one-pass quadrature error (~1e-10 per step, one-pass solver)
and far below every signal tested here (>= 1e-3).
"""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

import dmft
from dmft import figures as F
from dmft.stats import critical_value
from dmft.trajectory import Trajectory

QUAD_ATOL = 1e-8


# Monte Carlo standard errors estimated from k replicas (DMFT) or seeds (simulations) make
# value / SE Student-t with k - 1 degrees of freedom, whose tails are much heavier than the
# normal's at a Bonferroni-corrected level: with the normal critical value a panel of 20 zero
# entries from a 16-replica solve fails ~3% of the time instead of the intended 0.27%.
DMFT_DOF = 16 - 1  # dmft.solve's default replicas


def assert_zero(values: np.ndarray, se: np.ndarray, what: str, threshold: float = 3.0,
                dof: int | None = None) -> None:
    """All entries within the Bonferroni-corrected ``threshold`` SE of 0 (plus QUAD_ATOL);
    ``dof``: degrees of freedom of Monte Carlo SEs (see DMFT_DOF)."""
    values, se = np.asarray(values), np.asarray(se)
    zc = critical_value(threshold, values.size, math.inf if dof is None else dof)
    bad = np.abs(values) > zc * se + QUAD_ATOL
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {values.size} entries beyond {zc:.2f} SE of 0; worst "
        f"|value|/SE = {np.max(np.abs(values) / np.where(se > 0, se, np.nan)):.2f}, "
        f"values {values[bad][:5]}, SE {se[bad][:5]}"
    )


def expect_gz(g, n: int = 120) -> float:
    """E[g(z) z], z ~ N(0, 1), by Gauss-Hermite (independent of dmft.gaussian)."""
    x, w = hermegauss(n)
    return float(np.sum(w * g(x) * x) / np.sum(w))


# ----------------------------------------------------------------------------- Fig. 1
@pytest.fixture(scope="module")
def fig1_theory():
    sizes = F.Sizes(samples=10**6, d=50, seeds=2)
    return F.fig1(sizes, caption_settings=True, methods=("dmft", "one-pass"), progress=False)


@pytest.mark.parametrize("target, g", [
    ("tanh", np.tanh), ("he3", lambda x: x**3 - 3 * x), ("he4", lambda x: x**4 - 6 * x**2 + 3),
])
def test_fig1_first_step_matches_closed_form(fig1_theory, target, g):
    # closed form (docs/theory/learnability.md): M_1 = eta alpha a E[relu'(h0)] E[g z]
    # = 0.1 * 3 * 1 * 1/2 * E[g z] (zero for He_k>1)
    m1 = 0.1 * 3.0 * 0.5 * expect_gz(g)
    panel = fig1_theory.panel(f"g* = {target}")
    dm, op = panel.series["dmft"], panel.series["one-pass"]
    for s in (dm, op):
        # orientation may flip the sign of the whole curve (P = 1)
        assert abs(abs(s.parts[1, 0]) - abs(m1)) <= 3 * s.parts_se[1, 0] + QUAD_ATOL, (
            s.method, s.parts[1, 0], m1)


def test_fig1_he3_learned_by_multipass_only(fig1_theory):
    panel = fig1_theory.panel("g* = he3")
    dm, op = panel.series["dmft"], panel.series["one-pass"]
    # multi-pass: beyond 5 SE from step 2 on (the paper's claim: "only multi-pass, from step 2")
    z = np.abs(dm.parts[2:, 0]) / dm.parts_se[2:, 0]
    assert np.all(z > 5), f"He3 multi-pass |M_t| / SE for t >= 2: {z}"
    assert_zero(op.parts[1:], op.parts_se[1:], "He3 one-pass theory")


def test_fig1_he4_learned_by_neither(fig1_theory):
    panel = fig1_theory.panel("g* = he4")
    for method in ("dmft", "one-pass"):
        s = panel.series[method]
        assert_zero(s.parts[1:], s.parts_se[1:], f"He4 {method}",
                    dof=DMFT_DOF if method == "dmft" else None)


def test_fig1_tanh_learned_by_both(fig1_theory):
    panel = fig1_theory.panel("g* = tanh")
    dm, op = panel.series["dmft"], panel.series["one-pass"]
    assert np.all(dm.parts[1:, 0] > 5 * dm.parts_se[1:, 0])
    assert np.all(np.diff(op.parts[:, 0]) > 0), "one-pass tanh overlap must grow at every step"


# ----------------------------------------------------------------------------- Fig. 2
@pytest.fixture(scope="module")
def fig2_theory():
    sizes = F.Sizes(samples=2 * 10**6, d=50, seeds=2)
    return F.fig2(sizes, caption_settings=True, cases=(("tanh-he1-he3", 2),),
                  methods=("dmft", "one-pass"),
                  progress=False)


def test_fig2_orthogonal_overlap_multipass_only(fig2_theory):
    perp = fig2_theory.panel("tanh-he1-he3 (P = 2): orthogonal")
    dm, op = perp.series["dmft"], perp.series["one-pass"]
    # multi-pass: every unit's orthogonal overlap is non-zero at the last time
    z_last = np.abs(dm.parts[-1]) / dm.parts_se[-1]
    assert np.all(z_last > 3), f"multi-pass orthogonal overlap / SE at t = T-1: {z_last}"
    # one-pass: stays in the span of C1 (within 3 SE, Bonferroni over t and units)
    assert_zero(op.parts[1:], op.parts_se[1:], "one-pass orthogonal overlap")


def test_fig2_both_learn_along_c1(fig2_theory):
    par = fig2_theory.panel("tanh-he1-he3 (P = 2): along C1")
    for method in ("dmft", "one-pass"):
        s = par.series[method]
        # oriented overlaps of both units grow from step 1 on
        assert np.all(s.parts[1:] > 5 * s.parts_se[1:] + QUAD_ATOL), method


# ----------------------------------------------------------------------------- Fig. 3
@pytest.fixture(scope="module")
def fig3_multipass():
    return F.fig3(F.Sizes(samples=10**6, d=50, seeds=2), caption_settings=True, methods=("dmft",),
                  progress=False)


def test_fig3_only_z4_grows(fig3_multipass):
    z4 = fig3_multipass.panel("along z4").series["dmft"]
    z123 = fig3_multipass.panel("along z1, z2, z3").series["dmft"]
    # z4: zero after one step (E[He3(z4) z4] = 0), then beyond 5 SE from step 2 on
    assert_zero(z4.parts[1], z4.parts_se[1], "z4 overlap at t = 1", dof=DMFT_DOF)
    assert np.all(z4.y[2:] > 5 * z4.se[2:]), f"z4 mean overlap / SE: {z4.y / z4.se}"
    # z1..z3 stay at 0 for every unit, direction and time
    assert_zero(z123.parts[1:], z123.parts_se[1:], "z1..z3 overlaps", dof=DMFT_DOF)


# ----------------------------------------------------------------------------- Fig. 4
@pytest.fixture(scope="module")
def fig4_multipass():
    return F.fig4(F.Sizes(samples=5 * 10**5, d=50, seeds=2), caption_settings=True, epochs=2,
                  T_bernoulli=7,
                  methods=("dmft",), progress=False)


def test_fig4_cyclic_departs_after_first_epoch(fig4_multipass):
    s = fig4_multipass.panel("cyclic: along z4").series["dmft"]
    np.testing.assert_allclose(s.x, np.arange(11) / 5)  # x-axis in epochs
    # first epoch: every block is fresh, so He3(z4) is not seen twice: M_t = 0 for t <= 5
    assert_zero(s.parts[1:6], s.parts_se[1:6], "cyclic z4 overlap in the first epoch",
                dof=DMFT_DOF)
    # then it departs: non-zero at the end of epoch 2 (SE: the conservative upper bound)
    assert s.y[-1] > 4 * s.se[-1], f"cyclic z4 overlap at epoch 2: {s.y[-1]} ± {s.se[-1]}"
    z123 = fig4_multipass.panel("cyclic: along z1, z2, z3").series["dmft"]
    assert_zero(z123.parts[1:], z123.parts_se[1:], "cyclic z1..z3 overlaps", dof=DMFT_DOF)


def test_fig4_bernoulli_departs_early(fig4_multipass):
    s = fig4_multipass.panel("bernoulli: along z4").series["dmft"]
    assert_zero(s.parts[1], s.parts_se[1], "bernoulli z4 overlap at t = 1", dof=DMFT_DOF)
    # samples are reused from step 1 on: non-zero at t = 6, one step after the cyclic run has
    # finished its first epoch still at 0 (test above)
    assert s.y[6] > 3 * s.se[6], f"bernoulli z4 overlap at t = 6: {s.y[6]} ± {s.se[6]}"


# ------------------------------------------------------- compare (docs/validation.md, sharp case)
def _sharp_problem() -> dmft.Problem:
    return dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.5,
                        T=12)


@pytest.fixture(scope="module")
def extrapolated(sharp_simulations):
    return dmft.extrapolate(sharp_simulations)


def _check_compare(extrapolated, samples: int) -> None:
    prob = _sharp_problem()
    correct = dmft.solve(prob, samples=samples, seed=3, progress=False)
    rep = dmft.compare(correct, extrapolated)
    assert rep.passed, str(rep)
    assert rep.max_abs_z_equiv < rep.z_crit
    wrong_noise = dmft.solve(prob, samples=samples, seed=3, noise_memory=False,
                             progress=False)
    rep = dmft.compare(wrong_noise, extrapolated)
    assert not rep.passed, "independent-per-step noise (authors' error 1) was not flagged"
    for eta in (0.45, 0.55):
        wrong_eta = dmft.solve(prob.replace(eta=eta), samples=samples, seed=3, progress=False)
        rep = dmft.compare(wrong_eta, extrapolated)
        assert not rep.passed, f"eta = {eta} instead of 0.5 was not flagged"
        assert any("eta" in note for note in rep.notes)


def test_compare_accepts_correct_dmft_and_flags_wrong_ones(extrapolated):
    _check_compare(extrapolated, samples=2 * 10**5)


@pytest.mark.slow
def test_compare_sharp_case_large(extrapolated):
    _check_compare(extrapolated, samples=2 * 10**6)


# ----------------------------------------------------------------------------- data mechanics
def _toy_trajectory(M, M_se, a, runs=None) -> Trajectory:
    T, P, K = M.shape
    target = {1: "tanh", 2: "tanh-sum"}[K]
    prob = dmft.Problem(target=target, P=P, activation="relu", a=a, T=T)
    diag = {} if runs is None else {"M_runs": runs}
    return Trajectory(problem=prob, M=M, M_se=M_se, Q=np.tile(np.eye(P), (T, 1, 1)),
                      e_train=np.zeros(T), e_gen=np.zeros(T), diagnostics=diag)


def test_oriented_overlap_by_hand():
    # P = 3 (a = +, -, +), K = 2, direction (1, 1)/sqrt(2); class a>0 ends negative -> flipped
    M = np.zeros((2, 3, 2))
    M[1] = [[-0.2, 0.0], [0.1, 0.3], [-0.4, 0.2]]
    M_se = np.full_like(M, 0.01)
    traj = _toy_trajectory(M, M_se, a=[1.0, -1.0, 1.0])
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    proj = M[1] @ u  # (-0.141, 0.283, -0.141)
    signs = F.orientation(traj, [1.0, 1.0])
    np.testing.assert_array_equal(signs[:, 0], [-1.0, 1.0, -1.0])
    y, se, parts, parts_se = F.oriented_overlap(traj, [1.0, 1.0])
    np.testing.assert_allclose(parts[1], np.abs(proj))
    np.testing.assert_allclose(y[1], np.mean(np.abs(proj)))
    np.testing.assert_allclose(parts_se[1], np.full(3, 0.01))  # sqrt(0.01^2 / 2 * 2)
    np.testing.assert_allclose(se[1], 0.01)


def test_oriented_overlap_standard_error_from_runs():
    rng = np.random.default_rng(0)
    runs = rng.normal(size=(5, 3, 2, 1))  # (seeds, T, P, K)
    M, M_se = runs.mean(0), runs.std(0, ddof=1) / np.sqrt(5)
    traj = _toy_trajectory(M, M_se, a=[1.0, -1.0], runs=runs)
    signs = np.array([[1.0], [-1.0]])
    y, se, parts, parts_se = F.oriented_overlap(traj, [1.0], signs)
    per_seed = (runs[..., 0, 0] - runs[..., 1, 0]) / 2  # (seeds, T)
    np.testing.assert_allclose(y, per_seed.mean(0))
    np.testing.assert_allclose(se, per_seed.std(0, ddof=1) / np.sqrt(5))
    np.testing.assert_allclose(parts_se, M_se[..., 0])


def test_orthogonal_direction():
    v = F.orthogonal_direction([3.0, 4.0])
    np.testing.assert_allclose(v, [-0.8, 0.6])
    with pytest.raises(ValueError, match="non-zero vector"):
        F.orthogonal_direction([0.0, 0.0])


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"samples": 0, "d": 10, "seeds": 2}, ValueError, "samples"),
    ({"samples": 10, "d": 10, "seeds": 1}, ValueError, "seeds"),
    ({"samples": 1.5, "d": 10, "seeds": 2}, ValueError, "samples"),
    ({"samples": True, "d": 10, "seeds": 2}, TypeError, "samples"),
    ({"samples": "10", "d": 10, "seeds": 2}, TypeError, "samples"),
    ({"samples": 10, "d": 10, "seeds": 2, "seed": -1}, ValueError, "seed"),
])
def test_sizes_validation(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        F.Sizes(**kwargs)


def test_sizes_accept_integral_floats():
    sizes = F.Sizes(samples=1e6, d=3000.0, seeds=8)
    assert (sizes.samples, sizes.d, sizes.seeds) == (10**6, 3000, 8)
    assert all(type(v) is int for v in (sizes.samples, sizes.d, sizes.seeds, sizes.seed))


def test_bad_methods_and_directions():
    with pytest.raises(ValueError, match="methods"):
        F.fig1(F.Sizes(samples=4096, d=20, seeds=2), targets=("he3",), methods=("exact",))
    traj = _toy_trajectory(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), a=[1.0, -1.0])
    with pytest.raises(ValueError, match="directions"):
        F.oriented_overlap(traj, [1.0, 0.0, 0.0])


def test_plot_and_save_roundtrip(tmp_path):
    pytest.importorskip("matplotlib")
    data = F.fig1(F.Sizes(samples=4096, d=40, seeds=2), targets=("he3",), progress=False)
    assert set(data.panel("he3").series) == set(F.METHODS)
    fig = data.plot()
    png = tmp_path / "fig.png"
    fig.savefig(png)
    assert png.stat().st_size > 10_000
    texts = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "eta = 0.1" in texts and "d = 40" in texts  # parameters printed on the figure
    assert "erf" in texts and "Note: caption: ReLU" in texts  # where the run leaves the caption
    legend = " ".join(t.get_text() for leg in fig.legends for t in leg.get_texts())
    assert "published" in legend
    path = tmp_path / "fig.h5"
    data.save(path)
    with h5py.File(path, "r") as f:
        back = dmft.io.read_group(f["he3/sim"])
    np.testing.assert_array_equal(back.M, data.trajectories["he3/sim"].M)


def test_make_figure_cli(tmp_path):
    pytest.importorskip("matplotlib")
    from dmft.cli import main

    out = tmp_path / "f.png"
    rc = main(["figure", "fig1", "--out", str(out), "--samples", "4096", "--d", "30",
               "--seeds", "2", "--quiet", "--data", str(tmp_path / "f.h5")])
    assert rc == 0
    assert out.stat().st_size > 10_000
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert {"tanh", "he3", "he4"} <= set(f)
        assert dmft.io.read_group(f["tanh/dmft"]).problem.activation.name == "erf"
        assert "caption: ReLU" in f.attrs["notes"]
    rc = main(["figure", "fig1", "--caption-settings", "--out", str(out), "--samples", "4096",
               "--d", "30", "--seeds", "2", "--quiet", "--data", str(tmp_path / "c.h5")])
    assert rc == 0
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert "caption settings" in f.attrs["notes"]
        assert dmft.io.read_group(f["tanh/dmft"]).problem.activation.name == "relu"


# ----------------------------------------------------------------------------- slow versions
@pytest.mark.slow
def test_fig1_simulations_support_the_claims():
    data = F.fig1(F.Sizes(samples=4 * 10**6, d=2000, seeds=16), caption_settings=True,
                  progress=False)
    for target in ("tanh", "he3", "he4"):
        rep = dmft.compare(data.trajectories[f"{target}/dmft"],
                           data.trajectories[f"{target}/sim"])
        assert rep.passed, f"{target}: {rep}"
    he3 = data.panel("g* = he3").series["sim"]
    assert np.all(np.abs(he3.parts[3:, 0]) > 5 * he3.parts_se[3:, 0]), he3.parts[:, 0]
    he4 = data.panel("g* = he4").series["sim"]
    assert_zero(he4.parts[1:], he4.parts_se[1:], "He4 multi-pass simulation", dof=16 - 1)


@pytest.mark.slow
def test_fig3_one_pass_and_simulations():
    data = F.fig3(F.Sizes(samples=2 * 10**6, d=2000, seeds=16), caption_settings=True,
                  progress=False)
    z4, z123 = data.panel("along z4"), data.panel("along z1, z2, z3")
    op = z4.series["one-pass"]
    assert_zero(op.parts[1:], op.parts_se[1:], "one-pass z4 overlap")
    sim = z4.series["sim"]
    assert sim.y[-1] > 3 * sim.se[-1], (sim.y, sim.se)
    for method in ("one-pass", "sim", "sim-one-pass"):
        s = z123.series[method]
        assert_zero(s.parts[1:], s.parts_se[1:], f"z1..z3 {method}",
                    dof=None if method == "one-pass" else 16 - 1)


@pytest.mark.slow
def test_fig4_default_size():
    data = F.fig4(caption_settings=True, progress=False)
    cyc = data.panel("cyclic: along z4")
    dm, op = cyc.series["dmft"], cyc.series["one-pass"]
    assert_zero(dm.parts[1:6], dm.parts_se[1:6], "cyclic z4 in the first epoch", dof=DMFT_DOF)
    assert np.all(dm.y[10:] > 3 * dm.se[10:])
    assert_zero(op.parts[1:], op.parts_se[1:], "fresh minibatches, z4")
    rep = dmft.compare(data.trajectories["cyclic/dmft"], data.trajectories["cyclic/sim"])
    assert rep.passed, str(rep)
