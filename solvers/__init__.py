"""Numerical engines of dmft: multi-pass DMFT, one-pass theory, finite-d simulator.

``solvers.numerics`` holds the numba kernels and numerical rules they are built from.
"""
