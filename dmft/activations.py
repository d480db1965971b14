"""Student activations: sigma, sigma', sigma'' as scalar, numba-jittable functions.

ReLU's second derivative is a Dirac delta at 0. It is not zero in the DMFT (it enters the
Hessian J and moves Lambda(0) from 0.75 to 0.51 in the paper's setting), so an activation
carries ``d2_dirac_at_zero`` (the weight of a Dirac mass of sigma'' at the origin) and
consumers that need sigma'' pointwise must refuse such activations or handle the mass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

from solvers.numerics.table import ACTIVATION_TABLE

from ._callables import describe
from .validation import real, registry_entry

__all__ = ["Activation", "ACTIVATIONS", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """A scalar activation with its first two derivatives.

    Parameters
    ----------
    sigma, dsigma, d2sigma : callable
        Scalar functions ``float -> float`` that numba can compile (use ``math``/``numpy``
        scalar operations only). ``d2sigma`` is the absolutely continuous part of sigma''.
    name : str
        Name used in provenance and file metadata.
    d2_dirac_at_zero : float
        Weight of a Dirac mass of sigma'' at 0 (1.0 for ReLU, 0.0 for smooth activations).
    code : int
        Registry code (>= 0), the activation's row of the one code table
        (``solvers.numerics.table``) whose functions are compiled into the numba kernels; -1 for
        user activations (the kernels receive their ``cfuncs``).
    """

    sigma: Callable[[float], float]
    dsigma: Callable[[float], float]
    d2sigma: Callable[[float], float]
    name: str = "user"
    d2_dirac_at_zero: float = 0.0
    code: int = -1
    _compiled: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for attr in ("sigma", "dsigma", "d2sigma"):
            if not callable(getattr(self, attr)):
                raise TypeError(f"Activation.{attr} must be callable, got {getattr(self, attr)!r}")
        dirac = real("Activation.d2_dirac_at_zero", self.d2_dirac_at_zero, low=0.0)
        object.__setattr__(self, "d2_dirac_at_zero", dirac)

    @property
    def smooth(self) -> bool:
        """True when sigma'' has no Dirac part (pathwise estimators are exact)."""
        return self.d2_dirac_at_zero == 0.0

    def cfuncs(self) -> tuple:
        """The three functions as numba ``cfunc`` objects ``float64(float64)``.

        Kernels take them as first-class function arguments: one compiled (and cached)
        kernel then serves every activation, registry or user-defined.
        """
        if "cfuncs" not in self._compiled:
            out = []
            for which in ("sigma", "dsigma", "d2sigma"):
                out.append(self._compile(which, lambda fn: numba.cfunc(
                    "float64(float64)", cache=self.code >= 0)(fn)))
            self._compiled["cfuncs"] = tuple(out)
        return self._compiled["cfuncs"]

    def _vectorized(self, which: str) -> Callable[[np.ndarray], np.ndarray]:
        if which not in self._compiled:
            self._compiled[which] = self._compile(which, lambda fn: numba.vectorize(
                ["float64(float64)"], cache=False)(fn))
        return self._compiled[which]

    def _compile(self, which: str, compiler: Callable):
        """``compiler(self.<which>)``, or one TypeError naming the activation and function.

        numba's own report (~100 lines of pipeline stages and source excerpts) is reduced to
        its first line that says what went wrong.
        """
        fn = getattr(self, which)
        try:
            return compiler(fn)
        except Exception as exc:  # numba raises several error types
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
            reasons = [line for line in lines if line and not line.startswith("Failed in ")]
            reason = reasons[0] if reasons else type(exc).__name__
        raise TypeError(
            f"Activation.{which} of {self.name!r} ({describe(fn)}) cannot be compiled by numba: "
            f"{reason}. Activation functions must be scalar float -> float functions using "
            "math/numpy scalar operations only (other functions they call must be numba.njit)"
        ) from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """sigma evaluated elementwise on an array."""
        return self._vectorized("sigma")(np.asarray(x, dtype=np.float64))

    def d1(self, x: np.ndarray) -> np.ndarray:
        """sigma' evaluated elementwise on an array."""
        return self._vectorized("dsigma")(np.asarray(x, dtype=np.float64))

    def d2(self, x: np.ndarray) -> np.ndarray:
        """Absolutely continuous part of sigma'' evaluated elementwise on an array."""
        return self._vectorized("d2sigma")(np.asarray(x, dtype=np.float64))

    def __getstate__(self):
        # compiled ufuncs do not pickle; they are rebuilt on demand
        state = dict(self.__dict__)
        state["_compiled"] = {}
        return state

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)


# --- registry: the entries of the one code table (the code of an activation is its row) ------
ACTIVATIONS: dict[str, Activation] = {
    entry.name: Activation(entry.sigma, entry.dsigma, entry.d2sigma, entry.name,
                           d2_dirac_at_zero=entry.d2_dirac_at_zero, code=code)
    for code, entry in enumerate(ACTIVATION_TABLE)
}


def get_activation(spec: str | Activation) -> Activation:
    """Resolve a registry name or pass an :class:`Activation` through."""
    return registry_entry("activation", spec, ACTIVATIONS, Activation)
