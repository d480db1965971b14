"""Learnability of a multi-index target: which directions of R^K gradient descent learns in O(1)
steps, and when, computed from the target alone by Gaussian quadrature.

Modules: :mod:`~dmft.learnability.quadrature` (tensor Gauss-Hermite rules and their error
estimate), :mod:`~dmft.learnability.hermite` (Hermite coefficients, information exponents),
:mod:`~dmft.learnability.leap` (leap exponent), :mod:`~dmft.learnability.step1` (closed-form
step-1 overlap M_1), :mod:`~dmft.learnability.subspaces` (subspaces learned step by step),
:mod:`~dmft.learnability.symmetry` (student parities, symmetric directions) and
:mod:`~dmft.learnability.report` (:func:`analyze`, the printable report). The user guide page
docs/guide/learnability.md explains the definitions and tolerances; the theory is on
docs/theory/learnability.md.
"""

from .hermite import (
    HermiteExpansion,
    hermite_coefficients,
    hermite_tensor_coefficients,
    information_exponent,
)
from .leap import LeapResult, leap_exponent, leap_of_support
from .quadrature import DEFAULT_NODES, MAX_K, ROUNDING_FLOOR, SAFETY, gaussian_grid
from .report import DirectionVerdict, LearnabilityReport, analyze
from .step1 import mean_activation_derivative, step1_overlap
from .subspaces import (
    Subspace,
    SubspaceSequence,
    learned_subspaces,
    moment_subspace,
    moment_vectors,
)
from .symmetry import (
    GENERIC_STUDENT,
    StudentSymmetry,
    is_even_symmetric,
    orthogonal_even_partner,
    student_symmetry,
)

__all__ = [
    "DEFAULT_NODES",
    "MAX_K",
    "SAFETY",
    "ROUNDING_FLOOR",
    "gaussian_grid",
    "hermite_coefficients",
    "hermite_tensor_coefficients",
    "HermiteExpansion",
    "information_exponent",
    "leap_of_support",
    "leap_exponent",
    "LeapResult",
    "mean_activation_derivative",
    "step1_overlap",
    "moment_vectors",
    "moment_subspace",
    "learned_subspaces",
    "Subspace",
    "SubspaceSequence",
    "is_even_symmetric",
    "orthogonal_even_partner",
    "StudentSymmetry",
    "GENERIC_STUDENT",
    "student_symmetry",
    "DirectionVerdict",
    "LearnabilityReport",
    "analyze",
]
