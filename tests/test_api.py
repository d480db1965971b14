"""The METHODS registry and its one dispatch rule, used by dmft.solve, dmft.simulate and the
sweeps; the lazily loaded public names of ``dmft``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dmft
from dmft import api
from dmft.sweeps.tasks import execute

REPO = Path(__file__).resolve().parents[1]
FULL = dmft.Problem(target="he3", P=1, T=3)
ONE_PASS = FULL.replace(schedule="one-pass")
CYCLIC = FULL.replace(schedule=dmft.Cyclic(2))


@pytest.mark.parametrize("problem, method, want", [
    (FULL, "dmft", "dmft"),
    (CYCLIC, "dmft", "dmft"),
    (ONE_PASS, "dmft", "one-pass"),  # the two theories coincide on a one-pass schedule
    (FULL, "one-pass", "one-pass"),
    (ONE_PASS, "one-pass", "one-pass"),
    (FULL, "simulate", "simulate"),
    (ONE_PASS, "simulate", "simulate"),  # one-pass GD is simulated, not solved
])
def test_method_for(problem, method, want):
    assert api.method_for(problem, method) is api.METHODS[want]


def test_unknown_methods_are_refused():
    with pytest.raises(ValueError, match=r"method='exact' is not valid; allowed: \('dmft'"):
        api.method_for(FULL, "exact")
    with pytest.raises(ValueError, match=r"allowed: \('dmft', 'one-pass'\)"):
        dmft.solve(FULL, method="simulate")  # a simulation is dmft.simulate's
    with pytest.raises(TypeError, match="dmft.Problem"):
        dmft.solve({"target": "he3"})


def test_registry_loads_the_engines():
    from solvers.finite_d import simulate_finite_d
    from solvers.multipass import solve_multipass
    from solvers.onepass import solve_onepass

    assert api.METHODS["dmft"].solver is solve_multipass
    assert api.METHODS["one-pass"].solver is solve_onepass
    assert api.METHODS["simulate"].solver is simulate_finite_d
    assert api.METHODS["dmft"].accepts("samples") and not api.METHODS["simulate"].accepts("x")
    assert api.METHODS["one-pass"].accepts("anything")  # through its **quadrature


@pytest.fixture
def recording(monkeypatch):
    """Every registry entry replaced by a solver that records its calls."""
    calls = []

    def entry(name):
        def solver(problem, seed=0, progress=None, **options):
            calls.append((name, problem, dict(options, seed=seed, progress=progress)))
            return name

        return api.Method(name, lambda: solver, "recording")

    monkeypatch.setattr(api, "METHODS", {name: entry(name) for name in api.METHODS})
    return calls


def test_solve_and_simulate_dispatch_through_the_registry(recording):
    assert dmft.solve(FULL, samples=10) == "dmft"
    assert dmft.solve(ONE_PASS) == "one-pass"
    assert dmft.solve(FULL, method="one-pass") == "one-pass"
    assert dmft.simulate(ONE_PASS, d=20, seeds=2, seed=5) == "simulate"
    assert [c[0] for c in recording] == ["dmft", "one-pass", "one-pass", "simulate"]
    assert recording[0][2]["samples"] == 10
    assert recording[3][2] == {"d": 20, "seeds": 2, "seed": 5, "progress": None}


def test_sweep_tasks_dispatch_through_the_registry(recording):
    # what a Dask worker runs: the same rule as dmft.solve, with the sweep's seeds
    assert execute("dmft", ONE_PASS, {"nodes": 8}, [7], None, None) == ["one-pass"]
    assert execute("dmft", CYCLIC, {"samples": 10}, [8], None, None) == ["dmft"]
    assert execute("simulate", FULL, {"d": 20}, [1, 2], None, None) == ["simulate"] * 2
    names = [c[0] for c in recording]
    assert names == ["one-pass", "dmft", "simulate", "simulate"]
    assert recording[0][2] == {"nodes": 8, "seed": 7, "progress": False}
    assert recording[1][2] == {"samples": 10, "seed": 8, "progress": False}
    assert recording[3][2] == {"d": 20, "seeds": 1, "seed": 2, "progress": False}


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env, cwd=REPO)


@pytest.mark.parametrize("first", [
    "import dmft.compare",
    "from dmft.compare import extrapolate",
    "import dmft; dmft.compare",
    "import dmft",
])
def test_lazy_names_resolve_whatever_is_imported_first(first):
    # dmft.compare is the function although a module of that name exists (and loads lazily)
    proc = _run_python(first + "\nimport dmft, dmft.io, dmft.sweeps.store\n"
                       "import sys, types\n"
                       "assert dmft.compare.__name__ == 'compare', dmft.compare\n"
                       "assert isinstance(sys.modules['dmft.compare'], types.ModuleType)\n"
                       "assert sys.modules['dmft.compare'].extrapolate is dmft.extrapolate\n"
                       "assert dmft.sweep.__name__ == 'sweep' and callable(dmft.sweep)\n"
                       "assert dmft.sweeps.load_sweep is dmft.sweeps.result.load_sweep\n"
                       "assert dmft.load is dmft.io.load\n"
                       "assert dmft.learnability.analyze and dmft.first_hermite\n")
    assert proc.returncode == 0, proc.stderr


def test_public_names():
    for name in dmft.__all__:
        assert getattr(dmft, name) is not None, name
    assert set(dmft.__all__) <= set(dir(dmft))
    with pytest.raises(AttributeError, match="no attribute 'solvee'"):
        dmft.solvee  # noqa: B018
