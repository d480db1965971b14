"""HDF5 storage of trajectories: exact round trip, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from .activations import Activation
from .problem import Problem
from .targets import Target
from .trajectory import KERNELS, OBSERVABLES, Trajectory

__all__ = ["save", "load", "write_group", "read_group", "atomic_path"]

FORMAT_VERSION = 1


class atomic_path:
    """Context manager yielding a temporary path next to ``path``, renamed onto it on success.

    An exception (or a kill) before the rename leaves the destination untouched.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def write_group(group: h5py.Group, traj: Trajectory) -> None:
    """Write one trajectory into an open HDF5 group."""
    group.attrs["format"] = "dmft.Trajectory"
    group.attrs["format_version"] = FORMAT_VERSION
    group.attrs["problem"] = json.dumps(traj.problem.to_dict())
    group.attrs["provenance"] = json.dumps(traj.provenance, default=_json_default)
    for name in OBSERVABLES:
        group.create_dataset(name, data=getattr(traj, name))
        group.create_dataset(name + "_se", data=getattr(traj, name + "_se"))
    for name in KERNELS + tuple(k + "_se" for k in KERNELS):
        val = getattr(traj, name)
        if val is not None:
            group.create_dataset(name, data=val)
    diag = group.create_group("diagnostics")
    for key, val in traj.diagnostics.items():
        arr = np.asarray(val)
        if arr.dtype.kind in "fiub":
            diag.create_dataset(key, data=arr)
        else:
            diag.attrs[key] = json.dumps(val, default=_json_default)


def read_group(group: h5py.Group, *, target: Target | None = None,
               activation: Activation | None = None) -> Trajectory:
    """Read a trajectory written by :func:`write_group`."""
    if group.attrs.get("format") != "dmft.Trajectory":
        raise ValueError(f"HDF5 group {group.name!r} does not hold a dmft.Trajectory")
    pdict = json.loads(group.attrs["problem"])
    try:
        problem = Problem.from_dict(pdict, target=target, activation=activation)
    except ValueError as exc:
        raise ValueError(
            f"cannot rebuild the problem stored in {group.name!r} ({exc}); for a user-defined "
            "target or activation pass target=... / activation=... to dmft.load"
        ) from None
    kw = {name: group[name][()] for name in group if isinstance(group[name], h5py.Dataset)}
    diagnostics = {}
    if "diagnostics" in group:
        dg = group["diagnostics"]
        diagnostics = {k: dg[k][()] for k in dg}
        diagnostics.update({k: json.loads(v) for k, v in dg.attrs.items()})
    return Trajectory(problem=problem, provenance=json.loads(group.attrs["provenance"]),
                      diagnostics=diagnostics, **kw)


def save(traj: Trajectory, path) -> None:
    """Write ``traj`` to the HDF5 file ``path`` (temporary file, then ``os.replace``)."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write_group(f, traj)


def load(path, *, target: Target | None = None, activation: Activation | None = None) -> Trajectory:
    """Read a trajectory saved by :meth:`Trajectory.save`.

    Parameters
    ----------
    path : str or Path
    target, activation : optional
        Needed only when the problem used a user-defined target or activation (those are stored
        by name and cannot be rebuilt from the file alone).
    """
    with h5py.File(path, "r") as f:
        return read_group(f, target=target, activation=activation)
