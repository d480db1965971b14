"""Stale numba caches are dropped when any source of the project changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from solvers.numerics._cache import drop_stale_caches


def _tree(root: Path) -> list[Path]:
    caches = []
    for pkg, module in (("dmft", "a.py"), ("solvers", "b.py")):
        (root / pkg / "__pycache__").mkdir(parents=True)
        (root / pkg / module).write_text("x = 1\n")
        for suffix in ("nbi", "nbc"):
            caches.append(root / pkg / "__pycache__" / f"{module[0]}.f-1.py311.{suffix}")
    return caches


def _touch(paths):
    for p in paths:
        p.write_text("compiled")


def test_caches_survive_unchanged_sources_and_go_when_any_source_changes(tmp_path):
    caches = _tree(tmp_path)
    _touch(caches)
    drop_stale_caches(tmp_path)  # no stamp yet: the caches' provenance is unknown
    assert not any(p.exists() for p in caches)
    _touch(caches)
    drop_stale_caches(tmp_path)  # same sources: kept
    assert all(p.exists() for p in caches)
    (tmp_path / "solvers" / "b.py").write_text("x = 2\n")  # one module edited in place
    drop_stale_caches(tmp_path)
    assert not any(p.exists() for p in caches)
    other = tmp_path / "solvers" / "__pycache__" / "b.cpython-311.pyc"
    other.write_text("bytecode")
    (tmp_path / "dmft" / "a.py").write_text("x = 3\n")
    drop_stale_caches(tmp_path)
    assert other.exists()  # only numba's files are touched


def test_sub_packages_are_hashed_and_their_caches_dropped(tmp_path):
    caches = _tree(tmp_path)
    sub = tmp_path / "solvers" / "numerics"
    (sub / "__pycache__").mkdir(parents=True)
    (sub / "kernel.py").write_text("x = 1\n")
    caches.append(sub / "__pycache__" / "kernel.f-1.py311.nbi")
    drop_stale_caches(tmp_path)
    _touch(caches)
    drop_stale_caches(tmp_path)
    assert all(p.exists() for p in caches)
    (sub / "kernel.py").write_text("x = 2\n")  # a kernel module in a sub-package edited
    drop_stale_caches(tmp_path)
    assert not any(p.exists() for p in caches)


_COMPILES_OF_A_SOLVE = """
import json, sys
from numba.core import event
import dmft
names = []
class Listener(event.Listener):
    def on_start(self, ev):
        module = getattr(ev.data["dispatcher"].py_func, "__module__", "") or ""
        if module.startswith(("dmft.", "solvers.")):
            names.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
prob = dmft.Problem(target="tanh-he1-he3", P=2, activation=sys.argv[1], T=3)
with event.install_listener("numba:compile", Listener()):
    dmft.solve(prob, samples=2**12, seed=0, estimator=sys.argv[2], progress=False)
print(json.dumps(names))
"""


@pytest.mark.slow
@pytest.mark.parametrize("activation, estimator", [("relu", "stein"), ("tanh", "pathwise")])
def test_a_second_process_loads_every_kernel_from_the_disk_cache(tmp_path, activation,
                                                                  estimator):
    # a kernel that numba cannot cache (e.g. "dynamic globals": a registry function passed as
    # a value into a parallel region) would compile again in every process
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]

    def compiled() -> list:
        out = subprocess.run([sys.executable, "-c", _COMPILES_OF_A_SOLVE, activation, estimator],
                             env=env, cwd=root, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert compiled(), "the first process compiles"
    assert compiled() == []
