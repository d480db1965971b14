"""Layer 1: numerical primitives (numba kernels and numpy rules), importing only numpy and numba.

Nothing here knows about ``dmft.Problem`` or any other model object: kernels are pure functions
over arrays and scalars. The layers above (``dmft``'s model and results, then the engines in
``solvers`` and the surface in ``dmft``) import from here, never the other way round.
"""

from ._cache import drop_stale_caches as _drop_stale_caches

_drop_stale_caches()  # once per process, before any kernel of the package loads a cache
