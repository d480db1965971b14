"""Teacher functions g*(z), z in R^K, evaluated on batches of shape (K, S)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from solvers.numerics.table import TEACHER_TABLE, evaluate_teacher

from ._callables import describe
from .validation import integer, registry_entry

__all__ = ["Target", "TARGETS", "get_target", "hermite"]


def hermite(k: int, x: np.ndarray) -> np.ndarray:
    """Probabilists' Hermite polynomial He_k(x) (He_0 = 1, He_1 = x, He_2 = x^2 - 1, ...)."""
    x = np.asarray(x, dtype=np.float64)
    if k == 0:
        return np.ones_like(x)
    if k == 1:
        return x.copy()
    # He_{j+1} = x He_j - j He_{j-1} from He_1 = x, He_2 = x^2 - 1: five array passes for He_3
    # (eight with He_0 = ones as the start; same values to the last bit)
    h_prev, h = x, x * x
    h -= 1.0
    for j in range(2, k):
        h_next = x * h
        h_next -= j * h_prev
        h_prev, h = h, h_next
    return h


@dataclass(frozen=True)
class Target:
    """A multi-index teacher y = g*(z).

    Parameters
    ----------
    fn : callable
        ``fn(z) -> y`` with ``z`` of shape ``(K, S)`` and ``y`` of shape ``(S,)``. Must be
        vectorised numpy code (it is called on chunks of up to ~10^6 samples) and picklable
        (a module-level function) if the problem is sent to other processes. A module-level
        function in an importable module is also found again by :func:`dmft.load`.
    K : int
        Number of teacher directions (K >= 1).
    name : str
        Label used in provenance, files and figures.

    Examples
    --------
    >>> import numpy as np
    >>> def product(z):
    ...     return z[0] * z[1]
    >>> target = Target(product, K=2, name="product")
    >>> target(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([3., 8.])
    """

    fn: Callable[[np.ndarray], np.ndarray]
    K: int
    name: str = "user"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"Target.fn must be callable, got {self.fn!r}")
        object.__setattr__(self, "K", integer("Target.K", self.K, low=1))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Evaluate g* on ``z`` of shape (K, S); returns float64 of shape (S,).

        Raises TypeError when ``fn`` fails on an array (not vectorised) and ValueError when
        it returns the wrong shape or a value that is not finite (naming the first such z).
        """
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] != self.K:
            raise ValueError(
                f"target {self.name!r} expects z of shape (K={self.K}, S), got {z.shape}"
            )
        S = z.shape[1]
        contract = (f"A target receives z, a float64 array of shape (K, S) = ({self.K}, {S}) "
                    f"(one column per sample), and must return a float array of shape (S,) = "
                    f"({S},)")
        try:
            y = np.asarray(self.fn(z), dtype=np.float64)
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise TypeError(
                f"target {self.name!r} ({describe(self.fn)}) failed on z of shape {z.shape}: "
                f"{type(exc).__name__}: {exc}. {contract}; write it "
                "with numpy array operations (np.tanh(z[0]), not math.tanh)"
            ) from exc
        if y.shape != (S,):
            raise ValueError(
                f"target {self.name!r} ({describe(self.fn)}) returned shape {y.shape}, "
                f"expected ({S},). {contract}"
            )
        finite = np.isfinite(y)
        if not finite.all():
            s = int(np.argmin(finite))
            raise ValueError(
                f"target {self.name!r} ({describe(self.fn)}) returned {y[s]} at z = "
                f"{z[:, s].tolist()} (sample {s} of {S}): the target function must return "
                "finite values; check it at that input"
            )
        return y

    def probe(self) -> np.ndarray:
        """The labels on a fixed probe z of shape (K, 256) (computed once per Target), from
        which :class:`dmft.Problem` judges whether a loss suits them."""
        if "_probe" not in self.__dict__:
            labels = self(np.random.default_rng(0).standard_normal((self.K, 256)))
            object.__setattr__(self, "_probe", labels)
        return self.__dict__["_probe"]

    @property
    def binary(self) -> bool:
        """True if the labels are +-1 (registry targets say so; user targets are probed)."""
        code = registry_code(self)
        if code >= 0:
            return TEACHER_TABLE[code].binary
        return bool(np.all(np.abs(self.probe()) == 1.0))

    def check(self) -> None:
        """Call the target once on a small fixed z, so that a wrong function fails early.

        :class:`dmft.Problem` calls this for user targets (once per Target object); it raises
        the errors of :meth:`__call__`.
        """
        if self.__dict__.get("_checked") or TARGETS.get(self.name) == self:
            return  # registry functions are tested; calling them would compile numba code
        self(np.random.default_rng(0).standard_normal((self.K, 8)))
        object.__setattr__(self, "_checked", True)


@dataclass(frozen=True)
class RegistryTeacher:
    """g*(z) of the registry teacher ``code``: its numba formula
    (``solvers.numerics.teachers``), which the solvers also evaluate inside their kernels.
    Compares and pickles by its code, so that Problems pickle (dask sweeps)."""

    code: int

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return evaluate_teacher(self.code, z)


# --- registry: the entries of the one code table (the code of a target is its row) ----------
TARGETS: dict[str, Target] = {
    entry.name: Target(RegistryTeacher(code), entry.K, entry.name)
    for code, entry in enumerate(TEACHER_TABLE)
}


def registry_code(target: Target) -> int:
    """The numba code of a registry target (by its function, not its name), -1 for others."""
    return target.fn.code if isinstance(target.fn, RegistryTeacher) else -1


def get_target(spec: str | Target) -> Target:
    """Resolve a registry name or pass a :class:`Target` through."""
    return registry_entry("target", spec, TARGETS, Target)
