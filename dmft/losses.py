"""Training losses L(f, y) of the network's output f = a.sigma(u) and the label y.

The solvers need L, dL/df and d^2L/df^2 (through the committee's F and J), and whether
d^2L/df^2 has Dirac masses (the hinge's kink: the Stein estimator is exact for them, the
pathwise one is not). Registry losses are rows of the one code table
(``solvers.numerics.table``), compiled into the multi-pass kernels; user losses reach the
kernels as ``cfunc`` objects, like user activations.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

from solvers.numerics.table import LOSS_TABLE

from ._callables import describe
from .validation import real

__all__ = ["Loss", "LOSSES", "get_loss", "huber", "check_labels"]

_KERNEL_SIG = "float64(float64, float64, float64)"
_HUBER = re.compile(r"^huber\((.+)\)$")


@numba.njit(cache=True)
def _evaluate(fn, f, y, c):
    """fn(y - f, y, c) elementwise over 1-D f, y (the kernels' argument order)."""
    out = np.empty(f.shape[0])
    for i in range(f.shape[0]):
        out[i] = fn(y[i] - f[i], y[i], c)
    return out


@dataclass(frozen=True)
class Loss:
    """A training loss L(f, y) with its first two derivatives in f.

    Parameters
    ----------
    loss, dloss, d2loss : callable
        Scalar functions ``(f, y) -> float`` that numba can compile (``math``/``numpy``
        scalar operations only): L, dL/df and the absolutely continuous part of d^2L/df^2.
        All three are required.
    name : str
        Name used in provenance and file metadata.
    d2_dirac : callable, optional
        ``d2_dirac(y) -> (f, weight)``: the location (in f) and weight of a Dirac mass of
        d^2L/df^2 given the label (the hinge's kink: weight |y| at f = 1 / y). None for a
        loss whose dL/df is continuous. With a Dirac mass only the Stein estimator applies.
    labels : {"any", "unit", "binary"}
        Labels the loss is meant for: any real label, labels in [-1, 1] (refused otherwise),
        or +-1 labels (other labels are allowed, with a warning).
    param : float
        The loss's parameter (the Huber threshold; unused otherwise).
    code : int
        Row of the loss table for registry losses (>= 0); -1 for user losses.

    Examples
    --------
    >>> import numpy as np, dmft
    >>> def sq(f, y):
    ...     return 0.5 * (y - f) ** 2
    >>> def dsq(f, y):
    ...     return f - y
    >>> def d2sq(f, y):
    ...     return 1.0
    >>> mine = dmft.Loss(sq, dsq, d2sq, name="my-square")
    >>> mine(np.array([0.5]), np.array([1.0])), mine.d1(np.array([0.5]), np.array([1.0]))
    (array([0.125]), array([-0.5]))
    >>> dmft.LOSSES["logistic"](np.array([0.0]), np.array([1.0]))  # log 2
    array([0.69314718])
    """

    loss: Callable[[float, float], float] | None = None
    dloss: Callable[[float, float], float] | None = None
    d2loss: Callable[[float, float], float] | None = None
    name: str = "user"
    d2_dirac: Callable | None = None
    labels: str = "any"
    param: float = 0.0
    code: int = -1
    _compiled: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.code < 0:
            what = {"loss": "L(f, y)", "dloss": "dL/df", "d2loss": "d^2L/df^2"}
            for attr, meaning in what.items():
                fn = getattr(self, attr)
                if fn is None:
                    raise TypeError(
                        f"Loss.{attr} ({meaning}) is required: a user loss gives its value and "
                        "first and second derivatives in f, each a scalar function (f, y) -> "
                        "float that numba can compile")
                if not callable(fn):
                    raise TypeError(f"Loss.{attr} must be callable, got {fn!r}")
        if self.d2_dirac is not None and not callable(self.d2_dirac):
            raise TypeError(f"Loss.d2_dirac must be callable or None, got {self.d2_dirac!r}")
        if self.labels not in ("any", "unit", "binary"):
            raise ValueError(f"Loss.labels must be 'any', 'unit' or 'binary', got "
                             f"{self.labels!r}")
        object.__setattr__(self, "param", real("Loss.param", self.param))

    @property
    def smooth(self) -> bool:
        """True when d^2L/df^2 has no Dirac mass (the pathwise estimator applies)."""
        return self.d2_dirac is None

    @property
    def half_square(self) -> bool:
        """True for the registry square loss (L = (y - f)^2 / 2, summed as r * r)."""
        return self.code >= 0 and LOSS_TABLE[self.code].half_square

    def kernel_args(self) -> tuple:
        """(c, half_square, value, d1, d2): the parameter and the three functions as numba
        ``cfunc`` objects ``float64(r, y, c)`` with r = y - f, as the kernels take them."""
        if "kernel" not in self._compiled:
            if self.code >= 0:
                fns = tuple(numba.cfunc(_KERNEL_SIG, cache=True)(fn)
                            for fn in LOSS_TABLE[self.code].functions)
            else:
                fns = tuple(self._adapt(attr) for attr in ("loss", "dloss", "d2loss"))
            self._compiled["kernel"] = (float(self.param), self.half_square) + fns
        return self._compiled["kernel"]

    def _adapt(self, attr: str):
        """The user function ``attr`` of (f, y) as a cfunc of (r, y, c), or a TypeError."""
        fn = getattr(self, attr)
        try:
            jitted = numba.njit(fn)

            def kernel_form(r, y, c):
                return jitted(y - r, y)

            return numba.cfunc(_KERNEL_SIG)(kernel_form)
        except Exception as exc:  # numba raises several error types
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
            reasons = [line for line in lines if line and not line.startswith("Failed in ")]
            reason = reasons[0] if reasons else type(exc).__name__
        raise TypeError(
            f"Loss.{attr} of {self.name!r} ({describe(fn)}) cannot be compiled by numba: "
            f"{reason}. Loss functions must be scalar (f, y) -> float functions using "
            "math/numpy scalar operations only") from None

    def _apply(self, which: int, f, y) -> np.ndarray:
        f, y = np.broadcast_arrays(np.asarray(f, dtype=np.float64),
                                   np.asarray(y, dtype=np.float64))
        fn = self.kernel_args()[2 + which]
        out = _evaluate(fn, np.ascontiguousarray(f).ravel(), np.ascontiguousarray(y).ravel(),
                        float(self.param))
        return out.reshape(f.shape)

    def __call__(self, f, y) -> np.ndarray:
        """L(f, y) elementwise (arrays broadcast)."""
        return self._apply(0, f, y)

    def d1(self, f, y) -> np.ndarray:
        """dL/df elementwise."""
        return self._apply(1, f, y)

    def d2(self, f, y) -> np.ndarray:
        """Absolutely continuous part of d^2L/df^2 elementwise."""
        return self._apply(2, f, y)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_compiled"] = {}  # cfuncs do not pickle; rebuilt on demand
        return state

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)


def _registry(code: int, param: float | None = None) -> Loss:
    entry = LOSS_TABLE[code]
    name = entry.name
    if entry.param is not None:
        param = entry.param[1] if param is None else param
        if param != entry.param[1]:
            name = f"{entry.name}({param:g})"
    return Loss(name=name, d2_dirac=entry.d2_dirac, labels=entry.labels,
                param=0.0 if param is None else param, code=code)


# --- registry: the entries of the one code table (the code of a loss is its row) -------------
LOSSES: dict[str, Loss] = {entry.name: _registry(code) for code, entry in enumerate(LOSS_TABLE)}


def huber(threshold: float = 1.0) -> Loss:
    """The Huber loss with threshold delta > 0: (y - f)^2 / 2 for |y - f| <= delta,
    delta (|y - f| - delta / 2) beyond; named ``"huber(delta)"`` unless delta = 1.

    Examples
    --------
    >>> huber(0.5).name, huber().name
    ('huber(0.5)', 'huber')
    """
    threshold = real("huber threshold", threshold, low=0.0, low_open=True)
    return _registry(LOSS_TABLE.code("huber"), threshold)


def get_loss(spec: str | Loss) -> Loss:
    """Resolve a registry name (``"huber(0.5)"`` for a Huber threshold) or pass a
    :class:`Loss` through."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        if spec in LOSSES:
            return LOSSES[spec]
        match = _HUBER.match(spec.replace(" ", ""))
        if match:
            try:
                return huber(float(match.group(1)))
            except ValueError as exc:
                raise ValueError(f"loss={spec!r}: {exc}") from None
        raise ValueError(f"loss={spec!r} is not a registered loss; allowed: {sorted(LOSSES)}, "
                         "'huber(threshold)' or a dmft.Loss")
    raise TypeError(f"loss must be a registry name or dmft.Loss, got {type(spec).__name__}")


def check_labels(loss: Loss, labels: np.ndarray, noise: float, target_name: str) -> None:
    """Refuse (ValueError) or warn about labels the loss is not meant for, from a probe of
    the target's labels ``labels``; label noise is refused with any loss but the square one
    (the Gaussian integrals over the noise are exact only for a loss quadratic in y).

    Examples
    --------
    >>> check_labels(LOSSES["logistic"], np.array([1.0, -1.0]), 0.0, "sign")
    >>> check_labels(LOSSES["logistic"], np.array([2.0]), 0.0, "he2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: loss='logistic' needs labels in [-1, 1], but target 'he2' returned 2; ...
    """
    if noise > 0.0 and not loss.half_square:
        raise ValueError(
            f"noise={noise} with loss={loss.name!r}: label noise is supported with the square "
            "loss only (noise must be 0; flip or perturb labels in a user dmft.Target instead)")
    if loss.labels == "unit" and np.any(np.abs(labels) > 1.0):
        bad = float(labels[np.argmax(np.abs(labels))])
        raise ValueError(
            f"loss={loss.name!r} needs labels in [-1, 1], but target {target_name!r} returned "
            f"{bad:g}; use a +-1 target (e.g. 'sign' or a dmft.Target returning np.sign(...))")
    if loss.labels == "binary" and not np.all(np.abs(labels) == 1.0):
        warnings.warn(
            f"loss={loss.name!r} is meant for +-1 labels, but target {target_name!r} returns "
            "other values; the loss is used as it stands", UserWarning, stacklevel=4)
