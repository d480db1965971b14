"""Progress lines without a terminal, silence on request, and the compilation notice."""

from __future__ import annotations

import io

import numba
import numpy as np
import pytest

from dmft.progress import Progress, compile_notice


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_plain_lines_without_a_terminal_with_time_left_and_a_last_line():
    out = _Pipe()
    with Progress(4, "demo", "step", interval=0.0, stream=out) as bar:
        for _ in range(4):
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("demo: 1/4 steps (25%)")
    assert "left" in lines[1]  # a rate is known from the second update on
    assert lines[-1].startswith("demo: 4/4 steps, done in")


def test_fast_work_prints_nothing_and_false_silences():
    out = _Pipe()
    with Progress(3, "fast", stream=out) as bar:  # the first line would come after 5 s
        bar.update(3)
    with Progress(3, "quiet", enabled=False, interval=0.0, stream=out) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def _kernel_source():
    def twice(x):
        return 2.0 * x

    twice.__module__ = "dmft._progress_test"  # counts as a kernel of the package
    return twice


def test_compile_notice_names_the_work_once_and_calls_the_hook():
    out, calls = _Pipe(), []
    with compile_notice("a test", seconds=3.0, stream=out, on_start=lambda: calls.append(1)):
        fn = numba.njit(_kernel_source())
        fn(1.0)
        fn(np.arange(3.0))  # a second compilation: no second line
    assert out.getvalue() == "dmft: compiling numba kernels for a test (first run only, ~3 s)\n"
    assert calls == [1]
    out = _Pipe()
    with compile_notice("a test", seconds=3.0, enabled=False, stream=out):
        numba.njit(_kernel_source())(1.0)
    assert out.getvalue() == ""


def test_warmup_queues_the_other_solvers_only_when_something_compiles(monkeypatch):
    import dmft
    from solvers import warmup
    from solvers.numerics import precompile

    queued = []
    monkeypatch.setattr(precompile, "start", lambda tasks, priority=0: queued.append(
        (tasks, priority)))
    monkeypatch.setattr(precompile, "started", lambda task: True)
    prob = dmft.Problem(target="he3", P=1, activation="relu", T=3)
    with warmup.warm_on_first_compile(prob, ("one-pass", "simulate")):
        pass  # nothing compiled: nothing queued
    assert queued == []
    with warmup.warm_on_first_compile(prob, ("one-pass", "simulate")) as warm:
        numba.njit(_kernel_source())(1.0)
    assert [p for _, p in queued] == [1, 2]  # after the running solve's own tasks (0)
    assert set(warm.tasks) == {"one-pass", "simulate"}
    for task in warm.tasks.values():  # the helper would read and delete the problem files
        warmup.os.unlink(task.split("@", 1)[1])


@pytest.mark.slow
def test_first_run_says_it_compiles_also_without_a_terminal(tmp_path):
    """A fresh install (empty numba cache), stderr a pipe: one notice line before compiling."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(repo))
    cmd = [sys.executable, "-m", "dmft.cli", "solve", "--T", "2", "--samples", "4096",
           "--replicas", "2", "--out", str(tmp_path / "x.h5")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "compiling numba kernels" in line]
    assert notices == ["dmft: compiling numba kernels for the multi-pass DMFT (first run only, "
                       "~20 s)"], proc.stderr


def test_time_left_follows_the_work_when_units_cost_unequal_amounts():
    out = _Pipe()
    with Progress(4, "weighted", "step", interval=0.0, stream=out, total_work=10.0) as bar:
        for w in (1.0, 2.0, 3.0, 4.0):  # steps costing 1, 2, 3, 4
            bar.update(1, work=w)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("weighted: 1/4 steps (10%)")
    assert lines[1].startswith("weighted: 2/4 steps (30%)") and "left" in lines[1]
    assert lines[-1].startswith("weighted: 4/4 steps, done in")


def test_long_dmft_solve_reports_progress_with_time_left_while_running(capsys, monkeypatch):
    import dmft
    import dmft.progress as prog

    prob = dmft.Problem(T=60)
    monkeypatch.setattr(prog, "_INTERVAL", 0.0)  # a line at every update
    dmft.solve(prob, samples=2 * 2**11, replicas=2, seed=0)
    err = capsys.readouterr().err.splitlines()
    lines = [ln for ln in err if ln.startswith("DMFT")]
    assert len(lines) >= 2 and lines[-1].startswith("DMFT S=4e+03: 120/120 steps, done in")
    dmft.solve(prob, samples=2 * 2**11, replicas=2, seed=0, progress=False)
    assert capsys.readouterr().err == ""
