"""The one table of registry codes: student activations, teacher functions and losses.

An entry's code is its position in its table. Kernels are compiled for one code at a time:
the lookups generated from the tables (:func:`activation_function`, :func:`teacher_function`)
turn a constant code into the entry's numba function while a kernel compiles, so a compiled
kernel holds the one entry it serves (registry activations inlined into its loops) and no
if/elif over codes exists anywhere. ``USER`` (-1) stands for a user activation, whose three
functions a kernel receives as ``cfunc`` arguments instead. ``dmft.activations`` and
``dmft.targets`` build their registries from these tables, ``dmft.losses`` from the loss table
(value, dL/df, d2L/df2 in the kernels' form of :mod:`.loss_functions`, Dirac masses).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload

from .loss_functions import (
    hinge_d1,
    hinge_d2,
    hinge_value,
    huber_d1,
    huber_d2,
    huber_value,
    logistic_d1,
    logistic_d2,
    logistic_value,
    square_d1,
    square_d2,
    square_value,
)
from .teachers import (
    he2_rows,
    he3_rows,
    he4_rows,
    linear_rows,
    sign_he1_he3_rows,
    sign_rows,
    sign_z1z2_rows,
    staircase2_rows,
    staircase_rows,
    tanh_he1_he3_rows,
    tanh_rows,
    tanh_sum_rows,
    z1z2z3_he3_rows,
)
from .vmath import tanh as _vtanh

__all__ = ["USER", "SIGMA", "DSIGMA", "D2SIGMA", "ActivationEntry", "TeacherEntry", "CodeTable",
           "ACTIVATION_TABLE", "TEACHER_TABLE", "activation_function", "teacher_function",
           "evaluate_teacher", "LossEntry", "LOSS_TABLE", "LOSS_VALUE", "LOSS_D1", "LOSS_D2",
           "loss_function", "loss_half_square"]

USER = -1  # code of a user activation (functions passed to kernels as cfuncs)
SIGMA, DSIGMA, D2SIGMA = 0, 1, 2  # which function of an activation entry
LOSS_VALUE, LOSS_D1, LOSS_D2 = 0, 1, 2  # which function of a loss entry


@dataclass(frozen=True)
class ActivationEntry:
    """sigma, sigma', sigma'' (absolutely continuous part) as scalar numba-compilable functions,
    and the weight of a Dirac mass of sigma'' at 0."""

    name: str
    sigma: Callable[[float], float]
    dsigma: Callable[[float], float]
    d2sigma: Callable[[float], float]
    d2_dirac_at_zero: float = 0.0

    @property
    def functions(self) -> tuple:
        return (self.sigma, self.dsigma, self.d2sigma)


@dataclass(frozen=True)
class TeacherEntry:
    """g*(z) of a registry teacher, z in R^K: ``rows(z, lo, n, out)`` its numba loop over a
    block of samples (``teachers``), ``formula`` as text; ``binary`` if every label is +-1."""

    name: str
    K: int
    rows: Callable
    formula: str
    binary: bool = False


@dataclass(frozen=True)
class LossEntry:
    """A loss L(f, y) of the network's output f and the label y: L, dL/df and the absolutely
    continuous part of d^2L/df^2, each ``(r, y, c)`` with r = y - f (:mod:`.loss_functions`).

    ``half_square``: L = r^2 / 2 exactly, so that the kernels sum r * r and halve the sum (the
    arithmetic the square loss has always had). ``labels``: "any", "binary" (meant for +-1
    labels) or "unit" (labels in [-1, 1]). ``d2_dirac(y) -> (f, weight)``: the Dirac mass of
    d^2L/df^2 (None when there is none). ``param``: the name of c and its default (None: no
    parameter)."""

    name: str
    value: Callable[[float, float, float], float]
    d1: Callable[[float, float, float], float]
    d2: Callable[[float, float, float], float]
    half_square: bool = False
    labels: str = "any"
    d2_dirac: Callable | None = None
    param: tuple[str, float] | None = None

    @property
    def functions(self) -> tuple:
        return (self.value, self.d1, self.d2)


class CodeTable:
    """Entries by code (their position); numba versions of their functions on demand.

    Parameters
    ----------
    entries : sequence of entries
        Each with a unique ``name``.
    jit : callable
        ``jit(entry) -> tuple`` of the numba dispatchers kernels call for an entry.

    Examples
    --------
    >>> ACTIVATION_TABLE.code("tanh"), ACTIVATION_TABLE[1].name
    (1, 'tanh')
    """

    def __init__(self, entries, jit: Callable):
        self.entries = tuple(entries)
        self._codes = {entry.name: code for code, entry in enumerate(self.entries)}
        if len(self._codes) != len(self.entries):
            raise ValueError("entry names must be unique")
        self._jit = jit
        self._jitted: dict[int, tuple] = {}

    def __getitem__(self, code: int):
        return self.entries[code]

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def code(self, name: str) -> int:
        """The code of the entry called ``name``."""
        return self._codes[name]

    def jitted(self, code: int) -> tuple:
        """The numba dispatchers of entry ``code`` (built once)."""
        if code not in self._jitted:
            self._jitted[code] = self._jit(self.entries[code])
        return self._jitted[code]


# ------------------------------------------------------------------------------ activations
def _relu(x):
    return x if x > 0.0 else 0.0


def _relu_d1(x):
    return 1.0 if x > 0.0 else 0.0


def _zero(x):
    return 0.0


# tanh by vmath (within 2 ulp): loops over it vectorise, math.tanh's libm call does not
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


ACTIVATION_TABLE = CodeTable(
    [
        ActivationEntry("relu", _relu, _relu_d1, _zero, d2_dirac_at_zero=1.0),
        ActivationEntry("tanh", _tanh, _tanh_d1, _tanh_d2),
        ActivationEntry("erf", _erf, _erf_d1, _erf_d2),
        ActivationEntry("linear", _identity, _one, _zero),
        ActivationEntry("softplus", _softplus, _sigmoid, _sigmoid_d1),
        ActivationEntry("quadratic", _square, _twice, _two),
    ],
    # inlined into the kernels' loops (a call through a cfunc pointer per sample is ~40x
    # slower for ReLU)
    jit=lambda entry: tuple(numba.njit(inline="always")(f) for f in entry.functions),
)

TEACHER_TABLE = CodeTable(
    [
        TeacherEntry("linear", 1, linear_rows, "z1"),
        TeacherEntry("tanh", 1, tanh_rows, "tanh(z1)"),
        TeacherEntry("he2", 1, he2_rows, "He2(z1) = z1^2 - 1"),
        TeacherEntry("he3", 1, he3_rows, "He3(z1) = z1^3 - 3 z1"),
        TeacherEntry("he4", 1, he4_rows, "He4(z1) = z1^4 - 6 z1^2 + 3"),
        TeacherEntry("staircase", 2, staircase_rows, "z1 + z1 z2"),
        TeacherEntry("tanh-he1-he3", 2, tanh_he1_he3_rows, "tanh(z1 + z2^3 - 3 z2)"),
        TeacherEntry("tanh-sum", 2, tanh_sum_rows, "tanh(z1) + tanh(z2)"),
        TeacherEntry("z1z2z3-he3", 4, z1z2z3_he3_rows, "z1 z2 z3 + He3(z4)"),
        TeacherEntry("staircase2", 2, staircase2_rows, "z1 + 2 z1 z2"),  # Fig. 2 left
        TeacherEntry("sign", 1, sign_rows, "sign(z1)", binary=True),
        TeacherEntry("sign-z1z2", 2, sign_z1z2_rows, "sign(z1 z2)", binary=True),
        TeacherEntry("sign-he1-he3", 2, sign_he1_he3_rows, "sign(z1 + z2^3 - 3 z2)",
                     binary=True),
    ],
    jit=lambda entry: (entry.rows,),  # already numba functions
)


def hinge_dirac(y):
    """The Dirac mass of the hinge loss's d^2L/df^2: weight |y| at f = 1 / y."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 1.0 / y, np.abs(y)


LOSS_TABLE = CodeTable(
    [
        LossEntry("square", square_value, square_d1, square_d2, half_square=True),
        LossEntry("logistic", logistic_value, logistic_d1, logistic_d2, labels="unit"),
        LossEntry("hinge", hinge_value, hinge_d1, hinge_d2, labels="binary",
                  d2_dirac=hinge_dirac),
        LossEntry("huber", huber_value, huber_d1, huber_d2, param=("threshold", 1.0)),
    ],
    jit=lambda entry: tuple(numba.njit(inline="always")(f) for f in entry.functions),
)


# ------------------------------------------------------------------------------ lookups
def _literal(value, what: str) -> int:
    if not isinstance(value, types.IntegerLiteral):
        raise TypingError(f"{what} must be a compile-time constant (a closure variable)")
    return value.literal_value


def activation_function(code, which, user):
    """numba only: function ``which`` (SIGMA, DSIGMA, D2SIGMA) of activation ``code``.

    Resolved while the calling kernel compiles; ``code`` and ``which`` must be constants.
    For ``code == USER`` it returns ``user`` (the kernel's cfunc argument), otherwise the
    registry entry's inlinable function (``user`` is then ignored; pass None). Functions that
    receive a registry function as an argument must be ``inline="always"``: numba cannot
    cache a kernel that passes one to a call that remains a call ("dynamic globals").
    """
    raise NotImplementedError("activation_function is resolved inside numba kernels only")


@overload(activation_function, prefer_literal=True)
def _activation_function(code, which, user):
    code, which = _literal(code, "activation code"), _literal(which, "function index")
    if code == USER:
        return lambda code, which, user: user
    fn = ACTIVATION_TABLE.jitted(code)[which]
    return lambda code, which, user: fn


def loss_function(code, which, user):
    """numba only: function ``which`` (LOSS_VALUE, LOSS_D1, LOSS_D2) of loss ``code``, called
    as ``fn(r, y, c)``; like :func:`activation_function` (``user``: the user loss's cfunc)."""
    raise NotImplementedError("loss_function is resolved inside numba kernels only")


@overload(loss_function, prefer_literal=True)
def _loss_function(code, which, user):
    code, which = _literal(code, "loss code"), _literal(which, "function index")
    if code == USER:
        return lambda code, which, user: user
    fn = LOSS_TABLE.jitted(code)[which]
    return lambda code, which, user: fn


def loss_half_square(code):
    """numba only: whether loss ``code`` (a constant) is r^2 / 2 (LossEntry.half_square)."""
    raise NotImplementedError("loss_half_square is resolved inside numba kernels only")


@overload(loss_half_square, prefer_literal=True)
def _loss_half_square(code):
    code = _literal(code, "loss code")
    if code != USER and LOSS_TABLE[code].half_square:
        return lambda code: True
    return lambda code: False


def teacher_function(code):
    """numba only: the loop of registry teacher ``code`` (a constant), called as
    ``rows(z, lo, n, out)`` (``teachers``)."""
    raise NotImplementedError("teacher_function is resolved inside numba kernels only")


@overload(teacher_function, prefer_literal=True)
def _teacher_function(code):
    fn = TEACHER_TABLE.jitted(_literal(code, "teacher code"))[0]
    return lambda code: fn


# ------------------------------------------------------------------------------ teachers on arrays
_evaluators: dict[int, Callable] = {}


def _evaluator(code: int):
    """The compiled evaluation of teacher ``code`` (one kernel per code, cached on disk)."""
    if code not in _evaluators:
        CODE = code

        @numba.njit(cache=True)
        def evaluate(z, out):
            """out (S,) = g*(z) for z (K, S), C-contiguous."""
            rows = teacher_function(CODE)
            rows(z, 0, z.shape[1], out)

        _evaluators[code] = evaluate
    return _evaluators[code]


def evaluate_teacher(code: int, z: np.ndarray) -> np.ndarray:
    """g*(z) (S,) for the registry teacher ``code`` on z of shape (K, S) (any layout).

    Examples
    --------
    >>> evaluate_teacher(TEACHER_TABLE.code("he2"), np.array([[0.0, 2.0]]))
    array([-1.,  3.])
    """
    K = TEACHER_TABLE[code].K
    z = np.ascontiguousarray(z, dtype=np.float64)
    # the kernel indexes rows without bounds checks: a short z would read past its end
    if z.ndim != 2 or z.shape[0] != K:
        raise ValueError(f"registry target code {code} expects z of shape (K={K}, S), "
                         f"got {z.shape}")
    out = np.empty(z.shape[1])
    _evaluator(code)(z, out)
    return out
