"""Stale numba caches are dropped when any source of the project changes."""

from __future__ import annotations

from pathlib import Path

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
