"""HDF5 storage: exact round trip, atomic writes, user-defined targets and activations."""

from __future__ import annotations

import math
import os
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
def test_user_target_and_activation_round_trip_when_passed_to_load(tmp_path):
    target = dmft.Target(_product, K=2, name="product")
    act = dmft.Activation(math.sin, math.cos, lambda x: -math.sin(x), name="sine")
    tr = _traj(problem=dmft.Problem(target=target, activation=act, T=3))
    path = tmp_path / "user.h5"
    tr.save(path)
    with pytest.raises(ValueError, match=r"'product' is not a registered target.*pass target="):
        dmft.load(path)
    with pytest.raises(ValueError, match=r"'sine' is not a registered activation.*activation="):
        dmft.load(path, target=target)
    back = dmft.load(path, target=target, activation=act)
    _assert_same(tr, back)
    assert back.problem.target is target and back.problem.activation is act


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
