"""Gaussian expectations of the model over (u, z) ~ N(0, [[Q, M], [M^T, I_K]]).

Used for e_gen (:func:`gen_error`), C_1 (:func:`first_hermite`) and the one-pass theory. How
the integrals are done and how accurate they are: ``docs/quadrature.md``. Modules:

- :mod:`~dmft.gaussian.options`: :class:`QuadratureOptions` (every resolution) and :class:`Rule`;
- :mod:`~dmft.gaussian.generic`: the generic engine (:func:`expect`, :func:`plan_rules`:
  tensor Gauss-Hermite, kink-polar and QMC rules);
- :mod:`~dmft.gaussian.teacher`: the outer rule over z and the target's moments;
- :mod:`~dmft.gaussian.conditional`: the rule over the student's own noise given z;
- :mod:`~dmft.gaussian.moments`: pair and teacher-student cross moments;
- :mod:`~dmft.gaussian.generalisation`: :func:`gen_error`.

The numba kernels live in ``solvers.numerics.quadrature*``.
"""

from solvers.numerics.quadrature_inner import inner_nodes

from .conditional import (
    INNER_KINKED,
    INNER_PIECEWISE_LINEAR,
    INNER_SMOOTH,
    N_GRADED_BREAKS,
    SMOOTHING_RATIO_MIN,
    InnerRule,
    inner_mode,
    inner_rule_arrays,
    student_noise_factor,
)
from .generalisation import gen_error
from .generic import (
    expect,
    gauss_hermite_rule,
    kink_polar_rule,
    kink_polar_size,
    omega,
    plan_rules,
    qmc_rules,
    sqrt_psd,
)
from .moments import cross_moments, pair_moments
from .options import QuadratureOptions, Rule
from .teacher import first_hermite, rotated_z_rule, target_moments, target_on_rule, z_rule

__all__ = [
    "Rule",
    "QuadratureOptions",
    "omega",
    "sqrt_psd",
    "gauss_hermite_rule",
    "kink_polar_rule",
    "kink_polar_size",
    "qmc_rules",
    "plan_rules",
    "expect",
    "z_rule",
    "target_on_rule",
    "target_moments",
    "first_hermite",
    "student_noise_factor",
    "inner_mode",
    "InnerRule",
    "inner_rule_arrays",
    "inner_nodes",
    "INNER_SMOOTH",
    "INNER_PIECEWISE_LINEAR",
    "INNER_KINKED",
    "N_GRADED_BREAKS",
    "SMOOTHING_RATIO_MIN",
    "rotated_z_rule",
    "pair_moments",
    "cross_moments",
    "gen_error",
]
