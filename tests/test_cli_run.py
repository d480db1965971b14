"""The ``dmft`` command: ``--version``, a light ``--help``, and the ``run``, ``solve`` and
``simulate`` subcommands."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import dmft
from dmft.cli import main
from dmft.io import read_group

pytest.importorskip("matplotlib")

TINY = ["--samples", "4096", "--d", "40", "--seeds", "2"]


REPO = Path(__file__).resolve().parents[1]


def test_entry_point_declared():
    text = (REPO / "pyproject.toml").read_text()
    assert 'dmft = "dmft.cli:main"' in text


def _checkout_env() -> dict:
    # PYTHONPATH makes a child process run this checkout's code even when an editable install
    # points at another one
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"dmft {dmft.__version__}"


# what `dmft --help` and `import dmft` must not load: they would cost ~1 s at every start
HEAVY = ("scipy.stats", "scipy.integrate", "h5py", "matplotlib", "dask", "distributed",
         "dmft.learnability", "dmft.gaussian", "dmft.io", "dmft.sweeps")


@pytest.mark.parametrize("code", [
    "import dmft",
    "from dmft.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
])
def test_import_and_help_load_nothing_heavy(code):
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=300, env=_checkout_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stderr.split())
    assert not {m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")}


def test_run_subprocess(tmp_path):
    out = tmp_path / "job" / "run.h5"
    # `python -m dmft.cli` is what the `dmft` script runs
    proc = subprocess.run(
        [sys.executable, "-m", "dmft.cli", "run", "--samples", "5e4", "--d", "300",
         "--seeds", "8", "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=900, env=_checkout_env(), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict:" in proc.stdout
    assert "multi-pass DMFT (A) vs finite-d simulation (B)" in proc.stdout
    assert proc.stderr == ""  # --quiet: no messages, no bars
    assert out.with_suffix(".png").stat().st_size > 10_000
    traj = dmft.load(out)  # the DMFT at the root
    assert traj.method == "dmft" and traj.provenance["samples"] == 50_000
    assert traj.problem == dmft.Problem(target="tanh-he1-he3", P=2, activation="relu",
                                        alpha=3.0, eta=0.2, T=7)
    with h5py.File(out, "r") as f:
        one, sim = read_group(f["one-pass"]), read_group(f["simulation"])
    assert one.method == "one-pass"
    assert sim.provenance["d"] == 300 and sim.provenance["seeds"] == 8
    # step 0 -> 1 of the one-pass theory is the multi-pass DMFT's (docs/theory/one-pass.md)
    np.testing.assert_array_less(np.abs(one.M[1] - traj.M[1]), 4 * traj.M_se[1] + 1e-12)


def test_run_messages_and_quiet(tmp_path, capsys):
    assert main(["run", *TINY, "--out", str(tmp_path / "a.h5")]) == 0
    err = capsys.readouterr().err
    assert "multi-pass DMFT" in err and "simulation, d = 40" in err
    for argv in (["--quiet", "run"], ["run", "--quiet"]):
        assert main([*argv, *TINY, "--out", str(tmp_path / "b.h5")]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        assert "verdict:" in captured.out


def test_run_strict_exit_code(tmp_path, monkeypatch, capsys):
    cmp = importlib.import_module("dmft.compare")  # the module (dmft.compare is the function)
    real = cmp.compare

    def never_agree(a, b, **kw):
        # normal tails (2 seeds would give Cauchy ones) and threshold ~ 0: critical |z| ~ 2.3,
        # which the tiny run's entries exceed
        return real(a, b, threshold=1e-9, dof_a=math.inf, dof_b=math.inf)

    monkeypatch.setattr(cmp, "compare", never_agree)
    args = ["run", *TINY, "--out", str(tmp_path / "r.h5"), "--quiet"]
    assert main(args) == 0  # the job completed: the verdict is printed, not the exit code
    assert "DISAGREE" in capsys.readouterr().out
    assert main([*args, "--strict"]) == 1


def test_run_bad_sizes(capsys):
    assert main(["run", "--seeds", "1", "--quiet"]) == 2
    assert "seeds" in capsys.readouterr().err


def test_solve_and_simulate_commands(tmp_path, capsys):
    problem_args = ["--target", "he3", "--P", "1", "--T", "3", "--eta", "0.1", "--quiet"]
    assert main(["solve", *problem_args, "--samples", "2**12", "--replicas", "4",
                 "--out", str(tmp_path / "s.h5")]) == 0
    assert "t=2" in capsys.readouterr().out
    solved = dmft.load(tmp_path / "s.h5")
    assert solved.problem == dmft.Problem(target="he3", P=1, T=3, eta=0.1)
    assert solved.provenance["samples"] == 4096 and solved.provenance["replicas"] == 4

    assert main(["solve", *problem_args, "--method", "one-pass",
                 "--out", str(tmp_path / "o.h5")]) == 0
    assert dmft.load(tmp_path / "o.h5").method == "one-pass"

    assert main(["simulate", *problem_args, "--schedule", "cyclic(2)", "--d", "50",
                 "--seeds", "3", "--out", str(tmp_path / "m.h5")]) == 0
    sim = dmft.load(tmp_path / "m.h5")
    assert sim.provenance["d"] == 50 and sim.provenance["seeds"] == 3
    assert sim.problem.schedule == dmft.Cyclic(2)


def test_solve_bad_input(tmp_path, capsys):
    assert main(["solve", "--eta", "-1", "--out", str(tmp_path / "x.h5")]) == 2
    assert "eta" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(SystemExit) as exc:
        main(["solve", "--samples", "1.5"])
    assert exc.value.code == 2
    assert "integer" in capsys.readouterr().err
