"""Content keys of a sweep: result keys and per-point seeds (see docs/guide/sweeps.md, "Seeds")."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["canonical", "derive_seed", "result_key"]

KEY_VERSION = 1  # bump when the meaning of a result key changes


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {obj!r} ({type(obj).__name__}) in a sweep key")


def canonical(obj) -> str:
    """Deterministic JSON (sorted keys, exact float repr) used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def derive_seed(seed: int, *parts: Any) -> int:
    """Integer seed in [0, 2^63) from a sweep seed and JSON-encodable parts (SHA-256).

    Parameters
    ----------
    seed : int
        The sweep seed (>= 0).
    *parts
        E.g. ``problem.to_dict(), "simulate", run_index``.

    Returns
    -------
    int
        The same for the same inputs on every machine and Python version.

    Examples
    --------
    >>> derive_seed(0, {"alpha": 2.0}, "dmft") == derive_seed(0, {"alpha": 2.0}, "dmft")
    True
    >>> 0 <= derive_seed(0, "simulate", 3) < 2**63
    True
    """
    digest = hashlib.sha256(canonical([int(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def result_key(method: str, problem_dict: dict, options: dict, seed: int) -> str:
    """The store key of one (point, method) result: what the result depends on, hashed."""
    payload = canonical([KEY_VERSION, method, problem_dict, options, int(seed)])
    return method.replace("-", "") + "-" + hashlib.sha256(payload.encode()).hexdigest()[:24]
