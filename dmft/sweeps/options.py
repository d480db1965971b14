"""Checks of a sweep's methods and solver options, before anything is submitted."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

from ..api import METHODS
from ..validation import integer

__all__ = ["check_methods", "check_options", "simulate_plan"]

# solver options that the sweep itself sets (per method)
RESERVED = {"dmft": ("seed", "progress", "checkpoint"), "one-pass": ("seed", "progress"),
            "simulate": ("seed", "seeds", "progress")}


def check_methods(methods: str | Sequence[str]) -> tuple[str, ...]:
    """``methods`` as a tuple of distinct names of :data:`dmft.api.METHODS`."""
    if isinstance(methods, str):
        methods = (methods,)
    methods = tuple(methods)
    if not methods:
        raise ValueError(f"methods is empty; choose from {tuple(METHODS)}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"method {m!r} is not valid; allowed: {tuple(METHODS)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods has duplicates: {methods}")
    return methods


def check_options(method: str, options: Mapping | None, argname: str) -> dict:
    """Validate solver keyword names against the solver's signature (values are its business).

    Parameters
    ----------
    method : str
        A name of :data:`dmft.api.METHODS`.
    options : mapping, optional
        Keyword arguments of the solver.
    argname : str
        The sweep's argument holding them, for messages (e.g. ``"solve_kwargs"``).

    Returns
    -------
    dict
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"{argname} must be a dict of keyword arguments, got {options!r}")
    options = dict(options)
    for key in RESERVED[method]:
        if key in options:
            what = {"seed": "the sweep seed (seed=...)",
                    "checkpoint": "the sweep (checkpoint_dir=...), one per point"}.get(
                        key, "the sweep")
            if key == "seeds":
                what = "the sweep (simulate_kwargs['seeds'] is read, then runs are split)"
            raise ValueError(f"{argname} must not contain {key!r}: it is set by {what}")
    params = inspect.signature(METHODS[method].solver).parameters
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key in options:
        if key == "problem" or (key not in params and not var_kw):
            allowed = sorted(set(params) - {"problem", *RESERVED[method]})
            raise ValueError(f"{argname} has an unknown option {key!r}; allowed: {allowed}")
    return options


def simulate_plan(simulate_kwargs: Mapping | None) -> tuple[dict, int]:
    """Split simulate_kwargs into per-run options (with d) and the number of runs."""
    opts = dict(simulate_kwargs or {})
    if "d" not in opts:
        raise ValueError("simulate_kwargs must give the input dimension 'd' for method 'simulate'")
    seeds = integer("simulate_kwargs['seeds']", opts.pop("seeds", 8), low=1)
    opts["d"] = integer("simulate_kwargs['d']", opts["d"], low=1)
    return check_options("simulate", opts, "simulate_kwargs"), seeds
