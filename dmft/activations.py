"""Student activations: sigma, sigma', sigma'' as scalar, numba-jittable functions.

ReLU's second derivative is a Dirac delta at 0. It is not zero in the DMFT (it enters the
Hessian J and moves Lambda(0) from 0.75 to 0.51 in the paper's setting), so an activation
carries ``d2_dirac_at_zero`` (the weight of a Dirac mass of sigma'' at the origin) and
consumers that need sigma'' pointwise must refuse such activations or handle the mass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

from solvers._vmath import tanh as _vtanh

from ._callables import describe
from .validation import real

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
        Registry code (>= 0) for activations built into the numba kernels; -1 for user ones.
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


# --- registry (codes must match solvers._kernels.act_eval) -------------------------------------
def _relu(x):
    return x if x > 0.0 else 0.0


def _relu_d1(x):
    return 1.0 if x > 0.0 else 0.0


def _zero(x):
    return 0.0


# tanh by solvers._vmath (within 2 ulp): loops over it vectorise, math.tanh's libm call does not
def _tanh(x):
    return _vtanh(x)


def _tanh_d1(x):
    t = _vtanh(x)
    return 1.0 - t * t


def _tanh_d2(x):
    t = _vtanh(x)
    return -2.0 * t * (1.0 - t * t)


_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)


def _erf(x):
    return math.erf(x)


def _erf_d1(x):
    return _TWO_OVER_SQRTPI * math.exp(-x * x)


def _erf_d2(x):
    return -2.0 * x * _TWO_OVER_SQRTPI * math.exp(-x * x)


def _identity(x):
    return x


def _one(x):
    return 1.0


def _softplus(x):
    # log(1 + e^x) without overflow
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _sigmoid_d1(x):
    # sigmoid(x) (1 - sigmoid(x)), self-contained: numba compiles each registry function alone
    # and cannot call the plain Python function _sigmoid
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _square(x):
    return x * x


def _twice(x):
    return 2.0 * x


def _two(x):
    return 2.0


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(_relu, _relu_d1, _zero, "relu", d2_dirac_at_zero=1.0, code=0),
    "tanh": Activation(_tanh, _tanh_d1, _tanh_d2, "tanh", code=1),
    "erf": Activation(_erf, _erf_d1, _erf_d2, "erf", code=2),
    "linear": Activation(_identity, _one, _zero, "linear", code=3),
    "softplus": Activation(_softplus, _sigmoid, _sigmoid_d1, "softplus", code=4),
    "quadratic": Activation(_square, _twice, _two, "quadratic", code=5),
}


def get_activation(spec: str | Activation) -> Activation:
    """Resolve a registry name or pass an :class:`Activation` through."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        if spec not in ACTIVATIONS:
            raise ValueError(
                f"activation={spec!r} is not a registered activation; allowed: "
                f"{sorted(ACTIVATIONS)} or a dmft.Activation"
            )
        return ACTIVATIONS[spec]
    raise TypeError(
        f"activation must be a registry name or dmft.Activation, got {type(spec).__name__}"
    )
