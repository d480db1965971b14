"""Parameter sweeps on Dask (dmft.sweep): equality with serial solves, fault tolerance, resuming,
store safety, validation, thread settings, tables and the CLI.

Problems are tiny (He3 target, P = 1, T = 3, 2e4 DMFT samples, d = 200) so the whole module runs
in well under a minute on 2 cores; one 2-worker LocalCluster is shared by the tests.
"""

from __future__ import annotations

import hashlib
import json
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
from dmft.sweeps import cluster as sweep_cluster
from dmft.sweeps import (
    derive_seed,
    expand_grid,
    load_config,
    load_sweep,
    local_cluster,
    preserved_environ,
)
from dmft.sweeps import driver as sweep_driver
from dmft.sweeps.store import Store

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
BASE = dmft.Problem(target="he3", P=1, activation="relu", T=3)
GRID = {"alpha": [2.0, 3.0], "eta": [0.2, 0.4]}
SOLVE = {"samples": 20_000}
SIM = {"d": 200, "seeds": 4}
METHODS = ("dmft", "simulate")
N_RESULTS = 4 * len(METHODS)
SWEEP_ARGS = dict(methods=METHODS, solve_kwargs=SOLVE, simulate_kwargs=SIM, seed=0,
                  seeds_per_task=2, progress=False)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def client():
    with preserved_environ(), local_cluster(2) as cluster, distributed.Client(cluster) as cl:
        yield cl


def _points():
    for alpha in GRID["alpha"]:
        for eta in GRID["eta"]:
            yield {"alpha": alpha, "eta": eta}, BASE.replace(alpha=alpha, eta=eta)


def _serial_sim(prob, seeds):
    """The same runs, one plain dmft.simulate call each, combined here with numpy."""
    runs = [dmft.simulate(prob, d=SIM["d"], seeds=1, seed=s, progress=False) for s in seeds]
    M_runs = np.concatenate([r.diagnostics["M_runs"] for r in runs])
    Q_runs = np.concatenate([r.diagnostics["Q_runs"] for r in runs])
    e_train_runs = np.concatenate([r.diagnostics["e_train_runs"] for r in runs])
    e_gen_runs = np.concatenate([r.diagnostics["e_gen_runs"] for r in runs])
    n = len(seeds)
    return {"M": M_runs.mean(0), "M_se": M_runs.std(0, ddof=1) / math.sqrt(n),
            "Q": Q_runs.mean(0), "e_train": e_train_runs.mean(0), "e_gen": e_gen_runs.mean(0),
            "M_runs": M_runs}


@pytest.fixture(scope="module")
def serial():
    """Every point solved and simulated serially in this process with the documented seeds."""
    ref = {}
    for coords, prob in _points():
        pd = prob.to_dict()
        key = (coords["alpha"], coords["eta"])
        traj = dmft.solve(prob, seed=derive_seed(0, pd, "dmft"), progress=False, **SOLVE)
        ref[key, "dmft"] = {"M": traj.M, "M_se": traj.M_se, "Q": traj.Q,
                            "e_train": traj.e_train, "e_gen": traj.e_gen, "C": traj.C}
        seeds = [derive_seed(0, pd, "simulate", i) for i in range(SIM["seeds"])]
        ref[key, "simulate"] = _serial_sim(prob, seeds)
    return ref


@pytest.fixture(scope="module")
def swept(client, tmp_path_factory):
    store = tmp_path_factory.mktemp("sweep") / "sweep.h5"
    return dmft.sweep(BASE, GRID, store=store, client=client, **SWEEP_ARGS)


def _assert_matches_serial(result, serial):
    for coords, _ in _points():
        key = (coords["alpha"], coords["eta"])
        for method in METHODS:
            traj = result.trajectory(method, **coords)
            assert traj is not None, (coords, method)
            for name, want in serial[key, method].items():
                got = traj.diagnostics[name] if name.endswith("_runs") else getattr(traj, name)
                # bitwise: same seeds, same arithmetic, whatever the worker or thread count
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {coords} {method}")


def _journal_and_main_ok(store: Path) -> None:
    """Every HDF5 file of the store opens and every result group has its trajectory."""
    st = Store(store)
    files = ([store] if store.exists() else []) + st.journal_files()
    for path in files:
        with h5py.File(path, "r") as f:
            assert f.attrs["format"] == "dmft.Sweep"
            for key, group in f.get("results", {}).items():
                assert group.attrs["key"] == key
                assert "problem" in group.attrs and "provenance" in group.attrs
                if group.attrs["status"] == "ok":
                    assert group["M"].shape[0] == BASE.T


# ------------------------------------------------------------------------------ equality
def test_two_workers_equal_serial_bitwise(swept, serial):
    assert swept.computed == N_RESULTS
    assert swept.count("ok") == N_RESULTS
    _assert_matches_serial(swept, serial)


def test_one_pass_equals_serial(client, tmp_path):
    pytest.importorskip("solvers.onepass")
    grid = {"alpha": [2.0], "eta": [0.2, 0.4]}
    res = dmft.sweep(BASE, grid, methods=("one-pass",), store=tmp_path / "s.h5", client=client,
                     progress=False)
    for eta in grid["eta"]:
        prob = BASE.replace(alpha=2.0, eta=eta)
        want = dmft.solve(prob, method="one-pass", seed=derive_seed(0, prob.to_dict(),
                                                                    "one-pass"))
        got = res.trajectory("one-pass", alpha=2.0, eta=eta)
        np.testing.assert_array_equal(got.M, want.M)
        np.testing.assert_array_equal(got.Q, want.Q)


def test_store_alone_rebuilds_the_table(swept):
    again = load_sweep(swept.store)
    assert again.coords == swept.coords and again.methods == swept.methods
    assert again.computed == 0
    for a, b in zip(again.records, swept.records, strict=True):
        assert (a.key, a.status, a.coords) == (b.key, b.status, b.coords)
        np.testing.assert_array_equal(a.trajectory.M, b.trajectory.M)
        assert a.trajectory.problem == b.trajectory.problem
        assert a.trajectory.provenance == b.trajectory.provenance
    # a clean finish leaves one self-contained file
    assert not Path(str(swept.store) + ".journal").exists()


def test_point_result_independent_of_grid_order_blocking_and_neighbours(client, swept,
                                                                        tmp_path):
    # reversed field order and values, one point dropped, another added, one run per task
    grid = {"eta": [0.4, 0.2], "alpha": [3.0, 5.0]}
    args = dict(SWEEP_ARGS, seeds_per_task=1)
    other = dmft.sweep(BASE, grid, store=tmp_path / "other.h5", client=client, **args)
    for eta in (0.2, 0.4):
        for method in METHODS:
            a = other.trajectory(method, alpha=3.0, eta=eta)
            b = swept.trajectory(method, alpha=3.0, eta=eta)
            np.testing.assert_array_equal(a.M, b.M)
            np.testing.assert_array_equal(a.e_gen, b.e_gen)


def test_seeds_derive_from_content_only():
    p = BASE.replace(alpha=3, eta=0.2)
    q = dmft.Problem(target="he3", P=1, activation="relu", T=3, alpha=3.0, eta=0.2)
    assert derive_seed(0, p.to_dict(), "dmft") == derive_seed(0, q.to_dict(), "dmft")
    seeds = {derive_seed(s, prob.to_dict(), m, *extra)
             for s in (0, 1) for _, prob in _points()
             for m, extra in (("dmft", ()), ("simulate", (0,)), ("simulate", (1,)))}
    assert len(seeds) == 2 * 4 * 3  # all distinct
    assert all(0 <= s < 2**63 for s in seeds)


# ------------------------------------------------------------------------------ tables
def test_xarray_and_records_agree_with_trajectories(swept):
    xr = pytest.importorskip("xarray")
    ds = swept.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert dict(ds.sizes) == {"alpha": 2, "eta": 2, "solver": 2, "t": 3, "unit": 1, "k": 1}
    for coords, _ in _points():
        for method in METHODS:
            traj = swept.trajectory(method, **coords)
            cell = ds.sel(solver=method, **coords)
            # He3 has C_1 = 0 and K = 1: the overlap is M itself
            np.testing.assert_array_equal(cell["overlap"].values, traj.M[:, :, 0])
            np.testing.assert_array_equal(cell["overlap_se"].values, traj.M_se[:, :, 0])
            np.testing.assert_array_equal(cell["e_gen"].values, traj.e_gen)
            assert str(cell["status"].values) == "ok"
    rows = swept.to_records()
    assert len(rows) == N_RESULTS * BASE.T * BASE.P
    row = next(r for r in rows if r["alpha"] == 3.0 and r["eta"] == 0.4 and r["t"] == 2
               and r["method"] == "dmft")
    assert row["overlap"] == swept.trajectory("dmft", alpha=3.0, eta=0.4).M[2, 0, 0]


def test_overlap_along_first_hermite_vector(swept):
    # for a target with C_1 != 0 the overlap is M projected on C_1/|C_1|, computed here by hand
    res = swept
    traj = res.trajectory("dmft", alpha=2.0, eta=0.2)
    prob = traj.problem.replace(target="tanh-he1-he3", P=2)
    M = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2) / 10
    fake = dmft.Trajectory(problem=prob, M=M, Q=np.tile(np.eye(2), (3, 1, 1)),
                           e_train=np.zeros(3), e_gen=np.zeros(3))
    from dmft.gaussian import first_hermite

    c1 = first_hermite(prob.target)
    u = c1 / np.linalg.norm(c1)
    val, _ = res._values(fake, "overlap")
    np.testing.assert_allclose(val, M @ u, rtol=1e-14)
    perp, _ = res._values(fake, "orthogonal_overlap")
    np.testing.assert_allclose(perp, np.linalg.norm(M - (M @ u)[..., None] * u, axis=-1),
                               rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------ faults
def test_killed_worker_still_completes_identically(client, serial, tmp_path):
    before = client.run(os.getpid)
    killed = {}

    def kill_a_busy_worker(record):
        if killed:
            return
        busy = [addr for addr, keys in client.processing().items() if keys and addr in before]
        if busy:
            killed["pid"] = before[busy[0]]
            killed["tasks"] = len(client.processing()[busy[0]])
            os.kill(killed["pid"], signal.SIGKILL)

    res = dmft.sweep(BASE, GRID, store=tmp_path / "s.h5", client=client,
                     callback=kill_a_busy_worker, **SWEEP_ARGS)
    assert killed and killed["tasks"] >= 1, "no worker was busy when the first result arrived"
    assert res.count("ok") == N_RESULTS
    _assert_matches_serial(res, serial)
    client.wait_for_workers(2, timeout=60)
    assert killed["pid"] not in client.run(os.getpid).values()  # really replaced


def test_interrupted_driver_resumes_with_only_missing_results(client, serial, tmp_path):
    store = tmp_path / "s.h5"
    stored = []

    def interrupt_after_three(record):
        stored.append(record.key)
        if len(stored) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dmft.sweep(BASE, GRID, store=store, client=client, callback=interrupt_after_three,
                   **SWEEP_ARGS)
    _journal_and_main_ok(store)
    partial = load_sweep(store)
    assert partial.count("ok") == 3 and partial.count("missing") == N_RESULTS - 3
    assert {r.key for r in partial.records if r.status == "ok"} == set(stored)
    computed_now = []
    res = dmft.sweep(BASE, GRID, store=store, client=client,
                     callback=lambda r: computed_now.append(r.key), **SWEEP_ARGS)
    assert res.computed == N_RESULTS - 3
    assert sorted(computed_now) == sorted(r.key for r in partial.records
                                          if r.status == "missing")
    _assert_matches_serial(res, serial)


def test_grown_grid_adds_points_without_touching_finished(client, tmp_path):
    store = tmp_path / "s.h5"
    args = dict(SWEEP_ARGS, methods=("dmft",))
    first = dmft.sweep(BASE, {"alpha": [2.0], "eta": [0.2, 0.4]}, store=store, client=client,
                       **args)
    walls = {r.key: r.trajectory.provenance["wall_time"] for r in first.records}
    grown = dmft.sweep(BASE, {"alpha": [2.0, 3.0], "eta": [0.2, 0.4, 0.6]}, store=store,
                       client=client, **args)
    assert grown.computed == 6 - 2
    for r in grown.records:
        if r.key in walls:  # the very same stored result, not a recomputation
            assert r.trajectory.provenance["wall_time"] == walls[r.key]
    assert len(walls) == 2 and grown.count("ok") == 6
    # the first sweep is still readable from the store by its id
    assert load_sweep(store, first.sweep_id).count("ok") == 2


_DRIVER = textwrap.dedent("""
    import json, sys, time
    import dmft
    import dmft.sweeps.store
    # compact after (almost) every result: kills also hit compactions
    dmft.sweeps.store._COMPACT_MIN = 1
    store, address, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    base = dmft.Problem.from_dict(args.pop("base"))
    # pace the driver so that the kill lands mid-sweep even on a busy machine
    dmft.sweep(base, args.pop("grid"), store=store, client=address,
               callback=lambda record: time.sleep(0.3), **args)
""")


def _kill_driver_when(store: Path, address: str, min_ok: int, timeout: float = 120.0) -> int:
    """Run a sweep in a subprocess and SIGKILL it once >= min_ok results are stored."""
    args = dict(SWEEP_ARGS, base=BASE.to_dict(), grid=GRID, methods=list(METHODS))
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(store), address,
                             json.dumps(args)], cwd=ROOT)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if sum(kind == "results" for kind, _ in Store(store).index()) >= min_ok:
                    break
            except OSError:  # nothing written yet, or a file replaced while read
                pass
            time.sleep(0.01)
        assert proc.poll() is None, "the driver finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    return load_sweep(store).count("ok")


def test_killed_driver_never_corrupts_the_store(client, serial, tmp_path):
    store = tmp_path / "s.h5"
    address = client.scheduler.address
    n_ok = _kill_driver_when(store, address, min_ok=2)
    _journal_and_main_ok(store)
    assert 2 <= n_ok < N_RESULTS, n_ok
    res = dmft.sweep(BASE, GRID, store=store, client=client, **SWEEP_ARGS)
    assert res.computed == N_RESULTS - n_ok
    _assert_matches_serial(res, serial)


@pytest.mark.slow
def test_repeatedly_killed_driver_at_random_times(client, serial, tmp_path):
    store = tmp_path / "s.h5"
    rng = np.random.default_rng(12345)
    n_ok = 0
    for _ in range(4):
        target = min(N_RESULTS - 1, n_ok + int(rng.integers(1, 3)))
        if target <= n_ok:
            break
        n_ok = _kill_driver_when(store, client.scheduler.address, min_ok=target)
        _journal_and_main_ok(store)
    res = dmft.sweep(BASE, GRID, store=store, client=client, **SWEEP_ARGS)
    assert res.computed == N_RESULTS - n_ok
    _assert_matches_serial(res, serial)


def _tiny_traj(alpha: float) -> dmft.Trajectory:
    prob = BASE.replace(alpha=alpha)
    return dmft.Trajectory(problem=prob, M=np.full((3, 1, 1), alpha), Q=np.ones((3, 1, 1)),
                           e_train=np.zeros(3), e_gen=np.zeros(3))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_failed_compaction_and_failed_write_leave_the_store_unchanged(tmp_path, monkeypatch):
    st = Store(tmp_path / "s.h5")
    with st.locked():
        st.write("results", "a", lambda g: dmft.io.write_group(g, _tiny_traj(1.0)))
        st.compact()
        st.write("results", "b", lambda g: dmft.io.write_group(g, _tiny_traj(2.0)))
        st.write("results", "c", lambda g: dmft.io.write_group(g, _tiny_traj(3.0)))
        main_before = _digest(st.path)
        journal_before = {p.name: _digest(p) for p in st.journal_files()}
        index_before = st.index()

        calls = []
        real_copy = h5py.Group.copy

        def copy_then_fail(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # after one group was already copied into the new file
                raise OSError("simulated failure during compaction")
            return real_copy(self, *args, **kwargs)

        monkeypatch.setattr(h5py.Group, "copy", copy_then_fail)
        with pytest.raises(OSError, match="simulated"):
            st.compact()
        monkeypatch.undo()
        assert _digest(st.path) == main_before
        assert {p.name: _digest(p) for p in st.journal_files()} == journal_before
        assert st.index() == index_before

        def fail_midway(group):
            dmft.io.write_group(group, _tiny_traj(4.0))
            raise RuntimeError("simulated failure during a result write")

        with pytest.raises(RuntimeError, match="simulated"):
            st.write("results", "d", fail_midway)
        assert st.index() == index_before  # no half-written result appears
        leftovers = [p for p in st.journal.iterdir() if p.name.startswith(".")]
        assert leftovers == []

        st.compact()  # and the next compaction merges everything
    assert {k for kind, k in st.index() if kind == "results"} == {"a", "b", "c"}
    assert st.journal_files() == []
    with h5py.File(st.path, "r") as f:
        got = {k: float(f["results"][k]["M"][0, 0, 0]) for k in f["results"]}
    assert got == {"a": 1.0, "b": 2.0, "c": 3.0}


def test_one_driver_per_store(tmp_path):
    st = Store(tmp_path / "s.h5")
    with st.locked():
        with pytest.raises(RuntimeError, match="another sweep"):
            with Store(tmp_path / "s.h5").locked():
                pass


def test_refuses_to_overwrite_a_file_that_is_not_a_store(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    _tiny_traj(1.0).save(path)
    monkeypatch.setattr(sweep_driver, "_run", _must_not_run)
    with pytest.raises(ValueError, match="not a dmft sweep store"):
        dmft.sweep(BASE, GRID, store=path, **SWEEP_ARGS)


def test_divergence_is_stored_and_not_retried(client, tmp_path):
    huge = dmft.Target(lambda z: 1e300 * z[0], K=1, name="huge")
    store = tmp_path / "s.h5"
    grid = {"target": ["he3", huge]}
    args = dict(SWEEP_ARGS, simulate_kwargs={"d": 50, "seeds": 2})
    res = dmft.sweep(BASE, grid, store=store, client=client, **args)
    assert res.status.tolist() == [["ok", "ok"], ["diverged", "diverged"]]
    rec = res.record("simulate", target="huge")
    assert rec.step == 1 and "diverged" in rec.message
    assert np.isnan(res.array("overlap")[1]).all()
    again = dmft.sweep(BASE, grid, store=store, client=client, **args)
    assert again.computed == 0 and again.status.tolist() == res.status.tolist()


# ------------------------------------------------------------------------------ validation
def _must_not_run(*args, **kwargs):
    raise AssertionError("a task was submitted although the input is invalid")


@pytest.mark.parametrize("grid, kwargs, exc, match", [
    ({"alpah": [1.0]}, {}, ValueError, "'alpah'"),
    ({"alpha": []}, {}, ValueError, r"grid\['alpha'\] is empty"),
    ({"alpha": [1.0, -2.0]}, {}, ValueError, r"grid\['alpha'\].*-2.0"),
    ({"eta": [0.1], "schedule": ["full", "cyclic(0)"]}, {}, ValueError, "schedule"),
    ({"target": ["he3", "he7"]}, {}, ValueError, "target"),
    ({"alpha": 3.0}, {}, TypeError, r"grid\['alpha'\] must be a list"),
    ({"alpha": [3.0, 3]}, {}, ValueError, r"grid\['alpha'\].*twice"),
    ({"P": [1, 2], "a": [[1.0]]}, {}, ValueError, "'P'.*'a'|'a'.*'P'"),
    ({"alpha": [1.0]}, {"methods": ("dmft", "exact")}, ValueError, "exact"),
    ({"alpha": [1.0]}, {"solve_kwargs": {"sample": 10}}, ValueError, "'sample'"),
    ({"alpha": [1.0]}, {"solve_kwargs": {"seed": 3}}, ValueError, "'seed'"),
    ({"alpha": [1.0]}, {"simulate_kwargs": {"seeds": 4}}, ValueError, "'d'"),
    ({"alpha": [1.0]}, {"simulate_kwargs": {"d": 100, "seeds": 0}}, ValueError, "seeds"),
])
def test_invalid_input_fails_before_submission(tmp_path, monkeypatch, grid, kwargs, exc, match):
    monkeypatch.setattr(sweep_driver, "_run", _must_not_run)
    args = dict(SWEEP_ARGS, **kwargs)
    with pytest.raises(exc, match=match):
        dmft.sweep(BASE, grid, store=tmp_path / "s.h5", client="tcp://127.0.0.1:1", **args)
    assert not (tmp_path / "s.h5").exists()
    assert not (tmp_path / "s.h5.journal").exists()


def test_expand_grid_is_the_product_in_c_order():
    coords, points = expand_grid(BASE, {"alpha": [1, 2], "schedule": ["full", "cyclic(2)"]})
    assert coords == {"alpha": [1.0, 2.0], "schedule": ["full", "cyclic(2)"]}
    assert [p[1] for p in points] == [
        {"alpha": 1.0, "schedule": "full"}, {"alpha": 1.0, "schedule": "cyclic(2)"},
        {"alpha": 2.0, "schedule": "full"}, {"alpha": 2.0, "schedule": "cyclic(2)"}]
    assert points[3][2] == BASE.replace(alpha=2.0, schedule=dmft.Cyclic(2))


# ------------------------------------------------------------------------------ threads
def test_threads_do_not_oversubscribe(client, swept):
    cores = len(os.sched_getaffinity(0))
    n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    # numba threads the DMFT tasks actually ran with (recorded by the solver inside the task)
    used = {r.trajectory.provenance["threads"] for r in swept.records if r.method == "dmft"}
    assert used == {max(1, cores // n_workers)}
    assert max(used) * n_workers <= max(cores, n_workers)
    blas = client.run(lambda: os.environ.get("OPENBLAS_NUM_THREADS"))
    assert set(blas.values()) == {str(max(used))}
    # on clusters not started by dmft: cores of each host // task slots on that host
    by_host = sweep_cluster.threads_by_host(client)
    assert by_host == {"127.0.0.1": max(1, cores // n_workers)}


# ------------------------------------------------------------------------------ CLI
def _write_config(path: Path, store: Path, extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""
        store = "{store}"
        methods = ["dmft"]
        seed = 0
        [problem]
        target = "he3"
        P = 1
        activation = "relu"
        T = 3
        [grid]
        alpha = [2.0, 3.0]
        eta = [0.2]
        [dmft]
        samples = 20000
        [report]
        t = 2
    """) + extra)
    return path


def test_cli_sweep_on_a_scheduler_and_rerun(client, swept, tmp_path, capsys):
    from dmft.cli import main

    store = tmp_path / "cli.h5"
    cfg = _write_config(tmp_path / "c.toml", store)
    address = client.scheduler.address
    assert main(["sweep", str(cfg), "--scheduler", address, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "computed 2 result(s)" in out and "alpha \\ eta" in out
    want = swept.trajectory("dmft", alpha=3.0, eta=0.2).M[2, 0, 0]
    assert f"{want:.4f}" in out  # the same point as in the Python sweep, same seed
    assert main(["--quiet", "sweep", str(cfg), "--scheduler", address]) == 0
    assert "computed 0 result(s)" in capsys.readouterr().out


def test_cli_default_local_cluster(tmp_path, capsys):
    from dmft.cli import main

    cfg = _write_config(tmp_path / "c.toml", tmp_path / "local.h5")
    environ = dict(os.environ)
    assert main(["sweep", str(cfg), "--workers", "1", "--quiet"]) == 0
    assert load_sweep(tmp_path / "local.h5").count("ok") == 2
    assert dict(os.environ) == environ  # dask's worker variables did not leak into this process


def test_cli_config_errors_name_the_key(tmp_path, capsys):
    from dmft.cli import main

    cfg = _write_config(tmp_path / "c.toml", tmp_path / "x.h5", "[grid2]\nx = 1\n")
    assert main(["sweep", str(cfg)]) == 2
    assert "grid2" in capsys.readouterr().err
    cfg.write_text('methods = ["dmft"]\n[problem]\nalfa = 2.0\n[grid]\neta = [0.1]\n')
    assert main(["sweep", str(cfg)]) == 2
    assert "alfa" in capsys.readouterr().err


def test_cli_bad_grid_names_the_field(tmp_path, capsys):
    from dmft.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('methods = ["dmft"]\n[grid]\neta = [0.1, -1.0]\n')
    assert main(["sweep", str(cfg), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "grid['eta']" in capsys.readouterr().err


def test_example_config_is_valid():
    cfg = load_config(ROOT / "examples" / "sweep_he3.toml")
    coords, points = expand_grid(cfg["base_problem"], cfg["grid"])
    assert set(coords) == {"alpha", "eta"} and cfg["base_problem"].target.name == "he3"
    assert cfg["report"] == {"observable": "overlap", "t": 2}
    assert set(cfg["methods"]) == {"dmft", "one-pass", "simulate"}
    assert all(p.T > 2 for _, _, p in points)
