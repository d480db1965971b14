"""dmft: dynamical mean-field theory of gradient descent that reuses batches.

See ``README.md`` and the docstrings of :func:`solve`, :func:`simulate`, :func:`compare`.
"""

import importlib
from typing import TYPE_CHECKING

from ._version import __version__ as __version__
from .activations import ACTIVATIONS, Activation
from .api import simulate, solve
from .compare import compare, extrapolate
from .losses import LOSSES, Loss
from .problem import Problem
from .schedules import Bernoulli, Cyclic, Full, OnePass
from .targets import TARGETS, Target
from .trajectory import DivergenceError, Trajectory

if TYPE_CHECKING:  # for type checkers and editors; at run time these load on first use
    from . import exact, learnability, stats, sweeps
    from .gaussian import first_hermite
    from .io import load
    from .sweeps import sweep

# Public names loaded on first access (PEP 562), so that `import dmft` does not import
# scipy.stats, h5py, dask or the learnability analysis: name -> (module, attribute or None
# for the module itself). The function `compare` hides the module `dmft.compare` from
# attribute access (``sys.modules["dmft.compare"]`` is the module): the submodule is imported
# above, before the name is rebound, so a later `import dmft.compare` does not rebind it.
_LAZY = {
    "exact": ("dmft.exact", None),
    "stats": ("dmft.stats", None),
    "first_hermite": ("dmft.gaussian", "first_hermite"),
    "learnability": ("dmft.learnability", None),
    "load": ("dmft.io", "load"),
    "sweep": ("dmft.sweeps", "sweep"),
    "sweeps": ("dmft.sweeps", None),
}


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
    "LOSSES",
    "TARGETS",
    "Activation",
    "Loss",
    "Bernoulli",
    "Cyclic",
    "DivergenceError",
    "Full",
    "OnePass",
    "Problem",
    "Target",
    "Trajectory",
    "compare",
    "exact",
    "extrapolate",
    "first_hermite",
    "learnability",
    "load",
    "simulate",
    "solve",
    "stats",
    "sweep",
    "sweeps",
]
