"""dmft: dynamical mean-field theory of gradient descent that reuses batches.

See ``README.md`` and the docstrings of :func:`solve`, :func:`simulate`, :func:`compare`.
"""

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING

from ._version import __version__ as __version__
from .activations import ACTIVATIONS, Activation
from .api import simulate, solve
from .problem import Problem
from .schedules import Bernoulli, Cyclic, Full, OnePass
from .targets import TARGETS, Target
from .trajectory import DivergenceError, Trajectory

if TYPE_CHECKING:  # for type checkers and editors; at run time these load on first use
    from . import learnability, sweeps
    from .compare import compare, extrapolate
    from .gaussian import first_hermite
    from .io import load
    from .sweeps import sweep

# Public names loaded on first access (PEP 562), so that `import dmft` does not import
# scipy.stats, h5py, dask or the learnability analysis: name -> (module, attribute or None
# for the module itself).
_LAZY = {
    "compare": ("dmft.compare", "compare"),
    "extrapolate": ("dmft.compare", "extrapolate"),
    "first_hermite": ("dmft.gaussian", "first_hermite"),
    "learnability": ("dmft.learnability", None),
    "load": ("dmft.io", "load"),
    "sweep": ("dmft.sweeps", "sweep"),
    "sweeps": ("dmft.sweeps", None),
}


def _register_unexecuted(name: str) -> None:
    """Put submodule ``name`` into ``sys.modules`` now and execute it on first attribute access.

    For ``dmft.compare``, a module whose name the package gives to the function ``compare``:
    importing the module the ordinary way later (``from dmft.compare import ...``) would make
    the import system rebind ``dmft.compare`` to the module; a module already in
    ``sys.modules`` is returned without that rebinding.
    """
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


if "dmft.compare" not in sys.modules:
    _register_unexecuted("dmft.compare")


def __getattr__(name: str):
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'dmft' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ACTIVATIONS",
    "TARGETS",
    "Activation",
    "Bernoulli",
    "Cyclic",
    "DivergenceError",
    "Full",
    "OnePass",
    "Problem",
    "Target",
    "Trajectory",
    "compare",
    "extrapolate",
    "first_hermite",
    "learnability",
    "load",
    "simulate",
    "solve",
    "sweep",
    "sweeps",
]
