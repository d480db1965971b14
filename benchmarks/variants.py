"""Solver hooks for the accuracy benchmark: the correct solver and two deliberately broken ones.

A hook has the signature ``solve(problem, samples, seed, estimator) -> dmft.Trajectory``. The
broken variants exist so that the benchmark can prove it detects real errors (two of the four
in docs/theory/authors-script.md):

* ``broken-noise``: the noise zeta is drawn independently at every step (cross-time covariance
  dropped), via the supported option ``dmft.solve(..., noise_memory=False)``.
* ``broken-hessian``: sigma'' dropped for tanh students (Gauss-Newton Hessian), via a user
  activation ``tanh-gn`` whose second derivative is 0. Only the pathwise estimator uses sigma'',
  so only pathwise rows of smooth tanh cases are affected (Stein never evaluates sigma'').
"""

from __future__ import annotations

import math
from collections.abc import Callable

import dmft

__all__ = ["SolveFn", "VARIANTS", "get_variant", "TANH_GAUSS_NEWTON"]

SolveFn = Callable[[dmft.Problem, int, int, str], dmft.Trajectory]


# module-level scalar functions: numba compiles them into cfuncs for the kernels
def _tanh(x):
    return math.tanh(x)


def _tanh_d1(x):
    t = math.tanh(x)
    return 1.0 - t * t


def _zero(x):
    return 0.0


TANH_GAUSS_NEWTON = dmft.Activation(_tanh, _tanh_d1, _zero, name="tanh-gn")


def solve_correct(problem: dmft.Problem, samples: int, seed: int,
                  estimator: str) -> dmft.Trajectory:
    """The package's multi-pass DMFT as shipped."""
    return dmft.solve(problem, samples=samples, seed=seed, estimator=estimator, progress=False)


def solve_broken_noise(problem: dmft.Problem, samples: int, seed: int,
                       estimator: str) -> dmft.Trajectory:
    """Error (1) of docs/theory/authors-script.md: noise drawn afresh at every step."""
    return dmft.solve(problem, samples=samples, seed=seed, estimator=estimator,
                      noise_memory=False, progress=False)


def solve_broken_hessian(problem: dmft.Problem, samples: int, seed: int,
                         estimator: str) -> dmft.Trajectory:
    """Error (4) of docs/theory/authors-script.md: tanh's sigma'' replaced by 0 (Gauss-Newton)."""
    if problem.activation.name == "tanh":
        problem = problem.replace(activation=TANH_GAUSS_NEWTON)
    return dmft.solve(problem, samples=samples, seed=seed, estimator=estimator, progress=False)


VARIANTS: dict[str, SolveFn] = {
    "correct": solve_correct,
    "broken-noise": solve_broken_noise,
    "broken-hessian": solve_broken_hessian,
}


def get_variant(name: str) -> SolveFn:
    """The hook registered under ``name`` (one of ``VARIANTS``)."""
    if name not in VARIANTS:
        raise ValueError(f"variant={name!r} is not valid; allowed: {tuple(VARIANTS)}")
    return VARIANTS[name]
