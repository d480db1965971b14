"""Checkpoint and resume of the multi-pass DMFT: killed at random moments, bit-identical result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dmft

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("M", "Q", "e_train", "e_gen", "C", "R", "Lam", "M_se", "Q_se", "e_gen_se", "C_se")

_CHILD = """
import sys
import time
import numpy as np
import dmft
from solvers.multipass import replicas as rp
# one step per kernel call, each a little slower: a solve long enough to be killed three
# times on any machine (results do not depend on either)
rp._CHUNK_SECONDS = 0.0
pause = rp.ReplicaPool._checkpoint_here
def slowed(self, *args):
    time.sleep(0.01)
    return pause(self, *args)
rp.ReplicaPool._checkpoint_here = slowed
prob = dmft.Problem(T=int(sys.argv[3]))
traj = dmft.solve(prob, samples=int(sys.argv[4]), replicas=4, seed=5, storage=sys.argv[5],
                  progress=False, checkpoint=sys.argv[1], checkpoint_every=0.02)
np.savez(sys.argv[2], **{k: getattr(traj, k) for k in FIELDS})
""".replace("FIELDS", repr(FIELDS))


def _progress(ckpt: Path) -> tuple:
    """What the checkpoint holds: (finished replicas, mtime of the in-flight snapshot)."""
    f = ckpt / "in-flight.npz"
    return (len(list(ckpt.glob("replica-*.npz"))), f.stat().st_mtime_ns if f.exists() else 0)


@pytest.mark.parametrize("storage, T, samples", [
    ("stored", 120, 4 * 2048),
    pytest.param("replay", 40, 4 * 1024, marks=pytest.mark.slow),  # ~4 process starts more
])
def test_killed_at_random_moments_resumes_bit_identically(tmp_path, storage, T, samples):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    args = [sys.executable, "-c", _CHILD, str(ckpt), str(out), str(T), str(samples), storage]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = np.random.default_rng(11)
    resumed_from = []
    for _ in range(3):  # kill it three times, each a random moment after it made progress
        before = _progress(ckpt) if ckpt.exists() else None
        child = subprocess.Popen(args, env=env, cwd=ROOT)
        deadline = time.monotonic() + 120
        while (not ckpt.exists() or _progress(ckpt) == before) and child.poll() is None:
            assert time.monotonic() < deadline, "the solve made no progress in 2 minutes"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert not out.exists(), "the solve finished before it could be killed: make it longer"
        resumed_from.append(_progress(ckpt))
    assert resumed_from[-1] != (0, 0)
    subprocess.run(args, env=env, cwd=ROOT, check=True, timeout=300)
    assert not ckpt.exists(), "the checkpoint is removed once the solve returned"
    ref = dmft.solve(dmft.Problem(T=T), samples=samples, replicas=4, seed=5, storage=storage,
                     progress=False)
    with np.load(out) as got:
        for name in FIELDS:
            np.testing.assert_array_equal(got[name], getattr(ref, name), err_msg=name)


def test_checkpoint_of_another_solve_is_refused(tmp_path):
    prob = dmft.Problem(T=4)
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / "meta.json").write_text('{"format": 1, "seed": 1}')
    with pytest.raises(ValueError, match="belongs to another solve"):
        dmft.solve(prob, samples=2**12, seed=0, progress=False, checkpoint=ckpt)


def test_resume_with_finished_replicas_and_one_in_flight(tmp_path, monkeypatch):
    # a checkpoint left by an interrupted solve (simulated: stop after two replicas and a
    # snapshot of the third) resumes in this process too, on any number of threads
    import numba

    from solvers.multipass import replicas as rp

    prob = dmft.Problem(T=12)
    kw = dict(samples=4 * 1024, replicas=4, seed=2, progress=False)
    ref = dmft.solve(prob, **kw)
    ckpt = tmp_path / "ck"
    original = rp.ReplicaPool._checkpoint_here

    def interrupt(self, worker, b, t, ws, smp, poll):
        original(self, worker, b, t, ws, smp, poll)
        if b == 2 and t > 0:
            self.snapshot([worker.current])
            raise KeyboardInterrupt

    before = numba.get_num_threads()
    monkeypatch.setattr(rp, "_CHUNK_SECONDS", 0.0)  # one step per kernel call
    rp.ReplicaPool._checkpoint_here = interrupt
    try:
        numba.set_num_threads(1)  # one worker: replicas in order
        with pytest.raises(KeyboardInterrupt):
            dmft.solve(prob, checkpoint=ckpt, **kw)
    finally:
        rp.ReplicaPool._checkpoint_here = original
        numba.set_num_threads(before)
    assert sorted(p.name for p in ckpt.iterdir()) == ["in-flight.npz", "meta.json",
                                                      "replica-0.npz", "replica-1.npz"]
    got = dmft.solve(prob, checkpoint=ckpt, **kw)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)


def test_cli_solve_checkpoint(tmp_path, capsys):
    from dmft.cli import main

    ckpt, out = tmp_path / "ck", tmp_path / "s.h5"
    code = main(["solve", "--target", "he3", "--P", "1", "--T", "3", "--samples", "8192",
                 "--replicas", "2", "--checkpoint", str(ckpt), "--out", str(out), "--quiet"])
    assert code == 0 and out.exists() and not ckpt.exists()
    ref = dmft.solve(dmft.Problem(target="he3", P=1, T=3), samples=8192, replicas=2,
                     progress=False)
    np.testing.assert_array_equal(dmft.load(out).M, ref.M)


def test_sweep_gives_each_dmft_point_its_own_checkpoint(tmp_path):
    from dmft.sweeps.grid import expand_grid
    from dmft.sweeps.options import check_options
    from dmft.sweeps.tasks import plan, with_checkpoints

    base = dmft.Problem(target="he3", P=1, T=3)
    _, points = expand_grid(base, {"alpha": [2.0, 3.0], "schedule": ["full", "one-pass"]})
    tasks = plan(points, ("dmft", "simulate"), {"samples": 4096}, {}, {"d": 50}, 2, 0, 1)
    keys = [t.key for t in tasks]
    with_checkpoints(tasks, tmp_path)
    assert [t.key for t in tasks] == keys  # results do not depend on it
    paths = [t.run_options.get("checkpoint") for t in tasks]
    multipass = [t.method == "dmft" and t.problem.schedule.__class__.__name__ != "OnePass"
                 for t in tasks]
    assert all(p is not None for p, m in zip(paths, multipass, strict=True) if m)
    assert all(p is None for p, m in zip(paths, multipass, strict=True) if not m)
    assert len({p for p in paths if p}) == sum(multipass)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        check_options("dmft", {"checkpoint": "x"}, "solve_kwargs")
