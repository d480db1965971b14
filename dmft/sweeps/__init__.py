"""Parameter sweeps on Dask: DMFT, one-pass theory and simulations over a grid of Problems.

:func:`sweep` (also ``dmft.sweep``) expands the grid, submits the missing (point, method)
results to Dask and writes each into an HDF5 store as it arrives; :func:`load_sweep` rebuilds
the table (:class:`SweepResult`) from the store alone. How seeds, the store and threads work:
docs/guide/sweeps.md.
"""

from .cluster import local_cluster, preserved_environ
from .config import load_config
from .driver import sweep
from .grid import expand_grid
from .keys import derive_seed
from .report import format_report
from .result import SweepRecord, SweepResult, list_sweeps, load_sweep

__all__ = [
    "sweep",
    "load_sweep",
    "list_sweeps",
    "SweepResult",
    "SweepRecord",
    "derive_seed",
    "expand_grid",
    "local_cluster",
    "preserved_environ",
    "load_config",
    "format_report",
]
