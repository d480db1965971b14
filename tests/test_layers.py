"""The package's three layers import downward only (docs/architecture.md).

1. ``solvers.numerics``: numerical primitives, importing only numpy, numba and the stdlib.
2. the model and results in ``dmft`` (``MODEL`` below).
3. the engines (the rest of ``solvers``) and, above them, the surface (the rest of ``dmft``).

Every ``import`` statement counts, also those inside functions (a lazy import is still a
dependency). The package facades ``dmft/__init__.py`` and ``solvers/__init__.py`` are checked
separately: ``solvers`` re-exports nothing, ``dmft`` only names what lies below it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Layer 2: the model (problem, targets, activations, losses, schedules, dynamics, the Gaussian
# expectations and closed forms of the model) and its results (trajectory and its picture, I/O,
# statistics of replicas), with the helpers they share (input checks, progress lines, names of
# user functions, the version).
MODEL = ("dmft.problem", "dmft.targets", "dmft.activations", "dmft.losses", "dmft.schedules",
         "dmft.dynamics", "dmft.gaussian", "dmft.exact", "dmft.trajectory",
         "dmft._trajectory_plot", "dmft.io", "dmft.stats", "dmft.validation", "dmft.progress",
         "dmft._callables", "dmft._version")
LEVELS = {1: "numerical primitives", 2: "model and results", 3: "engines", 4: "surface"}
# what layer-1 modules may import besides the stdlib and their own layer
PRIMITIVE_DEPENDENCIES = ("numpy", "numba", "llvmlite")
PACKAGES = ("dmft", "solvers")


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def level(module: str) -> int | None:
    """Layer of a project module (None for third-party and stdlib modules)."""
    if _within(module, ("solvers.numerics",)):
        return 1
    if _within(module, MODEL):
        return 2
    if _within(module, ("solvers",)):
        return 3
    if _within(module, ("dmft",)):
        return 4
    return None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, at any depth."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            # "from package import x" may name a submodule: count each name as its module
            if node.module is None or level(mod) is not None:
                out += [(node.lineno, f"{mod}.{alias.name}") for alias in node.names]
            else:
                out.append((node.lineno, mod))
    return out


def upward_imports(path: Path, root: Path = REPO) -> list[str]:
    """Each import of ``path`` that points to a higher layer (or, from layer 1, outside it)."""
    me = level(_module_name(path, root))
    bad = []
    for line, mod in _imports(path, root):
        lv = level(mod)
        if lv is not None and lv > me:
            bad.append(f"line {line}: {mod} ({LEVELS[lv]}) from a module of layer "
                       f"'{LEVELS[me]}'")
        if me == 1 and lv is None:
            top = mod.split(".")[0]
            if top not in sys.stdlib_module_names and top not in PRIMITIVE_DEPENDENCIES:
                bad.append(f"line {line}: {mod} (layer 1 may import only numpy, numba, stdlib)")
    return bad


def sources(root: Path) -> list[Path]:
    """Every module of the two packages but their facades (``dmft/__init__.py``, ...)."""
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")
                  if not (p.name == "__init__.py" and p.parent.parent == root))


SOURCES = sources(REPO)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_downward(path):
    bad = upward_imports(path)
    assert not bad, "\n".join(bad)


def test_solvers_facade_imports_nothing_from_the_model():
    mods = [mod for _, mod in _imports(REPO / "solvers" / "__init__.py", REPO)]
    assert not [m for m in mods if (level(m) or 0) > 1], mods


def test_every_module_has_a_layer():
    assert all(level(_module_name(p, REPO)) for p in SOURCES)
    # every name in MODEL is a module or package of the tree, or one announced by an open issue
    planned = {"dmft.losses", "dmft.dynamics"}
    present = {_module_name(p, REPO) for p in SOURCES}
    assert {m for m in MODEL if m not in present} <= planned


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for pkg in {Path(rel).parent for rel in files}:
        while pkg != Path("."):
            (root / pkg / "__init__.py").touch()
            pkg = pkg.parent


def test_the_checker_finds_every_kind_of_upward_import(tmp_path):
    _tree(tmp_path, {
        # layer 2 importing the surface, at top level and inside a function
        "dmft/problem.py": "from .api import solve\n\ndef f():\n    import dmft.compare\n",
        # layer 2 importing an engine through "from package import module"
        "dmft/trajectory.py": "from solvers import onepass\n",
        # layer 2 in a sub-package reaching up two levels
        "dmft/gaussian/rules.py": "from ..sweeps.grid import grid\n",
        # an engine importing the surface
        "solvers/onepass.py": "def g():\n    from dmft.api import METHODS\n",
        # primitives importing the model, and a third-party package other than numpy/numba
        "solvers/numerics/vmath.py": "from dmft.stats import mean_se\n",
        "solvers/numerics/table.py": "import scipy.special\n",
    })
    found = {str(p.relative_to(tmp_path)): upward_imports(p, tmp_path)
             for p in sources(tmp_path)}
    assert found["dmft/problem.py"] == [
        "line 1: dmft.api.solve (surface) from a module of layer 'model and results'",
        "line 4: dmft.compare (surface) from a module of layer 'model and results'"]
    assert found["dmft/trajectory.py"] == [
        "line 1: solvers.onepass (engines) from a module of layer 'model and results'"]
    assert found["dmft/gaussian/rules.py"] == [
        "line 1: dmft.sweeps.grid.grid (surface) from a module of layer 'model and results'"]
    assert found["solvers/onepass.py"] == [
        "line 2: dmft.api.METHODS (surface) from a module of layer 'engines'"]
    assert found["solvers/numerics/vmath.py"] == [
        "line 1: dmft.stats.mean_se (model and results) from a module of layer "
        "'numerical primitives'"]
    assert found["solvers/numerics/table.py"] == [
        "line 1: scipy.special (layer 1 may import only numpy, numba, stdlib)"]


def test_the_checker_accepts_downward_imports(tmp_path):
    _tree(tmp_path, {
        "solvers/numerics/vmath.py": "import math\n\nimport numba\nimport numpy as np\n",
        "solvers/numerics/step.py": "from . import vmath\nfrom .vmath import tanh\n",
        "dmft/problem.py": "from solvers.numerics.table import CODES\nfrom . import schedules\n",
        "dmft/schedules.py": "import numpy\n",
        "solvers/onepass.py": "import scipy\nfrom dmft.problem import Problem\n",
        "dmft/api.py": "from solvers.onepass import solve\nfrom .problem import Problem\n",
        "dmft/cli/run.py": "from ..api import solve\nfrom .. import compare\n",
    })
    found = {str(p.relative_to(tmp_path)): upward_imports(p, tmp_path)
             for p in sources(tmp_path)}
    assert "dmft/cli/run.py" in found and "solvers/numerics/step.py" in found
    assert found == dict.fromkeys(found, [])
