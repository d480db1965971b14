"""Trajectory: shape validation, projections (with standard errors), truncation, export."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import dmft


def _traj(T=4, P=2, target="tanh-he1-he3", kernels=False, seed=0, **overrides):
    problem = dmft.Problem(target=target, P=P, T=T)
    K = problem.K
    rng = np.random.default_rng(seed)
    kw = dict(
        M=rng.normal(size=(T, P, K)), Q=rng.normal(size=(T, P, P)),
        e_train=rng.random(T), e_gen=rng.random(T),
        M_se=rng.random((T, P, K)), Q_se=rng.random((T, P, P)),
        e_train_se=rng.random(T), e_gen_se=rng.random(T),
        provenance={"method": "test", "seed": seed}, diagnostics={"cond": rng.random(T)},
    )
    if kernels:
        kw.update(C=rng.normal(size=(T, T, P, P)), R=rng.normal(size=(T, T, P, P)),
                  Lam=rng.normal(size=(T, P, P)), C_se=rng.random((T, T, P, P)),
                  R_se=rng.random((T, T, P, P)), Lam_se=rng.random((T, P, P)))
    kw.update(overrides)
    return dmft.Trajectory(problem=problem, **kw)


# ------------------------------------------------------------------------------ construction
def test_basic_facts_and_defaults():
    problem = dmft.Problem(T=3)
    tr = dmft.Trajectory(problem, M=[[[0.0, 0.0]] * 2] * 3, Q=np.zeros((3, 2, 2)),
                         e_train=[1, 2, 3], e_gen=np.zeros(3))
    assert tr.T == 3 and list(tr.t) == [0, 1, 2]
    assert tr.M.dtype == np.float64 and tr.e_train.dtype == np.float64
    for name in ("M", "Q", "e_train", "e_gen"):
        se = getattr(tr, name + "_se")
        assert se.shape == getattr(tr, name).shape and not se.any()
    assert tr.C is None and tr.R is None and tr.Lam is None
    assert tr.method == "unknown" and "T=3" in repr(tr)


@pytest.mark.parametrize("field,value,pattern", [
    ("M", np.zeros((4, 2, 3)), r"Trajectory.M must have shape \(4, 2, 2\), got \(4, 2, 3\)"),
    ("M", np.zeros(4), r"Trajectory.M must have shape \(4, 2, 2\), got \(4,\)"),
    ("M", 0.0, r"Trajectory.M must have shape \(T, P, K\), got a scalar"),
    ("Q", np.zeros((4, 2, 3)), r"Trajectory.Q must have shape \(4, 2, 2\), got \(4, 2, 3\)"),
    ("Q", np.zeros((3, 2, 2)), r"Trajectory.Q must have shape \(4, 2, 2\), got \(3, 2, 2\)"),
    ("e_train", np.zeros(5), r"Trajectory.e_train must have shape \(4,\), got \(5,\)"),
    ("e_gen", np.zeros((4, 1)), r"Trajectory.e_gen must have shape \(4,\), got \(4, 1\)"),
    ("M_se", np.zeros((4, 2)), r"Trajectory.M_se must have shape \(4, 2, 2\), got \(4, 2\)"),
    ("Q_se", -np.ones((4, 2, 2)), r"Trajectory.Q_se must be >= 0, got min -1"),
    ("e_gen_se", np.zeros(3), r"Trajectory.e_gen_se must have shape \(4,\), got \(3,\)"),
    ("C", np.zeros((4, 2, 2)), r"Trajectory.C must have shape \(4, 4, 2, 2\), got \(4, 2, 2\)"),
    ("R", np.zeros((3, 3, 2, 2)), r"Trajectory.R must have shape \(4, 4, 2, 2\)"),
    ("Lam", np.zeros((4, 4, 2, 2)), r"Trajectory.Lam must have shape \(4, 2, 2\)"),
    ("R_se", np.zeros((4, 4, 2)), r"Trajectory.R_se must have shape \(4, 4, 2, 2\)"),
])
def test_shapes_are_validated(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        _traj(**{field: value})


def test_problem_must_be_a_Problem():
    with pytest.raises(TypeError, match="Trajectory.problem must be a dmft.Problem, got dict"):
        dmft.Trajectory({"P": 2}, M=np.zeros((1, 2, 2)), Q=np.zeros((1, 2, 2)),
                        e_train=np.zeros(1), e_gen=np.zeros(1))


def test_kernels_are_kept_as_float_arrays():
    tr = _traj(kernels=True, C=np.ones((4, 4, 2, 2), dtype=np.float32))
    assert tr.C.dtype == np.float64 and tr.R.shape == (4, 4, 2, 2) and tr.Lam.shape == (4, 2, 2)


# ------------------------------------------------------------------------------ projections
def _with_M(M, M_se, target="tanh-he1-he3"):
    M = np.asarray(M, dtype=float)
    T, P, K = M.shape
    problem = dmft.Problem(target=target, P=P, T=T)
    return dmft.Trajectory(problem, M=M, Q=np.zeros((T, P, P)), e_train=np.zeros(T),
                           e_gen=np.zeros(T), M_se=M_se)


def test_overlap_along_by_hand():
    # v = (3, 4): unit (0.6, 0.8), orthogonal unit (-0.8, 0.6)
    tr = _with_M([[[1.0, 2.0], [-3.0, 0.5]]], [[[0.1, 0.2], [0.3, 0.0]]])
    val, se = tr.overlap_along([3.0, 4.0], return_se=True)
    np.testing.assert_allclose(val, [[0.6 + 1.6, -1.8 + 0.4]], rtol=1e-14)
    np.testing.assert_allclose(se, [[np.sqrt(0.36 * 0.01 + 0.64 * 0.04), np.sqrt(0.36 * 0.09)]],
                               rtol=1e-14)
    np.testing.assert_allclose(tr.overlap_along(np.array([[3.0], [4.0]])), val)  # any layout
    np.testing.assert_allclose(tr.overlap_along([-6.0, -8.0]), -val)  # only the direction counts


def test_orthogonal_overlap_by_hand_K2():
    tr = _with_M([[[1.0, 2.0], [-3.0, 0.5]]], [[[0.1, 0.2], [0.3, 0.0]]])
    val, se = tr.orthogonal_overlap([3.0, 4.0], return_se=True)
    # |M . (-0.8, 0.6)|: |-0.8 + 1.2| = 0.4 and |2.4 + 0.3| = 2.7
    np.testing.assert_allclose(val, [[0.4, 2.7]], rtol=1e-13)
    np.testing.assert_allclose(se, [[np.sqrt(0.64 * 0.01 + 0.36 * 0.04), np.sqrt(0.64 * 0.09)]],
                               rtol=1e-13)


def test_orthogonal_overlap_by_hand_K4():
    # z1z2z3-he3 has K = 4; along e4 the orthogonal part of (1, 2, 2, 7) has norm 3
    tr = _with_M([[[1.0, 2.0, 2.0, 7.0]]], [[[0.1, 0.2, 0.3, 0.4]]], target="z1z2z3-he3")
    val, se = tr.orthogonal_overlap([0, 0, 0, 1.0], return_se=True)
    np.testing.assert_allclose(val, [[3.0]])
    # gradient of the norm: (1, 2, 2, 0) / 3
    np.testing.assert_allclose(se, [[np.sqrt(0.01 + 4 * 0.04 + 4 * 0.09) / 3]], rtol=1e-13)
    np.testing.assert_allclose(tr.overlap_along([0, 0, 0, 2.0]), [[7.0]])


def test_projections_decompose_M():
    tr = _traj(T=5, P=3)
    v = np.array([0.3, -1.2])
    along, perp = tr.overlap_along(v), tr.orthogonal_overlap(v)
    np.testing.assert_allclose(along**2 + perp**2, np.sum(tr.M**2, axis=-1), rtol=1e-12)


def test_orthogonal_overlap_se_matches_monte_carlo_propagation():
    # independent check of the delta method: sample M entries with their SEs
    rng = np.random.default_rng(3)
    M = np.array([[[0.5, -0.2, 0.4, 0.1], [0.05, 0.3, -0.6, 0.2]]])
    M_se = np.array([[[0.004, 0.006, 0.003, 0.01], [0.002, 0.005, 0.004, 0.003]]])
    tr = _with_M(M, M_se, target="z1z2z3-he3")
    v = np.array([1.0, 0.5, 0.0, -0.3])
    val, se = tr.orthogonal_overlap(v, return_se=True)
    n = 40000
    samples = M + M_se * rng.normal(size=(n,) + M.shape[1:])
    u = v / np.linalg.norm(v)
    perp = samples - (samples @ u)[..., None] * u
    mc = np.linalg.norm(perp, axis=-1).std(axis=0, ddof=1)
    # relative sampling error of a std is 1/sqrt(2n) = 0.35 %; the delta method is accurate to
    # O(se / value) ~ 1 % here
    np.testing.assert_allclose(se[0], mc, rtol=0.03)
    along_se = tr.overlap_along(v, return_se=True)[1]
    np.testing.assert_allclose(along_se[0], (samples @ u).std(axis=0, ddof=1), rtol=0.03)


@pytest.mark.parametrize("v,pattern", [
    ([1.0, 0.0, 0.0], r"direction v must have shape \(2,\), got \(3,\)"),
    ([0.0, 0.0], r"direction v must be finite and non-zero"),
    ([np.nan, 1.0], r"direction v must be finite and non-zero"),
])
def test_projection_direction_is_validated(v, pattern):
    tr = _traj()
    with pytest.raises(ValueError, match=pattern):
        tr.overlap_along(v)
    with pytest.raises(ValueError, match=pattern):
        tr.orthogonal_overlap(v)


# ------------------------------------------------------------------------------ truncated
def test_truncated_cuts_every_array_and_the_problem():
    tr = _traj(T=5, kernels=True)
    cut = tr.truncated(3)
    assert cut.T == 3 and cut.problem.T == 3 and cut.problem == tr.problem.replace(T=3)
    for name in ("M", "Q", "e_train", "e_gen"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(tr, name)[:3])
        np.testing.assert_array_equal(getattr(cut, name + "_se"), getattr(tr, name + "_se")[:3])
    for name in ("C", "R", "C_se", "R_se"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(tr, name)[:3, :3])
    for name in ("Lam", "Lam_se"):
        np.testing.assert_array_equal(getattr(cut, name), getattr(tr, name)[:3])
    assert cut.provenance == tr.provenance and cut.provenance is not tr.provenance
    # full length is a copy; kernels that are absent stay absent
    assert _traj(T=5).truncated(5).C is None


@pytest.mark.parametrize("T", [0, 6, -1, 2.0, True])
def test_truncated_rejects_lengths_outside_the_trajectory(T):
    with pytest.raises(ValueError, match=r"truncated: T must be an integer in \[1, 5\]"):
        _traj(T=5).truncated(T)


def test_divergence_error_carries_the_partial_trajectory():
    partial = _traj(T=2)
    err = dmft.DivergenceError("non-finite C at step 2", step=2, partial=partial)
    assert isinstance(err, RuntimeError) and err.step == 2 and err.partial is partial


# ------------------------------------------------------------------------------ export
def test_to_xarray_names_every_dimension_and_keeps_values():
    xr = pytest.importorskip("xarray")
    tr = _traj(T=4, P=3, target="z1z2z3-he3", kernels=True)
    ds = tr.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert dict(ds.sizes) == {"time": 4, "time2": 4, "unit": 3, "unit2": 3, "direction": 4}
    expected_dims = {"M": ("time", "unit", "direction"), "Q": ("time", "unit", "unit2"),
                     "e_train": ("time",), "e_gen": ("time",),
                     "C": ("time", "time2", "unit", "unit2"),
                     "R": ("time", "time2", "unit", "unit2"), "Lam": ("time", "unit", "unit2")}
    assert set(ds.data_vars) == set(expected_dims) | {k + "_se" for k in expected_dims}
    for name, dims in expected_dims.items():
        for key in (name, name + "_se"):
            assert ds[key].dims == dims, key
            np.testing.assert_array_equal(ds[key].values, getattr(tr, key))
            assert ds[key].attrs["description"], key
    for dim, n in ds.sizes.items():
        np.testing.assert_array_equal(ds[dim].values, np.arange(n))
        assert ds[dim].attrs["description"]
    # a labelled selection is the array entry it names
    assert float(ds["M"].sel(time=2, unit=1, direction=3)) == tr.M[2, 1, 3]
    assert float(ds["C"].sel(time=3, time2=1, unit=0, unit2=2)) == tr.C[3, 1, 0, 2]


def test_to_xarray_attributes_rebuild_the_problem_and_provenance():
    pytest.importorskip("xarray")
    tr = _traj(T=3, seed=5)
    ds = tr.to_xarray()
    assert dmft.Problem.from_dict(json.loads(ds.attrs["problem"])) == tr.problem
    assert json.loads(ds.attrs["provenance"]) == tr.provenance
    assert ds.attrs["method"] == "test"
    assert (ds.attrs["target"], ds.attrs["P"], ds.attrs["K"], ds.attrs["eta"]) == \
        ("tanh-he1-he3", 2, 2, 0.2)
    assert all(isinstance(v, (str, int, float)) for v in ds.attrs.values())  # netCDF-safe


def test_to_xarray_without_kernels_has_no_second_time():
    pytest.importorskip("xarray")
    ds = _traj(T=3).to_xarray()
    assert "time2" not in ds.dims and "C" not in ds and "Lam_se" not in ds
    assert ds["Q"].dims == ("time", "unit", "unit2")


def test_to_xarray_without_xarray_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match=r"to_xarray needs xarray: pip install xarray"):
        _traj().to_xarray()


def test_plot_draws_overlaps_and_errors_with_error_bars():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = _traj(T=5, P=2)
    fig = tr.plot()
    try:
        assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 3
        ax_m, ax_q, ax_e = fig.axes
        labels = [[h.get_label() for h in ax.get_legend_handles_labels()[0]] for ax in fig.axes]
        assert labels[0] == ["test M[0,0]", "test M[0,1]", "test M[1,0]", "test M[1,1]"]
        assert labels[1] == ["test Q[0,0]", "test Q[0,1]", "test Q[1,1]"]
        assert labels[2] == ["test e_gen", "test e_train"]
        bars = ax_e.containers[0]  # ErrorbarContainer of e_gen: data line and error bars
        np.testing.assert_array_equal(bars.lines[0].get_xdata(), np.arange(5))
        np.testing.assert_array_equal(bars.lines[0].get_ydata(), tr.e_gen)
        segments = bars.lines[2][0].get_segments()
        np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], 2 * tr.e_gen_se)
        # a second trajectory drawn on the same axes (e.g. a simulation over the theory)
        same = tr.plot(axes=fig.axes, fmt="s--", label="sim")
        assert same is fig and len(ax_m.containers) == 8
        assert ax_e.get_legend_handles_labels()[1][-1] == "sim e_train"
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match=r"axes must hold three Axes"):
        tr.plot(axes=fig.axes[:2])
