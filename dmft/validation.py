"""Checks of user input shared by every module: one message style, naming the parameter.

Integral floats are accepted where an integer is expected (``samples=1e6``, ``P=2.0``, as the
command line already does); non-integral ones, booleans and strings are refused.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["integer", "real", "registry_entry"]


def _range_text(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, or a TypeError/ValueError naming ``name``.

    Parameters
    ----------
    name : str
        The parameter's name, used in the message.
    value : int or integral float
        ``1e6`` and ``2.0`` are accepted (as 1000000 and 2); ``2.5``, ``True``, ``"3"`` are not.
    low, high : int, optional
        Inclusive bounds.

    Returns
    -------
    int

    Examples
    --------
    >>> integer("samples", 1e6, low=1)
    1000000
    >>> integer("P", 2.5, low=1)
    Traceback (most recent call last):
    ...
    ValueError: P must be an integer >= 1, got 2.5
    """
    allowed = "an integer " + _range_text(low, high) if (low, high) != (None, None) \
        else "an integer"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if not isinstance(value, numbers.Integral):
        f = float(value)
        if not (math.isfinite(f) and f.is_integer()):
            raise ValueError(f"{name} must be {allowed}, got {value!r}")
    out = int(value)
    if (low is not None and out < low) or (high is not None and out > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return out


def real(name: str, value, low: float | None = None, high: float | None = None, *,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float within the bounds, or a TypeError/ValueError naming ``name``.

    Parameters
    ----------
    name : str
    value : real number
    low, high : float, optional
        Bounds, inclusive unless ``low_open`` / ``high_open``.

    Returns
    -------
    float

    Examples
    --------
    >>> real("eta", 0.2, low=0.0, low_open=True)
    0.2
    >>> real("eta", 0.0, low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: eta must be finite and > 0, got 0.0
    """
    allowed = "finite and " + _range_text(low, high, low_open, high_open) \
        if (low, high) != (None, None) else "finite"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    bad = not math.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return v


def registry_entry(name: str, spec, registry: dict, cls: type):
    """``spec`` itself if it is a ``cls``, else the entry of ``registry`` that it names.

    Parameters
    ----------
    name : str
        The parameter (``"target"``, ``"activation"``), which is also what the registry holds.
    spec : str or cls
        A registry name or an instance of ``cls``.
    registry : dict
        Name -> instance of ``cls``.
    cls : type
        The public class of the entries (named in messages as ``dmft.<class>``).

    Examples
    --------
    >>> from dmft.activations import ACTIVATIONS, Activation
    >>> registry_entry("activation", "relu", ACTIVATIONS, Activation).name
    'relu'
    >>> registry_entry("activation", "rleu", ACTIVATIONS, Activation)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: activation='rleu' is not a registered activation; allowed: [...] or a dmft...
    """
    if isinstance(spec, cls):
        return spec
    if isinstance(spec, str):
        if spec not in registry:
            raise ValueError(f"{name}={spec!r} is not a registered {name}; allowed: "
                             f"{sorted(registry)} or a dmft.{cls.__name__}")
        return registry[spec]
    raise TypeError(f"{name} must be a registry name or dmft.{cls.__name__}, got "
                    f"{type(spec).__name__}")
