"""The figures held against the paper's published curves (docs/reproducing-the-paper.md).

Tolerances, stated per test:
- t = 1, where a closed form exists (M_1 = eta alpha (a * E[sigma'(h_0)]) C1^T, zero for
  directions without a first Hermite coefficient): the published value within 1e-3.
- later steps: the package's theory within the published simulations' error bar at that step,
  or within the residual documented on the docs page (``RESIDUAL``), plus 4 standard errors of
  the package's Monte Carlo estimate (Student t with 15 degrees of freedom for 16 replicas; the
  bound is loose on purpose: a regression moves a curve by far more).
- Fig. 5 has no published data: its simulation is checked step by step against a plain numpy
  replay, and its claims at reduced size in a slow test.
"""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pytest

import dmft
from dmft import figures as F
from dmft.figures import minibatch1
from dmft.learnability import step1_overlap

# |package - published| documented on the docs page (full-size runs, S = 1e7), by figure, panel
# and method: the largest over t >= 2 and units, rounded up. The published line and the
# package's theory differ by this much while the package agrees with its own simulations.
RESIDUAL = {
    ("fig1", "tanh", "dmft"): 0.025,
    ("fig1", "he3", "dmft"): 0.025,
    ("fig1", "tanh", "one-pass"): 0.010,
    ("fig1", "he3", "one-pass"): 0.0025,
    ("fig1", "he4", "one-pass"): 0.001,
    ("fig2", "staircase/along", "dmft"): 0.008,
    ("fig2", "staircase/along", "one-pass"): 0.004,
    ("fig2", "staircase/perp", "dmft"): 0.007,
    ("fig2", "staircase/perp", "one-pass"): 0.009,
    ("fig2", "tanh-he1-he3/along", "dmft"): 0.010,
    ("fig2", "tanh-he1-he3/along", "one-pass"): 0.010,
    ("fig2", "tanh-he1-he3/perp", "dmft"): 0.0015,
    ("fig2", "tanh-sum/along", "dmft"): 0.001,
    ("fig2", "tanh-sum/along", "one-pass"): 0.0065,
    ("fig2", "tanh-sum/perp", "one-pass"): 0.0005,
    ("fig3", "all", "dmft"): 0.015,
    ("fig4", "cyclic", "dmft"): 0.006,
    ("fig4", "bernoulli", "dmft"): 0.002,
}
T_DOF = 15  # replicas - 1 of dmft.solve's standard errors


def _sim_err(curves, row) -> float:
    """The published simulations' error bar at the row's step, same panel and direction."""
    sim = "sim" if row.method == "dmft" else "sim-one-pass"
    errs = [c.err[list(c.t).index(row.t)] for c in curves
            if c.method == sim and c.direction == row.direction and c.err is not None
            and row.t in c.t and (c.units == row.units or row.units not in ("a>0", "a<0"))]
    return float(max(errs)) if errs else 0.0


def check_against_published(data: F.FigureData, figure: str, methods=("dmft", "one-pass"),
                            k: float = 4.0) -> None:
    """Every published theory point at t >= 2 within tolerance (module docstring)."""
    from scipy import stats

    z = float(stats.t.isf(stats.norm.sf(k), T_DOF))
    bad = []
    for panel in (p for row in data.panels for p in row):
        for row in F.published_table(_only(data, panel)):
            if row.method not in methods or row.t < 2:
                continue
            allowed = (max(_sim_err(panel.published, row),
                           RESIDUAL.get((figure, panel.key, row.method), 0.0))
                       + z * row.package_se + 1e-9)
            if abs(row.difference) > allowed:
                bad.append(f"{panel.key} {row.method} {row.direction} {row.units} t={row.t}: "
                           f"package {row.package:.4f} ± {row.package_se:.4f}, published "
                           f"{row.published:.4f}, allowed ± {allowed:.4f}")
    assert not bad, "\n".join(bad)


def _only(data: F.FigureData, panel: F.Panel) -> F.FigureData:
    return F.FigureData(data.name, data.title, data.params, [[panel]])


def _closed_form_first_step(problem: dmft.Problem, direction) -> np.ndarray:
    """M_1 of every unit along a unit direction of R^K, (P,)."""
    u = np.asarray(direction, dtype=np.float64)
    return step1_overlap(problem) @ (u / np.linalg.norm(u))


# ----------------------------------------------------------------------------- the data
def test_published_data_ship_with_the_package():
    root = resources.files("dmft.figures").joinpath("published")
    names = {p.name for p in root.iterdir()}
    assert {"published_fig1.json", "published_fig2_4.json", "README.md"} <= names
    readme = root.joinpath("README.md").read_text("utf-8")
    assert "2402.03220" in readme and "tick marks" in readme
    counts = {fig: len(F.published_curves(fig)) for fig in ("fig1", "fig2", "fig3", "fig4")}
    assert counts == {"fig1": 12, "fig2": 44, "fig3": 32, "fig4": 60}
    for fig in counts:
        for c in F.published_curves(fig):
            assert c.t.shape == c.y.shape and np.all(np.isfinite(c.y))
            assert (c.err is None) == (c.kind == "line" or (fig, c.panel) == ("fig1", "tanh")
                                        and c.method == "sim")
    with pytest.raises(ValueError, match="no published"):
        F.published_curves("fig5")
    with pytest.raises(ValueError, match="panels"):
        F.published_curves("fig2", "staircase")


def test_published_units_follow_the_sign_of_a():
    a = dmft.figures.reproduction.signs(8, 1 / math.sqrt(8))
    units = {c.units: F.published_data.units_of(c, a)
             for c in F.published_curves("fig2", "staircase/along")}
    assert units == {"a>0": [0, 2, 4, 6], "a<0": [1, 3, 5, 7]}
    # Fig. 3: the published units have the signs of the package's a = (+, -, +, -) / 2
    z4 = {c.units: c.y[-1] for c in F.published_curves("fig3", "all")
          if c.direction == "z4" and c.method == "dmft"}
    assert [np.sign(z4[str(j)]) for j in range(4)] == [-1, 1, -1, 1]


# ----------------------------------------------------------------------------- t = 1
@pytest.mark.parametrize("target", ["tanh", "he3", "he4"])
def test_fig1_first_step_closed_form_matches_published(target):
    prob = F.reproduction._fig1_problem(target, T=2)
    sign = -1.0 if target == "he3" else 1.0  # drawn as -M
    m1 = sign * _closed_form_first_step(prob, [1.0])[0]
    for c in F.published_curves("fig1", target):
        if c.kind == "line":
            assert abs(c.y[1] - m1) < 1e-3, (c.method, c.y[1], m1)
    if target == "tanh":  # erf, not ReLU, gives the published value
        relu = _closed_form_first_step(prob.replace(activation="relu"), [1.0])[0]
        assert abs(m1 - 0.11838) < 2e-5 and abs(relu - 0.11838) > 0.02
    one = dmft.solve(prob.replace(schedule="one-pass"), method="one-pass")
    assert abs(sign * one.M[1, 0, 0] - m1) < 1e-8


@pytest.mark.parametrize("case", F.reproduction.FIG2_PANELS)
def test_fig2_first_step_closed_form_matches_published(case):
    # M_1 is proportional to a, so the published curves of the two sign classes must be
    # mirror images; they are not quite (staircase along C1: 0.08735 and -0.08803, Monte Carlo
    # noise of the published lines), so each line is held to 2e-3 and the mean of the
    # mirrored pair to 1e-3
    prob = F.reproduction._fig2_problem(case, T=2).problem
    c1 = dmft.first_hermite(prob.target)
    for where, u in (("along", c1), ("perp", F.orthogonal_direction(c1))):
        m1 = _closed_form_first_step(prob, u)
        for method in ("dmft", "one-pass"):
            mirrored = []
            for c in F.published_curves("fig2", f"{case}/{where}"):
                if c.method != method:
                    continue
                units = F.published_data.units_of(c, prob.a)
                assert np.all(np.abs(c.y[1] - m1[units]) < 2e-3), (where, c.units, c.y[1], m1)
                mirrored.append(c.y[1] * np.sign(prob.a[units[0]]))
            assert abs(np.mean(mirrored) - m1[0]) < 1e-3, (where, method, mirrored, m1[0])


def test_fig2_caption_settings_miss_the_published_first_step():
    # with the caption's eta = 0.1 and a = ±1/sqrt(2) the centre panel's t = 1 is 2x off;
    # with z1 + z1 z2 at n = 3d the left panel's is too
    centre = F.reproduction._fig2_problem("tanh-he1-he3", T=2).problem
    caption = centre.replace(eta=0.1, a=None)
    c1 = dmft.first_hermite(centre.target)
    published = [c.y[1] for c in F.published_curves("fig2", "tanh-he1-he3/along")
                 if c.method == "dmft" and c.units == "a>0"][0]
    assert abs(_closed_form_first_step(centre, c1)[0] - published) < 1e-3
    assert abs(_closed_form_first_step(caption, c1)[0] - published) > 0.01
    left = dmft.Problem(target="staircase", P=8, activation="relu", alpha=3.0, eta=0.1, T=2)
    published = [c.y[1] for c in F.published_curves("fig2", "staircase/along")
                 if c.method == "dmft" and c.units == "a>0"][0]
    assert abs(_closed_form_first_step(left, [1.0, 0.0])[0] - published) > 0.01


@pytest.mark.parametrize("figure, panel", [("fig3", "all"), ("fig4", "cyclic"),
                                           ("fig4", "bernoulli")])
def test_fig3_fig4_first_step_is_zero_as_published(figure, panel):
    # E[g* z] = 0 for z1 z2 z3 + He3(z4): M_1 = 0 in closed form, and in the published lines
    prob = F.reproduction._fig3_problem(T=2)
    assert np.max(np.abs(step1_overlap(prob))) < 1e-12
    lines = [c.y[list(c.t).index(1)] for c in F.published_curves(figure, panel)
             if c.kind == "line" and 1 in c.t]
    assert lines and max(abs(v) for v in lines) < 1e-3


# ----------------------------------------------------------------------------- later steps
def test_fig1_theory_against_published():
    data = F.fig1(F.Sizes(samples=4 * 10**5, d=20, seeds=2), methods=("dmft", "one-pass"),
                  progress=False)
    check_against_published(data, "fig1")


def test_fig2_theory_against_published_right_and_centre():
    data = F.fig2(F.Sizes(samples=4 * 10**5, d=20, seeds=2), cases=("tanh-he1-he3", "tanh-sum"),
                  methods=("dmft",), progress=False)
    check_against_published(data, "fig2")


@pytest.mark.slow
def test_fig2_theory_against_published_all():
    data = F.fig2(F.Sizes(samples=2 * 10**6, d=20, seeds=2), progress=False)
    check_against_published(data, "fig2")


def test_fig3_theory_against_published():
    data = F.fig3(F.Sizes(samples=10**6, d=20, seeds=2), methods=("dmft",), progress=False)
    check_against_published(data, "fig3")


def test_fig4_theory_against_published():
    data = F.fig4(F.Sizes(samples=10**6, d=20, seeds=2), methods=("dmft",), progress=False)
    check_against_published(data, "fig4")


def test_published_figures_show_signed_units_and_notes():
    data = F.fig4(F.Sizes(samples=4096, d=20, seeds=2), epochs=1, methods=("dmft",),
                  progress=False)
    panel = data.panel("cyclic")
    assert panel.per_unit and panel.directions == ["z1", "z2", "z3", "z4"]
    assert panel.series["dmft"].parts.shape == (6, 16)
    np.testing.assert_allclose(panel.series["dmft"].x, np.arange(6) / 5)
    assert any("Bernoulli(0.2)" in note for note in data.notes)
    # the He3 panel of Fig. 1 is drawn as -M
    he3 = F.fig1(F.Sizes(samples=4096, d=20, seeds=2), targets=("he3",), methods=("dmft",),
                 progress=False)
    np.testing.assert_array_equal(he3.panel("he3").series["dmft"].parts[:, 0],
                                  -he3.trajectories["he3/dmft"].M[:, 0, 0])


# ----------------------------------------------------------------------------- Fig. 5
@pytest.mark.parametrize("order", F.ORDERS)
def test_size1_simulation_replays_in_numpy(order):
    prob = dmft.Problem(target="z1z2z3-he3", P=4, activation="relu", alpha=2.0, eta=0.3, T=2)
    d, n, epochs, per, seed = 20, 40, 2, 4, 3
    traj = F.simulate_size1(prob, d, seeds=2, epochs=epochs, order=order,
                            points_per_epoch=per, seed=seed)
    assert traj.M.shape == (epochs * per + 1, 4, 4)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    Wstar, W = minibatch1._initial_weights(prob, d, rng)
    X, y, _ = minibatch1._data(prob, n, Wstar, rng)
    a, eta = prob.a, prob.eta
    recorded = [W @ Wstar.T / d]
    for e in range(epochs):
        if order == "with replacement":
            pick = rng.integers(n, size=n)
            Xe, ye = X[pick], y[pick]
        elif order == "fresh" and e > 0:
            Xe, ye, _ = minibatch1._data(prob, n, Wstar, rng)
        else:
            Xe, ye = X, y
        for mu in range(n):  # one sample per step, its own loss (y - a.relu(u))^2 / 2
            u = W @ Xe[mu] / math.sqrt(d)
            F_mu = -(ye[mu] - a @ np.maximum(u, 0.0)) * a * (u > 0)
            W = W - eta / math.sqrt(d) * np.outer(F_mu, Xe[mu])
            if (mu + 1) % (n // per) == 0:
                recorded.append(W @ Wstar.T / d)
    np.testing.assert_allclose(traj.diagnostics["M_runs"][0], recorded, atol=1e-10)


def test_size1_initial_overlaps_and_bad_input():
    prob = dmft.Problem(target="z1z2z3-he3", P=4, activation="relu", alpha=2.0, eta=0.3,
                        M0=np.full((4, 4), 0.1))
    Wstar, W = minibatch1._initial_weights(prob, 50, np.random.default_rng(0))
    np.testing.assert_allclose(Wstar @ Wstar.T / 50, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(W @ Wstar.T / 50, prob.M0, atol=1e-12)
    np.testing.assert_allclose(W @ W.T / 50, prob.Q0, atol=1e-12)
    with pytest.raises(ValueError, match="order"):
        F.simulate_size1(prob, 20, order="shuffled")
    with pytest.raises(ValueError, match="seeds"):
        F.simulate_size1(prob, 20, seeds=1)


def test_fig5_draws_theory_only_where_it_holds():
    data = F.fig5(F.Sizes(samples=1, d=20, seeds=2), epochs=2, points_per_epoch=2,
                  progress=False)
    theory = {key: data.panel(key).series.get("one-pass") for key in F.ORDERS}
    assert theory["with replacement"] is None
    np.testing.assert_allclose(theory["sequential"].x, [0.0, 0.5, 1.0])  # first epoch only
    np.testing.assert_allclose(theory["fresh"].x, [0.0, 0.5, 1.0, 1.5, 2.0])
    assert all(np.all(s.parts == 0) for s in theory.values() if s is not None)
    sim = data.panel("sequential").series["sim"]
    np.testing.assert_allclose(sim.x, np.arange(5) / 2)
    assert sim.parts.shape == (5, 16) and np.all(sim.parts_se > 0)


@pytest.mark.slow
def test_fig5_claims():
    """Sequential cycling: z4 leaves 0 after the first epoch; fresh samples: it does not."""
    data = F.fig5(F.Sizes(samples=1, d=2000, seeds=16), epochs=4, points_per_epoch=1,
                  orders=("sequential", "fresh"), progress=False)
    o = np.tile([-1.0, 1.0, -1.0, 1.0], (5, 1))  # a > 0 units move to -z4 (as in Fig. 3)
    for order, grows in (("sequential", True), ("fresh", False)):
        runs = data.trajectories[f"{order}/sim"].diagnostics["M_runs"][..., 3]  # (seeds, t, P)
        per_seed = (o * runs).mean(axis=2)
        mean, se = per_seed.mean(0), per_seed.std(0, ddof=1) / 4
        assert abs(mean[1]) < 4 * se[1], (order, mean, se)  # epoch 1: no reuse yet
        if grows:
            assert mean[-1] > 5 * se[-1], (order, mean, se)
        else:
            assert np.all(np.abs(mean) < 4 * se + 1e-12), (order, mean, se)
