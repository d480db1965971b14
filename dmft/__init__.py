"""dmft: dynamical mean-field theory of gradient descent that reuses batches.

See ``README.md`` and the docstrings of :func:`solve`, :func:`simulate`, :func:`compare`.
"""

__version__ = "0.1.0"

# first: drops numba caches left stale by edited sources before any kernel loads one
from . import _numba_cache, learnability  # noqa: F401
from .activations import ACTIVATIONS, Activation
from .api import simulate, solve
from .compare import compare, extrapolate
from .gaussian import first_hermite
from .io import load
from .problem import Problem
from .schedules import Bernoulli, Cyclic, Full, OnePass
from .sweeps import sweep
from .targets import TARGETS, Target
from .trajectory import DivergenceError, Trajectory

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
]
