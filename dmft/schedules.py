"""Batch schedules: which samples enter the gradient at each step.

The model is in docs/theory/model.md, the schedules' DMFT in docs/theory/dmft.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from .validation import integer, real

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
        object.__setattr__(self, "n_blocks", integer("Cyclic.n_blocks", self.n_blocks, low=1))

    def __str__(self) -> str:
        return f"cyclic({self.n_blocks})"


@dataclass(frozen=True)
class Bernoulli:
    """Each sample enters the gradient independently with probability b at each step."""

    b: float

    name = "bernoulli"

    def __post_init__(self) -> None:
        b = real("Bernoulli.b", self.b, low=0.0, high=1.0, low_open=True)
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


def _number(text: str) -> int | float:
    """``"4"`` -> 4 (exact for any size), ``"1e3"`` -> 1000.0 (checked by the schedule)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


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
        for prefix, cls, conv in (("cyclic(", Cyclic, _number), ("bernoulli(", Bernoulli, float)):
            if s.startswith(prefix) and s.endswith(")"):
                try:
                    return cls(conv(s[len(prefix):-1]))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"schedule={spec!r}: {exc}") from None
    raise ValueError(
        f"schedule={spec!r} is not valid; allowed: 'full', 'one-pass', dmft.Cyclic(n_blocks >= 1), "
        "dmft.Bernoulli(0 < b <= 1)"
    )
