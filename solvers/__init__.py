"""Numerical engines of dmft: multi-pass DMFT, one-pass theory, finite-d simulator."""

# first: drops numba caches left stale by edited sources before any kernel loads one
from dmft import _numba_cache  # noqa: F401
