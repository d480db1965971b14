"""HDF5 storage: exact round trip, atomic writes, user-defined targets and activations."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import dmft
import dmft.io


def _product(z):
    return z[0] * z[1]


def _traj(problem=None, kernels=True, seed=0, diagnostics=None, provenance=None):
    problem = problem or dmft.Problem(T=4)
    T, P, K = problem.T, problem.P, problem.K
    rng = np.random.default_rng(seed)
    kw = dict(M=rng.normal(size=(T, P, K)), Q=rng.normal(size=(T, P, P)),
              e_train=rng.random(T), e_gen=rng.random(T), M_se=rng.random((T, P, K)),
              Q_se=rng.random((T, P, P)), e_train_se=rng.random(T), e_gen_se=rng.random(T))
    if kernels:
        kw.update(C=rng.normal(size=(T, T, P, P)), R=rng.normal(size=(T, T, P, P)),
                  Lam=rng.normal(size=(T, P, P)), C_se=rng.random((T, T, P, P)),
                  R_se=rng.random((T, T, P, P)), Lam_se=rng.random((T, P, P)))
    return dmft.Trajectory(problem=problem, provenance=provenance or {"method": "test"},
                           diagnostics=diagnostics or {}, **kw)


_ARRAYS = ("M", "Q", "e_train", "e_gen", "M_se", "Q_se", "e_train_se", "e_gen_se",
           "C", "R", "Lam", "C_se", "R_se", "Lam_se")


def _assert_same(a: dmft.Trajectory, b: dmft.Trajectory) -> None:
    assert a.problem == b.problem
    for name in _ARRAYS:
        va, vb = getattr(a, name), getattr(b, name)
        if va is None:
            assert vb is None, name
        else:
            assert vb.dtype == va.dtype and vb.shape == va.shape, name
            np.testing.assert_array_equal(vb, va, err_msg=name)  # bit-exact
    assert a.provenance == b.provenance


def _listing(directory):
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------------------ round trip
def test_round_trip_is_exact(tmp_path):
    prov = {"method": "dmft", "samples": 10**6, "seed": 7, "seeds": [1, 2, 3], "wall": 1.25,
            "estimator": "stein", "nested": {"a": None, "b": True, "c": [0.1, "x"]}}
    diag = {"cond": np.logspace(0, 9, 4), "count": np.arange(4, dtype=np.int64),
            "flag": True, "label": "stein", "ragged": [[1], [1, 2]], "info": {"k": 1.5},
            "missing": None, "scalar": 0.1 + 0.2}
    tr = _traj(provenance=prov, diagnostics=diag)
    path = tmp_path / "run.h5"
    tr.save(path)
    back = dmft.load(path)
    _assert_same(tr, back)
    d = back.diagnostics
    np.testing.assert_array_equal(d["cond"], diag["cond"])
    assert d["count"].dtype == np.int64 and list(d["count"]) == [0, 1, 2, 3]
    assert d["flag"] == True and d["scalar"] == 0.1 + 0.2  # noqa: E712 (numpy bool)
    assert d["label"] == "stein" and d["ragged"] == [[1], [1, 2]] and d["info"] == {"k": 1.5}
    assert d["missing"] is None
    assert _listing(tmp_path) == ["run.h5"]


def test_absent_kernels_stay_absent(tmp_path):
    tr = _traj(kernels=False)
    tr.save(tmp_path / "a.h5")
    back = dmft.load(tmp_path / "a.h5")
    _assert_same(tr, back)
    assert back.C is None and back.R is None and back.Lam is None and back.Lam_se is None


@pytest.mark.parametrize("problem", [
    dmft.Problem(target="staircase", P=3, activation="erf", alpha=1.0 / 3, eta=0.1 + 0.2,
                 lam=1e-3, T=3, a=[0.1, -0.7, 1 / 3], M0=np.full((3, 2), 0.1),
                 Q0=np.eye(3) + 1e-17 + 0.05, schedule=dmft.Bernoulli(0.1 + 0.2), noise=0.5),
    dmft.Problem(target="z1z2z3-he3", P=4, activation="softplus", T=2,
                 schedule=dmft.Cyclic(5)),
    dmft.Problem(target="he3", P=1, activation="quadratic", T=1, schedule="one-pass"),
])
def test_problems_round_trip_exactly(tmp_path, problem):
    tr = _traj(problem=problem)
    tr.save(tmp_path / "p.h5")
    back = dmft.load(tmp_path / "p.h5")
    _assert_same(tr, back)
    for name in ("a", "M0", "Q0"):
        np.testing.assert_array_equal(getattr(back.problem, name), getattr(problem, name))
    assert back.problem.schedule == problem.schedule


def test_overwrite_replaces_the_old_content(tmp_path):
    path = tmp_path / "x.h5"
    _traj(seed=1).save(path)
    new = _traj(seed=2, kernels=False)
    new.save(path)
    _assert_same(new, dmft.load(path))
    assert _listing(tmp_path) == ["x.h5"]


def test_saved_file_permissions_follow_the_umask(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    _traj().save(tmp_path / "m.h5")
    assert (tmp_path / "m.h5").stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_creates_missing_directories(tmp_path):
    path = tmp_path / "deep" / "er" / "t.h5"
    _traj().save(path)
    assert dmft.load(path).T == 4


# ------------------------------------------------------------------------------ user objects
def _neg_sin(x):
    return -math.sin(x)


def test_user_target_and_activation_load_with_one_call_when_importable(tmp_path):
    target = dmft.Target(_product, K=2, name="product")
    act = dmft.Activation(math.sin, math.cos, _neg_sin, name="sine")
    tr = _traj(problem=dmft.Problem(target=target, activation=act, T=3))
    tr.save(tmp_path / "user.h5")
    back = dmft.load(tmp_path / "user.h5")
    _assert_same(tr, back)
    assert back.problem.target.fn is _product and back.problem.target.K == 2
    assert (back.problem.activation.sigma, back.problem.activation.d2sigma) == \
        (math.sin, _neg_sin)
    with h5py.File(tmp_path / "user.h5", "r") as f:
        refs = json.loads(f.attrs["callables"])
    assert refs["target"]["fn"] == {"module": _product.__module__, "qualname": "_product"}
    assert refs["activation"]["sigma"] == {"module": "math", "qualname": "sin"}
    # a registry problem stores no references
    _traj().save(tmp_path / "reg.h5")
    with h5py.File(tmp_path / "reg.h5", "r") as f:
        assert "callables" not in f.attrs


def test_every_missing_callable_is_reported_at_once_with_what_to_pass(tmp_path):
    def local_d1(x):
        return math.cos(x)

    target = dmft.Target(lambda z: z[0] * z[1], K=2, name="lam")
    act = dmft.Activation(math.sin, local_d1, lambda x: -math.sin(x), name="sine")
    tr = _traj(problem=dmft.Problem(target=target, activation=act, T=3))
    path = tmp_path / "user.h5"
    tr.save(path)
    with pytest.raises(ValueError) as info:
        dmft.load(path)
    message = str(info.value)
    assert message.startswith(f"cannot rebuild the problem stored in {str(path)!r}: 3 functions")
    lines = message.splitlines()
    assert re.fullmatch(r"  - target 'lam': fn = .*<lambda> is a lambda, which cannot be "
                        r"imported", lines[1]), lines[1]
    assert re.fullmatch(r"  - activation 'sine': dsigma = .*<locals>\.local_d1 is defined "
                        r"inside a function, so it cannot be imported", lines[2]), lines[2]
    assert re.fullmatch(r"  - activation 'sine': d2sigma = .*<lambda> is a lambda.*", lines[3])
    assert lines[4] == (f"Pass them to dmft.load({str(path)!r}, target=dmft.Target(fn, K=2, "
                        "name='lam'), activation=dmft.Activation(sigma, dsigma, d2sigma, "
                        "name='sine', d2_dirac_at_zero=0.0))")
    # supplying one of them leaves only the other in the list
    with pytest.raises(ValueError, match=r"2 functions.*\n.*dsigma.*\n.*d2sigma.*\nPass them "
                                         r"to dmft.load\(.*, activation=dmft.Activation\("):
        dmft.load(path, target=target)
    back = dmft.load(path, target=target, activation=act)
    _assert_same(tr, back)
    assert back.problem.target is target and back.problem.activation is act


def test_a_module_that_is_gone_is_named_in_the_error(tmp_path):
    path = tmp_path / "user.h5"
    _traj(problem=dmft.Problem(target=dmft.Target(_product, K=2, name="product"))).save(path)
    with h5py.File(path, "r+") as f:  # as if the file came from a machine with another module
        refs = json.loads(f.attrs["callables"])
        refs["target"]["fn"] = {"module": "my_lab_targets", "qualname": "product"}
        f.attrs["callables"] = json.dumps(refs)
    with pytest.raises(ValueError, match=r"target 'product': fn = my_lab_targets.product cannot "
                                         r"be imported \(ModuleNotFoundError: No module named "
                                         r"'my_lab_targets'\)\nPass them to dmft.load\("):
        dmft.load(path)


def test_user_target_with_a_registry_name_is_not_swapped_for_the_registry_one(tmp_path):
    mine = dmft.Target(_product, K=2, name="staircase")  # same name as a registry target
    tr = _traj(problem=dmft.Problem(target=mine, T=3))
    tr.save(tmp_path / "s.h5")
    assert dmft.load(tmp_path / "s.h5").problem.target.fn is _product


def test_stored_user_functions_are_found_in_sweep_groups_too(tmp_path):
    target = dmft.Target(_product, K=2, name="product")
    tr = _traj(problem=dmft.Problem(target=target, T=3))
    with h5py.File(tmp_path / "many.h5", "w") as f:
        dmft.io.write_group(f.create_group("results/a"), tr)
    with h5py.File(tmp_path / "many.h5", "r") as f:
        _assert_same(tr, dmft.io.read_group(f["results/a"]))


def test_load_refuses_a_user_object_of_another_name(tmp_path):
    _traj().save(tmp_path / "reg.h5")  # registry target "tanh-he1-he3"
    other = dmft.Target(_product, K=2, name="product")
    with pytest.raises(ValueError, match=r"target='product' was passed to load.*'tanh-he1-he3'"):
        dmft.load(tmp_path / "reg.h5", target=other)


def test_load_rejects_files_that_are_not_trajectories(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match="does not hold a dmft.Trajectory"):
        dmft.load(path)


# ------------------------------------------------------------------------------ atomic writes
class _Boom(RuntimeError):
    pass


def _fail_after(monkeypatch, n_ok: int, exc=_Boom):
    """Make h5py dataset creation raise after n_ok successful calls (a mid-write failure)."""
    original = h5py.Group.create_dataset
    calls = {"n": 0}

    def create_dataset(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise exc("simulated failure during the write")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)
    return calls


@pytest.mark.parametrize("exc", [_Boom, KeyboardInterrupt])
def test_interrupted_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, exc):
    path = tmp_path / "run.h5"
    old = _traj(seed=1)
    old.save(path)
    before = path.read_bytes()
    calls = _fail_after(monkeypatch, n_ok=5, exc=exc)
    with pytest.raises(exc):
        _traj(seed=2).save(path)
    assert calls["n"] == 6  # the failure happened part-way through the datasets
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["run.h5"]
    monkeypatch.undo()
    _assert_same(old, dmft.load(path))


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    _fail_after(monkeypatch, n_ok=3)
    with pytest.raises(_Boom):
        _traj().save(tmp_path / "new.h5")
    assert _listing(tmp_path) == []


def test_bad_diagnostics_key_fails_before_touching_the_destination(tmp_path):
    path = tmp_path / "d.h5"
    _traj(seed=1).save(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="diagnostics key 'a/b' must not contain '/'"):
        _traj(diagnostics={"a/b": 1.0}).save(path)
    assert path.read_bytes() == before and _listing(tmp_path) == ["d.h5"]


def test_failed_rename_removes_the_temporary_file(tmp_path):
    (tmp_path / "taken").mkdir()  # os.replace cannot put a file onto a directory
    with pytest.raises(OSError):
        _traj().save(tmp_path / "taken")
    assert _listing(tmp_path) == ["taken"] and _listing(tmp_path / "taken") == []


def test_temporary_file_is_a_hidden_sibling(tmp_path, monkeypatch):
    seen = []
    original = h5py.File.__init__

    def spy(self, name, *args, **kwargs):
        if isinstance(name, (str, os.PathLike)):  # h5py also opens files by id internally
            seen.append(Path(name))
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "__init__", spy)
    _traj().save(tmp_path / "run.h5")
    assert len(seen) == 1 and seen[0].parent == tmp_path
    assert seen[0].name.startswith(".run.h5.") and seen[0].name.endswith(".tmp")


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import dmft

    problem = dmft.Problem(T=3)
    big = np.random.default_rng(0).random(10**7)  # 80 MB: the write takes a while
    tr = dmft.Trajectory(problem, M=np.ones((3, 2, 2)), Q=np.ones((3, 2, 2)),
                         e_train=np.ones(3), e_gen=np.ones(3), diagnostics={"big": big})
    print("start", flush=True)
    tr.save(sys.argv[1])
    print("done", flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_writer_leaves_the_old_file_intact(tmp_path):
    # a kill cannot run clean-up code: the old file stays whole and readable, and the only
    # possible leftover is the hidden temporary file (never a partial file under the real name)
    path = tmp_path / "run.h5"
    old = _traj(seed=3)
    old.save(path)
    before = path.read_bytes()
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path.parent)
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(0.02)  # inside the ~0.1-0.5 s write
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()
    assert "done" not in rest, "the writer finished before the kill; the test proved nothing"
    assert path.read_bytes() == before
    leftovers = set(_listing(tmp_path)) - {"run.h5", "writer.py"}
    assert all(n.startswith(".run.h5.") and n.endswith(".tmp") for n in leftovers), leftovers
    _assert_same(old, dmft.load(path))


# ------------------------------------------------------------------------------ named dimensions
_DIMS = {"M": ("time", "unit", "direction"), "Q": ("time", "unit", "unit2"),
         "e_train": ("time",), "e_gen": ("time",), "C": ("time", "time2", "unit", "unit2"),
         "R": ("time", "time2", "unit", "unit2"), "Lam": ("time", "unit", "unit2")}


def test_every_dataset_has_a_description_and_named_dimension_scales(tmp_path):
    tr = _traj(problem=dmft.Problem(target="z1z2z3-he3", P=3, T=4),
               diagnostics={"cond": np.arange(4.0), "table": np.ones((2, 3))})
    tr.save(tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5", "r") as f:
        datasets = []
        f.visititems(lambda name, obj: datasets.append(obj)
                     if isinstance(obj, h5py.Dataset) else None)
        assert datasets and all(d.attrs.get("description") for d in datasets)
        for name, dims in _DIMS.items():
            for key in (name, name + "_se"):
                assert [f[key].dims[i][0].name for i in range(len(dims))] == \
                    ["/" + dim for dim in dims], key
        assert f["M"].shape == (4, 3, 4)  # P and K axes tell apart by their scales
        for dim, n in {"time": 4, "time2": 4, "unit": 3, "unit2": 3, "direction": 4}.items():
            assert h5py.h5ds.is_scale(f[dim].id)
            np.testing.assert_array_equal(f[dim][()], np.arange(n))
        assert f["diagnostics/cond"].dims[0][0].name == "/time"


def test_xarray_reads_named_dimensions_and_the_same_values(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    for kernels in (True, False):
        tr = _traj(problem=dmft.Problem(target="staircase", P=3, T=4), kernels=kernels)
        tr.save(tmp_path / "x.h5")
        with xr.open_dataset(tmp_path / "x.h5", engine="h5netcdf") as ds:
            assert not [d for d in ds.dims if str(d).startswith("phony_dim")]
            assert dict(ds.sizes) == {"time": 4, "unit": 3, "direction": 2, "unit2": 3,
                                      **({"time2": 4} if kernels else {})}
            assert ds["M"].dims == ("time", "unit", "direction")
            assert all(ds[v].attrs["description"] for v in ds.variables)
            assert ds.attrs["format"] == "dmft.Trajectory"
            assert json.loads(ds.attrs["provenance"]) == tr.provenance
            mine = tr.to_xarray()
            assert set(ds.data_vars) == set(mine.data_vars)
            xr.testing.assert_equal(ds, mine)  # values, dims and coordinates


def test_simulation_diagnostics_get_named_dimensions(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    rng = np.random.default_rng(0)
    diag = {"M_runs": rng.random((3, 4, 2, 2)), "e_gen_runs": rng.random((3, 4)),
            "e_gen_integration_se": rng.random((3, 4)), "cond_Cw": rng.random(4),
            "fit_dof": 7}
    tr = _traj(diagnostics=diag)
    tr.save(tmp_path / "s.h5")
    with xr.open_dataset(tmp_path / "s.h5", engine="h5netcdf", group="diagnostics") as ds:
        assert ds["M_runs"].dims == ("run", "time", "unit", "direction")
        assert ds["e_gen_runs"].dims == ds["e_gen_integration_se"].dims == ("run", "time")
        assert ds["cond_Cw"].dims == ("time",) and ds["fit_dof"].dims == ()
    back = dmft.load(tmp_path / "s.h5")
    assert sorted(back.diagnostics) == sorted(diag)  # the scales are not read as diagnostics


def _write_version_1(path, traj):
    """A file exactly as format version 1 wrote it (no dimension scales, no callables)."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "dmft.Trajectory"
        f.attrs["format_version"] = 1
        f.attrs["problem"] = json.dumps(traj.problem.to_dict())
        f.attrs["provenance"] = json.dumps(traj.provenance)
        for name in ("M", "Q", "e_train", "e_gen"):
            f.create_dataset(name, data=getattr(traj, name))
            f.create_dataset(name + "_se", data=getattr(traj, name + "_se"))
        for name in ("C", "R", "Lam", "C_se", "R_se", "Lam_se"):
            if getattr(traj, name) is not None:
                f.create_dataset(name, data=getattr(traj, name))
        diag = f.create_group("diagnostics")
        diag.create_dataset("cond_Cw", data=np.arange(traj.T, dtype=np.float64))
        diag.attrs["label"] = json.dumps("stein")


def test_format_version_1_files_still_load(tmp_path):
    tr = _traj(problem=dmft.Problem(target="staircase", P=3, T=4, schedule=dmft.Cyclic(2)))
    _write_version_1(tmp_path / "v1.h5", tr)
    back = dmft.load(tmp_path / "v1.h5")
    _assert_same(tr, back)
    np.testing.assert_array_equal(back.diagnostics["cond_Cw"], np.arange(4.0))
    assert back.diagnostics["label"] == "stein"


def test_format_version_1_file_of_a_user_problem_asks_for_every_object(tmp_path):
    act = dmft.Activation(math.sin, math.cos, _neg_sin, name="sine")
    tr = _traj(problem=dmft.Problem(target=dmft.Target(_product, K=2, name="product"),
                                    activation=act, T=3))
    _write_version_1(tmp_path / "v1.h5", tr)
    with pytest.raises(ValueError, match=(
            r"2 functions.*\n  - target 'product': user-defined, and this file \(format "
            r"version 1\) does not record where its functions live\n  - activation 'sine': "
            r"user-defined.*\nPass them to dmft.load\(.*target=dmft.Target\(fn, K=2, "
            r"name='product'\), activation=dmft.Activation\(sigma, dsigma, d2sigma, "
            r"name='sine'\)\)")):
        dmft.load(tmp_path / "v1.h5")
    _assert_same(tr, dmft.load(tmp_path / "v1.h5", target=tr.problem.target, activation=act))


def test_files_of_a_newer_format_are_refused(tmp_path):
    _traj().save(tmp_path / "new.h5")
    with h5py.File(tmp_path / "new.h5", "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ValueError, match=r"written by a newer dmft \(format version 99 > 2\)"):
        dmft.load(tmp_path / "new.h5")


# ------------------------------------------------------------------------------ bad files
def test_truncated_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "cut.h5"
    _traj().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=(
            rf"^{re.escape(repr(str(path)))} is a damaged or truncated HDF5 file \(\d+ bytes; "
            r"e\.g\. an interrupted copy or download\): h5py cannot open it")):
        dmft.load(path)


@pytest.mark.parametrize("content,what", [
    (b"M,Q\n1,2\n", r"is not an HDF5 file \(it does not start with the HDF5 signature\)"),
    (b"", r"is empty \(0 bytes\)"),
])
def test_file_that_is_not_hdf5_is_named_in_the_error(tmp_path, content, what):
    path = tmp_path / "run.h5"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"^{re.escape(repr(str(path)))} {what}") as info:
        dmft.load(path)
    assert "file signature not found" not in str(info.value).split("(")[0]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such file: '.*nothing\.h5'"):
        dmft.load(tmp_path / "nothing.h5")
    with pytest.raises(FileNotFoundError, match=r"is not a file"):
        dmft.load(tmp_path)


_GROUP = "results/abc"  # a result group inside a sweep store (an HDF5 path, not a file)


def test_sweep_store_points_to_load_sweep(tmp_path):
    from dmft.sweeps import load_sweep  # noqa: F401 (the function the message names exists)
    from dmft.sweeps.store import STORE_FORMAT

    path = tmp_path / "sweep.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = STORE_FORMAT
        f.attrs["format_version"] = 1
        tr = _traj(problem=dmft.Problem(target=dmft.Target(lambda z: z[0], K=1, name="z1")))
        dmft.io.write_group(f.create_group(_GROUP), tr)
    with pytest.raises(ValueError, match=(
            r"is a sweep store \(format 'dmft.Sweep'\), not one trajectory: read it with "
            r"dmft.sweeps.load_sweep\('.*sweep\.h5'\)")):
        dmft.load(path)
    # a result inside it whose target cannot be imported asks for it through load_sweep
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match=(
            r"(?s)stored in '" + re.escape("/" + _GROUP) + r"' of '.*sweep\.h5'.*\nPass them to "
            r"dmft.sweeps.load_sweep\(store, target=dmft.Target\(fn, K=1, name='z1'\)\)")):
        dmft.io.read_group(f[_GROUP])


def test_trajectories_in_groups_are_listed_and_loaded_by_group(tmp_path):
    path = tmp_path / "fig.h5"
    a, b = _traj(seed=1), _traj(seed=2, kernels=False)
    with h5py.File(path, "w") as f:
        dmft.io.write_group(f.create_group("he3/dmft"), a)
        dmft.io.write_group(f.create_group("he3/sim"), b)
    with pytest.raises(ValueError, match=r"holds trajectories in the groups \['he3/dmft', "
                                         r"'he3/sim'\]: pass group=\.\.\."):
        dmft.load(path)
    _assert_same(b, dmft.load(path, group="he3/sim"))
    with pytest.raises(ValueError, match=r"has no group 'he4'"):
        dmft.load(path, group="he4")


def test_nested_trajectories_keep_their_own_dimensions_in_xarray(tmp_path):
    # the layout of `dmft run`: one trajectory at the root, others in subgroups
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    root = _traj(problem=dmft.Problem(T=4), kernels=True)
    sim = _traj(problem=dmft.Problem(T=4, P=3), kernels=False)
    with dmft.io.atomic_h5file(tmp_path / "run.h5") as f:
        dmft.io.write_group(f, root)
        dmft.io.write_group(f.create_group("simulation"), sim)
    with xr.open_dataset(tmp_path / "run.h5", engine="h5netcdf") as ds:
        assert ds.sizes["unit"] == 2 and "time2" in ds.dims
    with xr.open_dataset(tmp_path / "run.h5", engine="h5netcdf", group="simulation") as ds:
        assert ds.sizes["unit"] == 3 and "time2" not in ds.dims
        xr.testing.assert_equal(ds, sim.to_xarray())
    _assert_same(root, dmft.load(tmp_path / "run.h5"))
    _assert_same(sim, dmft.load(tmp_path / "run.h5", group="simulation"))
