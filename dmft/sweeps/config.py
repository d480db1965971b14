"""Sweep descriptions in TOML (``dmft sweep CONFIG.toml``; see ``examples/sweep_he3.toml``)."""

from __future__ import annotations

from pathlib import Path

from ..api import METHODS
from ..problem import Problem
from .grid import FIELDS

__all__ = ["load_config"]

CONFIG_KEYS = {"store", "methods", "seed", "seeds_per_task", "problem", "grid", "dmft",
               "one-pass", "simulate", "report"}


def load_config(path) -> dict:
    """Read a sweep description from TOML (see ``examples/sweep_he3.toml``).

    Top level: ``store``, ``methods``, ``seed``, ``seeds_per_task``; tables ``[problem]``
    (Problem fields of the base problem), ``[grid]`` (field -> list), ``[dmft]``,
    ``[one-pass]``, ``[simulate]`` (solver options), ``[report]`` (``observable``, ``t``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        Keyword arguments of :func:`dmft.sweep` (``base_problem``, ``grid``, ...) plus
        ``report``.

    Examples
    --------
    >>> cfg = load_config("examples/sweep_he3.toml")  # doctest: +SKIP
    >>> report = cfg.pop("report")  # doctest: +SKIP
    >>> result = dmft.sweep(**cfg)  # doctest: +SKIP
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as fh:
        cfg = tomllib.load(fh)
    unknown = set(cfg) - CONFIG_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: "
                         f"{sorted(CONFIG_KEYS)}")
    if "grid" not in cfg:
        raise ValueError(f"{path}: a [grid] table is required")
    prob_cfg = dict(cfg.get("problem", {}))
    bad = set(prob_cfg) - set(FIELDS)
    if bad:
        raise ValueError(f"{path}: [problem] has unknown field(s) {sorted(bad)}; allowed: "
                         f"{FIELDS}")
    try:
        base = Problem(**prob_cfg)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: [problem] is invalid: {exc}") from None
    report = dict(cfg.get("report", {}))
    bad = set(report) - {"observable", "t"}
    if bad:
        raise ValueError(f"{path}: [report] has unknown key(s) {sorted(bad)}; allowed: "
                         "observable, t")
    return {
        "base_problem": base,
        "grid": dict(cfg["grid"]),
        "methods": tuple(cfg.get("methods", tuple(METHODS))),
        "solve_kwargs": dict(cfg.get("dmft", {})),
        "onepass_kwargs": dict(cfg.get("one-pass", {})),
        "simulate_kwargs": dict(cfg.get("simulate", {})),
        "store": cfg.get("store", Path(path).with_suffix(".h5").name),
        "seed": cfg.get("seed", 0),
        "seeds_per_task": cfg.get("seeds_per_task", 4),
        "report": report,
    }
