"""Batch schedules: which samples enter the gradient at each step (SPEC sections 1 and 5)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["Full", "Cyclic", "Bernoulli", "OnePass", "Schedule", "get_schedule"]


@dataclass(frozen=True)
class Full:
    """The whole batch of n = alpha d samples is reused at every step (multi-pass GD)."""

    name = "full"

    def __str__(self) -> str:
        return "full"


@dataclass(frozen=True)
class Cyclic:
    """n_blocks blocks of n / n_blocks samples, visited in order: block t mod n_blocks at step t.

    ``n_blocks = n`` (in the simulator) is minibatch size 1.
    """

    n_blocks: int

    name = "cyclic"

    def __post_init__(self) -> None:
        if isinstance(self.n_blocks, bool) or not isinstance(self.n_blocks, (int, np.integer)):
            raise TypeError(f"Cyclic.n_blocks must be an integer >= 1, got {self.n_blocks!r}")
        if self.n_blocks < 1:
            raise ValueError(f"Cyclic.n_blocks must be an integer >= 1, got {self.n_blocks!r}")
        object.__setattr__(self, "n_blocks", int(self.n_blocks))

    def __str__(self) -> str:
        return f"cyclic({self.n_blocks})"


@dataclass(frozen=True)
class Bernoulli:
    """Each sample enters the gradient independently with probability b at each step."""

    b: float

    name = "bernoulli"

    def __post_init__(self) -> None:
        # bool and str would convert silently through float()
        if isinstance(self.b, (bool, np.bool_)) or not isinstance(self.b, numbers.Real):
            raise TypeError(f"Bernoulli.b must be a number in (0, 1], got {self.b!r}")
        b = float(self.b)
        if not (0.0 < b <= 1.0):
            raise ValueError(f"Bernoulli.b must be in (0, 1], got {self.b!r}")
        object.__setattr__(self, "b", b)

    def __str__(self) -> str:
        return f"bernoulli({self.b})"


@dataclass(frozen=True)
class OnePass:
    """A fresh batch of n = alpha d samples at every step."""

    name = "one-pass"

    def __str__(self) -> str:
        return "one-pass"


Schedule = Full | Cyclic | Bernoulli | OnePass


def get_schedule(spec) -> Schedule:
    """Normalise ``"full"``, ``"one-pass"``, ``"cyclic(k)"``, ``"bernoulli(b)"`` or an instance."""
    if isinstance(spec, (Full, Cyclic, Bernoulli, OnePass)):
        return spec
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "full":
            return Full()
        if s in ("one-pass", "onepass"):
            return OnePass()
        for prefix, cls, conv in (("cyclic(", Cyclic, int), ("bernoulli(", Bernoulli, float)):
            if s.startswith(prefix) and s.endswith(")"):
                try:
                    return cls(conv(s[len(prefix):-1]))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"schedule={spec!r}: {exc}") from None
    raise ValueError(
        f"schedule={spec!r} is not valid; allowed: 'full', 'one-pass', dmft.Cyclic(n_blocks >= 1), "
        "dmft.Bernoulli(0 < b <= 1)"
    )
