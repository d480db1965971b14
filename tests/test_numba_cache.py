"""Stale numba caches are dropped when any source of the project changes."""

from __future__ import annotations

from pathlib import Path

from dmft._numba_cache import drop_stale_caches


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
