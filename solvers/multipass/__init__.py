"""Multi-pass DMFT solver: driver, per-sample buffers, e_gen with its SE, cavity covariance."""

from .buffers import release_buffers
from .cavity import cavity_covariance
from .driver import ESTIMATORS, solve_multipass

__all__ = ["solve_multipass", "cavity_covariance", "release_buffers", "ESTIMATORS"]
