"""Resolution of the Gaussian-expectation rules (:class:`QuadratureOptions`) and :class:`Rule`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..validation import integer, real

__all__ = ["QuadratureOptions", "Rule"]

_INTEGERS = {"z_budget": (1, None), "n_mid": (1, None), "n_panels": (1, None), "n_gh": (1, None),
             "n_polar": (1, None), "n_min": (1, None), "max_nodes": (1, None),
             "qmc_log2": (1, 24), "qmc_replicas": (2, None), "seed": (0, None)}
_POSITIVE = ("z_h", "z_R", "inner_R", "inner_h", "polar_dr", "polar_dtheta")


@dataclass(frozen=True)
class QuadratureOptions:
    """Resolution of every rule (defaults chosen by the measurements in docs/quadrature.md).

    Parameters
    ----------
    method : {"auto", "quadrature", "qmc"}
        ``"auto"``: structured quadrature where it applies, else generic quadrature if it fits
        ``max_nodes``, else QMC. ``"quadrature"`` raises instead of falling back to QMC.
        ``"qmc"`` forces QMC (for checks).
    z_h : float
        Step of the trapezoid rule over each teacher coordinate (outer rule).
    z_R : float
        Radius of the trapezoid grid (a ball |z| <= z_R; the tail beyond 9 is ~1e-18, and
        ~1e-13 even weighted by a degree-6 polynomial target).
    z_budget : int
        Largest outer grid; for K >= 3 the grid becomes Gauss-Hermite with
        floor(z_budget^(1/K)) nodes per dimension.
    n_mid : int
        Gauss-Legendre nodes per panel in the non-final inner coordinate (P = 2).
    n_panels : int
        Fixed panels on [-inner_R, inner_R] for that coordinate (kinks are added as breaks).
    inner_R : float
        Truncation of the inner coordinates (mass beyond 7 is 3e-12).
    inner_h : float
        Step of the trapezoid rule per inner coordinate for smooth activations (on
        [-inner_R, inner_R]); error ~ exp(-2 pi tau / inner_h) for an integrand analytic in a
        strip |Im eps| < tau (tanh: tau = pi / (2 |S_j|)), i.e. ~1e-14 at |S_j| = 1.
    n_gh, n_min, max_nodes : int
        Generic engine: Gauss-Hermite nodes per smooth dimension, smallest acceptable
        Gauss-Hermite order, largest generic rule.
    polar_dr, polar_dtheta : float;  n_polar : int
        Kink-polar rule: radial and angular panel widths, Gauss-Legendre nodes per panel.
    qmc_log2, qmc_replicas, seed : int
        QMC: 2**qmc_log2 points per randomization (1 <= qmc_log2 <= 24), number of
        independent randomizations (>= 2), seed.

    Examples
    --------
    >>> QuadratureOptions(z_h=0.1).z_h
    0.1
    >>> QuadratureOptions.from_kwargs(QuadratureOptions(z_h=0.1), qmc_replicas=8).qmc_replicas
    8
    """

    method: str = "auto"
    z_h: float = 0.125
    z_R: float = 9.0
    z_budget: int = 200_000
    n_mid: int = 8
    n_panels: int = 6
    inner_R: float = 7.0
    inner_h: float = 0.3
    n_gh: int = 40
    polar_dr: float = 0.5
    polar_dtheta: float = 0.25
    n_polar: int = 8
    n_min: int = 12
    max_nodes: int = 3_000_000
    qmc_log2: int = 16
    qmc_replicas: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("auto", "quadrature", "qmc"):
            raise ValueError(
                "QuadratureOptions.method must be 'auto', 'quadrature' or 'qmc', "
                f"got {self.method!r}"
            )
        for name, (low, high) in _INTEGERS.items():
            value = integer(f"QuadratureOptions.{name}", getattr(self, name), low, high)
            object.__setattr__(self, name, value)
        for name in _POSITIVE:
            value = real(f"QuadratureOptions.{name}", getattr(self, name), 0.0, low_open=True)
            object.__setattr__(self, name, value)

    @classmethod
    def from_kwargs(cls, options: QuadratureOptions | None = None, **kw) -> QuadratureOptions:
        """Options from an instance and/or keyword overrides (unknown keys raise TypeError).

        Examples
        --------
        >>> QuadratureOptions.from_kwargs(None, n_gh=20).n_gh
        20
        """
        base = options if options is not None else cls()
        if not isinstance(base, QuadratureOptions):
            raise TypeError(f"options must be a QuadratureOptions, got {type(base).__name__}")
        if not kw:
            return base
        values = {f.name: getattr(base, f.name) for f in fields(base)}
        unknown = set(kw) - set(values)
        if unknown:
            raise TypeError(
                f"unknown quadrature option(s) {sorted(unknown)}; allowed: {sorted(values)}"
            )
        values.update(kw)
        return cls(**values)


@dataclass(frozen=True)
class Rule:
    """A cubature rule for the standard normal N(0, I_D).

    Attributes
    ----------
    xi : ndarray, shape (N, D)
        Nodes.
    w : ndarray, shape (N,)
        Weights, summing to one.
    kind : str
        ``"gauss-hermite"``, ``"kink-polar"`` or ``"qmc"``.
    description : str
        Node counts, for provenance.
    """

    xi: np.ndarray
    w: np.ndarray
    kind: str
    description: str

    @property
    def n_nodes(self) -> int:
        """Number of nodes N."""
        return int(self.w.shape[0])
